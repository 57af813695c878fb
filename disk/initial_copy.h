// InitialCopy: a pairing's initial disk copy — the whole disk, or a resync of what differs —
// spread over successive checkpoints, a bounded part in each, so no single VM pause has to
// read the whole disk.
//
// Each part is read while the VM is stopped for a checkpoint, so it is the disk as of that
// epoch; the epoch's own writes travel in the same checkpoint, before the part. Regions
// copied earlier are kept current by later epochs' writes; regions copied later are read
// later. So once the checkpoint carrying the last part commits, the copy equals the disk at
// that epoch, and not before (the checkpoint format's "copy continues" flag says so).
//
// Thread safety: none (the primary's COLO thread).
#ifndef UNDERSTUDY_DISK_INITIAL_COPY_H_
#define UNDERSTUDY_DISK_INITIAL_COPY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "disk/disk_server.h"
#include "disk/write_generations.h"

namespace understudy::disk {

class InitialCopy {
 public:
  // `plan` from DiskServer::BeginLineage().
  explicit InitialCopy(CopyPlan plan);

  // The next part: up to `budget_bytes` of the disk's ranges still to copy, read now.
  Result<std::vector<DiskWrite>> NextPart(const DiskServer& disk, uint64_t budget_bytes);

  bool done() const { return next_range_ == plan_.ranges.size(); }
  bool full() const { return plan_.base_lineage.empty(); }
  const std::string& base_lineage() const { return plan_.base_lineage; }
  uint64_t total_bytes() const { return total_bytes_; }    // of the disk, to be covered
  uint64_t covered_bytes() const { return covered_bytes_; }
  uint64_t carried_bytes() const { return carried_bytes_; }  // data shipped (a full copy skips zeroes)

 private:
  CopyPlan plan_;
  size_t next_range_ = 0;
  uint64_t next_offset_ = 0;  // within plan_.ranges[next_range_]
  uint64_t total_bytes_ = 0, covered_bytes_ = 0, carried_bytes_ = 0;
};

}  // namespace understudy::disk

#endif  // UNDERSTUDY_DISK_INITIAL_COPY_H_
