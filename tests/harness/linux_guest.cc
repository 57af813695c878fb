#include "tests/harness/linux_guest.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/child_process.h"
#include "tests/harness/runfiles.h"
#include "tests/harness/test_guest.h"

namespace understudy::testing {

Result<LinuxGuestImage> FindLinuxGuestImage() {
  const std::string script = RunfilePath("tests/guests/linux/build.sh");
  UNDERSTUDY_ASSIGN_OR_RETURN(ScratchDir scratch, ScratchDir::Create("ut-lgpath"));
  const std::string output = scratch.path() + "/print-path.out";
  UNDERSTUDY_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn({script, "--print-path"}, output));
  UNDERSTUDY_ASSIGN_OR_RETURN(int wait_status, child.WaitForExit(Deadline::AfterMillis(30000)));
  std::ifstream in(output);
  std::stringstream printed;
  printed << in.rdbuf();
  if (wait_status != 0) {
    return Status::NotFound("the Linux guest is not built (" + script + " --print-path " +
                            DescribeWaitStatus(wait_status) + "; run tests/guests/linux/build.sh, or quickstart.sh)");
  }
  std::string dir = printed.str();
  while (!dir.empty() && (dir.back() == '\n' || dir.back() == ' ')) dir.pop_back();
  if (dir.empty() || dir.find('\n') != std::string::npos) {
    return Status::Internal("build.sh --print-path printed '" + printed.str() + "', not one directory");
  }
  return LinuxGuestImage{dir, dir + "/vmlinuz", dir + "/initrd.img"};
}

Result<GuestAccelerator> LinuxGuestAccelerator() {
  Result<std::string> vehicle = TcgVehiclePath();
  if (!vehicle.ok()) return vehicle.status().WithContext("the Linux guest runs only under TCG");
  return GuestAccelerator{"tcg", *vehicle, "Linux guests always run under TCG; the TCG vehicle " + *vehicle};
}

qemu::VmDefinition LinuxGuestDefinition(const LinuxGuestImage& image, const LinuxGuestOptions& options) {
  qemu::VmDefinition definition;
  definition.name = "linux";
  definition.machine = "pc";
  definition.memory_mib = options.memory_mib;
  definition.accelerator = "tcg";
  definition.kernel = image.kernel;
  definition.initrd = image.initrd;
  // tsc=reliable: under TCG the TSC looks unstable to the kernel's watchdog, which would
  // otherwise switch clocksources mid-run.
  definition.append = "console=ttyS0 quiet tsc=reliable guest_ip=" + options.guest_cidr;
  definition.serial.kind = qemu::SerialBackend::Kind::kUnixSocketServer;
  if (options.tap_device.empty()) {
    definition.nic.model = "virtio-net-pci";  // QemuArguments leaves its option ROM out
    definition.nic.mac = options.mac;
  }
  return definition;
}

std::vector<std::string> LinuxGuestTapArgs(const LinuxGuestOptions& options) {
  if (options.tap_device.empty()) return {};
  return {"-netdev", "tap,id=n0,ifname=" + options.tap_device + ",script=no,downscript=no", "-device",
          "virtio-net-pci,netdev=n0,romfile=,mac=" + options.mac};
}

Result<std::string> RunRedisCli(const std::vector<std::string>& launcher, const std::string& host,
                                const std::vector<std::string>& command, const std::string& output, Deadline deadline) {
  ::unlink(output.c_str());  // Spawn appends
  std::vector<std::string> argv = launcher;
  argv.insert(argv.end(), {"redis-cli", "-h", host, "-p", std::to_string(kLinuxGuestRedisPort)});
  argv.insert(argv.end(), command.begin(), command.end());
  UNDERSTUDY_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(argv, output));
  UNDERSTUDY_ASSIGN_OR_RETURN(int wait_status, child.WaitForExit(deadline));
  std::ifstream in(output);
  std::stringstream printed;
  printed << in.rdbuf();
  std::string reply = printed.str();
  while (!reply.empty() && (reply.back() == '\n' || reply.back() == '\r')) reply.pop_back();
  if (wait_status != 0) return Status::IOError("redis-cli " + DescribeWaitStatus(wait_status) + ": " + reply);
  return reply;
}

}  // namespace understudy::testing
