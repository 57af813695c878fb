// The Linux test guest: Debian's cloud kernel booting an initramfs that runs Debian's Redis on a
// virtio-net NIC (tests/guests/linux/build.sh builds it, offline from Debian packages, into a
// cache outside the checkout).
//
// This machine's /dev/kvm is a paravirtual KVM that cannot run Linux, so the Linux guest always
// runs under TCG with the TCG vehicle (qemu/tcg/build.sh), whatever accelerator the other test
// guests use: LinuxGuestAccelerator() says so, and TestGuest::Start takes it.
//
// Thread safety: all functions may be called from any thread.
#ifndef UNDERSTUDY_TESTS_HARNESS_LINUX_GUEST_H_
#define UNDERSTUDY_TESTS_HARNESS_LINUX_GUEST_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/deadline.h"
#include "common/result.h"
#include "qemu/vm_definition.h"
#include "tests/harness/guest_accelerator.h"

namespace understudy::testing {

// What /init prints on the console once Redis answers PING.
inline constexpr char kLinuxGuestReadyLine[] = "redis ready";
inline constexpr uint16_t kLinuxGuestRedisPort = 6379;

struct LinuxGuestImage {
  std::string dir;     // the cache directory build.sh made
  std::string kernel;  // dir/vmlinuz
  std::string initrd;  // dir/initrd.img
};

// The built guest, found by `tests/guests/linux/build.sh --print-path` (a runfile). kNotFound
// when it is not built (quickstart.sh builds it; so does running build.sh by hand).
Result<LinuxGuestImage> FindLinuxGuestImage();

// TCG with the TCG vehicle; an error when the vehicle is not built.
Result<GuestAccelerator> LinuxGuestAccelerator();

struct LinuxGuestOptions {
  std::string guest_cidr = "10.96.0.2/24";  // eth0's address (guest_ip= on the command line)
  std::string mac = "52:54:00:12:34:56";
  // Non-empty: the virtio-net NIC sits on this tap device (LinuxGuestTapArgs), which must
  // exist in the network namespace QEMU starts in. Empty: the definition's NIC is left to
  // whoever sets definition.nic (an agent).
  std::string tap_device;
  uint32_t memory_mib = 256;
};

// `-M pc -m 256 -accel tcg`, the image's kernel and initrd, COM1 on a UNIX socket server (set by
// TestGuest::Start), and a virtio-net-pci NIC without option ROM: the vehicle's firmware path
// has no iPXE ROMs, and a guest booted with -kernel needs none.
qemu::VmDefinition LinuxGuestDefinition(const LinuxGuestImage& image, const LinuxGuestOptions& options);

// With options.tap_device: the host-local QEMU arguments (TestGuest::Start's host_args) that put
// the guest's virtio-net NIC on that tap; empty otherwise.
std::vector<std::string> LinuxGuestTapArgs(const LinuxGuestOptions& options);

// Runs the real redis-cli against the guest's Redis at `host` with `command`, prefixed by
// `launcher` (e.g. NetnsExec(namespace) to run it in the clients' namespace; empty: here),
// printing into `output` (a scratch file). What it printed, trailing newline removed; an
// IOError with that text when redis-cli failed.
Result<std::string> RunRedisCli(const std::vector<std::string>& launcher, const std::string& host,
                                const std::vector<std::string>& command, const std::string& output, Deadline deadline);

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_LINUX_GUEST_H_
