#include "disk/disk_replica.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/byte_order.h"
#include "common/crc32c.h"
#include "common/log.h"

namespace understudy::disk {

namespace {

constexpr uint32_t kJournalMagic = 0x4c4a4455;  // "UDJL"
// magic u32, epoch u64, entry bytes u64, crc u32 (over the entries)
constexpr size_t kHeaderBytes = 4 + 8 + 8 + 4;

std::span<const std::byte> Bytes(std::string_view text) { return std::as_bytes(std::span(text.data(), text.size())); }

// All of `bytes` at file offset `at` (pwrite may write less than asked).
Status WriteAllAt(int fd, std::string_view bytes, uint64_t at, const std::string& what) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t wrote = ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(at + done));
    if (wrote < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(what, errno);
    }
    done += static_cast<size_t>(wrote);
  }
  return Status::Ok();
}

Status SyncedWrite(int fd, const std::string& bytes, const std::string& what) {
  UNDERSTUDY_RETURN_IF_ERROR(WriteAllAt(fd, bytes, 0, what));
  if (::fdatasync(fd) != 0) return Status::FromErrno(what + " (fdatasync)", errno);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<DiskReplica>> DiskReplica::Open(const std::string& path) {
  std::unique_ptr<DiskReplica> replica(new DiskReplica());
  replica->path_ = path;
  replica->copy_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!replica->copy_.valid()) return Status::FromErrno("opening the disk copy " + path, errno);
  replica->journal_.reset(::open((path + ".journal").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!replica->journal_.valid()) return Status::FromErrno("opening the journal " + path + ".journal", errno);
  struct stat info {};
  ::fstat(replica->copy_.get(), &info);
  replica->size_bytes_ = static_cast<uint64_t>(info.st_size);
  // Repair an interrupted commit.
  ::fstat(replica->journal_.get(), &info);
  std::string record(static_cast<size_t>(info.st_size), '\0');
  if (!record.empty() && ::pread(replica->journal_.get(), record.data(), record.size(), 0) == info.st_size) {
    std::string_view view(record);
    bool complete = record.size() >= kHeaderBytes &&
                    LoadLittleEndian<uint32_t>(reinterpret_cast<const std::byte*>(record.data())) == kJournalMagic &&
                    LoadLittleEndian<uint64_t>(reinterpret_cast<const std::byte*>(record.data() + 12)) ==
                        record.size() - kHeaderBytes &&
                    LoadLittleEndian<uint32_t>(reinterpret_cast<const std::byte*>(record.data() + 20)) ==
                        crc32c::Value(Bytes(view.substr(kHeaderBytes)));
    if (complete) {
      Log("disk", "replaying the journal of epoch " +
                      std::to_string(LoadLittleEndian<uint64_t>(reinterpret_cast<const std::byte*>(record.data() + 4))) +
                      " left by an interrupted commit");
      replica->pending_ = std::move(record);
      UNDERSTUDY_RETURN_IF_ERROR(replica->Apply());
    } else {
      Log("disk", "discarding a torn journal (" + std::to_string(record.size()) + " bytes): that epoch never committed");
      UNDERSTUDY_RETURN_IF_ERROR(replica->Discard());
    }
  }
  return replica;
}

Status DiskReplica::BeginPairing(uint64_t size_bytes, const std::string& base_lineage) {
  UNDERSTUDY_RETURN_IF_ERROR(Discard());
  if (!base_lineage.empty()) {
    LineageRecord held = lineage_record();
    if (held.lineage != base_lineage || size_bytes != size_bytes_) {
      return Status::FailedPrecondition("the primary sends only what differs from disk lineage " + base_lineage +
                                        " but the copy " + path_ + " holds lineage '" + held.lineage + "' (" +
                                        std::to_string(size_bytes_) + " bytes)");
    }
  }
  // From here until FinishPairing the copy matches no lineage.
  UNDERSTUDY_RETURN_IF_ERROR(LineageRecord{}.Store(path_));
  if (!base_lineage.empty()) return Status::Ok();
  if (::ftruncate(copy_.get(), 0) != 0 || ::ftruncate(copy_.get(), static_cast<off_t>(size_bytes)) != 0) {
    return Status::FromErrno("sizing the disk copy " + path_, errno);
  }
  if (::fsync(copy_.get()) != 0) return Status::FromErrno("syncing the disk copy " + path_, errno);
  size_bytes_ = size_bytes;
  return Status::Ok();
}

Status DiskReplica::FinishPairing(const std::string& lineage) { return LineageRecord{lineage, {}}.Store(path_); }

Status DiskReplica::WriteUncommitted(const checkpoint::DiskWrite& write) {
  if (write.offset > size_bytes_ || write.length > size_bytes_ - write.offset) {
    return Status::Corruption("an uncommitted write outside the disk");
  }
  return WriteAllAt(copy_.get(), write.zero ? std::string(write.length, '\0') : write.data, write.offset,
                    "writing uncommitted data into " + path_);
}

Status DiskReplica::Journal(uint64_t epoch, const std::vector<checkpoint::DiskWrite>& writes) {
  std::string entries;
  for (const checkpoint::DiskWrite& write : writes) {
    if (write.offset > size_bytes_ || write.length > size_bytes_ - write.offset) {
      return Status::Corruption("epoch " + std::to_string(epoch) + " writes " + std::to_string(write.length) +
                                " bytes at " + std::to_string(write.offset) + ", outside the " +
                                std::to_string(size_bytes_) + "-byte disk");
    }
    AppendLittleEndian<uint64_t>(entries, write.offset);
    AppendLittleEndian<uint32_t>(entries, write.length);
    entries.push_back(static_cast<char>(write.zero ? 1 : 0));
    if (!write.zero) entries += write.data;
  }
  std::string record;
  AppendLittleEndian<uint32_t>(record, kJournalMagic);
  AppendLittleEndian<uint64_t>(record, epoch);
  AppendLittleEndian<uint64_t>(record, entries.size());
  AppendLittleEndian<uint32_t>(record, crc32c::Value(Bytes(entries)));
  record += entries;
  UNDERSTUDY_RETURN_IF_ERROR(SyncedWrite(journal_.get(), record, "journaling epoch " + std::to_string(epoch)));
  pending_ = std::move(record);
  return Status::Ok();
}

Status DiskReplica::Apply() {
  if (pending_.empty()) return Status::Ok();
  UNDERSTUDY_RETURN_IF_ERROR(ApplyRecord(pending_));
  return Discard();
}

Status DiskReplica::ApplyRecord(const std::string& record) {
  size_t at = kHeaderBytes;
  while (at < record.size()) {
    auto* entry = reinterpret_cast<const std::byte*>(record.data() + at);
    uint64_t offset = LoadLittleEndian<uint64_t>(entry);
    uint32_t length = LoadLittleEndian<uint32_t>(entry + 8);
    bool zero = record[at + 12] == 1;
    at += 13;
    const std::string zeroes = zero ? std::string(length, '\0') : std::string();
    std::string_view data = zero ? std::string_view(zeroes) : std::string_view(record).substr(at, length);
    if (!zero) at += length;
    if (test_mid_apply) {
      // The crash point: half of this write is in the copy, the rest is not.
      UNDERSTUDY_RETURN_IF_ERROR(WriteAllAt(copy_.get(), data.substr(0, data.size() / 2), offset, "applying a journaled write"));
      std::exchange(test_mid_apply, nullptr)();
    }
    UNDERSTUDY_RETURN_IF_ERROR(WriteAllAt(copy_.get(), data, offset, "applying a journaled write to " + path_));
  }
  if (::fdatasync(copy_.get()) != 0) return Status::FromErrno("syncing the disk copy " + path_, errno);
  return Status::Ok();
}

Status DiskReplica::Discard() {
  pending_.clear();
  if (::ftruncate(journal_.get(), 0) != 0 || ::fdatasync(journal_.get()) != 0) {
    return Status::FromErrno("emptying the journal of " + path_, errno);
  }
  return Status::Ok();
}

}  // namespace understudy::disk
