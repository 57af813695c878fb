#include "network/frame_relay.h"

#include <unistd.h>

#include <array>
#include <cstring>
#include <cerrno>

#include "common/byte_order.h"
#include "common/fd_io.h"
#include "common/log.h"
#include "network/tap_device.h"

namespace understudy::network {

namespace {

constexpr size_t kMaxFrame = 65536;
// A frame is written whole or the guest link is broken (the stream would lose its framing):
// generous, since QEMU stops reading while its VM is paused for a checkpoint.
constexpr auto kGuestWriteBudget = std::chrono::seconds(5);

}  // namespace

std::unique_ptr<FrameRelay> FrameRelay::Start(UniqueFd guest, UniqueFd tap, Mode mode, HoldSink hold) {
  std::unique_ptr<FrameRelay> relay(new FrameRelay(std::move(guest), std::move(tap)));
  relay->SetMode(mode, std::move(hold));
  FrameRelay* raw = relay.get();
  relay->from_tap_ = std::thread([raw] { raw->FromTapLoop(); });
  relay->from_guest_ = std::thread([raw] { raw->FromGuestLoop(); });
  return relay;
}

Result<std::unique_ptr<FrameRelay>> FrameRelay::Connect(const std::string& nic_socket, const std::string& tap,
                                                         const std::string& netns, Mode mode, HoldSink hold) {
  UNDERSTUDY_ASSIGN_OR_RETURN(UniqueFd guest, ConnectUnixSocket(nic_socket, Deadline::AfterMillis(5000)));
  UNDERSTUDY_ASSIGN_OR_RETURN(UniqueFd tap_device, OpenTap(tap, netns));
  return Start(std::move(guest), std::move(tap_device), mode, std::move(hold));
}

FrameRelay::~FrameRelay() {
  stopping_.store(true);
  for (std::thread* thread : {&from_tap_, &from_guest_, &release_}) {
    if (thread->joinable()) thread->join();
  }
}

void FrameRelay::SetMode(Mode mode, HoldSink hold) {
  MutexLock lock(&mutex_);
  mode_ = mode;
  hold_ = std::move(hold);
}

void FrameRelay::ReleaseFrom(const console::ReleasedLog& released, uint64_t offset) {
  MutexLock lock(&mutex_);
  if (release_.joinable()) return;
  release_ = std::thread([this, &released, offset] { ReleaseLoop(&released, offset); });
}

FrameRelay::Counters FrameRelay::counters() const { return {frames_in_.load(), frames_out_.load(), frames_dropped_.load()}; }

void FrameRelay::FromTapLoop() {
  std::array<char, kMaxFrame> frame;
  std::string framed;
  while (!stopping_.load()) {
    if (!WaitForFd(tap_.get(), /*for_write=*/false, Deadline::AfterMillis(100)).ok()) continue;
    ssize_t got = ::read(tap_.get(), frame.data(), frame.size());
    if (got <= 0) continue;
    {
      MutexLock lock(&mutex_);
      if (mode_ == Mode::kSilent) {
        ++frames_dropped_;
        continue;
      }
    }
    framed.clear();
    AppendBigEndian<uint32_t>(framed, static_cast<uint32_t>(got));
    framed.append(frame.data(), static_cast<size_t>(got));
    MutexLock lock(&guest_write_mutex_);
    Status sent = WriteAll(guest_.get(), framed, Deadline::After(kGuestWriteBudget));
    if (!sent.ok()) {
      Log("network", "the guest's NIC stopped taking frames: " + sent.ToString());
      return;
    }
    ++frames_in_;
  }
}

void FrameRelay::FromGuestLoop() {
  std::string framed;
  while (!stopping_.load()) {
    if (!WaitForFd(guest_.get(), /*for_write=*/false, Deadline::AfterMillis(100)).ok()) continue;
    std::byte header[4];
    Status read = ReadExactly(guest_.get(), header, Deadline::After(kGuestWriteBudget));
    if (read.code() == Status::Code::kPeerClosed) return;  // QEMU went away
    uint32_t length = read.ok() ? LoadBigEndian<uint32_t>(header) : 0;
    if (read.ok() && (length == 0 || length > kMaxFrame)) read = Status::Corruption("a frame of " + std::to_string(length) + " bytes");
    if (read.ok()) {
      framed.resize(4 + length);
      std::memcpy(framed.data(), header, 4);
      read = ReadExactly(guest_.get(), std::as_writable_bytes(std::span(framed.data() + 4, length)),
                         Deadline::After(kGuestWriteBudget));
    }
    if (!read.ok()) {
      Log("network", "the guest's NIC stream broke: " + read.ToString());
      return;
    }
    MutexLock lock(&mutex_);
    switch (mode_) {
      case Mode::kHold: hold_(framed); break;
      case Mode::kDirect: WriteToTap(std::string_view(framed).substr(4)); break;
      case Mode::kSilent: ++frames_dropped_; break;
    }
  }
}

void FrameRelay::ReleaseLoop(const console::ReleasedLog* released, uint64_t offset) {
  std::string pending;
  while (!stopping_.load()) {
    Result<std::string> bytes = released->ReadFrom(offset, 1 << 20, Deadline::AfterMillis(100));
    if (bytes.status().code() == Status::Code::kDeadlineExceeded) continue;
    if (bytes.status().code() == Status::Code::kPeerClosed) return;
    if (bytes.status().code() == Status::Code::kNotFound) {
      // Fell behind the log's memory: those frames are lost (the network tolerates it);
      // releases are whole frames, so the end is a frame boundary.
      Log("network", "released frames overran the relay; resuming at the newest");
      offset = released->end();
      pending.clear();
      continue;
    }
    if (!bytes.ok()) return;
    offset += bytes->size();
    pending += *bytes;
    size_t at = 0;
    while (pending.size() - at >= 4) {
      uint32_t length = LoadBigEndian<uint32_t>(reinterpret_cast<const std::byte*>(pending.data() + at));
      if (pending.size() - at - 4 < length) break;
      WriteToTap(std::string_view(pending).substr(at + 4, length));
      at += 4 + length;
    }
    pending.erase(0, at);
  }
}

void FrameRelay::WriteToTap(std::string_view frame) {
  // A full tap queue drops the frame, as a congested switch would.
  if (::write(tap_.get(), frame.data(), frame.size()) == static_cast<ssize_t>(frame.size())) {
    ++frames_out_;
  } else {
    ++frames_dropped_;
  }
}

}  // namespace understudy::network
