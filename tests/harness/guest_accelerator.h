// GuestAccelerator: the one switch that decides how every test guest runs on this machine.
//
//   * KVM with the stock distro QEMU when /dev/kvm can be opened;
//   * otherwise TCG with the TCG test vehicle: QEMU 7.2 with qemu/tcg/*.patch, built by
//     qemu/tcg/build.sh into ${UNDERSTUDY_CACHE:-/var/cache/understudy}/qemu-tcg/<key>/ (stock
//     QEMU 7.2's COLO primary deadlocks under TCG, so stock QEMU cannot serve there);
//   * UNDERSTUDY_ACCEL=kvm|tcg forces one (e.g. TCG on a KVM machine). A forced accelerator
//     that is not available is an error when a guest starts, never a skip.
//
// Production hosts keep stock distro QEMU under KVM; the vehicle only exists for tests and the
// demo. The choice is made once per process and announced once on stdout, so every test log
// says which accelerator its guests ran under.
//
// Thread safety: all functions may be called from any thread.
#ifndef UNDERSTUDY_TESTS_HARNESS_GUEST_ACCELERATOR_H_
#define UNDERSTUDY_TESTS_HARNESS_GUEST_ACCELERATOR_H_

#include <optional>
#include <string>

#include "common/result.h"

namespace understudy::testing {

struct GuestAccelerator {
  std::string name;         // "kvm" or "tcg": what VmDefinition::accelerator must say
  std::string qemu_binary;  // the QEMU to launch: "qemu-system-x86_64" (PATH) or the vehicle's wrapper
  std::string why;          // how it was chosen, one line
};

// The accelerator for this process (chosen on the first call). An error says why no guest can
// run here: no usable /dev/kvm and no built vehicle, or UNDERSTUDY_ACCEL asks for one that is
// missing.
Result<GuestAccelerator> ChosenAccelerator();

// Empty when /dev/kvm can be opened read-write; otherwise why not. Only for what needs KVM
// itself; whether guests can run at all is GuestAcceleratorUnavailableReason.
std::optional<std::string> KvmUnavailableReason();

// Empty when test guests can run here, or when UNDERSTUDY_ACCEL forces an accelerator (then a
// missing one fails the test when its guest starts); otherwise why not, for a skip message.
std::optional<std::string> GuestAcceleratorUnavailableReason();

// The decision itself, for tests: `forced` is UNDERSTUDY_ACCEL's value ("" when unset),
// `kvm_unusable` is KvmUnavailableReason(), `vehicle` is TcgVehiclePath().
Result<GuestAccelerator> ChooseAccelerator(const std::string& forced, const std::optional<std::string>& kvm_unusable,
                                           const Result<std::string>& vehicle);

// Where the TCG vehicle's wrapper is when built: the cache root (UNDERSTUDY_CACHE or
// /var/cache/understudy) plus the key qemu/tcg/build.sh --print-key computes (source version +
// patch hash), read from the runfile qemu/tcg/vehicle_key.txt. An error says what is missing.
Result<std::string> TcgVehiclePath();

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_GUEST_ACCELERATOR_H_
