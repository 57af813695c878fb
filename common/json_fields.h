// Typed, non-throwing access to the fields of a JSON object that came from outside: a peer's
// message, an etcd reply, a control request, a configuration file.
//
// nlohmann::json's value() and get<T>() throw type_error when a field has the wrong type, and
// an exception that escapes an agent's input handling terminates the agent (and with it, via
// PR_SET_PDEATHSIG, the VM it protects). These functions answer with a Status instead:
//
//   UNDERSTUDY_ASSIGN_OR_RETURN(std::string name, RequireString(hello, "name", "hello"));
//   UNDERSTUDY_ASSIGN_OR_RETURN(uint32_t every, OptionalUint32(config, "every_ms", 50, "config"));
//
// Every failure is kInvalidArgument and reads "<where>: \"<field>\" <what is wrong>", so the
// message names the field. `object` that is not a JSON object fails every Require* and every
// Optional* alike (nothing is silently defaulted from a value of the wrong shape).
// Optional*: an absent field gives the default; a present field of the wrong type (null
// included) is an error.
//
// ParseJson parses text without exceptions (nlohmann's allow_exceptions=false).
//
// Thread safety: free functions over values; no shared state.
#ifndef UNDERSTUDY_COMMON_JSON_FIELDS_H_
#define UNDERSTUDY_COMMON_JSON_FIELDS_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace understudy {

// kInvalidArgument "<where>: not valid JSON" when `text` does not parse.
Result<nlohmann::json> ParseJson(std::string_view text, std::string_view where);
// As ParseJson, and the top level must be an object.
Result<nlohmann::json> ParseJsonObject(std::string_view text, std::string_view where);

Result<std::string> RequireString(const nlohmann::json& object, std::string_view field, std::string_view where);
// Non-negative integers only (no fractions, no negatives).
Result<uint64_t> RequireUint64(const nlohmann::json& object, std::string_view field, std::string_view where);
Result<bool> RequireBool(const nlohmann::json& object, std::string_view field, std::string_view where);
// The field's value, which must be a JSON object. The pointer refers into `object`.
Result<const nlohmann::json*> RequireObject(const nlohmann::json& object, std::string_view field,
                                            std::string_view where);

Result<std::string> OptionalString(const nlohmann::json& object, std::string_view field, std::string fallback,
                                   std::string_view where);
Result<uint64_t> OptionalUint64(const nlohmann::json& object, std::string_view field, uint64_t fallback,
                                std::string_view where);
// As OptionalUint64, and the value must fit in 32 bits.
Result<uint32_t> OptionalUint32(const nlohmann::json& object, std::string_view field, uint32_t fallback,
                                std::string_view where);
Result<int64_t> OptionalInt64(const nlohmann::json& object, std::string_view field, int64_t fallback,
                              std::string_view where);
Result<double> OptionalDouble(const nlohmann::json& object, std::string_view field, double fallback,
                              std::string_view where);
Result<bool> OptionalBool(const nlohmann::json& object, std::string_view field, bool fallback,
                          std::string_view where);
// An array of strings; absent: empty.
Result<std::vector<std::string>> OptionalStringArray(const nlohmann::json& object, std::string_view field,
                                                     std::string_view where);
// The field's object, or nullptr when absent. The pointer refers into `object`.
Result<const nlohmann::json*> OptionalObject(const nlohmann::json& object, std::string_view field,
                                             std::string_view where);

// Decimal text of an unsigned 64-bit integer ("42"), e.g. etcd's revisions; no sign, no
// spaces, no overflow. kInvalidArgument naming `what` otherwise.
Result<uint64_t> ParseUint64Text(std::string_view text, std::string_view what);

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_JSON_FIELDS_H_
