// Understudy's checkpoint format: byte-identical round trips, and every kind of damage
// rejected with its own error while committed state stays untouched.
#include "checkpoint/checkpoint_codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "checkpoint/checkpoint_apply.h"
#include "checkpoint/checkpoint_test_util.h"
#include "common/byte_order.h"
#include "common/crc32c.h"

namespace understudy::checkpoint {
namespace {

using format::PageEncoding;

std::span<const std::byte> Bytes(const std::string& text) { return std::as_bytes(std::span(text.data(), text.size())); }

Checkpoint FirstCheckpoint(std::mt19937_64& random, RamImage& image) {
  Checkpoint checkpoint = testing::StageRandomEpoch(random, image, 1, 200);
  checkpoint.full = false;
  checkpoint.machine_definition_json = R"({"name":"counter","memory_mib":64})";
  checkpoint.stream_info = QemuStreamInfo{2, "pc-i440fx-7.2", {"x-ignore-shared"}};
  checkpoint.ram_blocks = image.blocks();
  image.CommitStaged(1);
  return checkpoint;
}

TEST(CheckpointCodecTest, RoundTripIsByteIdenticalOverRandomCheckpoints) {
  std::mt19937_64 random(7);
  auto image = RamImage::Create(testing::SampleBlocks());
  ASSERT_TRUE(image.ok());
  std::map<PageEncoding, int> encodings_seen;
  for (uint64_t epoch = 1; epoch <= 40; ++epoch) {
    Checkpoint original = epoch == 1 ? FirstCheckpoint(random, **image)
                                     : testing::StageRandomEpoch(random, **image, epoch, 1 + random() % 300);
    if (epoch > 1) (*image)->CommitStaged(epoch);
    if (epoch % 3 == 0) {
      // Disk writes of every kind, some epochs only flushing.
      for (int i = 0; i < static_cast<int>(random() % 5); ++i) {
        DiskWrite write{(random() % 4096) * 512, static_cast<uint32_t>(512 * (1 + random() % 8)), random() % 4 == 0, ""};
        if (!write.zero) write.data = std::string(write.length, static_cast<char>('a' + i));
        original.disk_writes.push_back(write);
      }
      original.disk_flushed = random() % 2 == 0;
      original.disk_sync_incomplete = random() % 2 == 0;
    }
    for (const PageRun& run : original.page_runs) {
      for (const EncodedPage& page : run.pages) ++encodings_seen[page.encoding];
    }
    std::string bytes = SerializeCheckpoint(original);
    Result<Checkpoint> parsed = ParseCheckpoint(Bytes(bytes));
    ASSERT_TRUE(parsed.ok()) << "epoch " << epoch << ": " << parsed.status();
    EXPECT_EQ(*parsed, original) << "epoch " << epoch;
    EXPECT_EQ(SerializeCheckpoint(*parsed), bytes) << "epoch " << epoch;
  }
  for (PageEncoding encoding : {PageEncoding::kRaw, PageEncoding::kZero, PageEncoding::kLz4, PageEncoding::kXorLz4}) {
    EXPECT_GT(encodings_seen[encoding], 0) << "never produced " << format::PageEncodingName(encoding);
  }
}

TEST(CheckpointCodecTest, AppliedCheckpointsReproduceThePrimarysImage) {
  std::mt19937_64 random(11);
  auto primary = RamImage::Create(testing::SampleBlocks());
  auto secondary = RamImage::Create(testing::SampleBlocks());
  ASSERT_TRUE(primary.ok() && secondary.ok());
  for (uint64_t epoch = 1; epoch <= 25; ++epoch) {
    Checkpoint checkpoint = testing::StageRandomEpoch(random, **primary, epoch, 150);
    (*primary)->CommitStaged(epoch);
    std::string bytes = SerializeCheckpoint(checkpoint);
    Result<Checkpoint> parsed = ParseCheckpoint(Bytes(bytes));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    Status applied = ApplyCheckpoint(*parsed, **secondary);
    ASSERT_TRUE(applied.ok()) << applied;
  }
  EXPECT_EQ((*secondary)->committed_epoch(), 25u);
  for (uint32_t block = 0; block < (*primary)->blocks().size(); ++block) {
    for (uint64_t offset = 0; offset < (*primary)->blocks()[block].used_length; offset += 4096) {
      auto a = (*primary)->CommittedPage(block, offset);
      auto b = (*secondary)->CommittedPage(block, offset);
      ASSERT_EQ(std::memcmp(a.data(), b.data(), 4096), 0) << "block " << block << " offset " << offset;
    }
  }
}

// Fixture for damage: a valid checkpoint 2 on top of a committed epoch 1, and a secondary
// image at epoch 1 whose contents must survive every rejected variant unchanged.
class CheckpointDamageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 random(3);
    auto primary = RamImage::Create(testing::SampleBlocks());
    auto secondary = RamImage::Create(testing::SampleBlocks());
    ASSERT_TRUE(primary.ok() && secondary.ok());
    primary_ = std::move(*primary);
    secondary_ = std::move(*secondary);
    Checkpoint first = FirstCheckpoint(random, *primary_);
    ASSERT_TRUE(ApplyCheckpoint(first, *secondary_).ok());
    Checkpoint second = testing::StageRandomEpoch(random, *primary_, 2, 120);
    bytes_ = SerializeCheckpoint(second);
    snapshot_ = Snapshot();
  }

