#include "tests/harness/client_network.h"

#include <unistd.h>

#include <atomic>

#include "tests/harness/network_lab.h"
#include "tests/harness/test_guest.h"

namespace understudy::testing {

Result<std::unique_ptr<ClientNetwork>> ClientNetwork::Create() {
  static std::atomic<int> created{0};
  std::unique_ptr<ClientNetwork> network(
      new ClientNetwork("usc" + std::to_string(::getpid()) + "-" + std::to_string(created++)));
  const std::string& ns = network->name_;
  UNDERSTUDY_RETURN_IF_ERROR(RunIp({"netns", "add", ns}));
  auto in_ns = [&](std::vector<std::string> arguments) {
    arguments.insert(arguments.begin(), {"-n", ns});
    return RunIp(arguments);
  };
  UNDERSTUDY_RETURN_IF_ERROR(in_ns({"link", "set", "lo", "up"}));
  UNDERSTUDY_RETURN_IF_ERROR(in_ns({"link", "add", "br0", "type", "bridge"}));
  // Forward at once: a port that just joined must not spend seconds learning.
  UNDERSTUDY_RETURN_IF_ERROR(in_ns({"link", "set", "br0", "type", "bridge", "forward_delay", "0"}));
  UNDERSTUDY_RETURN_IF_ERROR(in_ns({"addr", "add", "10.96.0.1/24", "dev", "br0"}));
  for (const char* tap : {kPrimaryTap, kSecondaryTap}) {
    UNDERSTUDY_RETURN_IF_ERROR(in_ns({"tuntap", "add", "dev", tap, "mode", "tap"}));
    UNDERSTUDY_RETURN_IF_ERROR(in_ns({"link", "set", tap, "master", "br0"}));
    UNDERSTUDY_RETURN_IF_ERROR(in_ns({"link", "set", tap, "up"}));
  }
  UNDERSTUDY_RETURN_IF_ERROR(in_ns({"link", "set", "br0", "up"}));
  return network;
}

Result<ChildProcess> ClientNetwork::SpawnServiceClient(int client_id, uint64_t requests, const std::string& log_path,
                                                      int deadline_s) const {
  std::vector<std::string> argv = NetnsExec(name_);
  argv.insert(argv.end(), {RunfilePath("tests/harness/service_client"), "--server",
                           std::string(kGuestAddress) + ":" + std::to_string(kGuestPort), "--client-id",
                           std::to_string(client_id), "--requests", std::to_string(requests), "--log", log_path,
                           "--deadline-s", std::to_string(deadline_s)});
  return ChildProcess::Spawn(argv, log_path + ".out");
}

ClientNetwork::~ClientNetwork() { (void)RunIp({"netns", "delete", name_}); }

qemu::VmDefinition NetServiceGuestDefinition() {
  qemu::VmDefinition definition;
  definition.name = "net";
  definition.memory_mib = 32;
  Result<GuestAccelerator> accelerator = ChosenAccelerator();
  definition.accelerator = accelerator.ok() ? accelerator->name : "kvm";
  definition.kernel = RunfilePath("tests/guests/net_service.elf");
  definition.append = std::string("ip=") + ClientNetwork::kGuestAddress + " port=" + std::to_string(ClientNetwork::kGuestPort);
  definition.serial.kind = qemu::SerialBackend::Kind::kUnixSocketServer;
  definition.nic.mac = ClientNetwork::kGuestMac;
  return definition;
}

}  // namespace understudy::testing
