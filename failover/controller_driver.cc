#include "failover/controller_driver.h"

#include <utility>

#include "common/log.h"
#include "failover/heartbeat_priority.h"
#include "failover/stall_forgiving_clock.h"

namespace understudy::failover {

ControllerDriverOptions StallForgivingDriverOptions(int64_t max_step_ms) {
  ControllerDriverOptions options;
  options.clock_ms = [clock = std::make_shared<StallForgivingClock>(max_step_ms)] { return clock->Now(); };
  return options;
}

namespace {

int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool IsOperatorRequest(EventKind kind) {
  return kind == EventKind::kStopRequested || kind == EventKind::kPromoteRequested ||
         kind == EventKind::kStepDownRequested;
}

bool IsArbiterRequest(ActionKind kind) {
  return kind == ActionKind::kReadRecord || kind == ActionKind::kCompareAndSwap;
}

}  // namespace

Result<std::unique_ptr<ControllerDriver>> ControllerDriver::Start(PairController controller, Arbiter& arbiter,
                                                                  ActionHandler& handler,
                                                                  ControllerDriverOptions options) {
  if (options.tick <= std::chrono::milliseconds::zero()) {
    return Status::InvalidArgument("controller driver: tick must be positive");
  }
  if (options.arbiter_timeout <= std::chrono::milliseconds::zero()) {
    return Status::InvalidArgument("controller driver: arbiter_timeout must be positive");
  }
  if (!options.clock_ms) options.clock_ms = SteadyMillis;
  std::unique_ptr<ControllerDriver> driver(
      new ControllerDriver(std::move(controller), arbiter, handler, std::move(options)));
  driver->Post(Event::Of(EventKind::kStart, 0));
  driver->arbiter_thread_ = std::thread([d = driver.get()] { d->ArbiterLoop(); });
  driver->driver_thread_ = std::thread([d = driver.get()] { d->DriverLoop(); });
  return driver;
}

ControllerDriver::ControllerDriver(PairController controller, Arbiter& arbiter, ActionHandler& handler,
                                   ControllerDriverOptions options)
    : options_(std::move(options)), arbiter_(arbiter), handler_(handler), controller_(std::move(controller)) {
  snapshot_.state = controller_.state();
}

ControllerDriver::~ControllerDriver() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  changed_.SignalAll();
  if (driver_thread_.joinable()) driver_thread_.join();
  if (arbiter_thread_.joinable()) arbiter_thread_.join();
}

void ControllerDriver::Post(Event event) { Enqueue(Queued{std::move(event), nullptr}); }

void ControllerDriver::Enqueue(Queued queued) {
  {
    MutexLock lock(&mu_);
    events_.push_back(std::move(queued));
  }
  changed_.SignalAll();
}

Status ControllerDriver::Request(Event event, Deadline deadline) {
  if (!IsOperatorRequest(event.kind)) {
    return Status::InvalidArgument("controller driver: Request() takes operator requests only");
  }
  auto verdict = std::make_shared<std::optional<Status>>();
  Enqueue(Queued{std::move(event), verdict});
  MutexLock lock(&mu_);
  while (!verdict->has_value() && !stopping_) {
    if (!changed_.WaitUntil(&mu_, deadline.when()) && deadline.Expired()) break;
  }
  if (verdict->has_value()) return **verdict;
  if (stopping_) return Status::FailedPrecondition("the controller driver stopped before the request was decided");
  return Status::DeadlineExceeded("the pair controller did not decide the request in time");
}

ControllerSnapshot ControllerDriver::snapshot() const {
  MutexLock lock(&mu_);
  return snapshot_;
}

ControllerState ControllerDriver::WaitFor(const std::function<bool(ControllerState)>& done, Deadline deadline) const {
  MutexLock lock(&mu_);
  while (!done(snapshot_.state) && !stopping_) {
    if (!changed_.WaitUntil(&mu_, deadline.when()) && deadline.Expired()) break;
  }
  return snapshot_.state;
}

