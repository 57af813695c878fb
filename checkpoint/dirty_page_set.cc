#include "checkpoint/dirty_page_set.h"

#include <algorithm>

namespace understudy::checkpoint {

DirtyPageSet::DirtyPageSet(const RamBlockList& blocks) {
  for (const RamBlockInfo& block : blocks) bitmaps_.emplace_back((block.used_length / 4096 + 63) / 64, 0);
}

void DirtyPageSet::Set(uint32_t block, uint64_t page) {
  uint64_t& word = bitmaps_[block][page / 64];
  uint64_t bit = uint64_t{1} << (page % 64);
  if ((word & bit) == 0) {
    word |= bit;
    ++count_;
  }
}

bool DirtyPageSet::Test(uint32_t block, uint64_t page) const {
  return (bitmaps_[block][page / 64] >> (page % 64)) & 1;
}

void DirtyPageSet::Clear() {
  if (count_ == 0) return;
  for (std::vector<uint64_t>& words : bitmaps_) std::fill(words.begin(), words.end(), 0);
  count_ = 0;
}

}  // namespace understudy::checkpoint
