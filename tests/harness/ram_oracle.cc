#include "tests/harness/ram_oracle.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "common/unique_fd.h"

namespace understudy::testing {

using nlohmann::json;

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kLegacyWindowStart = 0xA0000;
constexpr uint64_t kLegacyWindowEnd = 0x100000;

std::string Hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof(text), "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

Result<std::vector<std::byte>> ReadBytes(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("opening " + path, errno);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return Status::FromErrno("stat " + path, errno);
  std::vector<std::byte> bytes(static_cast<size_t>(info.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("reading " + path, errno);
    if (n == 0) return Status::IOError(path + " shrank while read");
    done += static_cast<size_t>(n);
  }
  return bytes;
}

double MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

std::string RamComparison::Describe() const {
  std::string text = "epoch " + std::to_string(epoch) + ": " + std::to_string(pages_compared) + " pages compared (" +
                     std::to_string(nonzero_pages) + " non-zero), " + std::to_string(pages_skipped) +
                     " skipped (0xa0000-0xfffff), ";
  if (equal()) return text + "all equal";
  text += std::to_string(pages_differing) + " differ, first at guest-physical";
  for (uint64_t address : first_differing) text += " " + Hex(address);
  text += "; first differing words:";
  for (size_t i = 0; i < first_words.size() && i < 3; ++i) {
    text += " [" + Hex(first_differing[i] + first_words[i].offset) + "] primary " + Hex(first_words[i].primary) +
            " secondary " + Hex(first_words[i].secondary) + (i + 1 < std::min<size_t>(first_words.size(), 3) ? ";" : "");
  }
  return text;
}

RamComparison ComparePcRam(std::span<const std::byte> primary, std::span<const std::byte> secondary) {
  RamComparison result;
  const uint64_t length = std::min(primary.size(), secondary.size()) / kPage * kPage;
  for (uint64_t address = 0; address < length; address += kPage) {
    if (address >= kLegacyWindowStart && address < kLegacyWindowEnd) {
      ++result.pages_skipped;
      continue;
    }
    ++result.pages_compared;
    std::span<const std::byte> ours = primary.subspan(address, kPage);
    std::span<const std::byte> theirs = secondary.subspan(address, kPage);
    static const std::byte kZeroPage[kPage] = {};
    if (std::memcmp(ours.data(), kZeroPage, kPage) != 0) ++result.nonzero_pages;
    if (std::memcmp(ours.data(), theirs.data(), kPage) != 0) {
      ++result.pages_differing;
      if (result.first_differing.size() < 8) {
        result.first_differing.push_back(address);
        RamComparison::WordDifference word;
        for (uint32_t at = 0; at < kPage; at += 4) {
          std::memcpy(&word.primary, ours.data() + at, 4);
          std::memcpy(&word.secondary, theirs.data() + at, 4);
          word.offset = at;
          if (word.primary != word.secondary) break;
        }
        result.first_words.push_back(word);
      }
    }
  }
  return result;
}

Result<RamComparison> CheckRamAtCheckpoint(const AgentPair& pair, qemu::QmpClient& monitor, uint64_t epoch,
                                           const std::string& scratch, uint64_t ram_bytes, bool already_armed) {
  if (!already_armed) {
    UNDERSTUDY_RETURN_IF_ERROR(
        pair.PrimaryControl({{"command", "test_hold_checkpoint"}, {"epoch", epoch}}, Deadline::AfterMillis(2000)).status());
  }
  auto release = [&] {
    return pair.PrimaryControl({{"command", "test_release_checkpoint"}}, Deadline::AfterMillis(2000)).status();
  };
  const std::string primary_path = scratch + "/primary-ram-" + std::to_string(epoch) + ".bin";
  const std::string secondary_path = scratch + "/secondary-pc.ram-" + std::to_string(epoch) + ".bin";
  std::chrono::steady_clock::time_point held_at;
  Status captured = [&]() -> Status {
    // The primary stops at `epoch`: QEMU keeps the VM stopped until it is released.
    Deadline deadline = Deadline::AfterMillis(30000);
    for (;;) {
      UNDERSTUDY_ASSIGN_OR_RETURN(json held, pair.PrimaryControl({{"command", "test_held_checkpoint"}}, deadline));
      if (held.value("held_epoch", uint64_t{0}) == epoch) break;
      if (deadline.Expired()) return Status::DeadlineExceeded("the primary never stopped at epoch " + std::to_string(epoch));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    held_at = std::chrono::steady_clock::now();
    UNDERSTUDY_RETURN_IF_ERROR(monitor
                                   .Execute("pmemsave", {{"val", 0}, {"size", ram_bytes}, {"filename", primary_path}},
                                            Deadline::AfterMillis(30000))
                                   .status()
                                   .WithContext("pmemsave of the stopped primary"));
    // Epoch N is shipped before the hold; no later one can exist while it lasts.
    for (;;) {
      UNDERSTUDY_ASSIGN_OR_RETURN(json status, pair.SecondaryStatus());
      uint64_t committed = status.value("committed_epoch", uint64_t{0});
      if (committed == epoch) break;
      if (committed > epoch) {
        return Status::Internal("the secondary committed epoch " + std::to_string(committed) + " while the primary held " +
                                std::to_string(epoch));
      }
      if (deadline.Expired()) return Status::DeadlineExceeded("the secondary never committed epoch " + std::to_string(epoch));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    UNDERSTUDY_ASSIGN_OR_RETURN(json dumped, pair.SecondaryControl({{"command", "test_dump_ram"}, {"path", secondary_path}},
                                                                   Deadline::AfterMillis(30000)));
    if (dumped.value("epoch", uint64_t{0}) != epoch) {
      return Status::Internal("the secondary dumped epoch " + dumped.value("epoch", json()).dump() + ", not " +
                              std::to_string(epoch));
    }
    return Status::Ok();
  }();
  double hold_ms = captured.ok() ? MillisSince(held_at) : 0;
  Status released = release();
  UNDERSTUDY_RETURN_IF_ERROR(captured);
  UNDERSTUDY_RETURN_IF_ERROR(released);

  auto started = std::chrono::steady_clock::now();
  UNDERSTUDY_ASSIGN_OR_RETURN(std::vector<std::byte> primary, ReadBytes(primary_path));
  UNDERSTUDY_ASSIGN_OR_RETURN(std::vector<std::byte> secondary, ReadBytes(secondary_path));
  if (primary.size() != ram_bytes || secondary.size() != ram_bytes) {
    return Status::Internal("sizes differ: primary read " + std::to_string(primary.size()) + " bytes, secondary pc.ram " +
                            std::to_string(secondary.size()) + ", guest RAM " + std::to_string(ram_bytes));
  }
  RamComparison comparison = ComparePcRam(primary, secondary);
  comparison.epoch = epoch;
  comparison.hold_ms = hold_ms;
  comparison.compare_ms = MillisSince(started);
  std::remove(primary_path.c_str());
  std::remove(secondary_path.c_str());
  return comparison;
}

}  // namespace understudy::testing
