#include "disk/write_generations.h"

#include <algorithm>

namespace understudy::disk {

WriteGenerations::WriteGenerations(uint64_t disk_bytes)
    : disk_bytes_(disk_bytes), last_written_((disk_bytes + kBlockBytes - 1) / kBlockBytes, 0) {}

void WriteGenerations::Mark(uint64_t offset, uint64_t length, uint64_t generation) {
  if (length == 0 || offset >= disk_bytes_) return;
  uint64_t last = std::min(offset + length, disk_bytes_) - 1;
  for (uint64_t block = offset / kBlockBytes; block <= last / kBlockBytes; ++block) last_written_[block] = generation;
}

std::vector<ByteRange> WriteGenerations::ChangedSince(uint64_t generation, const std::vector<ByteRange>& extra) const {
  std::vector<bool> wanted(last_written_.size());
  for (size_t block = 0; block < last_written_.size(); ++block) wanted[block] = last_written_[block] > generation;
  for (const ByteRange& range : extra) {
    if (range.length == 0 || range.offset >= disk_bytes_) continue;
    uint64_t last = std::min(range.offset + range.length, disk_bytes_) - 1;
    for (uint64_t block = range.offset / kBlockBytes; block <= last / kBlockBytes; ++block) wanted[block] = true;
  }
  std::vector<ByteRange> ranges;
  for (size_t block = 0; block < wanted.size(); ++block) {
    if (!wanted[block]) continue;
    uint64_t offset = block * kBlockBytes;
    uint64_t length = std::min(kBlockBytes, disk_bytes_ - offset);
    if (!ranges.empty() && ranges.back().offset + ranges.back().length == offset) {
      ranges.back().length += length;
    } else {
      ranges.push_back({offset, length});
    }
  }
  return ranges;
}

bool WriteGenerations::AnyChangedSince(uint64_t offset, uint64_t length, uint64_t generation) const {
  if (length == 0 || offset >= disk_bytes_) return false;
  uint64_t last = std::min(offset + length, disk_bytes_) - 1;
  for (uint64_t block = offset / kBlockBytes; block <= last / kBlockBytes; ++block) {
    if (last_written_[block] > generation) return true;
  }
  return false;
}

}  // namespace understudy::disk
