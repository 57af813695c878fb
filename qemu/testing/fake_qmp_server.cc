#include "qemu/testing/fake_qmp_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "common/fd_io.h"

namespace understudy::qemu::testing {

using nlohmann::json;

namespace {

// What QEMU 7.2 (Debian bookworm's build) says first on a QMP socket.
json Greeting() {
  json version = {{"qemu", {{"micro", 22}, {"minor", 2}, {"major", 7}}}, {"package", "Debian 1:7.2+dfsg-7+deb12u18"}};
  return {{"QMP", {{"version", std::move(version)}, {"capabilities", json::array({"oob"})}}}};
}

// Descriptors one recvmsg accepts; QmpClient attaches one per message.
constexpr size_t kMaxDescriptorsPerMessage = 8;

uint64_t InodeOf(int fd) {
  struct stat info {};
  if (::fstat(fd, &info) != 0) return 0;
  return static_cast<uint64_t>(info.st_ino);
}

}  // namespace

json QmpReturn(json value) { return {{"return", std::move(value)}}; }

json QmpError(std::string_view description, std::string_view error_class) {
  return {{"error", {{"class", error_class}, {"desc", description}}}};
}

Result<std::unique_ptr<FakeQmpServer>> FakeQmpServer::Start(const std::string& socket_path, Responder responder,
                                                            Deadline serve_until) {
  Result<UniqueFd> listener = ListenUnixSocket(socket_path);
  if (!listener.ok()) return listener.status().WithContext("fake QMP server");
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) return Status::FromErrno("pipe2 for the fake QMP server", errno);
  std::unique_ptr<FakeQmpServer> server(new FakeQmpServer(std::move(*listener), UniqueFd(wake[0]), UniqueFd(wake[1]),
                                                          std::move(responder), serve_until));
  {
    MutexLock lock(&server->stop_mu_);
    FakeQmpServer* raw = server.get();
    server->thread_ = std::thread([raw] {
      Status ended = raw->Serve();
      if (!ended.ok()) raw->NoteViolation(ended.ToString());
    });
  }
  return server;
}

FakeQmpServer::FakeQmpServer(UniqueFd listener, UniqueFd wake_reader, UniqueFd wake_writer, Responder responder,
                             Deadline serve_until)
    : listener_(std::move(listener)),
      wake_reader_(std::move(wake_reader)),
      wake_writer_(std::move(wake_writer)),
      responder_(std::move(responder)),
      serve_until_(serve_until) {}

FakeQmpServer::~FakeQmpServer() { (void)Stop(); }

Status FakeQmpServer::Stop() {
  MutexLock stop_lock(&stop_mu_);
  if (final_status_) return *final_status_;
  // The pipe only has to become readable: a byte already in it (a full pipe) is as good.
  const char byte = 's';
  ssize_t written = ::write(wake_writer_.get(), &byte, 1);
  (void)written;
  if (thread_.joinable()) thread_.join();
  MutexLock lock(&mu_);
  final_status_ = first_violation_.value_or(Status::Ok());
  return *final_status_;
}

std::vector<ReceivedCommand> FakeQmpServer::commands() const {
  MutexLock lock(&mu_);
  return commands_;
}

int FakeQmpServer::descriptors_received() const {
  MutexLock lock(&mu_);
  return descriptors_received_;
}

void FakeQmpServer::NoteViolation(const std::string& what) {
  MutexLock lock(&mu_);
  if (!first_violation_) first_violation_ = Status::FailedPrecondition("fake QMP server: " + what);
}

Status FakeQmpServer::Serve() {
  Result<bool> incoming = WaitReadable(listener_.get());
  if (!incoming.ok()) return incoming.status().WithContext("waiting for a QMP client");
  if (!*incoming) return Status::Ok();
  UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!client.valid()) return Status::FromErrno("accept", errno);
  Status greeted = WriteAll(client.get(), Greeting().dump() + "\n", serve_until_);
  // A client that hangs up is the end of the conversation, not a fault of the fake's.
  if (!greeted.ok()) return greeted.code() == Status::Code::kBroken ? Status::Ok() : greeted;
  for (;;) {
    for (size_t newline = pending_bytes_.find('\n'); newline != std::string::npos;
         newline = pending_bytes_.find('\n')) {
      std::string line = pending_bytes_.substr(0, newline);
      pending_bytes_.erase(0, newline + 1);
      Status answered = Answer(client.get(), line);
      if (!answered.ok()) return answered.code() == Status::Code::kBroken ? Status::Ok() : answered;
    }
    Result<bool> readable = WaitReadable(client.get());
    if (!readable.ok()) return readable.status().WithContext("waiting for a QMP command");
    if (!*readable) return Status::Ok();
    Result<bool> open = Receive(client.get());
    if (!open.ok()) return open.status();
    if (!*open) return Status::Ok();
  }
}

