// ByteCaps: how much memory the primary may hold for its secondary, in bytes (issue 16,
// item 5). Delaying output is always safe, but a secondary that stops acknowledging would
// make it grow without bound; past a cap the pair has a documented event instead of a wedge.
//
//   "byte_caps": {
//     "in_flight_mib": 1024,        serialized checkpoints shipped (or being shipped) and not
//                                   yet acknowledged, kept for resends
//     "held_output_mib": 512,       guest output (console + network) produced and not yet
//                                   released: sealed into unacknowledged epochs or still open
//     "unshipped_disk_mib": 512     disk writes completed since the last checkpoint: recorded
//                                   by the disk server, in no checkpoint yet
//   }
//
// The pair event "byte cap crossed" (failover/SAFETY.md): the shipper stops shipping and
// holds what it holds; the primary treats its secondary as gone for protection — it swaps the
// ownership record to itself first (unprotected), exactly as when the secondary dies, and only
// after winning releases everything held and stops holding; it says goodbye on the channel so
// the secondary keeps its standby without promoting, and the primary protects the VM again
// when the secondary answers (a new pairing). Losing the record fences it; an unreachable
// arbiter leaves output held (bounded: the VM's next checkpoint waits, QEMU's buffers fill).
// The metric understudy_byte_cap_events_total{cap} counts crossings; the status says which
// cap and by how much ("byte_caps").
//
// Independently of the caps, a checkpoint whose serialized size exceeds the channel's frame
// cap (ChannelOptions::max_message_bytes) is never sent (the secondary could not take it and
// the channel would die while heartbeats go on): the same event.
//
// Thread safety: values; functions are pure.
#ifndef UNDERSTUDY_PRIMARY_BYTE_CAPS_H_
#define UNDERSTUDY_PRIMARY_BYTE_CAPS_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"

namespace understudy::primary {

struct ByteCaps {
  uint64_t in_flight_bytes = uint64_t{1024} << 20;
  uint64_t held_output_bytes = uint64_t{512} << 20;
  uint64_t unshipped_disk_bytes = uint64_t{512} << 20;

  // From an agent configuration's optional "byte_caps" object (absent: the defaults). Each
  // cap is 1..1048576 MiB; kInvalidArgument naming the field otherwise.
  static Result<ByteCaps> FromJson(const nlohmann::json& config);
};

// What the primary holds right now.
struct ByteUsage {
  uint64_t in_flight_bytes = 0;
  uint64_t held_output_bytes = 0;
  uint64_t unshipped_disk_bytes = 0;
};

struct CapCrossing {
  std::string cap;  // "in_flight", "held_output", "unshipped_disk" or "frame"
  std::string why;  // for the log and the status: what, how much, which cap
};

// The first cap `usage` exceeds (strictly), or nullopt.
std::optional<CapCrossing> CrossedCap(const ByteCaps& caps, const ByteUsage& usage);

// A serialized checkpoint of `bytes` for epoch `epoch` against the frame cap; nullopt if it fits.
std::optional<CapCrossing> CrossedFrameCap(uint64_t epoch, uint64_t bytes, uint64_t max_message_bytes);

// The agent's status line: {"crossed": cap or null, "in_flight_bytes", "in_flight_cap",
// "held_output_bytes", "held_output_cap", "unshipped_disk_bytes", "unshipped_disk_cap"}.
nlohmann::json ByteCapsStatus(const ByteCaps& caps, const ByteUsage& usage, const std::string& crossed);

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_BYTE_CAPS_H_
