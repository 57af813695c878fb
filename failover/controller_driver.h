// ControllerDriver: runs an agent's PairController (failover/pair_controller.h) on one thread.
//
// The controller is a pure state machine; the driver is the only code that steps it. Any
// thread posts events (a heartbeat heard, a checkpoint acked, a hello); the driver thread
// stamps each with the time, steps the controller, and carries out the actions in the order
// the controller returned them:
//   * kReadRecord / kCompareAndSwap go to the arbiter on the driver's own arbiter thread, each
//     with a deadline, and come back as a kArbiterReply event. A read that fails is answered
//     kUnreachable (a read changes nothing); a swap that fails in any way is answered kUnknown,
//     so the controller resolves it by reading the record and never guesses.
//   * every other action goes to the agent's ActionHandler.
// Time passes as a kTick every `tick` while nothing else arrives, so silences are noticed.
//
// Thread safety: Post, Request and snapshot from any thread. ActionHandler::Carry runs on the
// driver thread only, never concurrently with itself.
#ifndef UNDERSTUDY_FAILOVER_CONTROLLER_DRIVER_H_
#define UNDERSTUDY_FAILOVER_CONTROLLER_DRIVER_H_

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "common/deadline.h"
#include "common/mutex.h"
#include "common/result.h"
#include "common/thread_annotations.h"
#include "failover/arbiter.h"
#include "failover/pair_controller.h"

namespace understudy::failover {

// What an agent does for its controller.
class ActionHandler {
 public:
  virtual ~ActionHandler() = default;
  // Carries out one action (never kReadRecord / kCompareAndSwap: those are the driver's).
  // Runs on the driver thread and delays every later decision while it runs: hand long work
  // (stopping QEMU, dialling a peer) to another thread and post its result back as an event.
  virtual void Carry(const Action& action) = 0;
};

struct ControllerDriverOptions {
  std::chrono::milliseconds tick{10};
  // The deadline of an arbiter request whose action names none (timeout_ms 0).
  std::chrono::milliseconds arbiter_timeout{1000};
  // The clock (milliseconds, monotonic). Tests may pass their own; default: steady_clock.
  // Read on the driver thread only; it should have no side effects.
  std::function<int64_t()> clock_ms;
  // Run the driver thread at the heartbeats' priority (failover/heartbeat_priority.h), raised
  // once when the thread starts, best effort. The driver judges silences: if it waits behind
  // busy work, a stall of this host reads as the peer's silence and decisions come late.
  // False leaves the thread at the process's priority.
  bool heartbeat_priority = true;
};

// Options whose clock is a StallForgivingClock (failover/stall_forgiving_clock.h): a stall of
// this host longer than `max_step_ms` between two readings is not counted as the peer's
// silence. What both agents run with.
ControllerDriverOptions StallForgivingDriverOptions(int64_t max_step_ms);

// What status pages and metrics show; a copy taken after the last step.
struct ControllerSnapshot {
  ControllerState state = ControllerState::kJoining;
  uint64_t released = 0;
  std::string peer;
  uint64_t peer_incarnation = 0;
  bool serving = false;
  uint64_t steps = 0;  // events stepped so far
};

class ControllerDriver {
 public:
  // Starts the driver and arbiter threads and posts kStart. `arbiter` and `handler` must
  // outlive the driver.
  static Result<std::unique_ptr<ControllerDriver>> Start(PairController controller, Arbiter& arbiter,
                                                         ActionHandler& handler, ControllerDriverOptions options = {});
  // Stops both threads (an arbiter request in progress ends by its deadline); no Carry runs
  // after it returns.
  ~ControllerDriver();
  ControllerDriver(const ControllerDriver&) = delete;
  ControllerDriver& operator=(const ControllerDriver&) = delete;

  // Queues an event; the driver sets its now_ms. Never blocks.
  void Post(Event event) EXCLUDES(mu_);
  // Steps an operator request (kStopRequested, kPromoteRequested, kStepDownRequested) and
  // waits for the verdict: the controller's refusal (kFailedPrecondition naming the state),
  // kDeadlineExceeded if the driver did not get to it in time, or OK once its actions ran.
  Status Request(Event event, Deadline deadline) EXCLUDES(mu_);
  ControllerSnapshot snapshot() const EXCLUDES(mu_);
  // Waits until the controller's state satisfies `done` or the deadline passes; returns the
  // state it saw last. For run loops: "wait until stopped, fenced or stood down".
  ControllerState WaitFor(const std::function<bool(ControllerState)>& done, Deadline deadline) const EXCLUDES(mu_);

 private:
  struct Queued {
    Event event;
    // Operator requests: where Request() waits for the verdict.
    std::shared_ptr<std::optional<Status>> verdict;
  };
  ControllerDriver(PairController controller, Arbiter& arbiter, ActionHandler& handler, ControllerDriverOptions options);
  void DriverLoop() EXCLUDES(mu_);
  void ArbiterLoop() EXCLUDES(mu_);
  // Steps one event and carries out its actions; returns the controller's verdict.
  Status StepAndCarry(Event event) EXCLUDES(mu_);
  void Enqueue(Queued queued) EXCLUDES(mu_);
  int64_t Now() const { return options_.clock_ms(); }
  // Runs one arbiter request and turns its outcome into the kArbiterReply event.
  Event Ask(const Action& request);

  ControllerDriverOptions options_;
  Arbiter& arbiter_;
  ActionHandler& handler_;
  // Touched by the driver thread only.
  PairController controller_;

  mutable Mutex mu_;
  mutable CondVar changed_;  // events or requests queued, a step done, or stopping
  std::deque<Queued> events_ GUARDED_BY(mu_);
  std::deque<Action> arbiter_requests_ GUARDED_BY(mu_);
  ControllerSnapshot snapshot_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread driver_thread_;
  std::thread arbiter_thread_;
};

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_CONTROLLER_DRIVER_H_
