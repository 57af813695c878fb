// Committer: the secondary's half of replication, matching the primary's CheckpointShipper.
// It takes each checkpoint message the primary sends, validates it completely, commits it
// all-or-nothing and says what to answer (an ack lets the primary release that epoch's output;
// a nack asks for a resend from an epoch).
//
// Committing epoch N, in this order (a crash anywhere leaves RAM and disk at one epoch once
// DiskReplica repairs its journal at Open):
//   1. N's disk writes into the disk copy's journal (durable, not yet in the copy);
//   2. N's pages into the RAM image, all or nothing (a page that does not decode discards
//      the journal too: nothing changed);
//   3. the journaled writes into the copy;
//   4. — committed from here on — the device state, the console output, and the standby feed.
// The first checkpoint of a pairing also carries the machine definition (a declaration checked
// against this host's policy), the RAM blocks (sized against the definition before anything is
// allocated) and the stream info; it begins the disk copy's pairing and starts the disk server
// the standby's QEMU reads its disk from.
//
// A checkpoint that fails any step leaves the committed image, device state, console and disk
// copy exactly as they were, and the standby at N-1.
//
// Thread safety: Receive() and the accessors marked "commit thread" from one thread (the
// agent's); status() and TEST_CorruptDeviceState() from any.
#ifndef UNDERSTUDY_SECONDARY_COMMITTER_H_
#define UNDERSTUDY_SECONDARY_COMMITTER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>

#include "checkpoint/checkpoint.h"
#include "checkpoint/ram_image.h"
#include "common/mutex.h"
#include "console/released_log.h"
#include "disk/disk_replica.h"
#include "disk/disk_server.h"
#include "monitoring/agent_metrics.h"
#include "qemu/vm_definition.h"
#include "secondary/primary_binding.h"

namespace understudy::secondary {

// Where committed state goes next: the ready standby in the agent, a recorder in tests.
// Called on the commit thread, after the commit; a feed's own failure never undoes a commit.
class StandbyFeed {
 public:
  virtual ~StandbyFeed() = default;
  // A pairing's first checkpoint is committed: build a standby from it.
  virtual void Start(const qemu::VmDefinition& definition, const checkpoint::QemuStreamInfo& stream_info,
                     const checkpoint::RamImage& image) = 0;
  // `checkpoint` is committed; `image` holds it.
  virtual void Forward(const checkpoint::Checkpoint& checkpoint, const checkpoint::RamImage& image) = 0;
  // The committed state the standby was built from is gone (a new pairing begins, or the disk
  // copy failed): the standby must never run.
  virtual void Discard() = 0;
};

struct CommitterOptions {
  // The VM this host protects: a first checkpoint's definition must name it.
  PrimaryBinding binding;
  // What a primary's machine definition may ask of this host.
  qemu::DefinitionPolicy vm_policy;
  // Host-local paths written into the committed definition: where the standby's disk is served
  // and where its NIC's socket lives.
  std::string disk_socket_path;
  std::string nic_socket_path;
  // This host has a tap for the VM's NIC ("network" configured).
  bool has_network = false;
  // TEST ONLY: halfway through applying the disk writes of this epoch (or a later one with
  // writes), call test_stall_disk_apply(epoch), which is expected not to return until the
  // agent stops (a test kills the agent there: a crash mid-apply). 0: never.
  uint64_t test_stall_disk_apply_at_epoch = 0;
  std::function<void(uint64_t epoch)> test_stall_disk_apply;
};

class Committer {
 public:
  // `disk`: this host's copy of the VM's disk, or null when none is configured (a VM with a
  // disk is then refused). `console` receives committed console output; `standby` is fed
  // every commit. Both must outlive the committer.
  Committer(CommitterOptions options, std::unique_ptr<disk::DiskReplica> disk, console::ReleasedLog& console,
            StandbyFeed& standby);

  struct Reply {
    std::string message;  // the ack or nack to send back (empty: nothing to answer)
    uint64_t committed_epoch = 0;  // non-zero when this message committed that epoch
    std::string error;             // why the checkpoint was rejected (empty: it was not)
  };
  // One checkpoint message from the primary (replication::kCheckpointTag, then the encoded
  // checkpoint). An epoch already committed is acked again (a resend); a gap or a checkpoint
  // that fails to parse, validate or commit is nacked, with committed state untouched.
  // Epoch 1 after committed epochs starts a new pairing: the old standby is discarded first.
  Reply Receive(std::span<const std::byte> message);

