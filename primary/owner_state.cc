#include "primary/owner_state.h"

#include <unistd.h>

#include "common/log.h"
#include "common/process_space.h"

namespace understudy::primary {

OwnerState::OwnerState(std::string log_component, std::string log_prefix, std::string initial, bool starts_alone)
    : log_component_(std::move(log_component)),
      log_prefix_(std::move(log_prefix)),
      display_(starts_alone),
      state_(std::move(initial)) {}

void OwnerState::Follow(failover::ControllerState controller, bool secondary_ready, monitoring::AgentMetrics* metrics) {
  std::string before, next;
  {
    MutexLock lock(&mu_);
    next = display_.Next(controller, secondary_ready);
    if (!ChangeLocked(next, before)) return;
  }
  Announce(before, next, metrics);
}

void OwnerState::Set(const std::string& state, monitoring::AgentMetrics* metrics) {
  std::string before;
  {
    MutexLock lock(&mu_);
    if (!ChangeLocked(state, before)) return;
  }
  Announce(before, state, metrics);
}

bool OwnerState::ChangeLocked(const std::string& state, std::string& before) {
  if (state == state_) return false;
  before = state_;
  transitions_.Record(state_, state, "controller");
  state_ = state;
  return true;
}

void OwnerState::Announce(const std::string& before, const std::string& state, monitoring::AgentMetrics* metrics) {
  Log(log_component_, log_prefix_ + before + " -> " + state);
  if (metrics) metrics->SetPairState(state);
}

std::string OwnerState::name() const {
  MutexLock lock(&mu_);
  return state_;
}

void OwnerState::AddStatus(const failover::ControllerSnapshot& snapshot, nlohmann::json& status) const {
  status["role"] = "primary";
  status["state"] = name();
  status["controller_state"] = failover::ControllerStateName(snapshot.state);
  status["released_epoch"] = snapshot.released;
  status["peer_name"] = snapshot.peer;
  status["transitions"] = transitions_.ToJson();
  status["pid"] = ::getpid();
  status["process_space"] = ThisProcessSpace();
}

}  // namespace understudy::primary
