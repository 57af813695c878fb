#include "replication/agent_protocol.h"

#include <cctype>
#include <nlohmann/json.hpp>

#include "common/byte_order.h"
#include "common/json_fields.h"

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

std::string EncodeHello(const Hello& hello) {
  return std::string(1, static_cast<char>(MessageType::kHello)) +
         nlohmann::json{{"name", hello.name}, {"vm", hello.vm}, {"heartbeat", hello.heartbeat_address}, {"disk", hello.disk},
                        {"revision", hello.revision}}
             .dump();
}

std::string EncodeHeartbeat() { return std::string(1, static_cast<char>(MessageType::kHeartbeat)); }

Result<Hello> DecodeHello(std::span<const std::byte> message) {
  if (message.empty() || message[0] != std::byte{static_cast<uint8_t>(MessageType::kHello)}) {
    return Status::Corruption("not a hello message");
  }
  std::string_view text(reinterpret_cast<const char*>(message.data()) + 1, message.size() - 1);
  Result<nlohmann::json> json = ParseJsonObject(text, "hello");
  if (!json.ok()) return Status::Corruption(json.status().message());
  // A field of the wrong type is the peer's mistake (or malice): an error, never an exception.
  Hello hello;
  Result<std::string> name = OptionalString(*json, "name", "", "hello");
  Result<std::string> vm = OptionalString(*json, "vm", "", "hello");
  Result<std::string> heartbeat = OptionalString(*json, "heartbeat", "", "hello");
  Result<uint64_t> revision = OptionalUint64(*json, "revision", 0, "hello");
  for (const Status& status : {name.status(), vm.status(), heartbeat.status(), revision.status()}) {
    if (!status.ok()) return Status::Corruption(status.message());
  }
  hello.name = std::move(*name);
  hello.vm = std::move(*vm);
  hello.heartbeat_address = std::move(*heartbeat);
  hello.revision = *revision;
  if (auto disk = json->find("disk"); disk != json->end()) hello.disk = *disk;
  if (hello.name.empty()) return Status::Corruption("hello without a name");
  // The VM's name becomes part of the arbiter's key and of paths: a VM definition's name
  // (qemu/vm_definition.h), nothing else.
  if (hello.vm.size() > 64 || hello.vm.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") !=
                                  std::string::npos || (!hello.vm.empty() && !std::isalnum(static_cast<unsigned char>(hello.vm[0])))) {
    return Status::Corruption("hello: \"vm\" is not a VM name");
  }
  return hello;
}

Result<MessageType> TypeOf(std::span<const std::byte> message) {
  if (message.empty()) return Status::Corruption("empty message");
  auto type = static_cast<uint8_t>(message[0]);
  if (type < 1 || type > 6) return Status::Corruption("unknown message type " + std::to_string(type));
  return static_cast<MessageType>(type);
}

std::string EncodeTestDiskWrite(const checkpoint::DiskWrite& write) {
  std::string message(1, static_cast<char>(MessageType::kTestDiskWrite));
  AppendLittleEndian<uint64_t>(message, write.offset);
  AppendLittleEndian<uint32_t>(message, write.length);
  message.push_back(write.zero ? 1 : 0);
  if (!write.zero) message += write.data;
  return message;
}

Result<checkpoint::DiskWrite> DecodeTestDiskWrite(std::span<const std::byte> message) {
  constexpr size_t kHeader = 1 + 8 + 4 + 1;
  if (message.size() < kHeader) return Status::Corruption("a test disk write of " + std::to_string(message.size()) + " bytes");
  checkpoint::DiskWrite write;
  write.offset = LoadLittleEndian<uint64_t>(&message[1]);
  write.length = LoadLittleEndian<uint32_t>(&message[9]);
  write.zero = message[13] == std::byte{1};
  write.data.assign(reinterpret_cast<const char*>(message.data()) + kHeader, message.size() - kHeader);
  if (!write.zero && write.data.size() != write.length) return Status::Corruption("a test disk write with the wrong length");
  return write;
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
