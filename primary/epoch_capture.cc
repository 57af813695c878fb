#include "primary/epoch_capture.h"

namespace understudy::primary {

void EpochCapture::AddPage(uint32_t block, uint64_t offset, std::span<const std::byte> bytes) {
  uint32_t slot = static_cast<uint32_t>(page_bytes.size() / 4096);
  page_bytes.insert(page_bytes.end(), bytes.begin(), bytes.end());
  pages.push_back({block, offset, false, slot});
}

void EpochCapture::AddZeroPage(uint32_t block, uint64_t offset) { pages.push_back({block, offset, true, 0}); }

}  // namespace understudy::primary
