#include "network/tap_device.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace understudy::network {

namespace {

Result<UniqueFd> OpenTapHere(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) return Status::InvalidArgument("tap name '" + name + "' is not a valid interface name");
  UniqueFd tap(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!tap.valid()) return Status::FromErrno("opening /dev/net/tun", errno);
  struct ifreq request {};
  request.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (::ioctl(tap.get(), TUNSETIFF, &request) != 0) return Status::FromErrno("attaching to tap " + name, errno);
  return tap;
}

}  // namespace

Result<UniqueFd> OpenTap(const std::string& name, const std::string& netns) {
  if (netns.empty()) return OpenTapHere(name);
  // setns() moves only the calling thread: do it on a thread of its own, which then ends.
  Result<UniqueFd> opened = Status::Internal("not run");
  std::thread inside([&] {
    UniqueFd space(::open(netns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!space.valid()) {
      opened = Status::FromErrno("opening network namespace " + netns, errno);
      return;
    }
    if (::setns(space.get(), CLONE_NEWNET) != 0) {
      opened = Status::FromErrno("entering network namespace " + netns, errno);
      return;
    }
    opened = OpenTapHere(name);
  });
  inside.join();
  if (!opened.ok()) return opened.status().WithContext("in " + netns);
  return opened;
}

}  // namespace understudy::network
