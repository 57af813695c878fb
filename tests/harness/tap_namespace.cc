#include "tests/harness/tap_namespace.h"

#include <vector>

#include "common/child_process.h"
#include "tests/harness/network_lab.h"

namespace understudy::testing {

Result<std::unique_ptr<TapNamespace>> TapNamespace::Create(std::string name, const std::string& tap_device,
                                                           const std::string& host_cidr) {
  std::unique_ptr<TapNamespace> created(new TapNamespace(std::move(name)));
  const std::string& ns = created->name_;
  UNDERSTUDY_RETURN_IF_ERROR(RunIp({"netns", "add", ns}));
  created->exists_ = true;
  UNDERSTUDY_RETURN_IF_ERROR(RunIp({"-n", ns, "link", "set", "lo", "up"}));
  std::vector<std::string> add_tap = NetnsExec(ns);
  add_tap.insert(add_tap.end(), {"ip", "tuntap", "add", "dev", tap_device, "mode", "tap"});
  UNDERSTUDY_RETURN_IF_ERROR(RunCommand(add_tap, Deadline::AfterMillis(10000)));
  UNDERSTUDY_RETURN_IF_ERROR(RunIp({"-n", ns, "addr", "add", host_cidr, "dev", tap_device}));
  UNDERSTUDY_RETURN_IF_ERROR(RunIp({"-n", ns, "link", "set", tap_device, "up"}));
  return created;
}

TapNamespace::~TapNamespace() {
  if (exists_) (void)RunIp({"netns", "del", name_});
}

}  // namespace understudy::testing
