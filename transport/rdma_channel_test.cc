// Two groups of tests:
//  * RdmaProtocolTest / RdmaOptionsTest: the immediate-data and handshake formats, ring-slot
//    and credit bookkeeping (including an in-memory simulation of the whole data path), and
//    argument checking. Pure code: these run, and must pass, on every host.
//  * RdmaChannelTest: real connections. Without an RDMA device each one reports itself as
//    skipped, with the reason. With soft-RoCE (transport/RDMA.md) they run over the first
//    IPv4 address found in a device's GID table, or UNDERSTUDY_RDMA_TEST_ADDR when set
//    (bazel test --test_env=UNDERSTUDY_RDMA_TEST_ADDR=10.0.0.1 ...).
#include "transport/rdma_channel.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <infiniband/verbs.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <thread>

namespace understudy::transport {
namespace {

using rdma_protocol::DecodeHandshake;
using rdma_protocol::DecodeImm;
using rdma_protocol::EncodeHandshake;
using rdma_protocol::EncodeImm;
using rdma_protocol::Handshake;
using rdma_protocol::HandshakeType;
using rdma_protocol::ImmKind;
using rdma_protocol::ReceiveRing;
using rdma_protocol::RejectReason;
using rdma_protocol::SendWindow;
using rdma_protocol::SlotsFor;

std::vector<std::byte> RandomBytes(size_t size, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::vector<std::byte> bytes(size);
  for (auto& b : bytes) b = std::byte(static_cast<uint8_t>(random()));
  return bytes;
}

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ---------------------------------------------------------------------------------------
// Immediate data.

TEST(RdmaProtocolTest, ImmediateDataRoundTripsEveryKind) {
  for (ImmKind kind : {ImmKind::kData, ImmKind::kDataEnd, ImmKind::kCredit, ImmKind::kEndOfStream}) {
    for (uint32_t value : {0u, 1u, 65536u, rdma_protocol::kImmValueMask}) {
      auto imm = DecodeImm(EncodeImm(kind, value));
      ASSERT_TRUE(imm.ok()) << imm.status();
      EXPECT_EQ(imm->kind, kind);
      EXPECT_EQ(imm->value, value);
    }
  }
  // The kind sits in the top three bits: a worked example.
  EXPECT_EQ(EncodeImm(ImmKind::kDataEnd, 5), 0x40000005u);
}

TEST(RdmaProtocolTest, ImmediateDataWithUnknownKindIsCorruption) {
  for (uint32_t kind : {0u, 5u, 6u, 7u}) {
    auto imm = DecodeImm(kind << 29 | 17);
    EXPECT_EQ(imm.status().code(), Status::Code::kCorruption) << "kind " << kind;
  }
  EXPECT_TRUE(Contains(DecodeImm(0).status().message(), "0x00000000"));
}

// ---------------------------------------------------------------------------------------
// Handshake (private data).

Handshake SampleHello() {
  Handshake hello;
  hello.ring_address = 0x00007f1234560000ull;
  hello.ring_rkey = 0xabcd1234u;
  hello.slot_count = 256;
  hello.slot_bytes = 65536;
  return hello;
}

TEST(RdmaProtocolTest, HandshakeHasTheDocumentedLayout) {
  auto bytes = EncodeHandshake(SampleHello());
  const uint8_t expected[rdma_protocol::kHandshakeBytes] = {
      'U',  'S',  'R',  'D',                             // magic
      0x01, 0x00,                                        // version 1
      0x01, 0x00,                                        // hello
      0x00, 0x00, 0x56, 0x34, 0x12, 0x7f, 0x00, 0x00,    // ring address, little-endian
      0x34, 0x12, 0xcd, 0xab,                            // rkey
      0x00, 0x01, 0x00, 0x00,                            // 256 slots
      0x00, 0x00, 0x01, 0x00,                            // of 65536 bytes
      0x00, 0x00, 0x00, 0x00,                            // no reject reason
  };
  ASSERT_EQ(bytes.size(), sizeof(expected));
  EXPECT_EQ(std::memcmp(bytes.data(), expected, sizeof(expected)), 0);
  EXPECT_LE(bytes.size(), 56u) << "must fit rdma_connect's private data for RDMA_PS_TCP";
}

TEST(RdmaProtocolTest, HandshakeRoundTripsAndToleratesTransportPadding) {
  auto bytes = EncodeHandshake(SampleHello());
  // The transport may hand over more private data than was sent, zero-filled.
  std::vector<std::byte> padded(bytes.begin(), bytes.end());
  padded.resize(56);
  auto decoded = DecodeHandshake(padded);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->type, HandshakeType::kHello);
  EXPECT_EQ(decoded->ring_address, SampleHello().ring_address);
  EXPECT_EQ(decoded->ring_rkey, SampleHello().ring_rkey);
  EXPECT_EQ(decoded->slot_count, 256u);
  EXPECT_EQ(decoded->slot_bytes, 65536u);