  std::string Snapshot() const {
    std::string all;
    for (uint32_t block = 0; block < secondary_->blocks().size(); ++block) {
      for (uint64_t offset = 0; offset < secondary_->blocks()[block].used_length; offset += 4096) {
        auto page = secondary_->CommittedPage(block, offset);
        all.append(reinterpret_cast<const char*>(page.data()), page.size());
      }
    }
    return all;
  }

  // Parses and applies `damaged`; expects rejection with `expected` in the message, and the
  // secondary's committed state exactly as before.
  void ExpectRejected(const std::string& damaged, const std::string& expected, const std::string& label) {
    SCOPED_TRACE(label);
    Result<Checkpoint> parsed = ParseCheckpoint(Bytes(damaged));
    Status status = parsed.ok() ? ApplyCheckpoint(*parsed, *secondary_) : parsed.status();
    ASSERT_FALSE(status.ok()) << "damage went unnoticed";
    EXPECT_NE(status.message().find(expected), std::string::npos) << status;
    EXPECT_EQ(secondary_->committed_epoch(), 1u);
    EXPECT_EQ(secondary_->staged().count(), 0u);
    EXPECT_TRUE(Snapshot() == snapshot_) << "committed memory changed";
  }

  // Offsets of every section header in bytes_.
  std::vector<size_t> SectionOffsets() const {
    std::vector<size_t> offsets;
    for (size_t at = format::kHeaderBytes; at < bytes_.size();) {
      offsets.push_back(at);
      at += format::kSectionHeaderBytes + LoadLittleEndian<uint32_t>(reinterpret_cast<const std::byte*>(&bytes_[at + 4]));
    }
    return offsets;
  }

  std::unique_ptr<RamImage> primary_, secondary_;
  std::string bytes_;
  std::string snapshot_;
};

TEST_F(CheckpointDamageTest, TheUndamagedCheckpointApplies) {
  Result<Checkpoint> parsed = ParseCheckpoint(Bytes(bytes_));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(ApplyCheckpoint(*parsed, *secondary_).ok());
  EXPECT_EQ(secondary_->committed_epoch(), 2u);
}

TEST_F(CheckpointDamageTest, AFlippedByteInAnySectionIsAChecksumMismatchOfThatSection) {
  std::vector<size_t> offsets = SectionOffsets();
  ASSERT_GE(offsets.size(), 4u);
  std::mt19937_64 random(5);
  for (size_t i = 0; i < offsets.size(); ++i) {
    size_t end = i + 1 < offsets.size() ? offsets[i + 1] : bytes_.size();
    // The CRC field itself, and bytes in the header and the payload.
    for (size_t position : {offsets[i] + 8, offsets[i] + 1, offsets[i] + 12 + random() % (end - offsets[i] - 12)}) {
      std::string damaged = bytes_;
      damaged[position] ^= 0x01;
      uint16_t type = LoadLittleEndian<uint16_t>(reinterpret_cast<const std::byte*>(&damaged[offsets[i]]));
      std::string expected = position == offsets[i] + 1 ? "checksum mismatch in section" : "checksum mismatch in section " +
                             std::string(format::SectionTypeName(type));
      ExpectRejected(damaged, expected, "section " + std::to_string(i) + " byte " + std::to_string(position));
    }
  }
  std::string damaged = bytes_;
  damaged[9] ^= 0x40;  // the epoch in the checkpoint header
  ExpectRejected(damaged, "checkpoint header checksum mismatch", "header");
}

TEST_F(CheckpointDamageTest, TruncationAtEverySectionBoundaryIsRejected) {
  for (size_t cut : SectionOffsets()) {
    ExpectRejected(bytes_.substr(0, cut), "no commit trailer", "cut at " + std::to_string(cut));
    ExpectRejected(bytes_.substr(0, cut + 5), "truncated section header", "cut inside header at " + std::to_string(cut));
    ExpectRejected(bytes_.substr(0, cut + 20), "remain", "cut inside payload at " + std::to_string(cut));
  }
  ExpectRejected(bytes_.substr(0, 10), "shorter than its header", "cut inside the header");
  ExpectRejected(bytes_ + "x", "after the commit trailer", "trailing byte");
}

