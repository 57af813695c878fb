// libFuzzer target for the binary messages of the agent protocol (replication/agent_protocol.h)
// as either agent receives them: the type byte, then the decoder the receiver picks for it —
// ack and nack (the primary), hello (both), heartbeat (both: the type byte alone), and the
// test-only early disk write (the secondary). Errors are fine; a crash, an escaping exception,
// or a decoded message that does not say what its bytes said are not.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

#include "replication/agent_protocol.h"
#include "tools/fuzz/fuzz_promise.h"

namespace {

using namespace understudy;

using fuzz::Require;

std::span<const std::byte> Bytes(const std::string& text) { return std::as_bytes(std::span(text.data(), text.size())); }

// An accepted ack or nack is exactly what encoding it again produces: nothing in the bytes
// was ignored (the epoch an ack names is what releases output on the primary).
void CheckAck(std::span<const std::byte> message, const replication::AckMessage& ack) {
  Require(ack.type == replication::MessageType::kAck || ack.type == replication::MessageType::kNack,
          "an accepted ack is an ack or a nack");
  Require(ack.type == static_cast<replication::MessageType>(message[0]), "the type is the first byte");
  if (ack.type == replication::MessageType::kAck) {
    std::string again = replication::EncodeAck(ack.epoch);
    Require(again.size() == message.size() && std::equal(message.begin(), message.end(), Bytes(again).begin()),
            "an ack re-encodes to its own bytes");
    Require(ack.reason.empty(), "an ack has no reason");
  } else {
    Require(ack.reason.size() == message.size() - 9, "a nack's reason is the rest of the message");
    if (ack.reason.size() <= 1024) {
      std::string again = replication::EncodeNack(ack.epoch, ack.reason);
      Require(again.size() == message.size() && std::equal(message.begin(), message.end(), Bytes(again).begin()),
              "a nack re-encodes to its own bytes");
    }
  }
}

void CheckHello(const replication::Hello& hello) {
  Require(!hello.name.empty(), "an accepted hello has a name");
  Require(hello.vm.size() <= 64, "a hello's VM name is short");
  for (char c : hello.vm) Require(c != '/' && c != ',' && c != '=' && static_cast<unsigned char>(c) > 0x20, "a VM name is a plain name");
  // What was accepted, sent again, is accepted again and means the same.
  std::string again = replication::EncodeHello(hello);
  Result<replication::Hello> decoded = replication::DecodeHello(Bytes(again));
  Require(decoded.ok(), "a re-encoded hello decodes");
  Require(decoded->name == hello.name && decoded->vm == hello.vm && decoded->heartbeat_address == hello.heartbeat_address,
          "a re-encoded hello says the same");
}

void CheckTestDiskWrite(const checkpoint::DiskWrite& write) {
  Require(write.zero || write.data.size() == write.length, "a data write carries exactly its length");
  std::string again = replication::EncodeTestDiskWrite(write);
  Result<checkpoint::DiskWrite> decoded = replication::DecodeTestDiskWrite(Bytes(again));
  Require(decoded.ok() && decoded->offset == write.offset && decoded->length == write.length && decoded->zero == write.zero,
          "a re-encoded disk write says the same");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> message(reinterpret_cast<const std::byte*>(data), size);
  try {
    Result<replication::MessageType> type = replication::TypeOf(message);
    Require(type.ok() == (size > 0 && data[0] >= 1 && data[0] <= 6), "TypeOf accepts exactly the known types");
    // Every decoder on every input: a receiver may be wrong about the type, never crash.
    Result<replication::AckMessage> ack = replication::DecodeAck(message);
    if (ack.ok()) CheckAck(message, *ack);
    Result<replication::Hello> hello = replication::DecodeHello(message);
    if (hello.ok()) CheckHello(*hello);
    Result<checkpoint::DiskWrite> write = replication::DecodeTestDiskWrite(message);
    if (write.ok()) CheckTestDiskWrite(*write);
    if (type.ok() && *type == replication::MessageType::kHeartbeat) {
      Require(replication::EncodeHeartbeat().size() == 1, "a heartbeat is its type byte");
    }
    if (ack.ok()) Require(type.ok(), "an accepted ack has a known type");
    if (hello.ok()) Require(type.ok() && *type == replication::MessageType::kHello, "only a hello decodes as one");
  } catch (const std::exception& error) {
    std::fprintf(stderr, "exception escaped a decoder: %s\n", error.what());
    std::abort();
  }
  return 0;
}
