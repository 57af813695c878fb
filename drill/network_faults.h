// Network faults on a lab's switch (drill/lab_topology.h): pulling cables and slowing links.
// Each call changes only the switch namespace and undoes cleanly with Heal().
#ifndef UNDERSTUDY_DRILL_NETWORK_FAULTS_H_
#define UNDERSTUDY_DRILL_NETWORK_FAULTS_H_

#include <string>

#include "common/status.h"
#include "drill/lab_topology.h"

namespace understudy::drill {

// Pulls every cable of `host`: it reaches nobody and nobody reaches it. The arbiter LAN's
// goes first, so the host cannot win the ownership record between two cuts.
Status IsolateHost(const LabTopology& lab, const std::string& host);

// Pulls the cables of the networks that join exactly `a` and `b` (the replication and
// heartbeat links of a pair), leaving both on the networks they share with others.
Status CutBetween(const LabTopology& lab, const std::string& a, const std::string& b);

// Pulls one cable: `host`'s port on `network`.
Status UnplugPort(const LabTopology& lab, const std::string& host, const std::string& network);

// Puts back the one cable UnplugPort pulled, leaving every other fault as it is.
Status PlugPort(const LabTopology& lab, const std::string& host, const std::string& network);

// Limits `host`'s port on `network` to `rate` (a tc rate such as "8mbit") in the direction
// towards the host; with the same limit on the peer's port, both directions are slow.
Status SlowPort(const LabTopology& lab, const std::string& host, const std::string& network, const std::string& rate);

// Reattaches every port to its bridge and removes every rate limit.
Status Heal(const LabTopology& lab);

}  // namespace understudy::drill

#endif  // UNDERSTUDY_DRILL_NETWORK_FAULTS_H_
