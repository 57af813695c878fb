#include "primary/disk_pairing.h"

#include "common/log.h"

namespace understudy::primary {

void DiskPairing::SetPeerCopy(const nlohmann::json& lineage) {
  MutexLock lock(&mu_);
  peer_ = disk::LineageRecord::FromJson(lineage);
}

Status DiskPairing::Seal(EpochCapture& capture) {
  if (!disk_) return Status::Ok();
  disk::DiskDelta delta = disk_->Seal();
  capture.disk_flushed = delta.flushed;
  if (capture.epoch == 1) {
    // A new pairing: its initial copy replaces the writes so far (it reads them back).
    UNDERSTUDY_RETURN_IF_ERROR(BeginCopy(delta));
  } else {
    if (uint64_t bytes = delta.data_bytes(); bytes > 0) {
      MutexLock lock(&mu_);
      unacked_.emplace_back(capture.epoch, bytes);
    }
    capture.disk_writes = std::move(delta.writes);
  }
  if (!copy_ || copy_->done()) return Status::Ok();
  return CarryCopyPart(capture);
}

Status DiskPairing::BeginCopy(const disk::DiskDelta& delta) {
  disk::LineageRecord peer;
  std::string lineage = disk::LineageRecord::NewLineage();
  {
    MutexLock lock(&mu_);
    peer = peer_;
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(disk::CopyPlan plan, disk_->BeginLineage(peer, lineage));
  copy_.emplace(std::move(plan));
  generation_of_epoch1_.store(delta.generation);
  {
    MutexLock lock(&mu_);
    lineage_ = lineage;
    base_lineage_ = copy_->base_lineage();
  }
  Log("primary", std::string(copy_->full() ? "initial disk copy" : "disk resync against the secondary's copy") + ": " +
                     std::to_string(copy_->total_bytes()) + " of " + std::to_string(disk_->size_bytes()) +
                     " bytes to cover, " + std::to_string(bytes_per_checkpoint_ >> 20) + " MiB per checkpoint");
  return Status::Ok();
}

Status DiskPairing::CarryCopyPart(EpochCapture& capture) {
  UNDERSTUDY_ASSIGN_OR_RETURN(std::vector<disk::DiskWrite> part, copy_->NextPart(*disk_, bytes_per_checkpoint_));
  capture.disk_writes.insert(capture.disk_writes.end(), std::make_move_iterator(part.begin()),
                             std::make_move_iterator(part.end()));
  capture.disk_sync_incomplete = !copy_->done();
  if (copy_->done()) {
    copy_complete_epoch_.store(capture.epoch);
    Log("primary", "the initial disk copy is complete with epoch " + std::to_string(capture.epoch) + " (" +
                       std::to_string(copy_->carried_bytes()) + " bytes carried)");
  }
  MutexLock lock(&mu_);
  kind_ = copy_->full() ? "full" : "resync";
  carried_bytes_ = copy_->carried_bytes();
  progress_ = copy_->total_bytes() ? double(copy_->covered_bytes()) / copy_->total_bytes() : 1.0;
  return Status::Ok();
}

void DiskPairing::Acked(uint64_t epoch) {
  uint64_t first = generation_of_epoch1_.load();
  if (!disk_ || first == 0) return;
  disk_->PeerCommitted(first + epoch - 1);
  MutexLock lock(&mu_);
  while (!unacked_.empty() && unacked_.front().first <= epoch) unacked_.pop_front();
}

bool DiskPairing::SecondaryHasDisk(uint64_t acked_epoch) const {
  if (acked_epoch < 1) return false;
  if (!disk_) return true;
  uint64_t complete = copy_complete_epoch_.load();
  return complete != 0 && acked_epoch >= complete;
}

std::string DiskPairing::lineage() const {
  MutexLock lock(&mu_);
  return lineage_;
}

std::string DiskPairing::base_lineage() const {
  MutexLock lock(&mu_);
  return base_lineage_;
}

uint64_t DiskPairing::unacked_bytes() const {
  MutexLock lock(&mu_);
  uint64_t total = 0;
  for (const auto& [epoch, bytes] : unacked_) total += bytes;
  return total;
}

std::pair<uint64_t, double> DiskPairing::copy_progress() const {
  MutexLock lock(&mu_);
  return {carried_bytes_, progress_};
}

nlohmann::json DiskPairing::StatusJson(uint64_t acked_epoch) const {
  if (!disk_) return nullptr;
  disk::LineageRecord record = disk_->lineage_record();
  uint64_t unacked = unacked_bytes();
  MutexLock lock(&mu_);
  return {
      {"size_bytes", disk_->size_bytes()},
      {"bytes_written", disk_->bytes_written()},
      {"lineage", record.lineage},
      {"suspect_extents", record.suspect_extents.size()},
      {"initial_copy", kind_},
      {"initial_copy_bytes", carried_bytes_},
      {"initial_copy_progress", progress_},
      {"initial_copy_committed", SecondaryHasDisk(acked_epoch)},
      {"unacked_bytes", unacked},
  };
}

}  // namespace understudy::primary