TEST_F(CheckpointDamageTest, WrongVersionMagicAndOversizedLengthsAreNamed) {
  std::string damaged = bytes_;
  damaged[4] = 2;
  ExpectRejected(damaged, "checkpoint format version 2", "version");
  damaged = bytes_;
  damaged[0] = 'X';
  ExpectRejected(damaged, "bad magic", "magic");
  size_t first = SectionOffsets()[0];
  damaged = bytes_;
  StoreLittleEndian<uint32_t>(reinterpret_cast<std::byte*>(&damaged[first + 4]), 0x7fffffff);
  ExpectRejected(damaged, "over the 268435456-byte cap", "oversized");
  damaged = bytes_;
  StoreLittleEndian<uint32_t>(reinterpret_cast<std::byte*>(&damaged[first + 4]), 1u << 20);
  ExpectRejected(damaged, "only", "length beyond the data");
}

// Damage the checksums cannot see, because a buggy or malicious sender computed them over
// bad content: the structure and the page data themselves are still checked.
TEST_F(CheckpointDamageTest, ValidChecksumsOverBadContentAreStillRejected) {
  Result<Checkpoint> parsed = ParseCheckpoint(Bytes(bytes_));
  ASSERT_TRUE(parsed.ok());

  Checkpoint bad_lz4 = *parsed;
  bool damaged_one = false;
  for (PageRun& run : bad_lz4.page_runs) {
    for (EncodedPage& page : run.pages) {
      if (!damaged_one && page.encoding == PageEncoding::kLz4 && page.bytes.size() > 8) {
        page.bytes.resize(page.bytes.size() / 2);
        damaged_one = true;
      }
    }
  }
  ASSERT_TRUE(damaged_one);
  ExpectRejected(SerializeCheckpoint(bad_lz4), "does not decode to one page", "truncated LZ4 page");

  Checkpoint wrong_base = *parsed;
  wrong_base.base_epoch = 7;
  ExpectRejected(SerializeCheckpoint(wrong_base), "deltas refer to epoch 7", "wrong base epoch");

  Checkpoint stale = *parsed;
  stale.epoch = 1;
  ExpectRejected(SerializeCheckpoint(stale), "already at epoch 1", "stale epoch");

  Checkpoint outside = *parsed;
  outside.page_runs[0].pages[0].offset = 1ull << 40;
  ExpectRejected(SerializeCheckpoint(outside), "outside block", "page beyond its block");

  Checkpoint duplicate = *parsed;
  duplicate.page_runs[0].pages.push_back(duplicate.page_runs[0].pages[0]);
  ExpectRejected(SerializeCheckpoint(duplicate), "appears twice", "duplicate page");

  Checkpoint empty_write = *parsed;
  empty_write.disk_writes.push_back({4096, 0, true, ""});
  ExpectRejected(SerializeCheckpoint(empty_write), "an empty disk write", "empty disk write");

  Checkpoint short_write = *parsed;
  short_write.disk_writes.push_back({4096, 512, false, std::string(100, 'x')});
  ExpectRejected(SerializeCheckpoint(short_write), "left in the section", "disk write shorter than its length");

  Checkpoint wrong_trailer_epoch = *parsed;
  std::string bytes = SerializeCheckpoint(wrong_trailer_epoch);
  size_t trailer = SectionOffsets().back();
  StoreLittleEndian<uint64_t>(reinterpret_cast<std::byte*>(&bytes[trailer + 12]), 99);
  uint32_t crc = crc32c::Extend(crc32c::Value(Bytes(bytes.substr(trailer, 8))), Bytes(bytes.substr(trailer + 12)));
  StoreLittleEndian<uint32_t>(reinterpret_cast<std::byte*>(&bytes[trailer + 8]), crc);
  ExpectRejected(bytes, "commit trailer names epoch 99", "trailer epoch");
}

TEST_F(CheckpointDamageTest, ReorderedSectionsBreakTheChain) {
  std::vector<size_t> offsets = SectionOffsets();
  ASSERT_GE(offsets.size(), 3u);
  // Swap the first two sections: each keeps a valid CRC, only the chain notices.
  std::string a = bytes_.substr(offsets[0], offsets[1] - offsets[0]);
  std::string b = bytes_.substr(offsets[1], offsets[2] - offsets[1]);
  std::string damaged = bytes_.substr(0, offsets[0]) + b + a + bytes_.substr(offsets[2]);
  ExpectRejected(damaged, "chained checksum mismatch", "swapped sections");
}

}  // namespace
}  // namespace understudy::checkpoint

