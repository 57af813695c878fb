// DiskServer: serves a protected VM's disk to its QEMU over NBD on a UNIX socket, from a
// local raw image; remembers every write of the open generation (one per checkpoint epoch)
// so that it can travel inside that epoch's checkpoint, and keeps what a returning copy of
// the disk needs to catch up without a full copy: which blocks changed in which generation,
// and — durably, before each write completes — which extents may differ from what the peer
// committed (disk/lineage_record.h).
//
// Both agents run one: the primary for its VM, the secondary for its standby (whose disk is
// the secondary's copy, so that a promoted VM's writes are tracked from its first one).
//
// Why a server inside the agent rather than nbdkit: the agent must know, at the instant QEMU
// stops the VM for a checkpoint, exactly which writes completed before it — QEMU drains all
// I/O before stopping, so "completed" means "acknowledged by us", and only the process that
// sends the acknowledgements knows that without another round trip. It also keeps one
// process per protected VM.
//
// Reads and writes go to the local image at once: the guest never waits for the network.
// Protocol: NBD fixed newstyle, simple replies (QEMU 7.2's client falls back to them when
// structured replies are refused), commands READ, WRITE (with FUA), FLUSH, TRIM,
// WRITE_ZEROES and DISC; one client at a time.
//
// Thread safety: all public methods from any thread; the server runs its own thread.
#ifndef UNDERSTUDY_DISK_DISK_SERVER_H_
#define UNDERSTUDY_DISK_DISK_SERVER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "common/mutex.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "disk/lineage_record.h"
#include "disk/write_generations.h"

namespace understudy::disk {

// A completed write, as checkpoints carry it (checkpoint/checkpoint.h).
using DiskWrite = checkpoint::DiskWrite;

// Every write that completed in one generation, in completion order.
struct DiskDelta {
  uint64_t generation = 0;
  std::vector<DiskWrite> writes;
  bool flushed = false;  // the guest asked for a flush in this epoch
  uint64_t data_bytes() const;
};

// What a new secondary's copy must take to equal this disk: everything (`base_lineage` empty:
// the copy starts from zeroes) or, when it is of this disk's lineage, only the ranges that
// can differ. disk/initial_copy.h reads them.
struct CopyPlan {
  std::string base_lineage;
  std::vector<ByteRange> ranges;
};

struct DiskServerOptions {
  // Keep each generation's writes for Seal() (a primary). Off for a standby's disk until its
  // VM is protected again: writes are then only tracked, with nobody to ship them to.
  bool record_writes = true;
  // TEST ONLY: sees every write after it reached the image, before QEMU is told it completed.
  std::function<void(const DiskWrite&)> test_on_write;
};

class DiskServer {
 public:
  // Serves `image_path` (a raw image; its size is the disk's) on `socket_path`.
  static Result<std::unique_ptr<DiskServer>> Start(const std::string& image_path, const std::string& socket_path,
                                                   DiskServerOptions options = {});
  ~DiskServer();

  // Closes the open generation and returns its writes (none unless recording); later writes
  // go to the next generation.
  DiskDelta Seal();
  // Records writes from now on (a promoted VM being protected again).
  void StartRecording();
  // Calls `observer` after every write recorded for a checkpoint, before QEMU is told it
  // completed: the write now awaits its epoch's commit (the primary asks for a checkpoint).
  // It runs on the server's thread with the server's lock held: it must be quick and must not
  // call this DiskServer. Empty: none. Once this returns, the previous observer is not running.
  void SetWriteObserver(std::function<void()> observer);

  // What a new secondary's copy needs, given its lineage record (from its hello), as of the
  // last Seal(). Starts a new lineage on this disk (the pairing's), named `lineage`.
  Result<CopyPlan> BeginLineage(const LineageRecord& peer, const std::string& lineage);
  // The content of `ranges` as writes of up to 64 KiB, all-zero chunks left out when
  // `skip_zero_chunks` (else sent as zero writes).
  Result<std::vector<DiskWrite>> Read(const std::vector<ByteRange>& ranges, bool skip_zero_chunks) const;
  // The peer committed every write up to `generation`: extents written no later stop being
  // suspect, and later resyncs start from there.
  void PeerCommitted(uint64_t generation);
  LineageRecord lineage_record() const;
  // Reads the lineage record from the image's file again: someone else (the secondary's
  // journaled copy, finishing an initial copy) renamed the image's lineage.
  void ReloadLineageRecord();

  uint64_t size_bytes() const { return size_bytes_; }
  const std::string& socket_path() const { return socket_path_; }
  // Requests served and bytes written since start.
  uint64_t requests() const { return requests_.load(); }
  uint64_t bytes_written() const { return bytes_written_.load(); }
  // Data bytes recorded since the last Seal(): writes no checkpoint carries yet, held in this
  // server's memory (the primary caps them: primary/byte_caps.h).
  uint64_t unsealed_bytes() const;

 private:
  DiskServer() = default;
  void AcceptLoop();
  Status Serve(int client);
  Status Negotiate(int client);
  Status Transmit(int client);
  // Makes the extents of [offset, offset + length) suspect, durably, before the write.
  Status MarkSuspect(uint64_t offset, uint64_t length);
  void Record(DiskWrite write);

  UniqueFd image_;
  UniqueFd listener_;
  std::string image_path_;
  std::string socket_path_;
  uint64_t size_bytes_ = 0;
  // record_writes is read and written with mutex_ held; the rest is constant after Start.
  DiskServerOptions options_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> requests_{0}, bytes_written_{0};
  std::thread thread_;

  mutable Mutex mutex_;
  DiskDelta open_ GUARDED_BY(mutex_);
  uint64_t open_data_bytes_ GUARDED_BY(mutex_) = 0;  // open_'s data bytes
  std::function<void()> write_observer_ GUARDED_BY(mutex_);
  std::unique_ptr<WriteGenerations> generations_ GUARDED_BY(mutex_);
  LineageRecord record_ GUARDED_BY(mutex_);          // as stored next to the image
  uint64_t peer_generation_ GUARDED_BY(mutex_) = 0;  // the peer of record_.lineage has every write up to here
  std::chrono::steady_clock::time_point next_trim_ GUARDED_BY(mutex_);
};

}  // namespace understudy::disk

#endif  // UNDERSTUDY_DISK_DISK_SERVER_H_
