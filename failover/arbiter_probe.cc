#include "failover/arbiter_probe.h"

namespace understudy::failover {

namespace {
// A probe waits no longer than this for etcd: its answer only feeds a gauge.
constexpr int64_t kReadDeadlineMs = 1000;
}  // namespace

ArbiterProbe::ArbiterProbe(Arbiter& arbiter, std::chrono::milliseconds interval, std::function<void(bool)> on_result)
    : arbiter_(arbiter), interval_(interval), on_result_(std::move(on_result)) {
  thread_ = std::thread([this] { Loop(); });
}

ArbiterProbe::~ArbiterProbe() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void ArbiterProbe::Loop() {
  for (;;) {
    on_result_(arbiter_.Read(Deadline::AfterMillis(kReadDeadlineMs)).ok());
    MutexLock lock(&mu_);
    const auto next = std::chrono::steady_clock::now() + interval_;
    while (!stopping_ && std::chrono::steady_clock::now() < next) wake_.WaitUntil(&mu_, next);
    if (stopping_) return;
  }
}

}  // namespace understudy::failover
