#include "replication/agent_protocol.h"

#include "common/byte_order.h"

namespace understudy::replication {

std::string EncodeAck(uint64_t epoch) {
  std::string message(1, static_cast<char>(MessageType::kAck));
  AppendLittleEndian<uint64_t>(message, epoch);
  return message;
}

std::string EncodeNack(uint64_t epoch, std::string_view reason) {
  std::string message(1, static_cast<char>(MessageType::kNack));
  AppendLittleEndian<uint64_t>(message, epoch);
  message.append(reason.substr(0, 1024));
  return message;
}

Result<AckMessage> DecodeAck(std::span<const std::byte> message) {
  if (message.size() < 9) return Status::Corruption("ack of " + std::to_string(message.size()) + " bytes");
  AckMessage ack;
  ack.type = static_cast<MessageType>(message[0]);
  if (ack.type != MessageType::kAck && ack.type != MessageType::kNack) {
    return Status::Corruption("unexpected message type " + std::to_string(static_cast<int>(message[0])) +
                              " from the secondary");
  }
  ack.epoch = LoadLittleEndian<uint64_t>(&message[1]);
  if (ack.type == MessageType::kAck && message.size() != 9) return Status::Corruption("ack with trailing bytes");
  ack.reason.assign(reinterpret_cast<const char*>(message.data()) + 9, message.size() - 9);
  return ack;
}

}  // namespace understudy::replication
