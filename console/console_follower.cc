#include "console/console_follower.h"

#include <array>
#include <thread>

#include "common/byte_order.h"
#include "common/fd_io.h"
#include "console/console_protocol.h"

namespace understudy::console {

namespace {

// Silence on the current source before the others are asked, and how long each gets to answer.
constexpr auto kSilenceBeforeProbing = std::chrono::milliseconds(150);
constexpr auto kProbeWait = std::chrono::milliseconds(10);

}  // namespace

Status ConsoleFollower::ConnectSomewhere(Deadline deadline) {
  bool first_attempt = !try_next_first_;
  try_next_first_ = false;
  for (;;) {
    for (size_t tried = 0; tried < socket_paths_.size(); ++tried) {
      size_t candidate = (current_ + (first_attempt ? 0 : 1) + tried) % socket_paths_.size();
      Result<UniqueFd> fd = ConnectUnixSocket(socket_paths_[candidate], Deadline::Now());
      if (!fd.ok()) continue;
      std::byte request[8];
      StoreLittleEndian<uint64_t>(request, offset_);
      if (!WriteAll(fd->get(), request, Deadline::AfterMillis(1000)).ok()) continue;
      if (candidate != current_) ++switches_;
      current_ = candidate;
      connection_ = std::move(*fd);
      pending_.clear();
      return Status::Ok();
    }
    first_attempt = false;
    if (deadline.Expired()) return Status::DeadlineExceeded("no console source answered");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool ConsoleFollower::SwitchToASourceWithNews() {
  for (size_t other = 0; other < socket_paths_.size(); ++other) {
    if (other == current_) continue;
    Result<UniqueFd> fd = ConnectUnixSocket(socket_paths_[other], Deadline::Now());
    if (!fd.ok()) continue;
    std::byte request[8];
    StoreLittleEndian<uint64_t>(request, offset_);
    if (!WriteAll(fd->get(), request, Deadline::AfterMillis(100)).ok()) continue;
    std::array<std::byte, 16384> buffer;
    Result<size_t> count = ReadSome(fd->get(), buffer, Deadline::After(kProbeWait));
    if (!count.ok()) continue;
    // It answered with output from our offset on: it is where the VM's console lives now.
    ++switches_;
    current_ = other;
    connection_ = std::move(*fd);
    pending_.assign(reinterpret_cast<const char*>(buffer.data()), *count);
    return true;
  }
  return false;
}

Result<std::string> ConsoleFollower::Read(Deadline deadline) {
  for (;;) {
    if (!connection_.valid()) UNDERSTUDY_RETURN_IF_ERROR(ConnectSomewhere(deadline));
    // A whole frame in hand?
    if (pending_.size() >= kFrameHeaderBytes) {
      auto* header = reinterpret_cast<const std::byte*>(pending_.data());
      uint64_t frame_offset = LoadLittleEndian<uint64_t>(header);
      uint32_t length = LoadLittleEndian<uint32_t>(header + 8);
      if (length > kMaxFrameBytes || frame_offset > offset_) {
        connection_.reset();  // a confused or lossy source: ask another one
        continue;
      }
      if (pending_.size() >= kFrameHeaderBytes + length) {
        std::string bytes = pending_.substr(kFrameHeaderBytes, length);
        pending_.erase(0, kFrameHeaderBytes + length);
        uint64_t already = offset_ - frame_offset;  // bytes we had from an earlier source
        if (already >= bytes.size()) continue;
        bytes.erase(0, already);
        offset_ += bytes.size();
        return bytes;
      }
    }
    std::array<std::byte, 16384> buffer;
    Result<size_t> count = ReadSome(connection_.get(), buffer, deadline.Min(next_probe_));
    if (!count.ok()) {
      if (count.status().code() == Status::Code::kDeadlineExceeded) {
        // Callers often poll with short deadlines, so silence is measured across calls.
        if (next_probe_.Expired()) {
          next_probe_ = Deadline::After(kSilenceBeforeProbing);
          if (SwitchToASourceWithNews()) continue;
        }
        if (deadline.Expired()) return count.status();
        continue;
      }
      connection_.reset();  // that agent went away or was fenced: follow the VM elsewhere
      try_next_first_ = true;
      continue;
    }
    pending_.append(reinterpret_cast<const char*>(buffer.data()), *count);
    next_probe_ = Deadline::After(kSilenceBeforeProbing);
  }
}

Result<std::string> ConsoleFollower::ReadLine(Deadline deadline) {
  for (;;) {
    size_t newline = partial_line_.find('\n');
    if (newline != std::string::npos) {
      std::string line = partial_line_.substr(0, newline);
      partial_line_.erase(0, newline + 1);
      return line;
    }
    UNDERSTUDY_ASSIGN_OR_RETURN(std::string bytes, Read(deadline));
    partial_line_ += bytes;
  }
}

}  // namespace understudy::console
