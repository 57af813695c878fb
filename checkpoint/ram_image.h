// RamImage: an agent's copy of a guest's RAM, one memfd per RAM block, with one epoch staged
// beside the committed state.
//
// Committed memory is what the last committed checkpoint says guest RAM holds. Each block
// lives in its own memfd, mapped shared, so a standby QEMU can map the very same memory
// (`-object memory-backend-file,mem-path=/proc/<pid>/fd/<fd>,share=on`) instead of receiving
// it again. Zero pages are holes in the memfd: a 16 GiB guest that uses 2 GiB costs 2 GiB.
//
// An epoch is staged page by page (copies kept apart from committed memory) and then either
// committed — all pages at once, with the epoch number — or discarded, leaving committed
// memory exactly as it was. A partially received or corrupt checkpoint therefore never
// touches committed state.
//
// Thread safety: not thread-safe; one owner thread, or external locking.
#ifndef UNDERSTUDY_CHECKPOINT_RAM_IMAGE_H_
#define UNDERSTUDY_CHECKPOINT_RAM_IMAGE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "checkpoint/checkpoint_format.h"
#include "checkpoint/dirty_page_set.h"
#include "checkpoint/ram_block.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace understudy::checkpoint {

class RamImage {
 public:
  static constexpr size_t kPageBytes = 4096;

  // Creates all-zero (all-hole) blocks. kInvalidArgument, before allocating anything, for
  // lengths that are not whole pages or that add up to more than `max_total_bytes` (the
  // secondary passes a bound from the VM definition's memory: MaxImageBytes).
  static Result<std::unique_ptr<RamImage>> Create(const RamBlockList& blocks,
                                                  uint64_t max_total_bytes = format::kMaxRamBytes);
  // The RAM a VM with `memory_mib` of guest memory may announce: its memory plus
  // kBlockAllowanceBytes for the other blocks (firmware, option ROMs, ACPI tables, VRAM).
  static constexpr uint64_t kBlockAllowanceBytes = 256u << 20;
  static uint64_t MaxImageBytes(uint32_t memory_mib) { return (uint64_t{memory_mib} << 20) + kBlockAllowanceBytes; }
  ~RamImage();
  RamImage(const RamImage&) = delete;
  RamImage& operator=(const RamImage&) = delete;

  const RamBlockList& blocks() const { return blocks_; }
  Result<uint32_t> FindBlock(std::string_view id) const;
  // The epoch of the last commit; 0 before any.
  uint64_t committed_epoch() const { return committed_epoch_; }

  // REQUIRES for every page accessor: block index valid, offset page-aligned inside it.
  std::span<const std::byte> CommittedPage(uint32_t block, uint64_t offset) const;
  // The staged version when the page is staged, else the committed one.
  std::span<const std::byte> LatestPage(uint32_t block, uint64_t offset) const;
  // The memfd holding block `block`'s committed memory.
  int block_fd(uint32_t block) const { return blocks_state_[block].fd.get(); }

  // Stage a page for the next commit; staging a page twice keeps the last version.
  // kInvalidArgument for a block or offset outside the image.
  Status StagePage(uint32_t block, uint64_t offset, std::span<const std::byte> page);
  Status StageZeroPage(uint32_t block, uint64_t offset);
  // Pages staged since the last commit or discard.
  const DirtyPageSet& staged() const { return staged_; }

  // Makes every staged page committed and records `epoch`. Cannot fail half-way.
  // REQUIRES: epoch > committed_epoch().
  void CommitStaged(uint64_t epoch);
  void DiscardStaged();

  // A copy of the committed memory (and epoch) alone, nothing staged: a consistent snapshot
  // another thread may read while this image moves on. Copies only resident data (holes stay
  // holes), so its cost follows the guest's used memory.
  Result<std::unique_ptr<RamImage>> CloneCommitted() const;

  // Bytes of committed memory that are not holes (resident), summed over blocks.
  uint64_t ResidentBytes() const;

 private:
  struct BlockState {
    UniqueFd fd;
    std::byte* base = nullptr;
    size_t length = 0;
    std::vector<uint32_t> staged_slot;  // per page: 0 = not staged, kZeroSlot, else arena slot + 1
  };
  static constexpr uint32_t kZeroSlot = UINT32_MAX;

  explicit RamImage(RamBlockList blocks) : blocks_(std::move(blocks)), staged_(blocks_) {}
  Status CheckPage(uint32_t block, uint64_t offset) const;
  uint32_t& SlotFor(uint32_t block, uint64_t offset);

  RamBlockList blocks_;
  std::vector<BlockState> blocks_state_;
  DirtyPageSet staged_;
  std::vector<std::byte> arena_;  // staged page contents, kPageBytes per slot
  uint32_t arena_slots_used_ = 0;
  uint64_t committed_epoch_ = 0;
};

}  // namespace understudy::checkpoint

#endif  // UNDERSTUDY_CHECKPOINT_RAM_IMAGE_H_
