#include "primary/byte_caps.h"

#include "common/json_fields.h"

namespace understudy::primary {

namespace {

constexpr uint32_t kMaxCapMib = 1u << 20;  // 1 TiB: beyond any host's memory

Status ReadCap(const nlohmann::json& caps, const char* field, uint64_t& bytes) {
  UNDERSTUDY_ASSIGN_OR_RETURN(uint32_t mib, OptionalUint32(caps, field, static_cast<uint32_t>(bytes >> 20),
                                                           "configuration: byte_caps"));
  if (mib == 0 || mib > kMaxCapMib) {
    return Status::InvalidArgument(std::string("configuration: byte_caps: \"") + field + "\" must be within 1.." +
                                   std::to_string(kMaxCapMib));
  }
  bytes = uint64_t{mib} << 20;
  return Status::Ok();
}

std::optional<CapCrossing> Over(const char* cap, const char* what, uint64_t used, uint64_t limit) {
  if (used <= limit) return std::nullopt;
  return CapCrossing{cap, std::string(what) + ": " + std::to_string(used) + " bytes, over the " + cap + " cap of " +
                              std::to_string(limit)};
}

}  // namespace

Result<ByteCaps> ByteCaps::FromJson(const nlohmann::json& config) {
  ByteCaps caps;
  UNDERSTUDY_ASSIGN_OR_RETURN(const nlohmann::json* object, OptionalObject(config, "byte_caps", "configuration"));
  if (!object) return caps;
  UNDERSTUDY_RETURN_IF_ERROR(ReadCap(*object, "in_flight_mib", caps.in_flight_bytes));
  UNDERSTUDY_RETURN_IF_ERROR(ReadCap(*object, "held_output_mib", caps.held_output_bytes));
  UNDERSTUDY_RETURN_IF_ERROR(ReadCap(*object, "unshipped_disk_mib", caps.unshipped_disk_bytes));
  return caps;
}

std::optional<CapCrossing> CrossedCap(const ByteCaps& caps, const ByteUsage& usage) {
  if (auto crossed = Over("in_flight", "unacknowledged checkpoints", usage.in_flight_bytes, caps.in_flight_bytes)) {
    return crossed;
  }
  if (auto crossed = Over("held_output", "held output", usage.held_output_bytes, caps.held_output_bytes)) return crossed;
  return Over("unshipped_disk", "unshipped disk writes", usage.unshipped_disk_bytes, caps.unshipped_disk_bytes);
}

std::optional<CapCrossing> CrossedFrameCap(uint64_t epoch, uint64_t bytes, uint64_t max_message_bytes) {
  if (bytes <= max_message_bytes) return std::nullopt;
  return CapCrossing{"frame", "checkpoint " + std::to_string(epoch) + " is " + std::to_string(bytes) +
                                  " bytes, over the channel's frame cap of " + std::to_string(max_message_bytes)};
}

nlohmann::json ByteCapsStatus(const ByteCaps& caps, const ByteUsage& usage, const std::string& crossed) {
  return {{"crossed", crossed.empty() ? nlohmann::json(nullptr) : nlohmann::json(crossed)},
          {"in_flight_bytes", usage.in_flight_bytes},
          {"in_flight_cap", caps.in_flight_bytes},
          {"held_output_bytes", usage.held_output_bytes},
          {"held_output_cap", caps.held_output_bytes},
          {"unshipped_disk_bytes", usage.unshipped_disk_bytes},
          {"unshipped_disk_cap", caps.unshipped_disk_bytes}};
}

}  // namespace understudy::primary
