// OwnerState: the state an owner of a running VM shows operators, and its history.
//
// It names the controller's state as operators read it (OwnerDisplayState), and on every
// change records the transition (status "transitions", read by drills), logs it and sets the
// pair-state metric. ft-primary and a promoted secondary's owner role (secondary/
// vm_owner_role.h) each keep one, so one VM's history reads the same from either agent.
//
// Thread safety: thread-safe. It logs outside its lock: a write to stderr may block (a full
// pipe), and nothing should wait for that while holding a lock.
#ifndef UNDERSTUDY_PRIMARY_OWNER_STATE_H_
#define UNDERSTUDY_PRIMARY_OWNER_STATE_H_

#include <nlohmann/json.hpp>
#include <string>

#include "common/mutex.h"
#include "failover/controller_driver.h"
#include "failover/transition_log.h"
#include "monitoring/agent_metrics.h"
#include "primary/owner_display_state.h"

namespace understudy::primary {

class OwnerState {
 public:
  // `log_component` and `log_prefix` start each log line ("primary", "state ");
  // `starts_alone`: the VM already runs without a secondary (OwnerDisplayState).
  OwnerState(std::string log_component, std::string log_prefix, std::string initial, bool starts_alone);

  // Follows the controller: moves to the name of `controller` now. `secondary_ready`: the
  // current secondary could take over now (the image and the whole disk).
  void Follow(failover::ControllerState controller, bool secondary_ready, monitoring::AgentMetrics* metrics)
      EXCLUDES(mu_);
  // Moves to a state the controller does not name (the agent "stopped" or "failed").
  void Set(const std::string& state, monitoring::AgentMetrics* metrics) EXCLUDES(mu_);

  std::string name() const EXCLUDES(mu_);
  // The owner's part of a status page: "role" ("primary": this side owns the VM), "state",
  // "controller_state", "released_epoch", "peer_name", "transitions", "pid", "process_space".
  void AddStatus(const failover::ControllerSnapshot& snapshot, nlohmann::json& status) const EXCLUDES(mu_);

 private:
  // Records the move to `state` unless it is the current one; `before` gets the old state.
  bool ChangeLocked(const std::string& state, std::string& before) REQUIRES(mu_);
  void Announce(const std::string& before, const std::string& state, monitoring::AgentMetrics* metrics);

  const std::string log_component_;
  const std::string log_prefix_;
  failover::TransitionLog transitions_;
  mutable Mutex mu_;
  OwnerDisplayState display_ GUARDED_BY(mu_);
  std::string state_ GUARDED_BY(mu_);
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_OWNER_STATE_H_
