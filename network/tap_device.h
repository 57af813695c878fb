// A tap device: the host end of the protected VM's network link. Agents attach to a tap that
// already exists on the VM's bridge (operators create it, persistent, as for any VM), so the
// VM keeps its L2 segment — and its IP address — whichever agent runs it.
#ifndef UNDERSTUDY_NETWORK_TAP_DEVICE_H_
#define UNDERSTUDY_NETWORK_TAP_DEVICE_H_

#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace understudy::network {

// Attaches to tap `name` (frames without packet information, non-blocking). With `netns`
// (a path such as /run/netns/clients), the tap is looked up in that network namespace: the
// link the VM lives on need not be in the agent's own.
Result<UniqueFd> OpenTap(const std::string& name, const std::string& netns = "");

}  // namespace understudy::network

#endif  // UNDERSTUDY_NETWORK_TAP_DEVICE_H_
