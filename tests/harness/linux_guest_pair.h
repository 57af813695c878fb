// LinuxGuestPair: the Linux guest running Redis (linux_guest.h), protected by an AgentPair
// under the TCG vehicle, its virtio-net NIC on the pair's ClientNetwork (clients run in that
// namespace and reach Redis at ClientNetwork::kGuestAddress), started and waited for until
// the console says "redis ready". Shared by the Linux e2e tests and the demo.
//
// Thread safety: as AgentPair.
#ifndef UNDERSTUDY_TESTS_HARNESS_LINUX_GUEST_PAIR_H_
#define UNDERSTUDY_TESTS_HARNESS_LINUX_GUEST_PAIR_H_

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "console/console_follower.h"
#include "tests/harness/agent_pair.h"
#include "tests/harness/linux_guest.h"

namespace understudy::testing {

struct LinuxGuestPair {
  std::unique_ptr<AgentPair> pair;
  // Follows the console across both agents; positioned just after "redis ready".
  std::unique_ptr<console::ConsoleFollower> follower;
  GuestAccelerator accelerator;
  std::vector<std::string> boot_lines;  // the console up to "redis ready", "\r" removed
  double protected_s = 0;               // AgentPair::Start until the primary protected
  double ready_s = 0;                   // ... until "redis ready"

  // Where redis-cli runs: NetnsExec of the clients' namespace.
  std::vector<std::string> ClientLauncher() const;
};

// Starts the pair with `options` plus the Linux guest (options.vm, network, accelerator are
// set here; `append` is added to the guest's kernel command line, e.g. "guest_counter=0.2").
// kNotFound when the guest image or the TCG vehicle is not built; any other error says what
// the console, the agents and their logs showed.
Result<LinuxGuestPair> StartLinuxGuestPair(AgentPairOptions options, const std::string& name,
                                           const std::string& append = "", int boot_budget_ms = 240000);

// Drops the trailing "\r" (and "\n") a Linux console puts on its lines.
std::string WithoutLineEnd(std::string line);

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_LINUX_GUEST_PAIR_H_