  // Commit thread only. Null until a pairing's first checkpoint is committed.
  const checkpoint::RamImage* image() const { return image_.get(); }
  const qemu::VmDefinition* definition() const { return definition_ ? &*definition_ : nullptr; }
  const checkpoint::QemuStreamInfo* stream_info() const { return stream_info_ ? &*stream_info_ : nullptr; }
  const std::string& device_state() const { return device_state_; }  // of the committed epoch
  uint64_t committed_epoch() const { return image_ ? image_->committed_epoch() : 0; }
  // A standby could run the VM: the initial image and the whole initial disk copy committed.
  bool CanTakeOver() const { return image_ && !disk_syncing_; }
  disk::DiskReplica* disk() { return disk_.get(); }
  disk::DiskServer* disk_server() { return disk_server_.get(); }
  // Metrics to count into (set at the primary's hello); null: none.
  void SetMetrics(monitoring::AgentMetrics* metrics) { metrics_ = metrics; }

  // Any thread.
  struct Snapshot {
    uint64_t committed_epoch = 0;
    uint64_t rejected = 0;
    std::string last_error;
    nlohmann::json disk;  // the disk copy after the last commit (null: none)
    uint64_t test_stalled_in_disk_apply = 0;
  };
  Snapshot status() const;
  // TEST ONLY: store every committed device state truncated (simulated storage damage).
  void TEST_CorruptDeviceState(bool corrupt) { test_corrupt_device_state_.store(corrupt); }

 private:
  // OK once `checkpoint` is committed, else why not (it is then rejected whole).
  Status CommitFirst(const checkpoint::Checkpoint& checkpoint);
  Status Commit(const checkpoint::Checkpoint& checkpoint);
  // Steps 1-3 for a pairing's first checkpoint: RAM first, into the fresh `image` (so a refused
  // image never touches the previous pairing's disk copy), then the disk copy's pairing begins.
  Status CommitFirstDisk(const checkpoint::Checkpoint& checkpoint, qemu::VmDefinition& definition,
                         checkpoint::RamImage& image);
  // The disk copy's server for the standby, once its pairing began.
  Status StartDiskServer(const checkpoint::Checkpoint& checkpoint, qemu::VmDefinition& definition);
  // Step 1: `checkpoint`'s disk writes into the journal.
  Status Journal(const checkpoint::Checkpoint& checkpoint);
  // Step 1 (journal), step 2 (RAM into `image`); the journal is discarded when RAM fails.
  Status JournalAndApplyRam(const checkpoint::Checkpoint& checkpoint, checkpoint::RamImage& image);
  // Step 3: the journaled disk writes into the copy.
  Status ApplyDisk(const checkpoint::Checkpoint& checkpoint);
  Status AppendOutputs(const checkpoint::Checkpoint& checkpoint);
  void StoreDeviceState(const std::string& device_state);
  // The disk copy's status after `checkpoint`'s writes reached it; returns their bytes.
  uint64_t NoteDiskApplied(const checkpoint::Checkpoint& checkpoint, const std::string& lineage);
  Reply Reject(const std::string& which, uint64_t nack_epoch, const Status& why);

  const CommitterOptions options_;
  console::ReleasedLog& console_;
  StandbyFeed& standby_;
  monitoring::AgentMetrics* metrics_ = nullptr;
  std::atomic<bool> test_corrupt_device_state_{false};

  // Commit thread only:
  std::unique_ptr<disk::DiskReplica> disk_;
  std::unique_ptr<disk::DiskServer> disk_server_;  // serves disk_ to the standby's QEMU
  std::optional<qemu::VmDefinition> definition_;
  std::optional<checkpoint::QemuStreamInfo> stream_info_;
  std::unique_ptr<checkpoint::RamImage> image_;
  std::string device_state_;
  bool disk_syncing_ = false;  // the pairing's initial disk copy is still arriving
  uint64_t disk_bytes_applied_ = 0;

  mutable Mutex status_mutex_;
  Snapshot status_ GUARDED_BY(status_mutex_);
};

}  // namespace understudy::secondary

#endif  // UNDERSTUDY_SECONDARY_COMMITTER_H_
