// The wire format of the network guest's "exactly-once increment" service, seen from a client.
//
// The header comment of tests/guests/net_service.c is the specification; in short, all fields
// little-endian:
//   request  u32 magic "USRQ", u32 client_id, u32 request_no, u32 op            (16 bytes)
//   reply    u32 magic "USRP", u32 client_id, u32 request_no, u32 status, u64 value (24 bytes)
// For client c's request r the guest answers ok with a new value if r is c's next request, ok
// with the remembered value if r repeats c's last one, stale if r is older, gap if r skips
// ahead (nothing applied), invalid for an unknown op or client id. Across all clients the ok
// values are exactly 1..applied, each answered to one request.
//
// Pure functions of their arguments; safe from any thread.
#ifndef UNDERSTUDY_TESTS_HARNESS_SERVICE_PROTOCOL_H_
#define UNDERSTUDY_TESTS_HARNESS_SERVICE_PROTOCOL_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace understudy::testing {

inline constexpr uint32_t kServiceRequestMagic = 0x51525355u;  // "USRQ" read as little-endian
inline constexpr uint32_t kServiceReplyMagic = 0x50525355u;    // "USRP"
inline constexpr size_t kServiceRequestBytes = 16;
inline constexpr size_t kServiceReplyBytes = 24;
// The only operation the service applies.
inline constexpr uint32_t kServiceOpIncrement = 1;

// The status field of a reply. The guest sends only these four, but a decoded reply keeps
// whatever number arrived, so a checker can report a value outside them.
enum class ReplyStatus : uint32_t { kOk = 0, kStale = 1, kGap = 2, kInvalid = 3 };

struct ServiceReply {
  uint32_t client_id = 0;
  uint32_t request_no = 0;
  ReplyStatus status = ReplyStatus::kOk;
  uint64_t value = 0;  // the applied count for ok, 0 otherwise
};

// The datagram asking the service to apply `op` as `client_id`'s request `request_no`.
std::array<uint8_t, kServiceRequestBytes> EncodeServiceRequest(uint32_t client_id, uint32_t request_no,
                                                               uint32_t op = kServiceOpIncrement);

// The reply in `datagram`; empty unless it is exactly kServiceReplyBytes long and starts with
// kServiceReplyMagic (the service itself ignores anything else, and so should its clients).
std::optional<ServiceReply> DecodeServiceReply(std::span<const uint8_t> datagram);

// "ok", "stale", "gap", "invalid", or "status N" for a number the protocol does not define.
std::string ReplyStatusName(ReplyStatus status);

// The inverse of ReplyStatusName for the four defined names; empty for anything else.
std::optional<ReplyStatus> ParseReplyStatusName(const std::string& name);

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_SERVICE_PROTOCOL_H_
