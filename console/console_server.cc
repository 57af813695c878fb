#include "console/console_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <cstring>

#include "common/byte_order.h"
#include "common/fd_io.h"
#include "console/console_protocol.h"

namespace understudy::console {

Result<std::unique_ptr<ConsoleServer>> ConsoleServer::Start(const std::string& socket_path, const ReleasedLog& log) {
  UNDERSTUDY_ASSIGN_OR_RETURN(UniqueFd listener, ListenUnixSocket(socket_path));
  std::unique_ptr<ConsoleServer> server(new ConsoleServer(socket_path, std::move(listener), log));
  server->acceptor_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

ConsoleServer::ConsoleServer(std::string socket_path, UniqueFd listener, const ReleasedLog& log)
    : socket_path_(std::move(socket_path)), listener_(std::move(listener)), log_(log) {}

ConsoleServer::~ConsoleServer() { Stop(); }

void ConsoleServer::Stop() {
  if (stopping_.exchange(true)) return;
  if (acceptor_.joinable()) acceptor_.join();
  MutexLock lock(&readers_mutex_);
  for (Reader& reader : readers_) reader.thread.join();
  readers_.clear();
  ::unlink(socket_path_.c_str());
}

size_t ConsoleServer::reader_threads() const {
  MutexLock lock(&readers_mutex_);
  return readers_.size();
}

size_t ConsoleServer::ReapLocked() {
  for (auto reader = readers_.begin(); reader != readers_.end();) {
    if (!reader->done->load()) {
      ++reader;
      continue;
    }
    reader->thread.join();
    reader = readers_.erase(reader);
  }
  return readers_.size();
}

void ConsoleServer::AcceptLoop() {
  while (!stopping_.load()) {
    if (!WaitForFd(listener_.get(), /*for_write=*/false, Deadline::AfterMillis(100)).ok()) {
      MutexLock lock(&readers_mutex_);
      ReapLocked();
      continue;
    }
    UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!client.valid()) continue;
    MutexLock lock(&readers_mutex_);
    if (ReapLocked() >= kMaxReaders) continue;  // refused: the client sees its socket close
    Reader reader;
    auto owned = std::make_shared<UniqueFd>(std::move(client));  // closed here if no thread starts
    try {
      reader.thread = std::thread([this, owned, done = reader.done] {
        Serve(std::move(*owned));
        done->store(true);
      });
    } catch (const std::system_error&) {
      continue;  // no thread to be had now: this reader is refused, the agent goes on
    }
    readers_.push_back(std::move(reader));
  }
}

void ConsoleServer::Serve(UniqueFd client) {
  std::byte request[8];
  if (!ReadExactly(client.get(), request, Deadline::AfterMillis(5000)).ok()) return;
  uint64_t offset = LoadLittleEndian<uint64_t>(request);
  while (!stopping_.load()) {
    Result<std::string> bytes = log_.ReadFrom(offset, kMaxFrameBytes, Deadline::AfterMillis(100));
    if (!bytes.ok()) {
      if (bytes.status().code() == Status::Code::kDeadlineExceeded) {
        // Notice a reader that went away even while there is nothing to send.
        char probe;
        if (::recv(client.get(), &probe, 1, MSG_PEEK | MSG_DONTWAIT) == 0) return;
        continue;
      }
      return;  // too old, or the log closed: the reader will ask elsewhere
    }
    std::string frame;
    AppendLittleEndian<uint64_t>(frame, offset);
    AppendLittleEndian<uint32_t>(frame, static_cast<uint32_t>(bytes->size()));
    frame += *bytes;
    if (!WriteAll(client.get(), frame, Deadline::AfterMillis(5000)).ok()) return;
    offset += bytes->size();
  }
}

}  // namespace understudy::console
