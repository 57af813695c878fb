#include "primary/owner_display_state.h"

namespace understudy::primary {

using failover::ControllerState;

std::string OwnerDisplayState::Next(ControllerState state, bool secondary_ready) {
  std::string name(failover::ControllerStateName(state));
  switch (state) {
    case ControllerState::kUnprotected:
    case ControllerState::kPromoted:
      reprotecting_ = true;  // the next pairing follows a time alone
      return name;
    case ControllerState::kContending: return "failing-over";
    case ControllerState::kReprotecting: return "re-protecting";
    case ControllerState::kSyncing: return reprotecting_ ? "re-protecting" : "syncing";
    case ControllerState::kProtected:
    case ControllerState::kDegraded:
      if (!secondary_ready) return reprotecting_ ? "re-protecting" : "syncing";
      reprotecting_ = false;
      return name;
    default:
      reprotecting_ = false;
      return name;
  }
}

}  // namespace understudy::primary
