// DiskServer: serves the protected VM's disk to its QEMU over NBD on a UNIX socket, from a
// local raw image, and remembers every write of the open epoch so that it can travel inside
// that epoch's checkpoint (issue: disk replication).
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
// Thread safety: Seal() and the accessors from any thread; the server runs its own thread.
#ifndef UNDERSTUDY_PRIMARY_DISK_SERVER_H_
#define UNDERSTUDY_PRIMARY_DISK_SERVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace understudy::primary {

// A completed write, as checkpoints carry it (checkpoint/checkpoint.h).
using DiskWrite = checkpoint::DiskWrite;

// Every write that completed in one epoch, in completion order.
struct DiskDelta {
  uint64_t epoch = 0;
  std::vector<DiskWrite> writes;
  bool flushed = false;  // the guest asked for a flush in this epoch
  uint64_t data_bytes() const;
};

class DiskServer {
 public:
  // Serves `image_path` (a raw image; its size is the disk's) on `socket_path`. Without
  // `record_writes` (a promoted standby's disk, nobody to ship to) writes are not kept.
  static Result<std::unique_ptr<DiskServer>> Start(const std::string& image_path, const std::string& socket_path,
                                                   bool record_writes = true);
  ~DiskServer();

  // Closes the open epoch as `epoch` and returns its writes; later writes go to the next.
  DiskDelta Seal(uint64_t epoch);

  // The disk's current content as writes of its data extents (holes and all-zero chunks
  // skipped): the initial copy for a new secondary.
  Result<std::vector<DiskWrite>> ReadWholeDisk() const;

  uint64_t size_bytes() const { return size_bytes_; }
  const std::string& socket_path() const { return socket_path_; }
  // Requests served and bytes written since start.
  uint64_t requests() const { return requests_.load(); }
  uint64_t bytes_written() const { return bytes_written_.load(); }

 private:
  DiskServer() = default;
  void AcceptLoop();
  Status Serve(int client);
  Status Negotiate(int client);
  Status Transmit(int client);
  void Record(DiskWrite write);

  UniqueFd image_;
  UniqueFd listener_;
  std::string socket_path_;
  uint64_t size_bytes_ = 0;
  bool record_writes_ = true;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> requests_{0}, bytes_written_{0};
  std::thread thread_;

  std::mutex mutex_;
  DiskDelta open_;  // guarded by mutex_
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_DISK_SERVER_H_
