#include "disk/disk_server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/byte_order.h"
#include "common/fd_io.h"
#include "common/log.h"

namespace understudy::disk {

namespace {

// NBD protocol constants (the NBD project's doc/proto.md).
constexpr uint64_t kNbdMagic = 0x4e42444d41474943ull;  // "NBDMAGIC"
constexpr uint64_t kOptionMagic = 0x49484156454f5054ull;  // "IHAVEOPT"
constexpr uint64_t kOptionReplyMagic = 0x0003e889045565a9ull;
constexpr uint32_t kRequestMagic = 0x25609513u;
constexpr uint32_t kSimpleReplyMagic = 0x67446698u;

constexpr uint16_t kFlagFixedNewstyle = 1 << 0;
constexpr uint16_t kFlagNoZeroes = 1 << 1;

constexpr uint32_t kOptExportName = 1;
constexpr uint32_t kOptAbort = 2;
constexpr uint32_t kOptInfo = 6;
constexpr uint32_t kOptGo = 7;

constexpr uint32_t kRepAck = 1;
constexpr uint32_t kRepInfo = 3;
constexpr uint32_t kRepErrUnsupported = (1u << 31) + 1;
constexpr uint32_t kRepErrInvalid = (1u << 31) + 3;
constexpr uint16_t kInfoExport = 0;

constexpr uint16_t kTransmitHasFlags = 1 << 0;
constexpr uint16_t kTransmitSendFlush = 1 << 2;
constexpr uint16_t kTransmitSendFua = 1 << 3;
constexpr uint16_t kTransmitSendTrim = 1 << 5;
constexpr uint16_t kTransmitSendWriteZeroes = 1 << 6;
constexpr uint16_t kTransmissionFlags =
    kTransmitHasFlags | kTransmitSendFlush | kTransmitSendFua | kTransmitSendTrim | kTransmitSendWriteZeroes;

constexpr uint16_t kCmdRead = 0;
constexpr uint16_t kCmdWrite = 1;
constexpr uint16_t kCmdDisconnect = 2;
constexpr uint16_t kCmdFlush = 3;
constexpr uint16_t kCmdTrim = 4;
constexpr uint16_t kCmdWriteZeroes = 6;
constexpr uint16_t kCmdFlagFua = 1 << 0;

constexpr uint32_t kErrIo = 5;
constexpr uint32_t kErrInvalid = 22;
constexpr uint32_t kErrUnsupported = 95;

// A request larger than this is refused: QEMU's default maximum is 32 MiB.
constexpr uint32_t kMaxRequestBytes = 32u << 20;
// Only ever talking to the local QEMU: generous, but never forever.
constexpr auto kIoBudget = std::chrono::seconds(30);

Status ReadFully(int fd, void* into, size_t size) {
  return ReadExactly(fd, std::span(static_cast<std::byte*>(into), size), Deadline::After(kIoBudget));
}

Status OptionReply(int client, uint32_t option, uint32_t type, const std::string& data = "") {
  std::string reply;
  AppendBigEndian<uint64_t>(reply, kOptionReplyMagic);
  AppendBigEndian<uint32_t>(reply, option);
  AppendBigEndian<uint32_t>(reply, type);
  AppendBigEndian<uint32_t>(reply, static_cast<uint32_t>(data.size()));
  reply += data;
  return WriteAll(client, reply, Deadline::After(kIoBudget));
}

}  // namespace

uint64_t DiskDelta::data_bytes() const {
  uint64_t total = 0;
  for (const DiskWrite& write : writes) total += write.data.size();
  return total;
}

Result<std::unique_ptr<DiskServer>> DiskServer::Start(const std::string& image_path, const std::string& socket_path,
                                                      DiskServerOptions options) {
  std::unique_ptr<DiskServer> server(new DiskServer());
  server->options_ = std::move(options);
  server->image_path_ = image_path;
  server->image_.reset(::open(image_path.c_str(), O_RDWR | O_CLOEXEC));
  if (!server->image_.valid()) return Status::FromErrno("opening the disk image " + image_path, errno);
  struct stat info {};
  if (::fstat(server->image_.get(), &info) != 0) return Status::FromErrno("sizing " + image_path, errno);
  server->size_bytes_ = static_cast<uint64_t>(info.st_size);
  if (server->size_bytes_ == 0 || server->size_bytes_ % 512 != 0) {
    return Status::InvalidArgument("disk image " + image_path + " is " + std::to_string(server->size_bytes_) +
                                   " bytes, not a whole number of 512-byte sectors");
  }
  {
    // No other thread yet; the lock only keeps the thread-safety analysis exact.
    MutexLock lock(&server->mutex_);
    server->generations_ = std::make_unique<WriteGenerations>(server->size_bytes_);
    // Extents suspect when an earlier run stopped stay suspect: nobody has seen their writes.
    server->record_ = LineageRecord::Load(image_path);
    server->open_.generation = 1;
  }
  server->socket_path_ = socket_path;
  UNDERSTUDY_ASSIGN_OR_RETURN(server->listener_, ListenUnixSocket(socket_path));
  DiskServer* raw = server.get();
  server->thread_ = std::thread([raw] { raw->AcceptLoop(); });
  return server;
}

DiskServer::~DiskServer() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

DiskDelta DiskServer::Seal() {
  MutexLock lock(&mutex_);
  DiskDelta sealed = std::move(open_);
  open_ = DiskDelta{};
  open_.generation = sealed.generation + 1;
  open_data_bytes_ = 0;
  return sealed;
}

uint64_t DiskServer::unsealed_bytes() const {
  MutexLock lock(&mutex_);
  return open_data_bytes_;
}

void DiskServer::StartRecording() {
  MutexLock lock(&mutex_);
  options_.record_writes = true;
}

LineageRecord DiskServer::lineage_record() const {
  MutexLock lock(&mutex_);
  return record_;
}

void DiskServer::ReloadLineageRecord() {
  MutexLock lock(&mutex_);
  record_ = LineageRecord::Load(image_path_);
}

Result<CopyPlan> DiskServer::BeginLineage(const LineageRecord& peer, const std::string& lineage) {
  CopyPlan copy;
  {
    MutexLock lock(&mutex_);
    if (!peer.lineage.empty() && peer.lineage == record_.lineage) {
      // Both copies hold the lineage as of a generation the peer committed, except in their
      // suspect extents and in what changed here since: exactly what may differ.
      std::vector<ByteRange> suspects;
      for (uint64_t extent : peer.suspect_extents) suspects.push_back({extent * kExtentBytes, kExtentBytes});
      for (uint64_t extent : record_.suspect_extents) suspects.push_back({extent * kExtentBytes, kExtentBytes});
      copy.ranges = generations_->ChangedSince(peer_generation_, suspects);
      copy.base_lineage = peer.lineage;
    } else {
      copy.ranges = {{0, size_bytes_}};
    }
    // The new lineage's peer has everything up to the last sealed generation once it commits
    // this copy; until then PeerCommitted() is not called. The suspects stay (a superset is
    // safe), and the name is durable now: later writes may all hit extents already suspect.
    LineageRecord renamed{lineage, record_.suspect_extents};
    UNDERSTUDY_RETURN_IF_ERROR(renamed.Store(image_path_));
    record_ = std::move(renamed);
    peer_generation_ = open_.generation - 1;
  }
  return copy;
}

void DiskServer::PeerCommitted(uint64_t generation) {
  MutexLock lock(&mutex_);
  peer_generation_ = std::max(peer_generation_, generation);
  // Shrinking the suspect set is never urgent (a larger one is merely a larger resync), so
  // the file is rewritten at most once a second.
  auto now = std::chrono::steady_clock::now();
  if (now < next_trim_) return;
  next_trim_ = now + std::chrono::seconds(1);
  LineageRecord trimmed = record_;
  // Named here, where the analysis sees mutex_ held (it cannot see into the lambda).
  const WriteGenerations& generations = *generations_;
  const uint64_t peer_generation = peer_generation_;
  std::erase_if(trimmed.suspect_extents, [&](uint64_t extent) {
    return !generations.AnyChangedSince(extent * kExtentBytes, kExtentBytes, peer_generation);
  });
  if (trimmed.suspect_extents.size() == record_.suspect_extents.size()) return;
  Status stored = trimmed.Store(image_path_);
  if (!stored.ok()) {
    Log("disk", "trimming the suspect extents of " + image_path_ + ": " + stored.ToString());
    return;
  }
  record_ = std::move(trimmed);
}

Status DiskServer::MarkSuspect(uint64_t offset, uint64_t length) {
  if (length == 0) return Status::Ok();
  MutexLock lock(&mutex_);
  generations_->Mark(offset, length, open_.generation);
  LineageRecord marked = record_;
  for (uint64_t extent = offset / kExtentBytes; extent <= (offset + length - 1) / kExtentBytes; ++extent) {
    auto at = std::lower_bound(marked.suspect_extents.begin(), marked.suspect_extents.end(), extent);
    if (at == marked.suspect_extents.end() || *at != extent) marked.suspect_extents.insert(at, extent);
  }
  if (marked.suspect_extents.size() == record_.suspect_extents.size()) return Status::Ok();
  // Durable before the write: a crash right after it must find the extent suspect.
  UNDERSTUDY_RETURN_IF_ERROR(marked.Store(image_path_));
  record_ = std::move(marked);
  return Status::Ok();
}

Result<std::vector<DiskWrite>> DiskServer::Read(const std::vector<ByteRange>& ranges, bool skip_zero_chunks) const {
  constexpr uint64_t kChunk = 64 << 10;
  std::vector<DiskWrite> writes;
  std::string chunk(kChunk, '\0');
  for (const ByteRange& range : ranges) {
    for (uint64_t offset = range.offset; offset < range.offset + range.length; offset += kChunk) {
      uint32_t length = static_cast<uint32_t>(std::min<uint64_t>(kChunk, range.offset + range.length - offset));
      if (::pread(image_.get(), chunk.data(), length, static_cast<off_t>(offset)) != static_cast<ssize_t>(length)) {
        return Status::FromErrno("reading the disk image at " + std::to_string(offset), errno);
      }
      bool all_zero = std::all_of(chunk.begin(), chunk.begin() + length, [](char c) { return c == 0; });
      if (all_zero && skip_zero_chunks) continue;
      if (all_zero) {
        writes.push_back({offset, length, true, {}});
      } else {
        writes.push_back({offset, length, false, chunk.substr(0, length)});
      }
    }
  }
  return writes;
}

void DiskServer::Record(DiskWrite write) {
  bytes_written_ += write.length;
  if (options_.test_on_write) options_.test_on_write(write);
  MutexLock lock(&mutex_);
  if (!options_.record_writes) return;
  if (!write.zero) open_data_bytes_ += write.length;
  open_.writes.push_back(std::move(write));
  if (write_observer_) write_observer_();
}

void DiskServer::SetWriteObserver(std::function<void()> observer) {
  MutexLock lock(&mutex_);
  write_observer_ = std::move(observer);
}

void DiskServer::AcceptLoop() {
  while (!stopping_.load()) {
    if (!WaitForFd(listener_.get(), /*for_write=*/false, Deadline::AfterMillis(100)).ok()) continue;
    UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!client.valid()) continue;
    Status served = Serve(client.get());
    if (!served.ok() && !stopping_.load()) Log("disk", "NBD client on " + socket_path_ + ": " + served.ToString());
  }
}

