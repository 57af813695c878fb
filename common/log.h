// Log: one line per event on stderr, with a wall-clock timestamp and the component name.
//
//   2026-11-26T01:02:03.456Z secondary: rejected checkpoint 41: checksum mismatch in ...
//
// Operators grep these lines; tests assert on them. Thread-safe (one write(2) per line).
#ifndef UNDERSTUDY_COMMON_LOG_H_
#define UNDERSTUDY_COMMON_LOG_H_

#include <string_view>

namespace understudy {

void Log(std::string_view component, std::string_view message);

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_LOG_H_
