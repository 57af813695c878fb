#include "secondary/committer.h"

#include <chrono>

#include "checkpoint/checkpoint_apply.h"
#include "checkpoint/checkpoint_codec.h"
#include "common/log.h"
#include "replication/agent_protocol.h"

namespace understudy::secondary {

using nlohmann::json;

Committer::Committer(CommitterOptions options, std::unique_ptr<disk::DiskReplica> disk, console::ReleasedLog& console,
                     StandbyFeed& standby)
    : options_(std::move(options)), console_(console), standby_(standby), disk_(std::move(disk)) {}

Committer::Snapshot Committer::status() const {
  MutexLock lock(&status_mutex_);
  return status_;
}

Committer::Reply Committer::Reject(const std::string& which, uint64_t nack_epoch, const Status& why) {
  uint64_t committed = committed_epoch();
  Log("secondary", "rejected checkpoint " + which + ": " + why.ToString() + "; standby stays at epoch " +
                       std::to_string(committed));
  {
    MutexLock lock(&status_mutex_);
    ++status_.rejected;
    status_.last_error = why.ToString();
  }
  if (metrics_) metrics_->CountRejected();
  return {replication::EncodeNack(nack_epoch, why.message()), 0, why.ToString()};
}

Committer::Reply Committer::Receive(std::span<const std::byte> message) {
  if (message.empty() || message[0] != replication::kCheckpointTag) {
    Log("secondary", "ignored a message that is not a checkpoint");
    return {};
  }
  uint64_t committed = committed_epoch();
  Result<checkpoint::Checkpoint> checkpoint = checkpoint::ParseCheckpoint(message.subspan(1));
  if (!checkpoint.ok()) {
    return Reject("(expected epoch " + std::to_string(committed + 1) + ")", committed + 1, checkpoint.status());
  }
  const uint64_t epoch = checkpoint->epoch;
  if (epoch == 1 && committed != 0) {
    Log("secondary", "a new pairing starts; discarding the standby at epoch " + std::to_string(committed));
    standby_.Discard();
    image_.reset();
    committed = 0;
  }
  if (epoch <= committed) return {replication::EncodeAck(epoch), 0, ""};  // a resend we already have
  if (epoch > committed + 1) return {replication::EncodeNack(committed + 1, "out of order"), 0, ""};
  Status status = epoch == 1 ? CommitFirst(*checkpoint) : Commit(*checkpoint);
  if (!status.ok()) return Reject(std::to_string(epoch), epoch, status);
  {
    MutexLock lock(&status_mutex_);
    status_.committed_epoch = epoch;
  }
  if (metrics_) {
    metrics_->CountCommitted(message.size());
    metrics_->SetEpochs(epoch, epoch);
  }
  return {replication::EncodeAck(epoch), epoch, ""};
}

Status Committer::Journal(const checkpoint::Checkpoint& checkpoint) {
  if (checkpoint.disk_writes.empty()) return Status::Ok();
  if (!disk_) return Status::NotSupported("the checkpoint carries disk writes but this secondary has no disk_image configured");
  return disk_->Journal(checkpoint.epoch, checkpoint.disk_writes);
}

Status Committer::JournalAndApplyRam(const checkpoint::Checkpoint& checkpoint, checkpoint::RamImage& image) {
  UNDERSTUDY_RETURN_IF_ERROR(Journal(checkpoint));
  Status ram = checkpoint::ApplyCheckpoint(checkpoint, image);
  if (!ram.ok() && disk_) (void)disk_->Discard();
  return ram;
}

Status Committer::ApplyDisk(const checkpoint::Checkpoint& checkpoint) {
  if (options_.test_stall_disk_apply && options_.test_stall_disk_apply_at_epoch != 0 &&
      checkpoint.epoch >= options_.test_stall_disk_apply_at_epoch && !checkpoint.disk_writes.empty()) {
    uint64_t epoch = checkpoint.epoch;
    disk_->test_mid_apply = [this, epoch] {
      Log("secondary", "TEST: stalled halfway through applying the disk writes of epoch " + std::to_string(epoch));
      {
        MutexLock lock(&status_mutex_);
        status_.test_stalled_in_disk_apply = epoch;
      }
      options_.test_stall_disk_apply(epoch);
    };
  }
  return disk_->Apply();
}

Status Committer::Commit(const checkpoint::Checkpoint& checkpoint) {
  if (!image_) return Status::FailedPrecondition("a checkpoint before the initial image");
  const auto commit_started = std::chrono::steady_clock::now();
  UNDERSTUDY_RETURN_IF_ERROR(JournalAndApplyRam(checkpoint, *image_));
  if (disk_) {
    Status applied = ApplyDisk(checkpoint);
    if (!applied.ok()) {
      // Memory is at this epoch, the disk copy may not be: this standby must never run.
      Log("secondary", "the disk copy could not take epoch " + std::to_string(checkpoint.epoch) + ": " +
                           applied.ToString() + "; discarding the standby");
      standby_.Discard();
      image_.reset();
      return applied;
    }
    uint64_t bytes = NoteDiskApplied(checkpoint, definition_->disk.lineage);
    if (disk_syncing_ && !checkpoint.disk_sync_incomplete) {
      Status named = disk_->FinishPairing(definition_->disk.lineage);
      if (!named.ok()) Log("secondary", "recording the disk copy's lineage: " + named.ToString());
      if (disk_server_) disk_server_->ReloadLineageRecord();
      disk_syncing_ = false;
      Log("secondary", "the initial disk copy is complete with epoch " + std::to_string(checkpoint.epoch) +
                           ": the standby can take over");
    }
    if (metrics_ && bytes > 0) {
      metrics_->ObserveDiskApply(std::chrono::duration<double>(std::chrono::steady_clock::now() - commit_started).count(), bytes);
    }
  }
  // Committed from here on: what follows cannot reject the checkpoint any more.
  if (checkpoint.device_state) StoreDeviceState(*checkpoint.device_state);
  Status outputs = AppendOutputs(checkpoint);
  if (!outputs.ok()) Log("secondary", "console output of epoch " + std::to_string(checkpoint.epoch) + ": " + outputs.ToString());
  standby_.Forward(checkpoint, *image_);
  return Status::Ok();
}

Status Committer::CommitFirstDisk(const checkpoint::Checkpoint& checkpoint, qemu::VmDefinition& definition,
                                  checkpoint::RamImage& image) {
  // The new pairing's image is validated in full (into a fresh RAM image nobody uses yet)
  // before the disk copy, committed state of the previous pairing, is touched.
  UNDERSTUDY_RETURN_IF_ERROR(checkpoint::ApplyCheckpoint(checkpoint, image));
  if (definition.disk.size_bytes > 0 && !disk_) {
    return Status::NotSupported("the primary replicates a " + std::to_string(definition.disk.size_bytes) +
                                "-byte disk but this secondary has no disk_image configured");
  }
  // The initial copy (all of the disk, or what differs from this copy) comes with epoch 1.
  if (definition.disk.size_bytes > 0) {
    UNDERSTUDY_RETURN_IF_ERROR(disk_->BeginPairing(definition.disk.size_bytes, definition.disk.base_lineage));
  }
  UNDERSTUDY_RETURN_IF_ERROR(Journal(checkpoint));
  if (definition.disk.size_bytes == 0) return Status::Ok();
  UNDERSTUDY_RETURN_IF_ERROR(ApplyDisk(checkpoint));
  disk_syncing_ = checkpoint.disk_sync_incomplete;
  if (!disk_syncing_) UNDERSTUDY_RETURN_IF_ERROR(disk_->FinishPairing(definition.disk.lineage));
  return StartDiskServer(checkpoint, definition);
}

Status Committer::StartDiskServer(const checkpoint::Checkpoint& checkpoint, qemu::VmDefinition& definition) {
  // The standby's disk is this copy, served like the primary's so a promoted VM's writes pass
  // through this agent too: tracked from the first, for a later resync. A server of an
  // earlier pairing (its standby is gone) knows an outdated lineage: start afresh.
  disk_server_.reset();
  disk::DiskServerOptions server_options;
  server_options.record_writes = false;
  UNDERSTUDY_ASSIGN_OR_RETURN(disk_server_,
                              disk::DiskServer::Start(disk_->path(), options_.disk_socket_path, std::move(server_options)));
  definition.disk.nbd_socket = disk_server_->socket_path();
  disk_bytes_applied_ = 0;
  uint64_t bytes = NoteDiskApplied(checkpoint, definition.disk.lineage);
  Log("secondary", "disk copy " + disk_->path() + ": " + (definition.disk.base_lineage.empty() ? "a full copy" : "a resync") +
                       " begins with " + std::to_string(bytes) + " bytes" +
                       (disk_syncing_ ? "; the standby cannot take over until it completes" : ", complete"));
  return Status::Ok();
}

Status Committer::CommitFirst(const checkpoint::Checkpoint& checkpoint) {
  if (!checkpoint.machine_definition_json || !checkpoint.ram_blocks || !checkpoint.stream_info ||
      !checkpoint.device_state) {
    return Status::Corruption("the first checkpoint lacks the machine definition, RAM blocks, stream info or device state");
  }
  json definition_json = json::parse(*checkpoint.machine_definition_json, nullptr, /*allow_exceptions=*/false);
  if (definition_json.is_discarded()) return Status::Corruption("the machine definition is not JSON");
  // A declaration checked against this host's own policy; nothing from it reaches a QEMU
  // command line unchecked (qemu/vm_definition.h).
  Result<qemu::VmDefinition> checked = qemu::VmDefinition::FromPeerJson(definition_json, options_.vm_policy);
  if (!checked.ok()) return checked.status().WithContext("the primary's machine definition");
  qemu::VmDefinition definition = std::move(*checked);
  UNDERSTUDY_RETURN_IF_ERROR(options_.binding.CheckDefinitionName(definition.name));
  if (definition.nic.kind == qemu::NicBackend::Kind::kStreamUnixServer) {
    if (!options_.has_network) {
      return Status::NotSupported("the VM has a NIC but this secondary has no \"network\" (tap) configured");
    }
    definition.nic.path = options_.nic_socket_path;
  }
  // The blocks a VM of this much memory can have, checked before anything is allocated.
  UNDERSTUDY_ASSIGN_OR_RETURN(
      std::unique_ptr<checkpoint::RamImage> image,
      checkpoint::RamImage::Create(*checkpoint.ram_blocks, checkpoint::RamImage::MaxImageBytes(definition.memory_mib)));
  const checkpoint::OutputChunk* console = nullptr;
  for (const checkpoint::OutputChunk& chunk : checkpoint.outputs) {
    if (chunk.stream == checkpoint::OutputStream::kConsole && !console) console = &chunk;
  }
  if (console) {
    UNDERSTUDY_RETURN_IF_ERROR(console::ReleasedLog::CheckOffset(console->stream_offset)
                                   .WithContext("the first checkpoint's console output"));
  }
  UNDERSTUDY_RETURN_IF_ERROR(CommitFirstDisk(checkpoint, definition, *image));
  // A pairing's console starts mid-stream (a re-protected VM's, or this secondary's again
  // after its primary ran alone): this copy continues where the first checkpoint's output
  // starts. Within a pairing a gap stays an error (ReleasedLog::Append).
  if (console) UNDERSTUDY_RETURN_IF_ERROR(console_.RestartAt(console->stream_offset));
  UNDERSTUDY_RETURN_IF_ERROR(AppendOutputs(checkpoint));
  definition_ = std::move(definition);
  stream_info_ = checkpoint.stream_info;
  image_ = std::move(image);
  StoreDeviceState(*checkpoint.device_state);
  standby_.Start(*definition_, *stream_info_, *image_);
  return Status::Ok();
}

void Committer::StoreDeviceState(const std::string& device_state) {
  device_state_ = device_state;
  if (test_corrupt_device_state_.load()) device_state_.resize(device_state_.size() / 2);
}

uint64_t Committer::NoteDiskApplied(const checkpoint::Checkpoint& checkpoint, const std::string& lineage) {
  uint64_t bytes = 0;
  for (const checkpoint::DiskWrite& write : checkpoint.disk_writes) bytes += write.length;
  disk_bytes_applied_ += bytes;
  MutexLock lock(&status_mutex_);
  status_.disk = {{"path", disk_->path()},
                  {"size_bytes", disk_->size_bytes()},
                  {"lineage", lineage},
                  {"applied_epoch", checkpoint.epoch},
                  {"bytes_applied", disk_bytes_applied_},
                  {"initial_copy_complete", !checkpoint.disk_sync_incomplete}};
  return bytes;
}

Status Committer::AppendOutputs(const checkpoint::Checkpoint& checkpoint) {
  for (const checkpoint::OutputChunk& chunk : checkpoint.outputs) {
    if (chunk.stream == checkpoint::OutputStream::kConsole) {
      UNDERSTUDY_RETURN_IF_ERROR(console_.Append(chunk.stream_offset, chunk.bytes));
    }
  }
  return Status::Ok();
}

}  // namespace understudy::secondary
