#include "tests/harness/linux_guest_pair.h"

#include <chrono>

namespace understudy::testing {

using Clock = std::chrono::steady_clock;

std::vector<std::string> LinuxGuestPair::ClientLauncher() const {
  return NetnsExec(pair->network()->namespace_name());
}

std::string WithoutLineEnd(std::string line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  return line;
}

Result<LinuxGuestPair> StartLinuxGuestPair(AgentPairOptions options, const std::string& name, const std::string& append,
                                           int boot_budget_ms) {
  LinuxGuestPair result;
  UNDERSTUDY_ASSIGN_OR_RETURN(result.accelerator, LinuxGuestAccelerator());
  UNDERSTUDY_ASSIGN_OR_RETURN(LinuxGuestImage image, FindLinuxGuestImage());
  LinuxGuestOptions guest;
  guest.guest_cidr = std::string(ClientNetwork::kGuestAddress) + "/24";
  guest.mac = ClientNetwork::kGuestMac;
  options.network = true;
  options.vm = LinuxGuestDefinition(image, guest);
  if (!append.empty()) options.vm->append += " " + append;
  options.accelerator = result.accelerator;
  const Clock::time_point started = Clock::now();
  UNDERSTUDY_ASSIGN_OR_RETURN(result.pair, AgentPair::Start(options, name));
  result.protected_s = std::chrono::duration<double>(Clock::now() - started).count();
  result.follower = std::make_unique<console::ConsoleFollower>(result.pair->Follower());
  const Deadline deadline = Deadline::AfterMillis(boot_budget_ms);
  while (result.boot_lines.empty() || result.boot_lines.back() != kLinuxGuestReadyLine) {
    Result<std::string> line = result.follower->ReadLine(deadline);
    if (!line.ok()) {
      std::string seen;
      for (const std::string& l : result.boot_lines) seen += "  " + l + "\n";
      return line.status().WithContext("waiting for '" + std::string(kLinuxGuestReadyLine) + "'; console so far:\n" +
                                       seen + "primary log:\n" + result.pair->PrimaryLog() + "\nsecondary log:\n" +
                                       result.pair->SecondaryLog());
    }
    result.boot_lines.push_back(WithoutLineEnd(*line));
  }
  result.ready_s = std::chrono::duration<double>(Clock::now() - started).count();
  return result;
}

}  // namespace understudy::testing
