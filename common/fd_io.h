// Deadline-bounded I/O on file descriptors: the only way Understudy reads or writes a socket
// or pipe. Every function waits with poll(2) until its Deadline and never longer, so a dead or
// silent peer turns into kDeadlineExceeded instead of a hang.
//
// The descriptors passed in may be blocking or not; these functions set O_NONBLOCK themselves
// where they need it. Thread safety: as for the descriptor itself (one reader, one writer).
#ifndef UNDERSTUDY_COMMON_FD_IO_H_
#define UNDERSTUDY_COMMON_FD_IO_H_

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "common/deadline.h"
#include "common/result.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace understudy {

Status SetNonBlocking(int fd);

// Waits until `fd` is readable (or writable, when `for_write`). kDeadlineExceeded on time-out.
Status WaitForFd(int fd, bool for_write, Deadline deadline);

// Writes all of `bytes`. kBroken if the peer has gone (EPIPE/ECONNRESET).
Status WriteAll(int fd, std::span<const std::byte> bytes, Deadline deadline);
Status WriteAll(int fd, std::string_view text, Deadline deadline);

// Reads at least one byte into `buffer`, returning how many. kPeerClosed at end of stream.
Result<size_t> ReadSome(int fd, std::span<std::byte> buffer, Deadline deadline);

// Fills all of `buffer`. kPeerClosed if the stream ends first (the message says how far it got).
Status ReadExactly(int fd, std::span<std::byte> buffer, Deadline deadline);

// Connects a stream socket to the UNIX-domain socket at `path`, retrying while the path does
// not exist yet or nobody listens, until the deadline.
Result<UniqueFd> ConnectUnixSocket(const std::string& path, Deadline deadline);

// Listens on a UNIX stream socket at `path`, replacing a stale socket file.
Result<UniqueFd> ListenUnixSocket(const std::string& path);

// Sends `bytes` with `fd_to_pass` attached as SCM_RIGHTS ancillary data.
Status SendWithFd(int socket_fd, std::string_view bytes, int fd_to_pass, Deadline deadline);

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_FD_IO_H_
