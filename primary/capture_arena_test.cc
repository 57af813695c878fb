// The zero-copy capture: pages read into the arena are kept where they were read, pages the
// stream reader completed elsewhere (its carry buffer, across reads or chunks) are copied,
// chunks are held while a capture points into them and are reused, faulted in, afterwards.
// The end-to-end tests run ColoPeer and CaptureStage over a socketpair on a synthetic COLO
// stream written in odd-sized pieces, and compare every captured page with what was sent.
#include "primary/capture_arena.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstring>
#include <thread>

#include "checkpoint/qemu_stream_format.h"
#include "common/byte_order.h"
#include "common/fd_io.h"
#include "primary/capture_stage.h"
#include "primary/colo_peer.h"

namespace understudy::primary {
namespace {

namespace qs = checkpoint::qemu_stream;
constexpr size_t kPage = CaptureArena::kPageBytes;

// Reads `bytes` into the arena as ColoPeer would; returns where they landed.
std::span<const std::byte> ReadIn(CaptureArena& arena, std::span<const std::byte> bytes) {
  Result<std::span<std::byte>> space = arena.NextReadSpace();
  EXPECT_TRUE(space.ok());
  EXPECT_GE(space->size(), bytes.size());
  std::memcpy(space->data(), bytes.data(), bytes.size());
  return arena.Filled(bytes.size());
}

std::vector<std::byte> Filled(size_t size, uint8_t value) { return std::vector<std::byte>(size, std::byte{value}); }

TEST(CaptureArena, APageReadIntoTheArenaIsKeptInPlaceAndOneFromElsewhereIsCopied) {
  CaptureArena arena(ChunkPool::Create());
  std::span<const std::byte> read = ReadIn(arena, Filled(3 * kPage, 0x5a));
  Result<const std::byte*> kept = arena.Keep(read.subspan(kPage, kPage));
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, read.data() + kPage) << "no copy of a page the arena read";
  // Negative control: a page in other memory (the reader's carry buffer) must be copied.
  std::vector<std::byte> carried = Filled(kPage, 0x33);
  Result<const std::byte*> copied = arena.Keep(carried);
  ASSERT_TRUE(copied.ok());
  EXPECT_NE(*copied, carried.data());
  carried.assign(kPage, std::byte{0});
  EXPECT_EQ(std::memcmp(*copied, Filled(kPage, 0x33).data(), kPage), 0) << "the copy outlives the carry buffer";
  EXPECT_EQ(arena.stats().pages_viewed, 1u);
  EXPECT_EQ(arena.stats().pages_copied, 1u);
}

TEST(CaptureArena, ReadsMoveToAFreshChunkWhenTooLittleIsLeftAndEarlierPagesStay) {
  CaptureArena arena(ChunkPool::Create());
  std::span<const std::byte> first = ReadIn(arena, Filled(CaptureChunk::kBytes - CaptureArena::kMinReadBytes + 1, 1));
  Result<const std::byte*> early = arena.Keep(first.first(kPage));
  ASSERT_TRUE(early.ok());
  std::span<const std::byte> second = ReadIn(arena, Filled(kPage, 2));
  EXPECT_EQ(arena.stats().chunks_started, 2u);
  EXPECT_NE(second.data(), first.data() + first.size()) << "the read went to a new chunk";
  std::vector<CaptureChunk::Ref> held = arena.TakeEpochChunks();
  EXPECT_EQ(held.size(), 2u);
  EXPECT_EQ(std::to_integer<int>((*early)[kPage - 1]), 1);
}

TEST(CaptureArena, ChunksComeBackWhenTheCaptureIsGoneAndAreReusedWithoutNewMappings) {
  std::shared_ptr<ChunkPool> pool = ChunkPool::Create();
  CaptureArena arena(pool);
  auto epoch = [&] {
    EXPECT_TRUE(arena.Prepare().ok());
    for (int read = 0; read < 20; ++read) ReadIn(arena, Filled(CaptureArena::kMinReadBytes, 7));
    return arena.TakeEpochChunks();
  };
  for (int i = 0; i < 3; ++i) epoch();  // each capture is shipped and destroyed at once
  size_t mapped = pool->mapped_total();   // Prepare's idle reserve has been made
  for (int i = 0; i < 10; ++i) epoch();
  EXPECT_EQ(pool->mapped_total(), mapped) << "steady state: every chunk recycled";
  // Negative control: captures still held (not shipped yet) keep their chunks out of reuse.
  std::vector<std::vector<CaptureChunk::Ref>> in_flight;
  for (int i = 0; i < 3; ++i) in_flight.push_back(epoch());
  EXPECT_GT(pool->mapped_total(), mapped);
}

TEST(CaptureArena, PrepareFaultsInEnoughIdleChunksForACheckpointLikeTheRecentOnes) {
  auto epoch = [](CaptureArena& arena, int reads) {
    for (int read = 0; read < reads; ++read) ReadIn(arena, Filled(CaptureArena::kMinReadBytes, 7));
    return arena.TakeEpochChunks();
  };
  std::shared_ptr<ChunkPool> pool = ChunkPool::Create();
  CaptureArena arena(pool);
  std::vector<CaptureChunk::Ref> precopy = epoch(arena, 80);  // held; no Prepare: not a checkpoint
  ASSERT_TRUE(arena.Prepare().ok());
  EXPECT_LE(pool->idle(), 1u) << "the precopy's size does not predict a checkpoint's";
  std::vector<CaptureChunk::Ref> first = epoch(arena, 40);  // still held: not shipped yet
  ASSERT_TRUE(arena.Prepare().ok());                         // at the next checkpoint-request
  size_t mapped = pool->mapped_total();
  std::vector<CaptureChunk::Ref> second = epoch(arena, 40);
  EXPECT_EQ(pool->mapped_total(), mapped) << "the checkpoint read into chunks faulted in before it";
  // Negative control: without Prepare the same checkpoint maps (and faults in) new chunks.
  std::shared_ptr<ChunkPool> cold_pool = ChunkPool::Create();
  CaptureArena cold(cold_pool);
  std::vector<CaptureChunk::Ref> cold_first = epoch(cold, 40);
  size_t cold_mapped = cold_pool->mapped_total();
  std::vector<CaptureChunk::Ref> cold_second = epoch(cold, 40);
  EXPECT_GT(cold_pool->mapped_total(), cold_mapped);
}

// --- end to end: ColoPeer reading into the arena, CaptureStage keeping the pages ---

class ColoStream {
 public:
  std::string bytes;
  void Byte(uint8_t value) { bytes.push_back(static_cast<char>(value)); }
  void Be32(uint32_t value) { AppendBigEndian(bytes, value); }
  void Be64(uint64_t value) { AppendBigEndian(bytes, value); }
  void Short(std::string_view text) {
    Byte(static_cast<uint8_t>(text.size()));
    bytes.append(text);
  }
  // Every byte of page `index` in checkpoint `epoch` says which page and epoch it is.
  static std::vector<std::byte> Content(uint64_t epoch, uint64_t index) {
    std::vector<std::byte> page(kPage);
    for (size_t word = 0; word < kPage / 8; ++word) {
      uint64_t value = (epoch << 48) | (index << 16) | word;
      std::memcpy(&page[word * 8], &value, 8);
    }
    return page;
  }
  void Page(uint64_t epoch, uint64_t index, bool first) {
    Be64(index * kPage | qs::kRamFlagPage | (first ? 0 : qs::kRamFlagContinue));
    if (first) Short("pc.ram");
    std::vector<std::byte> content = Content(epoch, index);
    bytes.append(reinterpret_cast<const char*>(content.data()), content.size());
  }
  void Device(uint32_t id, std::string_view name, size_t size) {
    Byte(qs::kSectionFull);
    Be32(id);
    Short(name);
    Be32(0);
    Be32(1);
    bytes.append(size, 'd');
    Byte(qs::kSectionFooter);
    Be32(id);
  }
  void Precopy(uint64_t pages) {
    Be32(qs::kFileMagic);
    Be32(qs::kFileVersion);
    Byte(qs::kConfiguration);
    Be32(13);
    bytes.append("pc-i440fx-7.2");
    Byte(qs::kSectionStart);
    Be32(2);
    Short("ram");
    Be32(0);
    Be32(4);
    Be64(kBlockBytes | qs::kRamFlagMemSize);
    Short("pc.ram");
    Be64(kBlockBytes);
    Be64(qs::kRamFlagEos);
    Byte(qs::kSectionFooter);
    Be32(2);
    Byte(qs::kSectionEnd);
    Be32(2);
    for (uint64_t index = 0; index < pages; ++index) Page(1, index, index == 0);
    Be64(qs::kRamFlagEos);
    Byte(qs::kSectionFooter);
    Be32(2);
    Device(3, "cpu", 40);
    Byte(qs::kEof);
    Byte(qs::kVmDescription);
    std::string json = R"({"page_size": 4096, "devices":[{"name":"cpu","instance_id":0,)"
                       R"("fields":[{"name":"data","type":"buffer","size":40}]}]})";
    Be32(static_cast<uint32_t>(json.size()));
    bytes.append(json);
  }
  void Checkpoint(uint64_t epoch, uint64_t pages) {
    Be32(static_cast<uint32_t>(qs::ColoMessage::kCheckpointRequest));
    Be32(static_cast<uint32_t>(qs::ColoMessage::kVmstateSend));
    Byte(qs::kSectionEnd);
    Be32(2);
    for (uint64_t index = 0; index < pages; ++index) Page(epoch, index, index == 0);
    Be64(qs::kRamFlagEos);
    Byte(qs::kSectionFooter);
    Be32(2);
    Byte(qs::kEof);
    std::string state = bytes;  // device state: one section and EOF, measured apart
    bytes.clear();
    Device(3, "cpu", 40);
    Byte(qs::kEof);
    std::string device = std::move(bytes);
    bytes = std::move(state);
    Be32(static_cast<uint32_t>(qs::ColoMessage::kVmstateSize));
    Be64(device.size());
    bytes.append(device);
  }
  static constexpr uint64_t kBlockBytes = 4096 * kPage;
};

// Runs ColoPeer over a socketpair on `stream`, written in `piece`-byte writes (records
// straddle reads, so the reader carries some), until `epochs` captures were submitted.
std::vector<EpochCapture> Capture(const std::string& stream, size_t piece, size_t epochs, bool arena_reads,
                                  std::function<void(EpochCapture&)> on_submit = nullptr) {
  int pair[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd ours(pair[0]), theirs(pair[1]);
  std::vector<EpochCapture> submitted;
  CaptureHooks hooks;
  std::unique_ptr<ColoPeer> peer;
  hooks.submit = [&](EpochCapture&& capture) {
    if (on_submit) on_submit(capture);
    submitted.push_back(std::move(capture));
    if (submitted.size() == epochs) peer->RequestStop();
  };
  CaptureStage stage(std::move(hooks));
  ColoPeerOptions options;
  if (arena_reads) options.read_buffer = &stage.arena();
  peer = std::make_unique<ColoPeer>(std::move(ours), stage, std::move(options));
  std::thread writer([&] {
    for (size_t at = 0; at < stream.size(); at += piece) {
      std::string_view part = std::string_view(stream).substr(at, piece);
      if (!WriteAll(theirs.get(), part, Deadline::AfterMillis(10000)).ok()) return;
    }
  });
  std::thread drain([&] {  // QEMU reads the peer's COLO replies
    std::array<std::byte, 4096> replies;
    while (ReadSome(theirs.get(), replies, Deadline::AfterMillis(200)).ok()) {
    }
  });
  EXPECT_TRUE(peer->Run().ok());
  writer.join();
  drain.join();
  return submitted;
}

// Every page of every capture holds what the stream sent for it; returns the mismatches.
int WrongPages(const std::vector<EpochCapture>& captures) {
  int wrong = 0;
  for (const EpochCapture& capture : captures) {
    for (const CapturedPage& page : capture.pages) {
      std::vector<std::byte> expected = ColoStream::Content(capture.epoch, page.offset / kPage);
      if (std::memcmp(page.bytes, expected.data(), kPage) != 0) ++wrong;
    }
  }
  return wrong;
}

ColoStream ThreeCheckpoints(uint64_t pages) {
  ColoStream stream;
  stream.Precopy(pages);
  for (uint64_t epoch = 2; epoch <= 4; ++epoch) stream.Checkpoint(epoch, pages);
  return stream;
}

TEST(ZeroCopyCapture, EveryPageSurvivesReadsChunkBoundariesAndTheCarry) {
  ColoStream stream = ThreeCheckpoints(1500);  // ~6 MiB per epoch: several chunks each
  std::vector<EpochCapture> captures = Capture(stream.bytes, 9001, 4, /*arena_reads=*/true);
  ASSERT_EQ(captures.size(), 4u);
  for (const EpochCapture& capture : captures) EXPECT_EQ(capture.pages.size(), 1500u);
  EXPECT_EQ(WrongPages(captures), 0);
}

TEST(ZeroCopyCapture, MostPagesAreViewsAndTheSplitOnesCopies) {
  // ColoPeer's loop by hand (read into the arena, feed the reader) to see the arena's counts.
  ColoStream stream = ThreeCheckpoints(1500);
  std::vector<EpochCapture> submitted;
  CaptureHooks hooks;
  hooks.submit = [&](EpochCapture&& capture) { submitted.push_back(std::move(capture)); };
  CaptureStage stage(std::move(hooks));
  checkpoint::QemuStreamReader reader(stage);
  std::span<const std::byte> all = std::as_bytes(std::span(stream.bytes.data(), stream.bytes.size()));
  for (size_t at = 0; at < all.size(); at += 65536) {
    std::span<const std::byte> piece = all.subspan(at, std::min<size_t>(65536, all.size() - at));
    ASSERT_TRUE(reader.Feed(ReadIn(stage.arena(), piece)).ok());
  }
  ASSERT_EQ(submitted.size(), 4u);
  EXPECT_EQ(WrongPages(submitted), 0);
  const CaptureArena::Stats& stats = stage.arena().stats();
  EXPECT_EQ(stats.pages_viewed + stats.pages_copied, 6000u);
  EXPECT_GT(stats.pages_copied, 0u) << "records split across 64 KiB reads are carried and copied";
  EXPECT_LT(stats.pages_copied, 6000u / 8) << "one or two per read, not all";
  EXPECT_GE(stats.chunks_started, 6u) << "several chunks per epoch";
}

TEST(ZeroCopyCapture, WithoutTheArenaAsReadBufferEveryPageIsCopiedAndStillRight) {
  ColoStream stream = ThreeCheckpoints(300);
  std::vector<EpochCapture> captures = Capture(stream.bytes, 4099, 4, /*arena_reads=*/false);
  ASSERT_EQ(captures.size(), 4u);
  EXPECT_EQ(WrongPages(captures), 0);
}

TEST(ZeroCopyCapture, NegativeControlACaptureThatDoesNotHoldItsChunksSeesItsPagesOverwritten) {
  // The oracle can fail: if a capture let go of its chunks while its pages still point into
  // them, the pool hands them to the next epoch's reads, which overwrite those pages.
  ColoStream stream = ThreeCheckpoints(1500);
  std::vector<EpochCapture> precopy(1);  // epoch 1's pages, without their chunks
  int wrong = -1;
  Capture(stream.bytes, 9001, 4, /*arena_reads=*/true, [&](EpochCapture& capture) {
    // At epoch 2's end all of epoch 1's memory is still mapped: epoch 2 read into it.
    if (capture.epoch == 2) wrong = WrongPages(precopy);
    if (capture.epoch == 1) {
      precopy[0].epoch = 1;
      precopy[0].pages = capture.pages;
    }
    capture.chunks.clear();  // the bug
  });
  EXPECT_GT(wrong, 0) << "epoch 2's reads overwrote the precopy's pages";
}

}  // namespace
}  // namespace understudy::primary
