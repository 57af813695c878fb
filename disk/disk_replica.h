// DiskReplica: the secondary's copy of the protected VM's disk, changed only by whole
// committed epochs and crash-safely.
//
// A commit of epoch N is two steps: Journal() makes N's writes durable in a journal file next
// to the copy (one record: header with a CRC32C over everything, fdatasync), then Apply()
// writes them into the copy (fdatasync) and empties the journal. A crash between or during the
// steps is repaired at Open(): a complete journal record is applied again (writes are
// idempotent), a torn one — the crash hit while journaling — is discarded whole, leaving the
// copy at N-1. Either way the copy is exactly one committed epoch, never a mix.
//
// Its lineage record (disk/lineage_record.h) names the pairing whose committed epochs the copy
// holds, with no suspect extents; while a pairing's initial copy is being applied it names
// none, so a copy interrupted then is copied over in full next time.
//
// Thread safety: not thread-safe (the secondary's commit thread).
#ifndef UNDERSTUDY_DISK_DISK_REPLICA_H_
#define UNDERSTUDY_DISK_DISK_REPLICA_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "disk/lineage_record.h"

namespace understudy::disk {

class DiskReplica {
 public:
  // Opens (creating when absent) the copy at `path` and its journal at `path`.journal, and
  // repairs an interrupted commit as described above.
  static Result<std::unique_ptr<DiskReplica>> Open(const std::string& path);

  // A new pairing's initial copy follows: a full one onto `size_bytes` of zeroes when
  // `base_lineage` is empty, else only what differs from that lineage, which this copy must
  // hold (kFailedPrecondition otherwise: the primary must send everything).
  Status BeginPairing(uint64_t size_bytes, const std::string& base_lineage);
  // The initial copy is applied: the copy now holds `lineage`.
  Status FinishPairing(const std::string& lineage);
  LineageRecord lineage_record() const { return LineageRecord::Load(path_); }

  // Step 1 of committing `epoch`: kCorruption naming a write outside the disk (nothing is
  // written then); otherwise the writes are durable in the journal.
  Status Journal(uint64_t epoch, const std::vector<checkpoint::DiskWrite>& writes);
  // Step 2: the journaled writes into the copy; the journal empties.
  Status Apply();
  // The epoch was not committed after all (its RAM was rejected): forget the journal.
  Status Discard();

  const std::string& path() const { return path_; }
  uint64_t size_bytes() const { return size_bytes_; }

  // TEST ONLY: writes straight into the copy, bypassing the journal and the commit (the
  // negative control of disk replication: what goes wrong without commit-time apply).
  Status WriteUncommitted(const checkpoint::DiskWrite& write);
  // TEST ONLY: called once, when the next epoch's first write is half in the copy (a crash
  // point that leaves the copy torn until the journal is replayed).
  std::function<void()> test_mid_apply;

 private:
  DiskReplica() = default;
  Status ApplyRecord(const std::string& record);

  std::string path_;
  UniqueFd copy_;
  UniqueFd journal_;
  uint64_t size_bytes_ = 0;
  std::string pending_;  // the journaled record, until applied
};

}  // namespace understudy::disk

#endif  // UNDERSTUDY_DISK_DISK_REPLICA_H_
