// Standby: the ready standby VM — a QEMU waiting in `-incoming defer`, fed every committed
// checkpoint's RAM as it commits, so that promotion has only the device state left to send.
//
//   Start():   launches QEMU from the primary's machine definition (host-local paths
//              replaced) and sends the stream header and the whole committed RAM image as
//              the RAM SECTION_START.
//   Forward(): after each commit, the checkpoint's pages (as committed) as one SECTION_PART.
//   Promote(): the committed device state and a minimal VM description; QEMU loads them and
//              runs the guest from exactly the committed checkpoint (notes: ~5 ms).
//
// A standby is single-use: a failed load makes QEMU exit.
//
// Thread safety: not thread-safe.
#ifndef UNDERSTUDY_SECONDARY_STANDBY_H_
#define UNDERSTUDY_SECONDARY_STANDBY_H_

#include <memory>
#include <string>

#include "checkpoint/checkpoint.h"
#include "checkpoint/qemu_stream_writer.h"
#include "checkpoint/ram_image.h"
#include "common/unique_fd.h"
#include "qemu/qemu_process.h"
#include "qemu/vm_definition.h"

namespace understudy::secondary {

struct StandbyOptions {
  std::string runtime_dir;  // QMP, log and the standby's serial socket go here
  std::string qemu_binary = "qemu-system-x86_64";
  // Scheduling niceness for the QEMU process (a scratch QEMU for verification must never
  // crowd out the agents' heartbeats or the ready standby).
  int nice = 0;
};

class Standby {
 public:
  static Result<std::unique_ptr<Standby>> Start(const qemu::VmDefinition& definition,
                                                const checkpoint::QemuStreamInfo& stream_info,
                                                const checkpoint::RamImage& image, const StandbyOptions& options);

  // Sends the pages `checkpoint` changed, as `image` now holds them (after its commit).
  Status Forward(const checkpoint::Checkpoint& checkpoint, const checkpoint::RamImage& image);

  // Sends the device state and ends the stream; returns once the guest runs.
  Status Promote(const std::string& device_state, Deadline deadline);

  qemu::QemuProcess& process() { return *process_; }
  // The standby's COM1 (a UNIX socket QEMU listens on).
  const std::string& serial_socket_path() const { return serial_socket_path_; }

 private:
  Standby() = default;
  Status Write(std::span<const std::byte> bytes);

  std::unique_ptr<qemu::QemuProcess> process_;
  UniqueFd stream_;  // our end of the incoming migration socket
  std::unique_ptr<checkpoint::QemuStreamWriter> writer_;
  std::string serial_socket_path_;
};

}  // namespace understudy::secondary

#endif  // UNDERSTUDY_SECONDARY_STANDBY_H_
