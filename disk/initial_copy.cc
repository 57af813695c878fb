#include "disk/initial_copy.h"

#include <algorithm>

namespace understudy::disk {

InitialCopy::InitialCopy(CopyPlan plan) : plan_(std::move(plan)) {
  for (const ByteRange& range : plan_.ranges) total_bytes_ += range.length;
  if (!plan_.ranges.empty()) next_offset_ = plan_.ranges.front().offset;
}

Result<std::vector<DiskWrite>> InitialCopy::NextPart(const DiskServer& disk, uint64_t budget_bytes) {
  std::vector<ByteRange> part;
  uint64_t taken = 0;
  while (!done() && taken < budget_bytes) {
    const ByteRange& range = plan_.ranges[next_range_];
    uint64_t length = std::min(budget_bytes - taken, range.offset + range.length - next_offset_);
    part.push_back({next_offset_, length});
    taken += length;
    next_offset_ += length;
    if (next_offset_ == range.offset + range.length && ++next_range_ < plan_.ranges.size()) {
      next_offset_ = plan_.ranges[next_range_].offset;
    }
  }
  // A full copy lands on zeroes, so all-zero chunks need not travel; a resync's may not.
  UNDERSTUDY_ASSIGN_OR_RETURN(std::vector<DiskWrite> writes, disk.Read(part, /*skip_zero_chunks=*/full()));
  covered_bytes_ += taken;
  for (const DiskWrite& write : writes) carried_bytes_ += write.data.size();
  return writes;
}

}  // namespace understudy::disk
