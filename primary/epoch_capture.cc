#include "primary/epoch_capture.h"

namespace understudy::primary {

void EpochCapture::AddPage(uint32_t block, uint64_t offset, const std::byte* bytes) {
  pages.push_back({block, offset, false, bytes});
}

void EpochCapture::AddZeroPage(uint32_t block, uint64_t offset) { pages.push_back({block, offset, true, nullptr}); }

}  // namespace understudy::primary
