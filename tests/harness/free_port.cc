#include "tests/harness/free_port.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

#include "common/unique_fd.h"

namespace understudy::testing {

Result<uint16_t> FreePort() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return Status::FromErrno("bind", errno);
  }
  socklen_t length = sizeof(address);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin_port);
}

}  // namespace understudy::testing