Result<bool> FakeQmpServer::WaitReadable(int fd) {
  std::array<pollfd, 2> entries = {pollfd{fd, POLLIN, 0}, pollfd{wake_reader_.get(), POLLIN, 0}};
  for (;;) {
    int ready = ::poll(entries.data(), entries.size(), serve_until_.PollTimeoutMillis());
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Status::FromErrno("poll", errno);
    if (ready == 0) return Status::DeadlineExceeded("the fake QMP server's serving time ran out");
    if (entries[1].revents != 0) return false;
    return true;
  }
}

Result<bool> FakeQmpServer::Receive(int client) {
  std::array<char, 4096> buffer;
  iovec data{buffer.data(), buffer.size()};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * kMaxDescriptorsPerMessage)> control{};
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control.data();
  message.msg_controllen = control.size();
  ssize_t count;
  do {
    count = ::recvmsg(client, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (count < 0 && errno == EINTR);
  if (count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
  if (count < 0 && errno == ECONNRESET) return false;
  if (count < 0) return Status::FromErrno("recvmsg", errno);
  if ((message.msg_flags & MSG_CTRUNC) != 0) NoteViolation("more descriptors in one message than it accepts");
  for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr; header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    size_t descriptors = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < descriptors; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof(int));
      UniqueFd received(fd);  // QEMU would keep it; the fake only needs to know what it was
      unconsumed_inodes_.push_back(InodeOf(received.get()));
      MutexLock lock(&mu_);
      ++descriptors_received_;
    }
  }
  if (count == 0) return false;
  pending_bytes_.append(buffer.data(), static_cast<size_t>(count));
  return true;
}

Status FakeQmpServer::Answer(int client, std::string_view line) {
  if (line.find_first_not_of(" \r\t") == std::string_view::npos) return Status::Ok();
  json request = json::parse(line, nullptr, /*allow_exceptions=*/false);
  json reply;
  if (request.is_discarded() || !request.is_object() || !request.contains("execute") ||
      !request["execute"].is_string() || (request.contains("arguments") && !request["arguments"].is_object())) {
    NoteViolation("not a QMP command: " + std::string(line.substr(0, 200)));
    reply = QmpError("QMP input must be a JSON object with a string 'execute'");
  } else {
    ReceivedCommand received;
    received.name = request["execute"].get<std::string>();
    received.arguments = request.value("arguments", json::object());
    if (received.name == "getfd" && !unconsumed_inodes_.empty()) {
      received.descriptors = 1;
      received.descriptor_inode = unconsumed_inodes_.front();
      unconsumed_inodes_.erase(unconsumed_inodes_.begin());
    }
    reply = Decide(received);
    MutexLock lock(&mu_);
    commands_.push_back(std::move(received));
  }
  if (request.is_object() && request.contains("id")) reply["id"] = request["id"];
  return WriteAll(client, reply.dump() + "\n", serve_until_);
}

json FakeQmpServer::Decide(const ReceivedCommand& received) {
  const std::string& command = received.name;
  if (command == "qmp_capabilities") {
    if (negotiated_) {
      return QmpError("Capabilities negotiation is already complete, command ignored", "CommandNotFound");
    }
    negotiated_ = true;
    return QmpReturn();
  }
  if (!negotiated_) return QmpError("Expecting capabilities negotiation with 'qmp_capabilities'", "CommandNotFound");
  if (command == "getfd" && received.descriptors == 0) return QmpError("No file descriptor supplied via SCM_RIGHTS");
  json reply = responder_(command, received.arguments);
  if (!reply.is_object() || (reply.contains("return") == reply.contains("error"))) {
    NoteViolation("the test's responder answered '" + command + "' with not exactly one of return and error: " + reply.dump());
    return QmpError("the fake QMP server's responder gave no usable answer");
  }
  return reply;
}

}  // namespace understudy::qemu::testing
