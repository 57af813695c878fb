#include "common/json_fields.h"

#include <charconv>
#include <limits>

namespace understudy {

using nlohmann::json;

namespace {

Status FieldError(std::string_view where, std::string_view field, std::string_view what) {
  std::string message(where);
  message += ": \"";
  message += field;
  message += "\" ";
  message += what;
  return Status::InvalidArgument(message);
}

Status NotObject(std::string_view where) {
  return Status::InvalidArgument(std::string(where) + ": not a JSON object");
}

// The field's value, or nullptr when absent. REQUIRES: object.is_object().
const json* Find(const json& object, std::string_view field) {
  auto found = object.find(field);
  return found == object.end() ? nullptr : &*found;
}

Result<uint64_t> AsUint64(const json& value, std::string_view field, std::string_view where) {
  if (value.is_number_unsigned()) return value.get_ref<const json::number_unsigned_t&>();
  if (value.is_number_integer()) {
    json::number_integer_t signed_value = value.get_ref<const json::number_integer_t&>();
    if (signed_value >= 0) return static_cast<uint64_t>(signed_value);
  }
  return FieldError(where, field, "must be a non-negative integer");
}

}  // namespace

Result<json> ParseJson(std::string_view text, std::string_view where) {
  json parsed = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Status::InvalidArgument(std::string(where) + ": not valid JSON");
  return parsed;
}

Result<json> ParseJsonObject(std::string_view text, std::string_view where) {
  UNDERSTUDY_ASSIGN_OR_RETURN(json parsed, ParseJson(text, where));
  if (!parsed.is_object()) return NotObject(where);
  return parsed;
}

Result<std::string> RequireString(const json& object, std::string_view field, std::string_view where) {
  if (!object.is_object()) return NotObject(where);
  const json* value = Find(object, field);
  if (!value) return FieldError(where, field, "is missing");
  if (!value->is_string()) return FieldError(where, field, "must be a string");
  return value->get_ref<const std::string&>();
}

Result<uint64_t> RequireUint64(const json& object, std::string_view field, std::string_view where) {
  if (!object.is_object()) return NotObject(where);
  const json* value = Find(object, field);
  if (!value) return FieldError(where, field, "is missing");
  return AsUint64(*value, field, where);
}

Result<bool> RequireBool(const json& object, std::string_view field, std::string_view where) {
  if (!object.is_object()) return NotObject(where);
  const json* value = Find(object, field);
  if (!value) return FieldError(where, field, "is missing");
  if (!value->is_boolean()) return FieldError(where, field, "must be true or false");
  return value->get<bool>();
}

Result<const json*> RequireObject(const json& object, std::string_view field, std::string_view where) {
  if (!object.is_object()) return NotObject(where);
  const json* value = Find(object, field);
  if (!value) return FieldError(where, field, "is missing");
  if (!value->is_object()) return FieldError(where, field, "must be a JSON object");
  return value;
}

Result<std::string> OptionalString(const json& object, std::string_view field, std::string fallback,
                                   std::string_view where) {
  if (!object.is_object()) return NotObject(where);
  const json* value = Find(object, field);
  if (!value) return fallback;
  if (!value->is_string()) return FieldError(where, field, "must be a string");
  return value->get_ref<const std::string&>();
}

Result<uint64_t> OptionalUint64(const json& object, std::string_view field, uint64_t fallback,
                                std::string_view where) {
  if (!object.is_object()) return NotObject(where);
  const json* value = Find(object, field);
  if (!value) return fallback;
  return AsUint64(*value, field, where);
}

Result<uint32_t> OptionalUint32(const json& object, std::string_view field, uint32_t fallback,
                                std::string_view where) {
  UNDERSTUDY_ASSIGN_OR_RETURN(uint64_t wide, OptionalUint64(object, field, fallback, where));
  if (wide > std::numeric_limits<uint32_t>::max()) return FieldError(where, field, "is too large");
  return static_cast<uint32_t>(wide);
}

Result<int64_t> OptionalInt64(const json& object, std::string_view field, int64_t fallback,
                              std::string_view where) {
  if (!object.is_object()) return NotObject(where);
  const json* value = Find(object, field);
  if (!value) return fallback;
  if (value->is_number_integer() && !value->is_number_unsigned()) {
    return static_cast<int64_t>(value->get_ref<const json::number_integer_t&>());
  }
  if (value->is_number_unsigned()) {
    json::number_unsigned_t unsigned_value = value->get_ref<const json::number_unsigned_t&>();
    if (unsigned_value <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(unsigned_value);
    }
    return FieldError(where, field, "is too large");
  }
  return FieldError(where, field, "must be an integer");
}

Result<double> OptionalDouble(const json& object, std::string_view field, double fallback,
                              std::string_view where) {
  if (!object.is_object()) return NotObject(where);
  const json* value = Find(object, field);
  if (!value) return fallback;
  if (!value->is_number()) return FieldError(where, field, "must be a number");
  return value->get<double>();
}

Result<bool> OptionalBool(const json& object, std::string_view field, bool fallback, std::string_view where) {
  if (!object.is_object()) return NotObject(where);
  const json* value = Find(object, field);
  if (!value) return fallback;
  if (!value->is_boolean()) return FieldError(where, field, "must be true or false");
  return value->get<bool>();
}

Result<std::vector<std::string>> OptionalStringArray(const json& object, std::string_view field,
                                                     std::string_view where) {
  if (!object.is_object()) return NotObject(where);
  const json* value = Find(object, field);
  std::vector<std::string> strings;
  if (!value) return strings;
  if (!value->is_array()) return FieldError(where, field, "must be an array of strings");
  for (const json& element : *value) {
    if (!element.is_string()) return FieldError(where, field, "must be an array of strings");
    strings.push_back(element.get_ref<const std::string&>());
  }
  return strings;
}

Result<const json*> OptionalObject(const json& object, std::string_view field, std::string_view where) {
  if (!object.is_object()) return NotObject(where);
  const json* value = Find(object, field);
  if (!value) return static_cast<const json*>(nullptr);
  if (!value->is_object()) return FieldError(where, field, "must be a JSON object");
  return value;
}

Result<uint64_t> ParseUint64Text(std::string_view text, std::string_view what) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [stopped, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stopped != end) {
    return Status::InvalidArgument(std::string(what) + ": '" + std::string(text.substr(0, 32)) +
                                   "' is not an unsigned 64-bit integer");
  }
  return value;
}

}  // namespace understudy