void ControllerDriver::DriverLoop() {
  if (options_.heartbeat_priority) RunAtHeartbeatPriority();
  auto next_tick = std::chrono::steady_clock::now() + options_.tick;
  // When a tick falls due, the events queued at that moment are stepped first: after this host
  // stalled, the heartbeats that arrived meanwhile must count before a tick judges the silence.
  // Events queued later wait for the tick, so a chattering path cannot hide a silent one.
  bool tick_due = false;
  size_t before_tick = 0;
  for (;;) {
    Queued queued{Event::Of(EventKind::kTick, 0), nullptr};
    {
      MutexLock lock(&mu_);
      while (!stopping_ && !tick_due && events_.empty() && std::chrono::steady_clock::now() < next_tick) {
        changed_.WaitUntil(&mu_, next_tick);
      }
      if (stopping_) break;
      if (!tick_due && std::chrono::steady_clock::now() >= next_tick) {
        tick_due = true;
        before_tick = events_.size();
      }
      if (!tick_due || before_tick > 0) {
        queued = std::move(events_.front());
        events_.pop_front();
        if (tick_due) --before_tick;
      } else {
        tick_due = false;
        next_tick = std::chrono::steady_clock::now() + options_.tick;
      }
    }
    Status verdict = StepAndCarry(std::move(queued.event));
    if (queued.verdict) {
      MutexLock lock(&mu_);
      *queued.verdict = verdict;
    }
    changed_.SignalAll();
  }
  // Whoever waits in Request() or WaitFor() sees stopping_ and returns.
  changed_.SignalAll();
}

Status ControllerDriver::StepAndCarry(Event event) {
  event.now_ms = Now();
  const EventKind kind = event.kind;
  Result<std::vector<Action>> actions = controller_.Step(event);
  if (!actions.ok()) {
    // Only operator requests are refused (pair_controller.h); anything else is a bug to see.
    if (!IsOperatorRequest(kind)) Log("failover", "pair controller refused an event: " + actions.status().ToString());
    return actions.status();
  }
  for (const Action& action : *actions) {
    if (IsArbiterRequest(action.kind)) {
      {
        MutexLock lock(&mu_);
        arbiter_requests_.push_back(action);
      }
      changed_.SignalAll();
    } else {
      handler_.Carry(action);
    }
  }
  MutexLock lock(&mu_);
  snapshot_.state = controller_.state();
  snapshot_.released = controller_.released();
  snapshot_.peer = controller_.peer();
  snapshot_.peer_incarnation = controller_.peer_incarnation();
  snapshot_.serving = controller_.serving();
  ++snapshot_.steps;
  return Status::Ok();
}

void ControllerDriver::ArbiterLoop() {
  for (;;) {
    Action request;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && arbiter_requests_.empty()) changed_.Wait(&mu_);
      if (stopping_) return;
      request = std::move(arbiter_requests_.front());
      arbiter_requests_.pop_front();
    }
    Post(Ask(request));
  }
}

Event ControllerDriver::Ask(const Action& request) {
  const auto timeout =
      request.timeout_ms > 0 ? std::chrono::milliseconds(request.timeout_ms) : options_.arbiter_timeout;
  const Deadline deadline = Deadline::After(timeout);
  Event reply = Event::Of(EventKind::kArbiterReply, 0);
  reply.request = request.request;
  if (request.kind == ActionKind::kReadRecord) {
    Result<OwnershipRecord> record = arbiter_.Read(deadline);
    if (record.ok()) {
      reply.answer = ArbiterAnswer::kRecord;
      reply.record = std::move(*record);
    } else {
      reply.answer = ArbiterAnswer::kUnreachable;  // a read changes nothing: retrying is safe
    }
    return reply;
  }
  Result<bool> won =
      arbiter_.CompareAndSwap(request.expected_revision, request.owner, std::string(RecordModeName(request.mode)), deadline);
  if (!won.ok()) {
    // Whether the swap reached etcd is not known from here (a timeout after sending, a reset
    // mid-reply): only a read can tell, and the controller reads on kUnknown.
    reply.answer = ArbiterAnswer::kUnknown;
  } else {
    reply.answer = *won ? ArbiterAnswer::kWon : ArbiterAnswer::kLost;
  }
  return reply;
}

}  // namespace understudy::failover