Status DiskServer::Serve(int client) {
  UNDERSTUDY_RETURN_IF_ERROR(Negotiate(client).WithContext("NBD handshake"));
  return Transmit(client);
}

Status DiskServer::Negotiate(int client) {
  std::string greeting;
  AppendBigEndian<uint64_t>(greeting, kNbdMagic);
  AppendBigEndian<uint64_t>(greeting, kOptionMagic);
  AppendBigEndian<uint16_t>(greeting, kFlagFixedNewstyle | kFlagNoZeroes);
  UNDERSTUDY_RETURN_IF_ERROR(WriteAll(client, greeting, Deadline::After(kIoBudget)));
  std::byte client_flags[4];
  UNDERSTUDY_RETURN_IF_ERROR(ReadFully(client, client_flags, sizeof(client_flags)));
  bool no_zeroes = LoadBigEndian<uint32_t>(client_flags) & kFlagNoZeroes;
  for (;;) {
    std::byte header[16];
    UNDERSTUDY_RETURN_IF_ERROR(ReadFully(client, header, sizeof(header)));
    if (LoadBigEndian<uint64_t>(header) != kOptionMagic) return Status::Corruption("option without the IHAVEOPT magic");
    uint32_t option = LoadBigEndian<uint32_t>(header + 8);
    uint32_t length = LoadBigEndian<uint32_t>(header + 12);
    if (length > 4096) return Status::Corruption("option " + std::to_string(option) + " carries " + std::to_string(length) + " bytes");
    std::string data(length, '\0');
    if (length > 0) UNDERSTUDY_RETURN_IF_ERROR(ReadFully(client, data.data(), length));
    if (option == kOptExportName) {
      // The old way into transmission: size and flags, no reply header.
      std::string reply;
      AppendBigEndian<uint64_t>(reply, size_bytes_);
      AppendBigEndian<uint16_t>(reply, kTransmissionFlags);
      if (!no_zeroes) reply.append(124, '\0');
      return WriteAll(client, reply, Deadline::After(kIoBudget));
    }
    if (option == kOptAbort) {
      (void)OptionReply(client, option, kRepAck);
      return Status::PeerClosed("the client aborted the handshake");
    }
    if (option == kOptGo || option == kOptInfo) {
      // Whatever information was asked for, the export's size and flags are what matters;
      // other info requests may go unanswered (the protocol allows it).
      if (length < 6) {
        UNDERSTUDY_RETURN_IF_ERROR(OptionReply(client, option, kRepErrInvalid));
        continue;
      }
      std::string info;
      AppendBigEndian<uint16_t>(info, kInfoExport);
      AppendBigEndian<uint64_t>(info, size_bytes_);
      AppendBigEndian<uint16_t>(info, kTransmissionFlags);
      UNDERSTUDY_RETURN_IF_ERROR(OptionReply(client, option, kRepInfo, info));
      UNDERSTUDY_RETURN_IF_ERROR(OptionReply(client, option, kRepAck));
      if (option == kOptGo) return Status::Ok();
      continue;
    }
    // STRUCTURED_REPLY, meta contexts, TLS, lists: not offered; the client carries on without.
    UNDERSTUDY_RETURN_IF_ERROR(OptionReply(client, option, kRepErrUnsupported));
  }
}

