// libFuzzer target for Understudy's checkpoint decoder: ParseCheckpoint on arbitrary bytes
// and, when it accepts them, ApplyCheckpoint into a RAM image — the path every checkpoint
// from the network takes on the secondary. Errors are fine; crashes, sanitizer reports, and
// a rejected checkpoint that changed the image are not.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

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

// A small image every input is applied to (or its own block list, when it is small enough).
RamBlockList DefaultBlocks() { return {{"pc.ram", 1u << 20, std::nullopt}, {"vga.vram", 64u << 10, std::nullopt}}; }

uint64_t Checksum(const RamImage& image) {
  uint64_t sum = 0;
  for (uint32_t block = 0; block < image.blocks().size(); ++block) {
    for (uint64_t offset = 0; offset < image.blocks()[block].used_length; offset += 4096) {
      auto page = image.CommittedPage(block, offset);
      for (size_t i = 0; i < page.size(); i += 512) sum = sum * 31 + static_cast<uint8_t>(page[i]);
    }
  }
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Result<Checkpoint> parsed = ParseCheckpoint(std::as_bytes(std::span(data, size)));
  if (!parsed.ok()) return 0;
  // What parses must serialise back to the very same bytes.
  std::string again = SerializeCheckpoint(*parsed);
  Require(again.size() == size && std::memcmp(again.data(), data, size) == 0, "round trip is byte-identical");

  RamBlockList blocks = DefaultBlocks();
  if (parsed->ram_blocks) {
    uint64_t total = 0;
    for (const RamBlockInfo& block : *parsed->ram_blocks) total += block.used_length;
    if (total <= (16u << 20)) blocks = *parsed->ram_blocks;
  }
  Result<std::unique_ptr<RamImage>> image = RamImage::Create(blocks);
  if (!image.ok()) return 0;
  // Put the image at the checkpoint's base so deltas get exercised.
  if (parsed->base_epoch != 0 && parsed->base_epoch < parsed->epoch) (*image)->CommitStaged(parsed->base_epoch);
  uint64_t before_epoch = (*image)->committed_epoch();
  uint64_t before = Checksum(**image);
  Status applied = ApplyCheckpoint(*parsed, **image);
  if (!applied.ok()) {
    Require((*image)->committed_epoch() == before_epoch, "a rejected checkpoint leaves the epoch");
    Require(Checksum(**image) == before, "a rejected checkpoint leaves committed memory");
    Require((*image)->staged().count() == 0, "a rejected checkpoint leaves nothing staged");
  } else {
    Require((*image)->committed_epoch() == parsed->epoch, "an applied checkpoint sets the epoch");
  }
  return 0;
}
