#include "common/fd_io.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace understudy {

Status SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return Status::FromErrno("fcntl(F_GETFL)", errno);
  if ((flags & O_NONBLOCK) != 0) return Status::Ok();
  if (::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return Status::FromErrno("fcntl(F_SETFL)", errno);
  return Status::Ok();
}

Status WaitForFd(int fd, bool for_write, Deadline deadline) {
  pollfd entry{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
  for (;;) {
    int ready = ::poll(&entry, 1, deadline.PollTimeoutMillis());
    if (ready > 0) return Status::Ok();  // POLLHUP/POLLERR surface in the following read/write
    if (ready == 0) {
      return Status::DeadlineExceeded(for_write ? "timed out waiting to write" : "timed out waiting to read");
    }
    if (errno != EINTR) return Status::FromErrno("poll", errno);
  }
}

static bool IsPeerGone(int error_number) {
  return error_number == EPIPE || error_number == ECONNRESET || error_number == ENOTCONN;
}

Status WriteAll(int fd, std::span<const std::byte> bytes, Deadline deadline) {
  UNDERSTUDY_RETURN_IF_ERROR(SetNonBlocking(fd));
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t count = ::send(fd, bytes.data() + written, bytes.size() - written, MSG_NOSIGNAL);
    if (count < 0 && errno == ENOTSOCK) count = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (count > 0) {
      written += static_cast<size_t>(count);
      continue;
    }
    if (count < 0 && errno == EINTR) continue;
    if (count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      UNDERSTUDY_RETURN_IF_ERROR(WaitForFd(fd, /*for_write=*/true, deadline)
                                     .WithContext("wrote " + std::to_string(written) + " of " +
                                                  std::to_string(bytes.size()) + " bytes"));
      continue;
    }
    if (count < 0 && IsPeerGone(errno)) return Status::Broken(std::string("peer went away: ") + std::strerror(errno));
    return Status::FromErrno("write", errno);
  }
  return Status::Ok();
}

Status WriteAll(int fd, std::string_view text, Deadline deadline) {
  return WriteAll(fd, std::as_bytes(std::span(text.data(), text.size())), deadline);
}

Result<size_t> ReadSome(int fd, std::span<std::byte> buffer, Deadline deadline) {
  UNDERSTUDY_RETURN_IF_ERROR(SetNonBlocking(fd));
  for (;;) {
    ssize_t count = ::read(fd, buffer.data(), buffer.size());
    if (count > 0) return static_cast<size_t>(count);
    if (count == 0) return Status::PeerClosed("end of stream");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      UNDERSTUDY_RETURN_IF_ERROR(WaitForFd(fd, /*for_write=*/false, deadline));
      continue;
    }
    if (IsPeerGone(errno)) return Status::Broken(std::string("peer went away: ") + std::strerror(errno));
    return Status::FromErrno("read", errno);
  }
}

Status ReadExactly(int fd, std::span<std::byte> buffer, Deadline deadline) {
  size_t filled = 0;
  while (filled < buffer.size()) {
    Result<size_t> count = ReadSome(fd, buffer.subspan(filled), deadline);
    if (!count.ok()) {
      return count.status().WithContext("read " + std::to_string(filled) + " of " + std::to_string(buffer.size()) +
                                        " bytes");
    }
    filled += *count;
  }
  return Status::Ok();
}

Result<UniqueFd> ConnectUnixSocket(const std::string& path, Deadline deadline) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) {
    return Status::InvalidArgument("UNIX socket path too long (" + std::to_string(path.size()) + " bytes): " + path);
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  for (;;) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return Status::FromErrno("socket(AF_UNIX)", errno);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0) return fd;
    int error_number = errno;
    bool worth_retrying = error_number == ENOENT || error_number == ECONNREFUSED || error_number == EAGAIN;
    if (!worth_retrying) return Status::FromErrno("connect to " + path, error_number);
    if (deadline.Expired()) {
      return Status::DeadlineExceeded("nobody accepted on " + path + " (" + std::strerror(error_number) + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Result<UniqueFd> ListenUnixSocket(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) return Status::InvalidArgument("socket path too long: " + path);
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  ::unlink(path.c_str());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("socket(AF_UNIX)", errno);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return Status::FromErrno("binding " + path, errno);
  }
  if (::listen(fd.get(), 16) != 0) return Status::FromErrno("listen on " + path, errno);
  return fd;
}

Status SendWithFd(int socket_fd, std::string_view bytes, int fd_to_pass, Deadline deadline) {
  UNDERSTUDY_RETURN_IF_ERROR(SetNonBlocking(socket_fd));
  iovec data{const_cast<char*>(bytes.data()), bytes.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(header), &fd_to_pass, sizeof(int));
  for (;;) {
    ssize_t count = ::sendmsg(socket_fd, &message, MSG_NOSIGNAL);
    if (count >= 0) {
      // The descriptor travels with the first byte; the rest, if the kernel took only part,
      // is ordinary data.
      size_t sent = static_cast<size_t>(count);
      return WriteAll(socket_fd, bytes.substr(sent), deadline);
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      UNDERSTUDY_RETURN_IF_ERROR(WaitForFd(socket_fd, /*for_write=*/true, deadline));
      continue;
    }
    if (IsPeerGone(errno)) return Status::Broken(std::string("peer went away: ") + std::strerror(errno));
    return Status::FromErrno("sendmsg(SCM_RIGHTS)", errno);
  }
}

}  // namespace understudy
