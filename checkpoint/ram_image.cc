#include "checkpoint/ram_image.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "checkpoint/page_codec.h"

namespace understudy::checkpoint {

Result<std::unique_ptr<RamImage>> RamImage::Create(const RamBlockList& blocks, uint64_t max_total_bytes) {
  // Every length checked, and the sum bounded, before anything is allocated.
  uint64_t total = 0;
  for (const RamBlockInfo& block : blocks) {
    if (block.used_length == 0 || block.used_length % kPageBytes != 0) {
      return Status::InvalidArgument("RAM block '" + block.id + "' length " + std::to_string(block.used_length) +
                                     " is not a whole number of pages");
    }
    if (block.used_length > max_total_bytes || max_total_bytes - block.used_length < total) {
      return Status::InvalidArgument("RAM block '" + block.id + "' length " + std::to_string(block.used_length) +
                                     " takes the image past its " + std::to_string(max_total_bytes) + "-byte limit");
    }
    total += block.used_length;
  }
  std::unique_ptr<RamImage> image(new RamImage(blocks));
  for (const RamBlockInfo& block : blocks) {
    BlockState state;
    state.fd.reset(::memfd_create(("understudy:" + block.id).c_str(), MFD_CLOEXEC));
    if (!state.fd.valid()) return Status::FromErrno("memfd_create for block " + block.id, errno);
    if (::ftruncate(state.fd.get(), static_cast<off_t>(block.used_length)) != 0) {
      return Status::FromErrno("sizing memfd for block " + block.id, errno);
    }
    void* base = ::mmap(nullptr, block.used_length, PROT_READ | PROT_WRITE, MAP_SHARED, state.fd.get(), 0);
    if (base == MAP_FAILED) return Status::FromErrno("mapping block " + block.id, errno);
    state.base = static_cast<std::byte*>(base);
    state.length = block.used_length;
    state.staged_slot.assign(block.used_length / kPageBytes, 0);
    image->blocks_state_.push_back(std::move(state));
  }
  return image;
}

Result<std::unique_ptr<RamImage>> RamImage::CloneCommitted() const {
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<RamImage> clone, Create(blocks_));
  for (size_t block = 0; block < blocks_state_.size(); ++block) {
    const BlockState& from = blocks_state_[block];
    off_t at = 0;
    const off_t end = static_cast<off_t>(from.length);
    while (at < end) {
      // Only the extents that hold data: memfds report holes (never-written or zeroed pages).
      off_t data = ::lseek(from.fd.get(), at, SEEK_DATA);
      if (data < 0) break;  // ENXIO: no data after `at`
      off_t hole = ::lseek(from.fd.get(), data, SEEK_HOLE);
      if (hole < 0) hole = end;
      std::memcpy(clone->blocks_state_[block].base + data, from.base + data, static_cast<size_t>(hole - data));
      at = hole;
    }
  }
  clone->committed_epoch_ = committed_epoch_;
  return clone;
}

RamImage::~RamImage() {
  for (BlockState& state : blocks_state_) {
    if (state.base != nullptr) ::munmap(state.base, state.length);
  }
}

Result<uint32_t> RamImage::FindBlock(std::string_view id) const {
  for (uint32_t i = 0; i < blocks_.size(); ++i) {
    if (blocks_[i].id == id) return i;
  }
  return Status::NotFound("no RAM block '" + std::string(id) + "'");
}

Status RamImage::CheckPage(uint32_t block, uint64_t offset) const {
  if (block >= blocks_.size()) {
    return Status::InvalidArgument("block " + std::to_string(block) + " of " + std::to_string(blocks_.size()));
  }
  const uint64_t length = blocks_[block].used_length;
  if (offset % kPageBytes != 0 || offset > length || length - offset < kPageBytes) {
    return Status::InvalidArgument("offset " + std::to_string(offset) + " outside block '" + blocks_[block].id + "'");
  }
  return Status::Ok();
}

std::span<const std::byte> RamImage::CommittedPage(uint32_t block, uint64_t offset) const {
  return {blocks_state_[block].base + offset, kPageBytes};
}

std::span<const std::byte> RamImage::LatestPage(uint32_t block, uint64_t offset) const {
  uint32_t slot = blocks_state_[block].staged_slot[offset / kPageBytes];
  if (slot == 0) return CommittedPage(block, offset);
  if (slot == kZeroSlot) {
    static const std::byte kZeros[kPageBytes] = {};
    return {kZeros, kPageBytes};
  }
  return {arena_.data() + static_cast<size_t>(slot - 1) * kPageBytes, kPageBytes};
}

uint32_t& RamImage::SlotFor(uint32_t block, uint64_t offset) {
  staged_.Set(block, offset / kPageBytes);
  return blocks_state_[block].staged_slot[offset / kPageBytes];
}

Status RamImage::StagePage(uint32_t block, uint64_t offset, std::span<const std::byte> page) {
  UNDERSTUDY_RETURN_IF_ERROR(CheckPage(block, offset));
  if (page.size() != kPageBytes) return Status::InvalidArgument("a page is 4096 bytes, not " + std::to_string(page.size()));
  uint32_t& slot = SlotFor(block, offset);
  if (slot == 0 || slot == kZeroSlot) {
    slot = ++arena_slots_used_;
    if (arena_.size() < static_cast<size_t>(arena_slots_used_) * kPageBytes) {
      arena_.resize(std::max(arena_.size() * 2, static_cast<size_t>(arena_slots_used_) * kPageBytes));
    }
  }
  std::memcpy(arena_.data() + static_cast<size_t>(slot - 1) * kPageBytes, page.data(), kPageBytes);
  return Status::Ok();
}

Status RamImage::StageZeroPage(uint32_t block, uint64_t offset) {
  UNDERSTUDY_RETURN_IF_ERROR(CheckPage(block, offset));
  SlotFor(block, offset) = kZeroSlot;
  return Status::Ok();
}

void RamImage::CommitStaged(uint64_t epoch) {
  staged_.ForEach([&](uint32_t block, uint64_t page) {
    BlockState& state = blocks_state_[block];
    uint32_t& slot = state.staged_slot[page];
    std::byte* target = state.base + page * kPageBytes;
    if (slot == kZeroSlot) {
      // A hole reads as zeros and costs no memory; punching only fails on exotic kernels,
      // where zeroing the bytes is the same state, just resident.
      if (!IsZeroPage({target, kPageBytes}) &&
          ::fallocate(state.fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(page * kPageBytes),
                      kPageBytes) != 0) {
        std::memset(target, 0, kPageBytes);
      }
    } else {
      std::memcpy(target, arena_.data() + static_cast<size_t>(slot - 1) * kPageBytes, kPageBytes);
    }
    slot = 0;
  });
  staged_.Clear();
  arena_slots_used_ = 0;
  committed_epoch_ = epoch;
}

void RamImage::DiscardStaged() {
  staged_.ForEach([&](uint32_t block, uint64_t page) { blocks_state_[block].staged_slot[page] = 0; });
  staged_.Clear();
  arena_slots_used_ = 0;
}

uint64_t RamImage::ResidentBytes() const {
  uint64_t total = 0;
  for (const BlockState& state : blocks_state_) {
    struct stat info;
    if (::fstat(state.fd.get(), &info) == 0) total += static_cast<uint64_t>(info.st_blocks) * 512;
  }
  return total;
}

}  // namespace understudy::checkpoint
