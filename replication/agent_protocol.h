// The messages the primary and secondary agents exchange over their Channel.
//
//   primary → secondary   kCheckpoint  u8 type, then a checkpoint (checkpoint/FORMAT.md)
//   secondary → primary   kAck         u8 type, u64 LE epoch: committed, output may go out
//                         kNack        u8 type, u64 LE epoch, UTF-8 reason: rejected; resend
//                                      from this epoch (go-back-N)
//   both ways             kHello       u8 type, JSON {"name", "vm", "heartbeat": "ip:port",
//                                      "disk": the secondary's copy's lineage record,
//                                      "revision": the primary's ownership-record revision of
//                                      this pairing}: first message each side sends
//   primary → secondary   kTestDiskWrite  TEST ONLY: u8 type, u64 LE offset, u32 LE length,
//                                      u8 zero, data — one disk write the moment it completes
//                                      (the negative control of commit-time disk apply)
//                         kHeartbeat   u8 type: the channel path of the failure detector
//
// A clean goodbye is the Channel's own Close(); a broken channel is a lost peer.
#ifndef UNDERSTUDY_REPLICATION_AGENT_PROTOCOL_H_
#define UNDERSTUDY_REPLICATION_AGENT_PROTOCOL_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "checkpoint/checkpoint.h"
#include "common/result.h"

namespace understudy::replication {

enum class MessageType : uint8_t { kCheckpoint = 1, kAck = 2, kNack = 3, kHello = 4, kHeartbeat = 5, kTestDiskWrite = 6 };

struct Hello {
  std::string name;               // the agent's owner name in the ownership record
  std::string vm;                 // the protected VM (primary only): names the record
  std::string heartbeat_address;  // where its UDP heartbeats can be sent
  nlohmann::json disk;            // secondary only: its disk copy's lineage (disk/lineage_record.h)
  // Primary only: the revision at which it wrote the record {name, protected} for this pairing
  // (0: unknown). The secondary's PairController promotes over that record only; a primary
  // that lies here can only make its secondary refuse to promote, never promote wrongly.
  uint64_t revision = 0;
};

struct AckMessage {
  MessageType type = MessageType::kAck;  // kAck or kNack
  uint64_t epoch = 0;
  std::string reason;  // kNack only
};

inline constexpr std::byte kCheckpointTag{static_cast<uint8_t>(MessageType::kCheckpoint)};

std::string EncodeAck(uint64_t epoch);
std::string EncodeHello(const Hello& hello);
std::string EncodeHeartbeat();
Result<Hello> DecodeHello(std::span<const std::byte> message);
// The type byte of any message; kCorruption for an empty one.
Result<MessageType> TypeOf(std::span<const std::byte> message);
std::string EncodeNack(uint64_t epoch, std::string_view reason);

std::string EncodeTestDiskWrite(const checkpoint::DiskWrite& write);
Result<checkpoint::DiskWrite> DecodeTestDiskWrite(std::span<const std::byte> message);

// Decodes an ack or nack; kCorruption for anything else.
Result<AckMessage> DecodeAck(std::span<const std::byte> message);

}  // namespace understudy::replication

#endif  // UNDERSTUDY_REPLICATION_AGENT_PROTOCOL_H_
