// libFuzzer target for the secondary's whole receive path on peer-chosen numbers: a
// checkpoint built from the input's structure (RAM blocks, page offsets, encodings, page
// bytes), serialised with valid framing and checksums, decoded by ParseCheckpoint and applied
// by ApplyCheckpoint into a RamImage committed at epoch 1.
//
// checkpoint_decoder_fuzzer mutates the serialised bytes, so nearly every mutation dies at a
// checksum and offsets like 0xFFFFFFFFFFFFF000 (which wrapped `offset + 4096` past every
// bounds check) are practically never reached. Here every input is a well-framed checkpoint
// and the fuzzer steers the numbers directly. Errors are fine; crashes, sanitizer reports,
// allocations the input sizes alone decide, and a refused checkpoint that changed the image
// are not.
//
// Input layout (little-endian; a short input ends the structure early):
//   u8 flags     bit 0: carry a ram_blocks section; bit 1: that list comes from the input
//                (else the image's own); bit 2: base_epoch = 1 (deltas against the image)
//   [bit 1]      u8 count (mod 5), count × u64 used_length
//   then pages:  u8 block index, u64 offset, u8 encoding (mod 4), u8 fill, u8 n, n bytes
//                (kRaw: 4096 × fill; kZero: nothing; LZ4 kinds: the n bytes as LZ4 data)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>

#include "checkpoint/checkpoint_apply.h"
#include "checkpoint/checkpoint_codec.h"
#include "checkpoint/ram_image.h"

namespace {

using namespace understudy;
using namespace understudy::checkpoint;

void Require(bool condition, const char* promise) {
  if (condition) return;
  std::fprintf(stderr, "broken promise: %s\n", promise);
  std::abort();
}

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return at_ >= size_; }
  uint8_t U8() { return at_ < size_ ? data_[at_++] : 0; }
  uint64_t U64() {
    uint64_t value = 0;
    for (int i = 0; i < 8; ++i) value |= uint64_t{U8()} << (8 * i);
    return value;
  }
  std::string Bytes(size_t count) {
    count = std::min(count, size_ - std::min(at_, size_));
    std::string bytes(reinterpret_cast<const char*>(data_ + at_), count);
    at_ += count;
    return bytes;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

RamBlockList ImageBlocks() { return {{"pc.ram", 256u << 10, std::nullopt}, {"vga.vram", 64u << 10, std::nullopt}}; }

// The committed bytes of every page, for "unchanged" checks.
std::string Snapshot(const RamImage& image) {
  std::string all;
  for (uint32_t block = 0; block < image.blocks().size(); ++block) {
    for (uint64_t offset = 0; offset < image.blocks()[block].used_length; offset += RamImage::kPageBytes) {
      std::span<const std::byte> page = image.CommittedPage(block, offset);
      all.append(reinterpret_cast<const char*>(page.data()), page.size());
    }
  }
  return all;
}

std::unique_ptr<RamImage> CommittedImage() {
  Result<std::unique_ptr<RamImage>> image = RamImage::Create(ImageBlocks());
  Require(image.ok(), "the fixed image can be created");
  std::string page(RamImage::kPageBytes, '\0');
  for (uint32_t block = 0; block < ImageBlocks().size(); ++block) {
    for (uint64_t offset = 0; offset < ImageBlocks()[block].used_length; offset += RamImage::kPageBytes) {
      std::memset(page.data(), static_cast<int>(offset / RamImage::kPageBytes + block), 64);
      Require((*image)->StagePage(block, offset, std::as_bytes(std::span(page))).ok(), "staging inside the image works");
    }
  }
  (*image)->CommitStaged(1);
  return std::move(*image);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input input(data, size);
  const uint8_t flags = input.U8();
  Checkpoint checkpoint;
  checkpoint.epoch = 2;
  checkpoint.base_epoch = (flags & 4) ? 1 : 0;
  if (flags & 1) {
    if (flags & 2) {
      RamBlockList blocks;
      const uint8_t count = input.U8() % 5;
      for (uint8_t i = 0; i < count; ++i) blocks.push_back({"b" + std::to_string(i), input.U64(), std::nullopt});
      checkpoint.ram_blocks = std::move(blocks);
    } else {
      checkpoint.ram_blocks = ImageBlocks();
    }
  }
  while (!input.empty() && checkpoint.page_count() < 512) {
    uint32_t block = input.U8() % 4;
    EncodedPage page;
    page.offset = input.U64();
    page.encoding = static_cast<format::PageEncoding>(input.U8() % 4);
    const char fill = static_cast<char>(input.U8());
    std::string bytes = input.Bytes(input.U8());
    switch (page.encoding) {
      case format::PageEncoding::kRaw: page.bytes.assign(RamImage::kPageBytes, fill); break;
      case format::PageEncoding::kZero: break;
      default: page.bytes = std::move(bytes); break;
    }
    if (checkpoint.page_runs.empty() || checkpoint.page_runs.back().block_index != block) {
      checkpoint.page_runs.push_back(PageRun{block, {}});
    }
    checkpoint.page_runs.back().pages.push_back(std::move(page));
  }

  const std::string wire = SerializeCheckpoint(checkpoint);
  Result<Checkpoint> parsed = ParseCheckpoint(std::as_bytes(std::span(wire)));
  if (!parsed.ok()) return 0;
  Require(parsed->epoch == 2, "what parses keeps its epoch");

  if (parsed->ram_blocks) {
    // A first checkpoint's blocks become a new image on the secondary: sizes the peer chose
    // must be refused before they are allocated (a small limit, as for a small VM).
    Result<std::unique_ptr<RamImage>> fresh = RamImage::Create(*parsed->ram_blocks, RamImage::MaxImageBytes(1));
    if (fresh.ok()) {
      uint64_t total = 0;
      for (const RamBlockInfo& block : *parsed->ram_blocks) total += block.used_length;
      Require(total <= RamImage::MaxImageBytes(1), "an image never exceeds its limit");
    }
  }

  static std::unique_ptr<RamImage> image = CommittedImage();
  static const std::string committed = Snapshot(*image);
  Status applied = ApplyCheckpoint(*parsed, *image);
  if (!applied.ok()) {
    Require(image->committed_epoch() == 1, "a refused checkpoint leaves the epoch");
    Require(image->staged().count() == 0, "a refused checkpoint leaves nothing staged");
    Require(Snapshot(*image) == committed, "a refused checkpoint leaves committed memory");
    return 0;
  }
  // Accepted: every page was inside its block. Start the next input from the same image.
  Require(image->committed_epoch() == 2, "an applied checkpoint sets the epoch");
  image = CommittedImage();
  return 0;
}