  Handshake refusal;
  refusal.type = HandshakeType::kReject;
  refusal.reject_reason = RejectReason::kNoResources;
  auto rejected = DecodeHandshake(EncodeHandshake(refusal));
  ASSERT_TRUE(rejected.ok()) << rejected.status();
  EXPECT_EQ(rejected->type, HandshakeType::kReject);
  EXPECT_EQ(rejected->reject_reason, RejectReason::kNoResources);
  EXPECT_EQ(rdma_protocol::RejectReasonName(RejectReason::kNoResources), "listener out of RDMA resources");
}

TEST(RdmaProtocolTest, TruncatedHandshakeIsCorruption) {
  auto bytes = EncodeHandshake(SampleHello());
  for (size_t size = 0; size < bytes.size(); ++size) {
    auto decoded = DecodeHandshake(std::span<const std::byte>(bytes.data(), size));
    EXPECT_EQ(decoded.status().code(), Status::Code::kCorruption) << size << " bytes";
  }
}

TEST(RdmaProtocolTest, EveryMagicBitFlipIsCorruption) {
  for (size_t bit = 0; bit < 32; ++bit) {
    auto bytes = EncodeHandshake(SampleHello());
    bytes[bit / 8] ^= std::byte(1u << (bit % 8));
    auto decoded = DecodeHandshake(bytes);
    EXPECT_EQ(decoded.status().code(), Status::Code::kCorruption) << "bit " << bit;
    EXPECT_TRUE(Contains(decoded.status().message(), "not an Understudy agent"));
  }
}

TEST(RdmaProtocolTest, OtherVersionIsNotSupported) {
  Handshake future = SampleHello();
  future.version = 2;
  auto decoded = DecodeHandshake(EncodeHandshake(future));
  EXPECT_EQ(decoded.status().code(), Status::Code::kNotSupported);
  EXPECT_TRUE(Contains(decoded.status().message(), "version 2"));
}

TEST(RdmaProtocolTest, HandshakeWithImpossibleFieldsIsCorruption) {
  auto expect_corrupt = [](Handshake handshake, const std::string& why) {
    auto decoded = DecodeHandshake(EncodeHandshake(handshake));
    EXPECT_EQ(decoded.status().code(), Status::Code::kCorruption) << why;
  };
  Handshake bad_type = SampleHello();
  bad_type.type = static_cast<HandshakeType>(3);
  expect_corrupt(bad_type, "unknown type");
  Handshake no_slots = SampleHello();
  no_slots.slot_count = 0;
  expect_corrupt(no_slots, "zero slots");
  Handshake tiny_slots = SampleHello();
  tiny_slots.slot_bytes = 1;
  expect_corrupt(tiny_slots, "slots below the minimum");
  Handshake huge_ring = SampleHello();
  huge_ring.slot_count = 65536;
  huge_ring.slot_bytes = 64u << 20;
  expect_corrupt(huge_ring, "ring beyond kMaxRingBytes");
  Handshake nowhere = SampleHello();
  nowhere.ring_address = 0;
  expect_corrupt(nowhere, "ring at address 0");
  Handshake confused = SampleHello();
  confused.reject_reason = RejectReason::kMalformedHello;
  expect_corrupt(confused, "hello carrying a reject reason");
}

// ---------------------------------------------------------------------------------------
// Slots, chunks and credits.

TEST(RdmaProtocolTest, SlotsForRoundsUpAndEmptyChunksTakeOneSlot) {
  EXPECT_EQ(SlotsFor(0, 64), 1u);
  EXPECT_EQ(SlotsFor(1, 64), 1u);
  EXPECT_EQ(SlotsFor(64, 64), 1u);
  EXPECT_EQ(SlotsFor(65, 64), 2u);
  EXPECT_EQ(SlotsFor(64ull << 20, 64u << 10), 1024u);
}

TEST(RdmaProtocolTest, EmptyMessageIsOneLastChunkOfOneSlot) {
  SendWindow window(8, 64, 4);
  auto chunk = window.Plan(0);
  ASSERT_TRUE(chunk.has_value());
  EXPECT_EQ(chunk->slots, 1u);
  EXPECT_EQ(chunk->bytes, 0u);
  EXPECT_TRUE(chunk->last);
}

TEST(RdmaProtocolTest, ChunksAreCappedAndNeverCrossTheRingsEnd) {
  SendWindow window(8, 100, 3);  // 800-byte ring, chunks of at most 300 bytes
  auto first = window.Plan(1000);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->first_slot, 0u);
  EXPECT_EQ(first->slots, 3u);
  EXPECT_EQ(first->bytes, 300u);
  EXPECT_FALSE(first->last);
  window.Commit(*first);
  auto second = window.Plan(700);
  window.Commit(*second);
  EXPECT_EQ(second->first_slot, 3u);
  EXPECT_EQ(second->offset, 300u);
  // Two slots remain before the end: the next chunk stops there even though more are free.
  ASSERT_TRUE(window.Completed(6).ok());
  ASSERT_TRUE(window.Credited(6).ok());
  auto third = window.Plan(400);
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->first_slot, 6u);
  EXPECT_EQ(third->slots, 2u);
  EXPECT_EQ(third->bytes, 200u);
  window.Commit(*third);
  auto wrapped = window.Plan(200);
  ASSERT_TRUE(wrapped.has_value());
  EXPECT_EQ(wrapped->first_slot, 0u);
  EXPECT_EQ(wrapped->offset, 0u);
  EXPECT_EQ(wrapped->bytes, 200u);
  EXPECT_TRUE(wrapped->last);
}

