// Base64 (RFC 4648, with padding), as etcd's JSON gateway wants keys and values.
#ifndef UNDERSTUDY_COMMON_BASE64_H_
#define UNDERSTUDY_COMMON_BASE64_H_

#include <string>
#include <string_view>

#include "common/result.h"

namespace understudy {

std::string Base64Encode(std::string_view bytes);
// kCorruption for characters outside the alphabet or bad padding.
Result<std::string> Base64Decode(std::string_view text);

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_BASE64_H_
