// DirtyPageSet: which pages of which RAM blocks an epoch touched.
//
// One bitmap per block (a bit per 4 KiB page: 32 KiB of bitmap per GiB of guest RAM).
// ForEach visits set pages in (block, offset) order and skips clean 64-page stretches a word
// at a time, so iterating a sparse epoch costs little more than its dirty pages.
//
// Thread safety: not thread-safe.
#ifndef UNDERSTUDY_CHECKPOINT_DIRTY_PAGE_SET_H_
#define UNDERSTUDY_CHECKPOINT_DIRTY_PAGE_SET_H_

#include <bit>
#include <cstdint>
#include <vector>

#include "checkpoint/ram_block.h"

namespace understudy::checkpoint {

class DirtyPageSet {
 public:
  DirtyPageSet() = default;
  explicit DirtyPageSet(const RamBlockList& blocks);

  // REQUIRES: block < block_count(), page < that block's page count.
  void Set(uint32_t block, uint64_t page);
  bool Test(uint32_t block, uint64_t page) const;
  void Clear();

  uint64_t count() const { return count_; }
  uint32_t block_count() const { return static_cast<uint32_t>(bitmaps_.size()); }

  // fn(uint32_t block, uint64_t page) for each set page, in order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (uint32_t block = 0; block < bitmaps_.size(); ++block) {
      const std::vector<uint64_t>& words = bitmaps_[block];
      for (uint64_t w = 0; w < words.size(); ++w) {
        for (uint64_t word = words[w]; word != 0; word &= word - 1) {
          fn(block, w * 64 + static_cast<uint64_t>(std::countr_zero(word)));
        }
      }
    }
  }

 private:
  std::vector<std::vector<uint64_t>> bitmaps_;
  uint64_t count_ = 0;
};

}  // namespace understudy::checkpoint

#endif  // UNDERSTUDY_CHECKPOINT_DIRTY_PAGE_SET_H_