Status DiskServer::Transmit(int client) {
  std::string payload;
  for (;;) {
    std::byte request[28];
    Status received = ReadExactly(client, request, Deadline::After(std::chrono::hours(24 * 365)));
    if (received.code() == Status::Code::kPeerClosed) return Status::Ok();
    UNDERSTUDY_RETURN_IF_ERROR(received);
    if (LoadBigEndian<uint32_t>(request) != kRequestMagic) return Status::Corruption("request without the NBD magic");
    uint16_t flags = LoadBigEndian<uint16_t>(request + 4);
    uint16_t type = LoadBigEndian<uint16_t>(request + 6);
    uint64_t handle = LoadBigEndian<uint64_t>(request + 8);
    uint64_t offset = LoadBigEndian<uint64_t>(request + 16);
    uint32_t length = LoadBigEndian<uint32_t>(request + 24);
    ++requests_;
    if (type == kCmdDisconnect) return Status::Ok();

    uint32_t error = 0;
    bool in_range = offset <= size_bytes_ && length <= size_bytes_ - offset && length <= kMaxRequestBytes;
    // A write's data follows its header whatever we make of it; a read's reply carries data.
    if (type == kCmdWrite) {
      if (length > kMaxRequestBytes) return Status::Corruption("a write of " + std::to_string(length) + " bytes");
      payload.resize(length);
      UNDERSTUDY_RETURN_IF_ERROR(ReadFully(client, payload.data(), length));
    } else {
      payload.resize(type == kCmdRead && in_range ? length : 0);
    }
    if (!in_range && type != kCmdFlush) {
      error = kErrInvalid;
    } else if (type == kCmdRead) {
      if (::pread(image_.get(), payload.data(), length, static_cast<off_t>(offset)) != static_cast<ssize_t>(length)) error = kErrIo;
    } else if ((type == kCmdWrite || type == kCmdTrim || type == kCmdWriteZeroes) && !MarkSuspect(offset, length).ok()) {
      error = kErrIo;  // never a write the lineage record does not cover
    } else if (type == kCmdWrite) {
      if (::pwrite(image_.get(), payload.data(), length, static_cast<off_t>(offset)) != static_cast<ssize_t>(length)) {
        error = kErrIo;
      } else if ((flags & kCmdFlagFua) && ::fdatasync(image_.get()) != 0) {
        error = kErrIo;
      } else {
        Record({offset, length, false, payload});
      }
    } else if (type == kCmdTrim || type == kCmdWriteZeroes) {
      // Both leave the range reading as zeroes here (a trimmed range may read as anything,
      // and zeroes keep the two copies of the disk identical).
      if (::fallocate(image_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset), length) != 0) {
        error = kErrIo;
      } else {
        Record({offset, length, true, {}});
      }
    } else if (type == kCmdFlush) {
      if (::fdatasync(image_.get()) != 0) {
        error = kErrIo;
      } else {
        MutexLock lock(&mutex_);
        open_.flushed = true;
      }
    } else {
      error = kErrUnsupported;
    }
    std::string reply;
    AppendBigEndian<uint32_t>(reply, kSimpleReplyMagic);
    AppendBigEndian<uint32_t>(reply, error);
    AppendBigEndian<uint64_t>(reply, handle);
    if (type == kCmdRead && error == 0) reply += payload;
    UNDERSTUDY_RETURN_IF_ERROR(WriteAll(client, reply, Deadline::After(kIoBudget)));
  }
}

}  // namespace understudy::disk
