#include "failover/etcd_reply.h"

#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "common/json_fields.h"

namespace understudy::failover {

namespace {

using nlohmann::json;

// Every error of these parsers is the reply's fault: kCorruption, whatever the helper said.
Status AsCorruption(const Status& status) { return Status::Corruption(status.message()); }

Result<json> ParseReply(std::string_view body, std::string_view where) {
  Result<json> reply = ParseJsonObject(body, where);
  if (!reply.ok()) return AsCorruption(reply.status());
  return reply;
}

// An int64 field: a string of digits (grpc-gateway) or a JSON number; absent is 0.
Result<uint64_t> JsonInt(const json& object, std::string_view field, std::string_view where) {
  auto found = object.find(field);
  if (found == object.end()) return uint64_t{0};
  Result<uint64_t> value = found->is_string()
                               ? ParseUint64Text(found->get_ref<const std::string&>(), std::string(where) + " " + std::string(field))
                               : OptionalUint64(object, field, 0, where);
  if (!value.ok()) return AsCorruption(value.status());
  return value;
}

Result<std::string> JsonString(const json& object, std::string_view field, std::string_view where) {
  Result<std::string> value = OptionalString(object, field, "", where);
  if (!value.ok()) return AsCorruption(value.status());
  return value;
}

// The record stored in the key: {"owner": "...", "mode": "..."}.
Status ParseRecordValue(const std::string& encoded, const std::string& key, OwnershipRecord& record) {
  Result<std::string> value = Base64Decode(encoded);
  if (!value.ok()) return Status::Corruption("etcd's range reply: the value of " + key + " is not base64");
  const std::string where = "ownership record " + key;
  UNDERSTUDY_ASSIGN_OR_RETURN(json parsed, ParseReply(*value, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(record.owner, JsonString(parsed, "owner", where));
  UNDERSTUDY_ASSIGN_OR_RETURN(record.mode, JsonString(parsed, "mode", where));
  return Status::Ok();
}

}  // namespace

std::string EtcdRangeRequest(const std::string& key) { return json{{"key", Base64Encode(key)}}.dump(); }

std::string EtcdCompareAndSwapRequest(const std::string& key, uint64_t expected_revision, const std::string& owner,
                                      const std::string& mode) {
  const std::string encoded_key = Base64Encode(key);
  const std::string value = Base64Encode(json{{"owner", owner}, {"mode", mode}}.dump());
  json request = {
      {"compare", json::array({{{"key", encoded_key},
                                {"result", "EQUAL"},
                                {"target", "MOD"},
                                {"mod_revision", std::to_string(expected_revision)}}})},
      {"success", json::array({{{"request_put", {{"key", encoded_key}, {"value", value}}}}})},
  };
  return request.dump();
}

Result<OwnershipRecord> ParseEtcdRangeReply(std::string_view body, const std::string& key) {
  constexpr std::string_view where = "etcd's range reply";
  UNDERSTUDY_ASSIGN_OR_RETURN(json reply, ParseReply(body, where));
  OwnershipRecord record;
  auto kvs = reply.find("kvs");
  if (kvs == reply.end() || (kvs->is_array() && kvs->empty())) return record;
  if (!kvs->is_array() || kvs->size() != 1 || !(*kvs)[0].is_object()) {
    return Status::Corruption("etcd's range reply: \"kvs\" is malformed (one key-value object expected)");
  }
  const json& kv = (*kvs)[0];
  UNDERSTUDY_ASSIGN_OR_RETURN(std::string reply_key, JsonString(kv, "key", where));
  if (reply_key != Base64Encode(key)) return Status::Corruption("etcd's range reply: \"key\" is not " + key);
  UNDERSTUDY_ASSIGN_OR_RETURN(record.revision, JsonInt(kv, "mod_revision", where));
  if (record.revision == 0) return Status::Corruption("etcd's range reply: an existing key without \"mod_revision\"");
  UNDERSTUDY_ASSIGN_OR_RETURN(std::string encoded, JsonString(kv, "value", where));
  UNDERSTUDY_RETURN_IF_ERROR(ParseRecordValue(encoded, key, record));
  return record;
}

Result<bool> ParseEtcdTxnReply(std::string_view body) {
  constexpr std::string_view where = "etcd's txn reply";
  UNDERSTUDY_ASSIGN_OR_RETURN(json reply, ParseReply(body, where));
  Result<bool> succeeded = OptionalBool(reply, "succeeded", false, where);
  if (!succeeded.ok()) return AsCorruption(succeeded.status());
  return *succeeded;
}

Result<uint64_t> ParseEtcdPutReply(std::string_view body) {
  constexpr std::string_view where = "etcd's put reply";
  UNDERSTUDY_ASSIGN_OR_RETURN(json reply, ParseReply(body, where));
  auto header = reply.find("header");
  if (header == reply.end() || !header->is_object()) return Status::Corruption("etcd's put reply: no \"header\" object");
  UNDERSTUDY_ASSIGN_OR_RETURN(uint64_t revision, JsonInt(*header, "revision", where));
  if (revision == 0) return Status::Corruption("etcd's put reply: no \"revision\" in its header");
  return revision;
}

}  // namespace understudy::failover