TEST(RdmaProtocolTest, ShortChunksStillUseWholeSlots) {
  SendWindow window(8, 100, 8);
  auto chunk = window.Plan(101);
  ASSERT_TRUE(chunk.has_value());
  EXPECT_EQ(chunk->slots, 2u);
  EXPECT_EQ(chunk->bytes, 101u);
  EXPECT_EQ(SlotsFor(chunk->bytes, 100), chunk->slots) << "the receiver derives slots from the length";
}

TEST(RdmaProtocolTest, SlotIsReusedOnlyAfterCompletionAndCredit) {
  SendWindow window(4, 64, 4);
  auto all = window.Plan(256);
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->slots, 4u);
  window.Commit(*all);
  EXPECT_EQ(window.free_slots(), 0u);
  EXPECT_FALSE(window.Plan(1).has_value());
  ASSERT_TRUE(window.Credited(4).ok());
  EXPECT_EQ(window.free_slots(), 0u) << "the staging copy is still being read by the adapter";
  ASSERT_TRUE(window.Completed(2).ok());
  EXPECT_EQ(window.free_slots(), 2u);
  ASSERT_TRUE(window.Completed(2).ok());
  EXPECT_EQ(window.free_slots(), 4u);
}

TEST(RdmaProtocolTest, CreditOrCompletionBeyondWhatWasSentIsRefused) {
  SendWindow window(4, 64, 4);
  auto chunk = window.Plan(64);
  window.Commit(*chunk);
  EXPECT_EQ(window.Credited(2).code(), Status::Code::kCorruption);
  EXPECT_EQ(window.Completed(2).code(), Status::Code::kInternal);
  EXPECT_TRUE(window.Credited(1).ok());
  EXPECT_EQ(window.Credited(1).code(), Status::Code::kCorruption);
}

TEST(RdmaProtocolTest, ReceiveRingRefusesChunksPastTheEndOrBeyondCredit) {
  ReceiveRing ring(4, 64);
  auto crossing = ring.Arrive(5 * 64);
  EXPECT_EQ(crossing.status().code(), Status::Code::kCorruption);
  ASSERT_TRUE(ring.Arrive(3 * 64).ok());
  auto past_end = ring.Arrive(2 * 64);  // slot 3 + 2 slots > 4
  EXPECT_EQ(past_end.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(past_end.status().message(), "crosses the end"));
  ASSERT_TRUE(ring.Arrive(1).ok());  // slot 3: ring now full
  ASSERT_TRUE(ring.Consume(4).ok());
  auto overrun = ring.Arrive(1);  // consumed, but credit not returned yet
  EXPECT_EQ(overrun.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(overrun.status().message(), "credit"));
  ring.CreditsReturned(4);
  auto again = ring.Arrive(1);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->offset, 0u);
  EXPECT_EQ(ring.Consume(2).code(), Status::Code::kInternal);
}

TEST(RdmaProtocolTest, CreditsReturnInQuartersOrWhenForced) {
  ReceiveRing ring(16, 64);  // threshold: 4 slots
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(ring.Arrive(64).ok());
    ASSERT_TRUE(ring.Consume(1).ok());
  }
  EXPECT_EQ(ring.CreditsDue(false), 0u);
  EXPECT_EQ(ring.CreditsDue(true), 3u) << "before blocking, any amount goes back";
  ASSERT_TRUE(ring.Arrive(64).ok());
  ASSERT_TRUE(ring.Consume(1).ok());
  EXPECT_EQ(ring.CreditsDue(false), 4u);
  ring.CreditsReturned(4);
  EXPECT_EQ(ring.CreditsDue(true), 0u);
}

