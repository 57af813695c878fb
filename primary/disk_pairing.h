// DiskPairing: one pairing's view of the VM's disk. Epoch 1 of a pairing starts a new disk
// lineage and its initial copy (all of the disk, or what differs from the secondary's copy);
// every epoch then carries its completed writes plus the next part of that copy. The
// secondary can take over only once it committed the epoch that carried the copy's last part.
//
// Thread safety: Seal() on the COLO peer's thread (inside the VM's pause); the rest from any.
#ifndef UNDERSTUDY_PRIMARY_DISK_PAIRING_H_
#define UNDERSTUDY_PRIMARY_DISK_PAIRING_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "common/mutex.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "disk/disk_server.h"
#include "disk/initial_copy.h"
#include "disk/lineage_record.h"
#include "primary/epoch_capture.h"

namespace understudy::primary {

class DiskPairing {
 public:
  // `disk` outlives this; null: the VM has no disk (every query then says "nothing to do").
  DiskPairing(disk::DiskServer* disk, uint64_t bytes_per_checkpoint) : disk_(disk), bytes_per_checkpoint_(bytes_per_checkpoint) {}

  // The secondary's copy, from its hello.
  void SetPeerCopy(const nlohmann::json& lineage) EXCLUDES(mu_);
  // Moves the epoch's disk writes (and its part of the initial copy) into `capture`. An error
  // means the disk could not be read for the copy: the pairing cannot go on.
  Status Seal(EpochCapture& capture) EXCLUDES(mu_);
  // The secondary committed `epoch`.
  void Acked(uint64_t epoch) EXCLUDES(mu_);
  // Whether a secondary that committed `acked_epoch` holds the whole disk.
  bool SecondaryHasDisk(uint64_t acked_epoch) const;
  // The lineage the standby is built with (after epoch 1's Seal).
  std::string lineage() const EXCLUDES(mu_);
  std::string base_lineage() const EXCLUDES(mu_);
  uint64_t unacked_bytes() const EXCLUDES(mu_);
  nlohmann::json StatusJson(uint64_t acked_epoch) const EXCLUDES(mu_);
  // For metrics: bytes carried by the copy so far and its progress (0..1).
  std::pair<uint64_t, double> copy_progress() const EXCLUDES(mu_);

 private:
  Status BeginCopy(const disk::DiskDelta& delta) EXCLUDES(mu_);
  Status CarryCopyPart(EpochCapture& capture) EXCLUDES(mu_);

  disk::DiskServer* const disk_;
  const uint64_t bytes_per_checkpoint_;
  std::optional<disk::InitialCopy> copy_;  // COLO peer's thread only
  std::atomic<uint64_t> generation_of_epoch1_{0};
  std::atomic<uint64_t> copy_complete_epoch_{0};

  mutable Mutex mu_;
  disk::LineageRecord peer_ GUARDED_BY(mu_);
  std::string lineage_ GUARDED_BY(mu_);
  std::string base_lineage_ GUARDED_BY(mu_);
  std::deque<std::pair<uint64_t, uint64_t>> unacked_ GUARDED_BY(mu_);  // (epoch, bytes)
  std::string kind_ GUARDED_BY(mu_) = "pending";  // then "full" or "resync"
  uint64_t carried_bytes_ GUARDED_BY(mu_) = 0;
  double progress_ GUARDED_BY(mu_) = 0;
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_DISK_PAIRING_H_
