// ArbiterProbe: reads the ownership record every `interval`, only to tell operators whether
// the arbiter answers. An arbiter outage while the pair is healthy changes nothing now but
// forbids every failover later, and the PairController reads the record only when it must: the
// outage would otherwise show only when it is too late. The probe decides nothing.
//
// Thread safety: Start() spawns one thread that calls `on_result`; the destructor joins it
// (within one read's deadline).
#ifndef UNDERSTUDY_FAILOVER_ARBITER_PROBE_H_
#define UNDERSTUDY_FAILOVER_ARBITER_PROBE_H_

#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "failover/arbiter.h"

namespace understudy::failover {

class ArbiterProbe {
 public:
  // `arbiter` must outlive the probe. The first read happens at once; `on_result` gets each
  // outcome (true: the record could be read) on the probe's thread.
  ArbiterProbe(Arbiter& arbiter, std::chrono::milliseconds interval, std::function<void(bool reachable)> on_result);
  ~ArbiterProbe();
  ArbiterProbe(const ArbiterProbe&) = delete;
  ArbiterProbe& operator=(const ArbiterProbe&) = delete;

 private:
  void Loop() EXCLUDES(mu_);

  Arbiter& arbiter_;
  const std::chrono::milliseconds interval_;
  const std::function<void(bool)> on_result_;
  Mutex mu_;
  CondVar wake_;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_ARBITER_PROBE_H_