namespace understudy::checkpoint {
namespace {

// Output and disk sections are chunked (FORMAT.md): an epoch's output of any size travels in
// sections of at most 16 MiB at consecutive stream offsets and comes back whole.
TEST(CheckpointChunkingTest, LargeOutputSpansSectionsOfAtMostTheChunkSizeAndComesBackWhole) {
  Checkpoint checkpoint;
  checkpoint.epoch = 5;
  std::string console(40u << 20, '\0');
  for (size_t i = 0; i < console.size(); ++i) console[i] = static_cast<char>('a' + i % 23);
  console += "tail!";
  checkpoint.outputs.push_back({OutputStream::kConsole, 1000, console});
  checkpoint.outputs.push_back({OutputStream::kNetwork, 7, std::string(3u << 20, 'n')});
  const std::string bytes = SerializeCheckpoint(checkpoint);

  size_t output_sections = 0;
  for (size_t at = format::kHeaderBytes; at < bytes.size();) {
    auto type = LoadLittleEndian<uint16_t>(reinterpret_cast<const std::byte*>(&bytes[at]));
    uint32_t length = LoadLittleEndian<uint32_t>(reinterpret_cast<const std::byte*>(&bytes[at + 4]));
    if (type == static_cast<uint16_t>(format::SectionType::kOutput)) {
      ++output_sections;
      EXPECT_LE(length, format::kChunkSectionBytes + 12);
    }
    at += format::kSectionHeaderBytes + length;
  }
  EXPECT_EQ(output_sections, 4u) << "40 MiB + 5 bytes of console in 3 sections, the network's 3 MiB in 1";

  Result<Checkpoint> parsed = ParseCheckpoint(Bytes(bytes));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  std::string joined;
  uint64_t next = 1000;
  for (const OutputChunk& chunk : parsed->outputs) {
    if (chunk.stream != OutputStream::kConsole) continue;
    EXPECT_EQ(chunk.stream_offset, next) << "the pieces follow each other";
    next += chunk.bytes.size();
    joined += chunk.bytes;
  }
  EXPECT_TRUE(joined == console) << "the console output did not come back whole";
  EXPECT_EQ(SerializeCheckpoint(*parsed), bytes);
}

// A frame with one section: header, `type` with `payload` (valid CRC), commit trailer.
std::string FrameWithSection(format::SectionType type, const std::string& payload) {
  std::string out;
  AppendLittleEndian<uint32_t>(out, format::kMagic);
  AppendLittleEndian<uint16_t>(out, format::kVersion);
  AppendLittleEndian<uint16_t>(out, format::kHeaderBytes);
  AppendLittleEndian<uint64_t>(out, 5);
  AppendLittleEndian<uint64_t>(out, 0);
  AppendLittleEndian<uint32_t>(out, 0);
  AppendLittleEndian<uint32_t>(out, crc32c::Value(Bytes(out)));
  std::string chain = out;
  auto append = [&](format::SectionType section, const std::string& body) {
    std::string header;
    AppendLittleEndian<uint16_t>(header, static_cast<uint16_t>(section));
    AppendLittleEndian<uint16_t>(header, 0);
    AppendLittleEndian<uint32_t>(header, static_cast<uint32_t>(body.size()));
    AppendLittleEndian<uint32_t>(header, crc32c::Extend(crc32c::Value(Bytes(header)), Bytes(body)));
    chain += header;
    out += header;
    out += body;
  };
  append(type, payload);
  std::string commit;
  AppendLittleEndian<uint64_t>(commit, 5);
  AppendLittleEndian<uint32_t>(commit, 1);
  AppendLittleEndian<uint32_t>(commit, crc32c::Value(Bytes(chain)));
  append(format::SectionType::kCommit, commit);
  return out;
}

TEST(CheckpointChunkingTest, ASingleOutputSectionOverTheSectionCapIsRefused) {
  std::string payload;
  AppendLittleEndian<uint32_t>(payload, 0);
  AppendLittleEndian<uint64_t>(payload, 0);
  // Negative control: the same frame with a section just under the cap parses.
  payload.resize(format::kMaxSectionBytes, 'x');
  {
    Result<Checkpoint> at_cap = ParseCheckpoint(Bytes(FrameWithSection(format::SectionType::kOutput, payload)));
    ASSERT_TRUE(at_cap.ok()) << at_cap.status();
    ASSERT_EQ(at_cap->outputs.size(), 1u);
    EXPECT_EQ(at_cap->outputs[0].bytes.size(), format::kMaxSectionBytes - 12);
  }
  payload.push_back('y');  // every byte present, checksums valid: only the cap is broken
  Result<Checkpoint> over = ParseCheckpoint(Bytes(FrameWithSection(format::SectionType::kOutput, payload)));
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("over the 268435456-byte cap"), std::string::npos) << over.status();
}

}  // namespace
}  // namespace understudy::checkpoint
