#include "tests/harness/guest_accelerator.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>

#include "tests/harness/runfiles.h"

namespace understudy::testing {

namespace {

constexpr char kStockQemu[] = "qemu-system-x86_64";

std::optional<std::string> KvmUnusable() {
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::string("cannot open /dev/kvm: ") + std::strerror(errno);
  // Opening is not enough: a file or another device under that name opens too. KVM answers
  // KVM_GET_API_VERSION with 12 (the stable API since Linux 2.6.22).
  int version = ::ioctl(fd, KVM_GET_API_VERSION, 0);
  int error = errno;
  ::close(fd);
  if (version < 0) return std::string("/dev/kvm does not answer KVM_GET_API_VERSION: ") + std::strerror(error);
  if (version != KVM_API_VERSION) return "/dev/kvm speaks KVM API " + std::to_string(version) + ", not " + std::to_string(KVM_API_VERSION);
  return std::nullopt;
}

std::string Forced() {
  const char* value = std::getenv("UNDERSTUDY_ACCEL");
  return value ? value : "";
}

}  // namespace

std::optional<std::string> KvmUnavailableReason() { return KvmUnusable(); }

Result<GuestAccelerator> ChooseAccelerator(const std::string& forced, const std::optional<std::string>& kvm_unusable,
                                           const Result<std::string>& vehicle) {
  if (forced == "kvm") {
    if (kvm_unusable) return Status::FailedPrecondition("UNDERSTUDY_ACCEL=kvm, but " + *kvm_unusable);
    return GuestAccelerator{"kvm", kStockQemu, "forced by UNDERSTUDY_ACCEL=kvm; stock QEMU"};
  }
  if (forced == "tcg") {
    if (!vehicle.ok()) return vehicle.status().WithContext("UNDERSTUDY_ACCEL=tcg, but the TCG vehicle is missing");
    return GuestAccelerator{"tcg", *vehicle, "forced by UNDERSTUDY_ACCEL=tcg; the TCG vehicle " + *vehicle};
  }
  if (!forced.empty()) return Status::InvalidArgument("UNDERSTUDY_ACCEL must be kvm or tcg, not '" + forced + "'");
  if (!kvm_unusable) return GuestAccelerator{"kvm", kStockQemu, "/dev/kvm works; stock QEMU"};
  if (vehicle.ok()) return GuestAccelerator{"tcg", *vehicle, *kvm_unusable + "; the TCG vehicle " + *vehicle};
  return Status::FailedPrecondition("needs KVM or the TCG vehicle: " + *kvm_unusable + "; " + vehicle.status().message());
}

Result<std::string> TcgVehiclePath() {
  const std::string key_file = RunfilePath("qemu/tcg/vehicle_key.txt");
  std::ifstream in(key_file);
  std::string key;
  if (!(in >> key)) return Status::NotFound("cannot read the vehicle's cache key from " + key_file);
  const char* cache = std::getenv("UNDERSTUDY_CACHE");
  const std::string root = cache && *cache ? cache : "/var/cache/understudy";
  const std::string wrapper = root + "/qemu-tcg/" + key + "/qemu-system-x86_64";
  if (::access(wrapper.c_str(), X_OK) != 0) {
    return Status::NotFound("the TCG vehicle is not built (" + wrapper + ": " + std::strerror(errno) +
                            "; qemu/tcg/build.sh builds it, ~17 min on 2 cores)");
  }
  return wrapper;
}

Result<GuestAccelerator> ChosenAccelerator() {
  static std::once_flag once;
  static std::optional<Result<GuestAccelerator>> chosen;
  std::call_once(once, [] {
    chosen.emplace(ChooseAccelerator(Forced(), KvmUnusable(), TcgVehiclePath()));
    if (chosen->ok()) {
      std::printf("[understudy] test guests run under %s (%s)\n", (*chosen)->name == "kvm" ? "KVM" : "TCG",
                  (*chosen)->why.c_str());
    } else {
      std::printf("[understudy] no accelerator for test guests: %s\n", chosen->status().ToString().c_str());
    }
    std::fflush(stdout);
  });
  return *chosen;
}

std::optional<std::string> GuestAcceleratorUnavailableReason() {
  Result<GuestAccelerator> chosen = ChosenAccelerator();
  if (chosen.ok() || !Forced().empty()) return std::nullopt;
  return chosen.status().message();
}

}  // namespace understudy::testing
