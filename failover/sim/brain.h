// Brain: what the simulator needs from a decision maker, so that the same schedules run
// against the PairController and against LegacyController (today's decisions, ported).
//
// Thread safety: none.
#ifndef UNDERSTUDY_FAILOVER_SIM_BRAIN_H_
#define UNDERSTUDY_FAILOVER_SIM_BRAIN_H_

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "failover/pair_controller.h"

namespace understudy::failover::sim {

class Brain {
 public:
  virtual ~Brain() = default;
  virtual Result<std::vector<Action>> Step(const Event& event) = 0;
  // The VM runs here (output may still be held).
  virtual bool Serving() const = 0;
  // Wants a primary: the agent sends hellos.
  virtual bool Joining() const = 0;
  // Accepts checkpoints from its primary (a standby in the making or ready).
  virtual bool AcceptsCheckpoints() const = 0;
  // The agent process has exited (sends nothing any more).
  virtual bool Exited() const = 0;
  // Fenced, stood down or stopped: never serves again.
  virtual bool Terminal() const = 0;
  virtual PeerSays Says() const = 0;
  virtual std::string StateName() const = 0;
};

// The PairController behind the Brain interface.
class PairBrain : public Brain {
 public:
  explicit PairBrain(PairController controller) : controller_(std::move(controller)) {}
  Result<std::vector<Action>> Step(const Event& event) override { return controller_.Step(event); }
  bool Serving() const override { return controller_.serving(); }
  bool Joining() const override { return controller_.state() == ControllerState::kJoining; }
  bool AcceptsCheckpoints() const override {
    ControllerState s = controller_.state();
    return controller_.role() == Role::kSecondary &&
           (s == ControllerState::kSyncing || s == ControllerState::kProtected || s == ControllerState::kDegraded ||
            s == ControllerState::kContending);
  }
  bool Exited() const override {
    return controller_.state() == ControllerState::kStopped || controller_.state() == ControllerState::kRefused;
  }
  bool Terminal() const override {
    ControllerState s = controller_.state();
    return s == ControllerState::kFenced || s == ControllerState::kStoodDown || s == ControllerState::kStopped ||
           s == ControllerState::kRefused || s == ControllerState::kStopping;
  }
  PeerSays Says() const override {
    switch (controller_.state()) {
      case ControllerState::kStopping:
      case ControllerState::kStopped:
        return PeerSays::kGoodbye;
      case ControllerState::kUnprotected:
      case ControllerState::kPromoted:
      case ControllerState::kFenced:
      case ControllerState::kStoodDown:
      case ControllerState::kRefused:
        return PeerSays::kAlone;
      default:
        return PeerSays::kPaired;
    }
  }
  std::string StateName() const override { return std::string(ControllerStateName(controller_.state())); }

 private:
  PairController controller_;
};

}  // namespace understudy::failover::sim

#endif  // UNDERSTUDY_FAILOVER_SIM_BRAIN_H_
