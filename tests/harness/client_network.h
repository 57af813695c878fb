// ClientNetwork: the L2 segment a networked test VM lives on, as operators would give it —
// a bridge in a network namespace of its own, where the VM's clients run as ordinary
// processes with ordinary sockets, and one persistent tap per agent host enslaved to it. The
// VM keeps its address whichever agent runs it; after a promotion the bridge relearns its MAC
// from the announcements the promoted QEMU sends.
//
// Removed (namespace, bridge, taps) on destruction.
#ifndef UNDERSTUDY_TESTS_HARNESS_CLIENT_NETWORK_H_
#define UNDERSTUDY_TESTS_HARNESS_CLIENT_NETWORK_H_

#include <memory>
#include <string>

#include "common/child_process.h"
#include "common/result.h"
#include "qemu/vm_definition.h"

namespace understudy::testing {

class ClientNetwork {
 public:
  static constexpr const char* kGuestAddress = "10.96.0.2";
  static constexpr uint16_t kGuestPort = 7000;
  static constexpr const char* kGuestMac = "52:54:00:12:34:56";
  static constexpr const char* kPrimaryTap = "uspri0";
  static constexpr const char* kSecondaryTap = "ussec0";

  static Result<std::unique_ptr<ClientNetwork>> Create();
  ~ClientNetwork();

  const std::string& namespace_name() const { return name_; }
  std::string namespace_path() const { return "/run/netns/" + name_; }

  // Starts tests/harness/service_client in this namespace: client `client_id` sends requests
  // 1..`requests` to the guest's service, logging every reply to `log_path` (its own output
  // beside it, `log_path`.out), and gives up after `deadline_s` seconds.
  Result<ChildProcess> SpawnServiceClient(int client_id, uint64_t requests, const std::string& log_path,
                                          int deadline_s) const;

 private:
  explicit ClientNetwork(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

// The network guest (tests/guests/net_service.c) serving on kGuestAddress:kGuestPort; its NIC
// is for the agents to attach (they set the netdev).
qemu::VmDefinition NetServiceGuestDefinition();

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_CLIENT_NETWORK_H_
