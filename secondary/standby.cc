#include "secondary/standby.h"

#include <sys/resource.h>
#include <sys/socket.h>

#include "checkpoint/page_codec.h"
#include "common/fd_io.h"

namespace understudy::secondary {

namespace {
constexpr auto kWriteBudget = std::chrono::seconds(10);
}

Result<std::unique_ptr<Standby>> Standby::Start(const qemu::VmDefinition& definition,
                                                const checkpoint::QemuStreamInfo& stream_info,
                                                const checkpoint::RamImage& image, const StandbyOptions& options) {
  std::unique_ptr<Standby> standby(new Standby());
  qemu::VmDefinition local = definition;
  standby->serial_socket_path_ = options.runtime_dir + "/standby-serial.sock";
  local.serial.kind = qemu::SerialBackend::Kind::kUnixSocketServer;
  local.serial.path = standby->serial_socket_path_;

  qemu::LaunchOptions launch;
  launch.qemu_binary = options.qemu_binary;
  launch.runtime_dir = options.runtime_dir;
  launch.extra_args = {"-incoming", "defer"};
  UNDERSTUDY_ASSIGN_OR_RETURN(standby->process_, qemu::QemuProcess::Launch(local, launch));
  if (options.nice != 0) ::setpriority(PRIO_PROCESS, static_cast<id_t>(standby->process_->pid()), options.nice);

  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return Status::FromErrno("socketpair", errno);
  standby->stream_.reset(pair[0]);
  UniqueFd theirs(pair[1]);
  qemu::QmpClient& qmp = standby->process_->qmp();
  UNDERSTUDY_RETURN_IF_ERROR(qmp.PassFd("understudy-incoming", theirs.get(), Deadline::AfterMillis(5000)));
  Result<nlohmann::json> incoming =
      qmp.Execute("migrate-incoming", {{"uri", "fd:understudy-incoming"}}, Deadline::AfterMillis(5000));
  if (!incoming.ok()) return incoming.status().WithContext("starting the standby's incoming migration");

  Standby* raw = standby.get();
  standby->writer_ = std::make_unique<checkpoint::QemuStreamWriter>(
      [raw](std::span<const std::byte> bytes) { return raw->Write(bytes); });
  checkpoint::QemuStreamWriter& writer = *standby->writer_;
  UNDERSTUDY_RETURN_IF_ERROR(writer.WriteHeader({stream_info.machine_type, stream_info.capabilities}));
  UNDERSTUDY_RETURN_IF_ERROR(writer.BeginRamStart(stream_info.ram_section_id, image.blocks()));
  for (uint32_t block = 0; block < image.blocks().size(); ++block) {
    for (uint64_t offset = 0; offset < image.blocks()[block].used_length; offset += checkpoint::RamImage::kPageBytes) {
      std::span<const std::byte> page = image.CommittedPage(block, offset);
      UNDERSTUDY_RETURN_IF_ERROR(checkpoint::IsZeroPage(page) ? writer.WriteZeroPage(block, offset)
                                                              : writer.WritePage(block, offset, page));
    }
  }
  UNDERSTUDY_RETURN_IF_ERROR(writer.EndRamSection());
  UNDERSTUDY_RETURN_IF_ERROR(writer.Flush());
  return standby;
}

Status Standby::Write(std::span<const std::byte> bytes) {
  Status status = WriteAll(stream_.get(), bytes, Deadline::After(kWriteBudget));
  if (!status.ok()) return status.WithContext("feeding the standby QEMU (its log: " + process_->Log() + ")");
  return status;
}

Status Standby::Forward(const checkpoint::Checkpoint& checkpoint, const checkpoint::RamImage& image) {
  UNDERSTUDY_RETURN_IF_ERROR(writer_->BeginRamPart());
  for (const checkpoint::PageRun& run : checkpoint.page_runs) {
    for (const checkpoint::EncodedPage& page : run.pages) {
      std::span<const std::byte> committed = image.CommittedPage(run.block_index, page.offset);
      UNDERSTUDY_RETURN_IF_ERROR(page.encoding == checkpoint::format::PageEncoding::kZero
                                     ? writer_->WriteZeroPage(run.block_index, page.offset)
                                     : writer_->WritePage(run.block_index, page.offset, committed));
    }
  }
  UNDERSTUDY_RETURN_IF_ERROR(writer_->EndRamSection());
  return writer_->Flush();
}

Status Standby::Promote(const std::string& device_state, Deadline deadline) {
  UNDERSTUDY_RETURN_IF_ERROR(writer_->WriteDeviceState(std::as_bytes(std::span(device_state.data(), device_state.size()))));
  UNDERSTUDY_RETURN_IF_ERROR(writer_->WriteVmDescription());
  stream_.reset();
  // The incoming side resumes the guest by itself (the global state says "running").
  Result<qemu::QmpEvent> resumed = process_->qmp().WaitForEvent("RESUME", deadline);
  if (!resumed.ok()) return resumed.status().WithContext("waiting for the promoted guest to run (QEMU log: " + process_->Log() + ")");
  return Status::Ok();
}

}  // namespace understudy::secondary
