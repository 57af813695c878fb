// Reading a JSON configuration file: kNotFound when it cannot be read, kInvalidArgument (with
// the path) when it is not valid JSON.
#ifndef UNDERSTUDY_COMMON_JSON_FILE_H_
#define UNDERSTUDY_COMMON_JSON_FILE_H_

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "common/result.h"

namespace understudy {

inline Result<nlohmann::json> ReadJsonFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) return Status::NotFound("cannot read configuration " + path);
  std::stringstream text;
  text << file.rdbuf();
  nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return Status::InvalidArgument(path + " is not valid JSON");
  return json;
}

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_JSON_FILE_H_
