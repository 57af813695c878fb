#include "checkpoint/checkpoint_test_util.h"

#include <cstring>

#include "checkpoint/checkpoint_apply.h"
#include "checkpoint/page_codec.h"

namespace understudy::checkpoint::testing {

RamBlockList SampleBlocks() {
  return {{"pc.ram", 8u << 20, std::nullopt}, {"vga.vram", 1u << 20, std::nullopt}, {"/rom@etc/acpi/tables", 128u << 10, std::nullopt}};
}

void FillPage(std::mt19937_64& random, std::span<std::byte> page) {
  switch (random() % 4) {
    case 0:  // zero
      std::memset(page.data(), 0, page.size());
      break;
    case 1:  // text-like, compresses well
      for (size_t i = 0; i < page.size(); ++i) page[i] = std::byte(static_cast<uint8_t>("counter guest "[i % 14]));
      break;
    case 2:  // random, does not compress
      for (auto& b : page) b = std::byte(static_cast<uint8_t>(random()));
      break;
    default:  // sparse words
      std::memset(page.data(), 0, page.size());
      for (int i = 0; i < 16; ++i) page[(random() % (page.size() / 8)) * 8] = std::byte(static_cast<uint8_t>(random()));
  }
}

Checkpoint StageRandomEpoch(std::mt19937_64& random, RamImage& image, uint64_t epoch, int pages) {
  alignas(8) std::byte page[RamImage::kPageBytes];
  for (int i = 0; i < pages; ++i) {
    uint32_t block = static_cast<uint32_t>(random() % image.blocks().size());
    uint64_t offset = (random() % (image.blocks()[block].used_length / RamImage::kPageBytes)) * RamImage::kPageBytes;
    std::span<const std::byte> current = image.LatestPage(block, offset);
    if (!IsZeroPage(current) && random() % 2 == 0) {
      std::memcpy(page, current.data(), sizeof(page));  // a few words change: a delta's case
      for (int w = 0; w < 3; ++w) page[(random() % (sizeof(page) / 4)) * 4] = std::byte(static_cast<uint8_t>(random()));
    } else {
      FillPage(random, page);
    }
    if (IsZeroPage(page)) {
      (void)image.StageZeroPage(block, offset);
    } else {
      (void)image.StagePage(block, offset, page);
    }
  }
  Checkpoint checkpoint;
  checkpoint.epoch = epoch;
  checkpoint.base_epoch = image.committed_epoch();
  checkpoint.page_runs = EncodeStagedPages(image);
  std::string device_state(1 + random() % 3000, '\x42');
  device_state.back() = '\0';
  checkpoint.device_state = device_state;
  checkpoint.outputs.push_back({OutputStream::kConsole, epoch * 10, std::to_string(epoch) + "\n"});
  return checkpoint;
}

}  // namespace understudy::checkpoint::testing
