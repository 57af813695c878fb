// TapNamespace: a network namespace holding one tap device with the host's end of a guest's
// point-to-point network, up — what a test needs to put a QEMU NIC on a tap (-netdev tap)
// without touching the machine's own network. Deleting the namespace on destruction takes the
// device with it.
//
// Thread safety: not shared; create and destroy on one thread.
#ifndef UNDERSTUDY_TESTS_HARNESS_TAP_NAMESPACE_H_
#define UNDERSTUDY_TESTS_HARNESS_TAP_NAMESPACE_H_

#include <memory>
#include <string>

#include "common/result.h"

namespace understudy::testing {

class TapNamespace {
 public:
  // Namespace `name` with tap device `tap_device` at `host_cidr` (e.g. "10.96.0.1/24").
  static Result<std::unique_ptr<TapNamespace>> Create(std::string name, const std::string& tap_device,
                                                      const std::string& host_cidr);
  ~TapNamespace();
  TapNamespace(const TapNamespace&) = delete;
  TapNamespace& operator=(const TapNamespace&) = delete;

  const std::string& name() const { return name_; }

 private:
  explicit TapNamespace(std::string name) : name_(std::move(name)) {}

  std::string name_;
  bool exists_ = false;
};

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_TAP_NAMESPACE_H_
