#include "secondary/test_ram_dump.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/fd_io.h"
#include "common/json_fields.h"
#include "common/log.h"
#include "common/unique_fd.h"

namespace understudy::secondary {

using nlohmann::json;

void TestRamDump::AddControlCommand(std::map<std::string, control::Handler>& handlers) {
  handlers["test_dump_ram"] = [this](const json& request) -> Result<json> {
    UNDERSTUDY_ASSIGN_OR_RETURN(std::string path, RequireString(request, "path", "test_dump_ram"));
    UNDERSTUDY_ASSIGN_OR_RETURN(std::string block, OptionalString(request, "block", "pc.ram", "test_dump_ram"));
    if (path.empty()) return Status::InvalidArgument("test_dump_ram: \"path\" must be a file name");
    return Dump(std::move(path), std::move(block));
  };
}

Result<json> TestRamDump::Dump(std::string path, std::string block) {
  Pending pending{std::move(path), std::move(block), std::nullopt};
  MutexLock lock(&mutex_);
  if (pending_) return Status::FailedPrecondition("test_dump_ram: another dump is pending");
  pending_ = &pending;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!pending.result.has_value() && std::chrono::steady_clock::now() < give_up) served_.WaitUntil(&mutex_, give_up);
  pending_ = nullptr;
  if (!pending.result) return Status::DeadlineExceeded("test_dump_ram: the commit thread did not serve the dump in 20 s");
  return std::move(*pending.result);
}

void TestRamDump::ServeIfRequested(const checkpoint::RamImage* image) {
  MutexLock lock(&mutex_);
  if (!pending_ || pending_->result) return;
  if (!image) {
    pending_->result = Status::FailedPrecondition("test_dump_ram: nothing committed yet");
  } else {
    pending_->result = Write(*image, pending_->block, pending_->path);
  }
  served_.SignalAll();
}

Result<json> TestRamDump::Write(const checkpoint::RamImage& image, const std::string& block, const std::string& path) {
  UNDERSTUDY_ASSIGN_OR_RETURN(uint32_t index, image.FindBlock(block));
  const uint64_t length = image.blocks()[index].used_length;
  UniqueFd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out.valid()) return Status::FromErrno("test_dump_ram: creating " + path, errno);
  for (uint64_t offset = 0; offset < length; offset += checkpoint::RamImage::kPageBytes) {
    std::span<const std::byte> page = image.CommittedPage(index, offset);
    UNDERSTUDY_RETURN_IF_ERROR(WriteAll(out.get(), page, Deadline::AfterMillis(10000)));
  }
  Log("secondary", "TEST ONLY: wrote committed " + block + " of epoch " + std::to_string(image.committed_epoch()) +
                       " to " + path);
  return json{{"epoch", image.committed_epoch()}, {"block", block}, {"bytes", length}, {"path", path}};
}

}  // namespace understudy::secondary