// The whole data path in memory: the sender's window and staging area, "RDMA writes" that
// land in the receiver's ring, immediates delivered in order, completions, consumption and
// credits, all interleaved at random. Every message must come out intact, no write may land
// on a slot still holding unconsumed data, and no staging slot may be reused before its
// write completed. A stuck state (nothing can move) is a deadlock and fails the test.
TEST(RdmaProtocolTest, SimulatedDataPathDeliversEveryMessageIntact) {
  constexpr uint32_t kSlots = 8, kSlotBytes = 64;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 random(seed);
    SendWindow window(kSlots, kSlotBytes, 3);
    ReceiveRing ring(kSlots, kSlotBytes);
    std::vector<std::byte> staging(kSlots * kSlotBytes), remote(kSlots * kSlotBytes);
    std::vector<bool> ring_busy(kSlots, false), staging_busy(kSlots, false);

    std::vector<std::vector<std::byte>> messages;
    const size_t sizes[] = {0, 1, 63, 64, 65, 191, 192, 500, 512, 513, 1500, 4000};
    for (int i = 0; i < 60; ++i) messages.push_back(RandomBytes(sizes[random() % std::size(sizes)], seed * 1000 + i));

    struct Flight {
      SendWindow::Chunk chunk;
      bool delivered = false;
    };
    std::deque<Flight> flights;            // posted writes, in send-queue order
    std::deque<uint32_t> immediates;       // on the wire to the receiver, in order
    std::deque<std::pair<ReceiveRing::Arrival, bool>> arrived;  // not yet consumed
    std::deque<uint32_t> credits;          // on the wire back to the sender
    size_t sending = 0, sent_bytes = 0;
    std::vector<std::vector<std::byte>> received;
    std::vector<std::byte> assembling;

    while (received.size() < messages.size()) {
      bool moved = false;
      switch (random() % 6) {
        case 0: {  // sender posts a chunk
          if (sending == messages.size()) break;
          uint64_t remaining = messages[sending].size() - sent_bytes;
          auto chunk = window.Plan(remaining);
          if (!chunk) break;
          for (uint32_t s = chunk->first_slot; s < chunk->first_slot + chunk->slots; ++s) {
            ASSERT_FALSE(staging_busy[s]) << "staging slot " << s << " reused before its write completed";
            ASSERT_FALSE(ring_busy[s]) << "write onto unconsumed ring slot " << s;
            staging_busy[s] = ring_busy[s] = true;
          }
          window.Commit(*chunk);
          if (chunk->bytes > 0) {  // an empty message's data() may be null: no memcpy from it (UBSan)
            std::memcpy(staging.data() + chunk->offset, messages[sending].data() + sent_bytes, chunk->bytes);
            std::memcpy(remote.data() + chunk->offset, staging.data() + chunk->offset, chunk->bytes);
          }
          immediates.push_back(EncodeImm(chunk->last ? ImmKind::kDataEnd : ImmKind::kData, chunk->bytes));
          flights.push_back({*chunk, false});
          sent_bytes += chunk->bytes;
          if (chunk->last) {
            ++sending;
            sent_bytes = 0;
          }
          moved = true;
          break;
        }
        case 1: {  // the receiver's adapter delivers the oldest immediate
          if (immediates.empty()) break;
          auto imm = DecodeImm(immediates.front());
          immediates.pop_front();
          ASSERT_TRUE(imm.ok());
          auto arrival = ring.Arrive(imm->value);
          ASSERT_TRUE(arrival.ok()) << arrival.status();
          for (Flight& flight : flights) {
            if (!flight.delivered) {
              EXPECT_EQ(flight.chunk.offset, arrival->offset) << "sender and receiver disagree on placement";
              flight.delivered = true;
              break;
            }
          }
          arrived.push_back({*arrival, imm->kind == ImmKind::kDataEnd});
          moved = true;
          break;
        }
        case 2: {  // the oldest delivered write completes at the sender
          if (flights.empty() || !flights.front().delivered) break;
          const SendWindow::Chunk& chunk = flights.front().chunk;
          for (uint32_t s = chunk.first_slot; s < chunk.first_slot + chunk.slots; ++s) staging_busy[s] = false;
          ASSERT_TRUE(window.Completed(chunk.slots).ok());
          flights.pop_front();
          moved = true;
          break;
        }
        case 3: {  // the receiver consumes a chunk
          if (arrived.empty()) break;
          auto [arrival, last] = arrived.front();
          arrived.pop_front();
          assembling.insert(assembling.end(), remote.begin() + arrival.offset,
                            remote.begin() + arrival.offset + arrival.bytes);
          uint32_t first = static_cast<uint32_t>(arrival.offset / kSlotBytes);
          for (uint32_t s = first; s < first + arrival.slots; ++s) ring_busy[s] = false;
          ASSERT_TRUE(ring.Consume(arrival.slots).ok());
          if (last) {
            received.push_back(std::move(assembling));
            assembling.clear();
          }
          moved = true;
          break;
        }
        case 4: {  // the receiver returns credit (forced half the time, as before blocking)
          uint32_t due = ring.CreditsDue(random() % 2 == 0);
          if (due == 0) break;
          ring.CreditsReturned(due);
          credits.push_back(due);
          moved = true;
          break;
        }
        case 5: {  // the sender's adapter delivers a credit message
          if (credits.empty()) break;
          ASSERT_TRUE(window.Credited(credits.front()).ok());
          credits.pop_front();
          moved = true;
          break;
        }
      }
      if (!moved) {
        // Only a forced credit return can be left; without one the protocol would be stuck.
        bool anything = sending < messages.size() || !immediates.empty() || !flights.empty() || !arrived.empty() ||
                        !credits.empty() || ring.CreditsDue(true) > 0;
        ASSERT_TRUE(anything) << "deadlock with " << received.size() << " of " << messages.size() << " received";
      }
    }
    ASSERT_EQ(received.size(), messages.size());
    for (size_t i = 0; i < messages.size(); ++i) {
      EXPECT_EQ(received[i], messages[i]) << "seed " << seed << " message " << i;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Options and arguments: checked before any hardware is touched.

ChannelOptions Insecure() {
  ChannelOptions options;
  options.insecure = true;
  return options;
}

TEST(RdmaOptionsTest, DefaultsAreValidAndDescribeA16MiBRing) {
  RdmaOptions options;
  EXPECT_TRUE(ValidateRdmaOptions(options).ok());
  EXPECT_EQ(uint64_t{options.slot_count} * options.slot_bytes, 16ull << 20);
}

TEST(RdmaOptionsTest, EachFieldOutOfRangeIsNamed) {
  auto expect_refused = [](RdmaOptions options, const std::string& field) {
    Status status = ValidateRdmaOptions(options);
    EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << field;
    EXPECT_TRUE(Contains(status.message(), field)) << status;
  };
  RdmaOptions options;
  options.slot_bytes = 32;
  expect_refused(options, "slot_bytes");
  options = RdmaOptions();
  options.slot_bytes = (64u << 20) + 1;
  expect_refused(options, "slot_bytes");
  options = RdmaOptions();
  options.slot_count = 1;
  expect_refused(options, "slot_count");
  options = RdmaOptions();
  options.slot_count = 65537;
  expect_refused(options, "slot_count");
  options = RdmaOptions();
  options.slot_count = 8192;  // x 64 KiB = 512 MiB
  expect_refused(options, "exceeds");
  options = RdmaOptions();
  options.max_chunk_bytes = 0;
  expect_refused(options, "max_chunk_bytes");
  options = RdmaOptions();
  options.send_queue_depth = 3;
  expect_refused(options, "send_queue_depth");
  options = RdmaOptions();
  options.send_queue_depth = 16385;
  expect_refused(options, "send_queue_depth");
}

TEST(RdmaOptionsTest, FactoriesRefuseBadArgumentsOnAnyHost) {
  auto plain = DialRdma("127.0.0.1", 7471, ChannelOptions{}, Deadline::AfterMillis(100));
  EXPECT_EQ(plain.status().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(Contains(plain.status().message(), "insecure: true")) << plain.status();
  auto listen_plain = ListenRdma("127.0.0.1", 0, ChannelOptions{});
  EXPECT_EQ(listen_plain.status().code(), Status::Code::kInvalidArgument);

  RdmaOptions bad;
  bad.slot_count = 0;
  auto dial_bad = DialRdma("127.0.0.1", 7471, Insecure(), Deadline::AfterMillis(100), bad);
  EXPECT_EQ(dial_bad.status().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(Contains(dial_bad.status().message(), "slot_count")) << dial_bad.status();
  auto listen_bad = ListenRdma("127.0.0.1", 0, Insecure(), bad);
  EXPECT_EQ(listen_bad.status().code(), Status::Code::kInvalidArgument);
}

TEST(RdmaOptionsTest, AvailabilityIsExplainedAndFactoriesAgree) {
  Status available = RdmaAvailable();
  if (available.ok()) {
    GTEST_SKIP() << "skipped: this host has an RDMA device, so there is no refusal to check";
  }
  EXPECT_EQ(available.code(), Status::Code::kFailedPrecondition) << available;
  EXPECT_TRUE(Contains(available.message(), "RDMA.md")) << available;
  auto dial = DialRdma("127.0.0.1", 7471, Insecure(), Deadline::AfterMillis(100));
  EXPECT_EQ(dial.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(dial.status().message(), available.message());
  auto listen = ListenRdma("127.0.0.1", 0, Insecure());
  EXPECT_EQ(listen.status().code(), Status::Code::kFailedPrecondition);
}

// ---------------------------------------------------------------------------------------
// Real connections: skipped without an RDMA device.

// An IPv4 address that the rdma_cm can reach: the environment's choice, else the first
// IPv4-mapped GID (::ffff:a.b.c.d, as RoCE v2 lists the netdev's addresses) of any port.
std::string FindTestAddress() {
  if (const char* chosen = std::getenv("UNDERSTUDY_RDMA_TEST_ADDR"); chosen != nullptr && *chosen != '\0') {
    return chosen;
  }
  std::string found;
  int count = 0;
  ibv_device** devices = ibv_get_device_list(&count);
  for (int d = 0; devices != nullptr && d < count && found.empty(); ++d) {
    ibv_context* context = ibv_open_device(devices[d]);
    if (context == nullptr) continue;
    ibv_device_attr device{};
    if (ibv_query_device(context, &device) == 0) {
      for (uint8_t port = 1; port <= device.phys_port_cnt && found.empty(); ++port) {
        ibv_port_attr attributes{};
        if (ibv_query_port(context, port, &attributes) != 0) continue;
        for (int index = 0; index < attributes.gid_tbl_len && found.empty(); ++index) {
          ibv_gid gid{};
          if (ibv_query_gid(context, port, index, &gid) != 0) continue;
          static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
          if (std::memcmp(gid.raw, kMapped, sizeof(kMapped)) != 0) continue;
          char text[INET_ADDRSTRLEN] = {};
          inet_ntop(AF_INET, gid.raw + 12, text, sizeof(text));
          found = text;
        }
      }
    }
    ibv_close_device(context);
  }
  if (devices != nullptr) ibv_free_device_list(devices);
  return found;
}

struct Pair {
  std::unique_ptr<Listener> listener;
  std::unique_ptr<Channel> client, server;
};

class RdmaChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status available = RdmaAvailable();
    if (!available.ok()) GTEST_SKIP() << "skipped: no RDMA device (" << available.message() << ")";
    address_ = FindTestAddress();
    ASSERT_FALSE(address_.empty()) << "an RDMA device exists but no IPv4 address was found in its GID table; set "
                                      "UNDERSTUDY_RDMA_TEST_ADDR to the address of an RDMA-capable interface";
  }

  Pair Connect(const RdmaOptions& client_options = RdmaOptions(),
               const RdmaOptions& server_options = RdmaOptions()) {
    Pair pair;
    auto listener = ListenRdma(address_, 0, Insecure(), server_options);
    EXPECT_TRUE(listener.ok()) << listener.status();
    if (!listener.ok()) return pair;
    pair.listener = std::move(*listener);
    std::string uri = pair.listener->address();
    uint16_t port = static_cast<uint16_t>(std::stoul(uri.substr(uri.rfind(':') + 1)));
    std::thread dialer([&] {
      auto client = DialRdma(address_, port, Insecure(), Deadline::AfterMillis(10000), client_options);
      EXPECT_TRUE(client.ok()) << client.status();
      if (client.ok()) pair.client = std::move(*client);
    });
    auto server = pair.listener->Accept(Deadline::AfterMillis(10000));
    dialer.join();
    EXPECT_TRUE(server.ok()) << server.status();
    if (server.ok()) pair.server = std::move(*server);
    return pair;
  }

  static RdmaOptions TinyRing() {
    RdmaOptions options;
    options.slot_bytes = 4096;
    options.slot_count = 8;  // 32 KiB: every large message wraps the ring many times
    options.max_chunk_bytes = 16384;
    return options;
  }

  // Sends each size as three uneven parts from one thread and checks them on the other side.
  static void RoundTrip(Pair& pair, const std::vector<size_t>& sizes) {
    std::thread sender([&] {
      for (size_t size : sizes) {
        std::vector<std::byte> whole = RandomBytes(size, size);
        size_t a = size / 3, b = size / 2;
        std::vector<MessagePart> parts = {MessagePart(whole).subspan(0, a), MessagePart(whole).subspan(a, b - a),
                                          MessagePart(whole).subspan(b)};
        Status sent = pair.client->Send(parts, Deadline::AfterMillis(60000));
        ASSERT_TRUE(sent.ok()) << sent;
      }
    });
    std::vector<std::byte> message;
    for (size_t size : sizes) {
      Status received = pair.server->Receive(message, Deadline::AfterMillis(60000));
      ASSERT_TRUE(received.ok()) << received;
      EXPECT_EQ(message.size(), size);
      EXPECT_TRUE(message == RandomBytes(size, size)) << "message of " << size << " bytes differs";
    }
    sender.join();
  }

  std::string address_;
};

TEST_F(RdmaChannelTest, RoundTripsFromOneByteTo64MiB) {
  Pair pair = Connect();
  ASSERT_TRUE(pair.client && pair.server);
  // 17 MiB and 64 MiB exceed the default 16 MiB ring.
  RoundTrip(pair, {1, 0, 4096, 65537, (1u << 20) + 3, 17u << 20, 64u << 20});
}

TEST_F(RdmaChannelTest, LargeMessagesWrapATinyRing) {
  Pair pair = Connect(TinyRing(), TinyRing());
  ASSERT_TRUE(pair.client && pair.server);
  RoundTrip(pair, {1, 4095, 4096, 4097, 100000, 8u << 20, 64u << 20});
}

TEST_F(RdmaChannelTest, ListenerWithMoreSlotsShrinksToTheDialers) {
  RdmaOptions big;
  big.slot_count = 512;
  Pair pair = Connect(TinyRing(), big);
  ASSERT_TRUE(pair.client && pair.server);
  RoundTrip(pair, {10, 1u << 20});
  std::swap(pair.client, pair.server);  // and the other direction
  RoundTrip(pair, {10, 1u << 20});
}

TEST_F(RdmaChannelTest, ManySmallMessagesBothWaysAtOnce) {
  Pair pair = Connect(TinyRing(), TinyRing());
  ASSERT_TRUE(pair.client && pair.server);
  constexpr int kMessages = 3000;
  auto pump = [](Channel* channel, uint64_t seed) {
    for (int i = 0; i < kMessages; ++i) {
      std::vector<std::byte> message = RandomBytes(i % 97 == 0 ? 9000 : i % 300, seed + i);
      Status sent = channel->Send(message, Deadline::AfterMillis(30000));
      ASSERT_TRUE(sent.ok()) << sent;
    }
  };
  auto drain = [](Channel* channel, uint64_t seed) {
    std::vector<std::byte> message;
    for (int i = 0; i < kMessages; ++i) {
      Status received = channel->Receive(message, Deadline::AfterMillis(30000));
      ASSERT_TRUE(received.ok()) << received << " at message " << i;
      ASSERT_TRUE(message == RandomBytes(i % 97 == 0 ? 9000 : i % 300, seed + i)) << "message " << i;
    }
  };
  // Each channel sends on one thread and receives on another: the contract's concurrency.
  std::thread a_send(pump, pair.client.get(), 100000), b_send(pump, pair.server.get(), 200000);
  std::thread a_receive(drain, pair.client.get(), 200000), b_receive(drain, pair.server.get(), 100000);
  a_send.join();
  b_send.join();
  a_receive.join();
  b_receive.join();
}

TEST_F(RdmaChannelTest, SilentPeerHitsTheDeadline) {
  Pair pair = Connect();
  ASSERT_TRUE(pair.client && pair.server);
  std::vector<std::byte> message;
  auto start = std::chrono::steady_clock::now();
  Status status = pair.server->Receive(message, Deadline::AfterMillis(50));
  EXPECT_EQ(status.code(), Status::Code::kDeadlineExceeded) << status;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  // The channel stays usable.
  ASSERT_TRUE(pair.client->Send(RandomBytes(10, 1), Deadline::AfterMillis(5000)).ok());
  ASSERT_TRUE(pair.server->Receive(message, Deadline::AfterMillis(5000)).ok());
  EXPECT_EQ(message, RandomBytes(10, 1));
}

TEST_F(RdmaChannelTest, SendWithoutCreditHitsTheDeadlineThenRefusesToSendMore) {
  Pair pair = Connect(TinyRing(), TinyRing());
  ASSERT_TRUE(pair.client && pair.server);
  // Nobody receives: 1 MiB cannot fit a 32 KiB ring.
  Status status = pair.client->Send(RandomBytes(1u << 20, 3), Deadline::AfterMillis(200));
  EXPECT_EQ(status.code(), Status::Code::kDeadlineExceeded) << status;
  Status again = pair.client->Send(RandomBytes(1, 3), Deadline::AfterMillis(200));
  EXPECT_EQ(again.code(), Status::Code::kFailedPrecondition) << again;
  // The receiver gets the part that was sent, keeps it across its own deadline, and learns
  // that the rest will never come when the sender goes away.
  std::vector<std::byte> message;
  Status partial = pair.server->Receive(message, Deadline::AfterMillis(200));
  EXPECT_EQ(partial.code(), Status::Code::kDeadlineExceeded) << partial;
  pair.client.reset();
  Status broken = pair.server->Receive(message, Deadline::AfterMillis(5000));
  EXPECT_EQ(broken.code(), Status::Code::kBroken) << broken;
  EXPECT_TRUE(Contains(broken.message(), "mid-message")) << broken;
}

TEST_F(RdmaChannelTest, DeathWithoutGoodbyeIsBrokenNotClosed) {
  Pair pair = Connect();
  ASSERT_TRUE(pair.client && pair.server);
  ASSERT_TRUE(pair.client->Send(RandomBytes(100, 5), Deadline::AfterMillis(5000)).ok());
  std::vector<std::byte> message;
  ASSERT_TRUE(pair.server->Receive(message, Deadline::AfterMillis(5000)).ok());
  EXPECT_EQ(message, RandomBytes(100, 5));
  // (Not before: a Send returns once posted, and destroying a channel flushes whatever its
  // adapter has not transmitted yet. Only Close() waits for delivery.)
  pair.client.reset();  // disconnects without an end-of-stream marker
  Status status = pair.server->Receive(message, Deadline::AfterMillis(5000));
  EXPECT_EQ(status.code(), Status::Code::kBroken) << status;
  EXPECT_TRUE(Contains(status.message(), "without a goodbye")) << status;
  Status send = pair.server->Send(RandomBytes(10, 6), Deadline::AfterMillis(1000));
  EXPECT_EQ(send.code(), Status::Code::kBroken) << send;
}

TEST_F(RdmaChannelTest, CloseIsPeerClosedAndOnlyHalfCloses) {
  Pair pair = Connect();
  ASSERT_TRUE(pair.client && pair.server);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pair.client->Send(RandomBytes(1000, i), Deadline::AfterMillis(5000)).ok());
  Status closed = pair.client->Close(Deadline::AfterMillis(5000));
  ASSERT_TRUE(closed.ok()) << closed;
  EXPECT_EQ(pair.client->Send(RandomBytes(1, 1), Deadline::AfterMillis(100)).code(),
            Status::Code::kFailedPrecondition);
  std::vector<std::byte> message;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pair.server->Receive(message, Deadline::AfterMillis(5000)).ok());
    EXPECT_EQ(message, RandomBytes(1000, i));
  }
  for (int i = 0; i < 2; ++i) {
    Status end = pair.server->Receive(message, Deadline::AfterMillis(5000));
    EXPECT_EQ(end.code(), Status::Code::kPeerClosed) << end;
  }
  // The other direction still works until the server closes too.
  ASSERT_TRUE(pair.server->Send(RandomBytes(77, 7), Deadline::AfterMillis(5000)).ok());
  ASSERT_TRUE(pair.server->Close(Deadline::AfterMillis(5000)).ok());
  ASSERT_TRUE(pair.client->Receive(message, Deadline::AfterMillis(5000)).ok());
  EXPECT_EQ(message, RandomBytes(77, 7));
  EXPECT_EQ(pair.client->Receive(message, Deadline::AfterMillis(5000)).code(), Status::Code::kPeerClosed);
  // Destroying both after a clean close changes nothing for either.
  pair.client.reset();
  EXPECT_EQ(pair.server->Receive(message, Deadline::AfterMillis(1000)).code(), Status::Code::kPeerClosed);
}

TEST_F(RdmaChannelTest, PeerIdentityAndListenerAddressAreAddresses) {
  Pair pair = Connect();
  ASSERT_TRUE(pair.client && pair.server);
  std::string uri = pair.listener->address();
  EXPECT_EQ(uri.rfind("rdma://" + address_ + ":", 0), 0u) << uri;
  EXPECT_EQ(pair.client->peer_identity(), uri.substr(7));
  EXPECT_EQ(pair.server->peer_identity().rfind(address_ + ":", 0), 0u) << pair.server->peer_identity();
}

TEST_F(RdmaChannelTest, DialingNobodyFailsByTheDeadline) {
  auto listener = ListenRdma(address_, 0, Insecure());
  ASSERT_TRUE(listener.ok()) << listener.status();
  std::string uri = (*listener)->address();
  uint16_t port = static_cast<uint16_t>(std::stoul(uri.substr(uri.rfind(':') + 1)));
  listener->reset();  // the port is free again and nobody listens
  auto start = std::chrono::steady_clock::now();
  auto client = DialRdma(address_, port, Insecure(), Deadline::AfterMillis(300));
  EXPECT_FALSE(client.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

}  // namespace
}  // namespace understudy::transport
