// RunAtHeartbeatPriority(): raises the calling thread's scheduling priority once, best effort
// (allowed with CAP_SYS_NICE). The threads that hear the peer and decide on its silence (the
// heartbeat's, the controller driver's) must not be the ones a loaded host starves first: a
// heartbeat that waits behind busy work looks like a dead peer.
//
// Two steps, because nice alone was not enough: with the kernel's autogroups (on by default),
// nice ranks threads only within their own session, so an agent's nice -10 heartbeat thread
// still waited 200-670 ms behind other sessions' busy work on a loaded 2-core host (measured in
// prometheus_scrape_test). So the thread also becomes real-time, SCHED_RR at a low priority,
// as cluster heartbeats usually run (corosync does): it preempts every ordinary thread, and it
// only ever sleeps, sends a datagram or steps a small state machine, so it cannot starve the
// host (and the kernel's RT throttling bounds it anyway). SCHED_RESET_ON_FORK keeps it to
// this thread: threads it starts (a session's, when the driver carries kPair) are ordinary.
//
// Thread safety: affects only the calling thread.
#ifndef UNDERSTUDY_FAILOVER_HEARTBEAT_PRIORITY_H_
#define UNDERSTUDY_FAILOVER_HEARTBEAT_PRIORITY_H_

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

namespace understudy::failover {

inline constexpr int kHeartbeatNice = -10;
// Low among real-time priorities (1-99): above every ordinary thread, below the kernel's own.
inline constexpr int kHeartbeatRealtimePriority = 10;

// Whether the calling thread runs real-time (SCHED_RR or SCHED_FIFO).
inline bool RunsRealtime() {
  const int policy = ::sched_getscheduler(0) & ~SCHED_RESET_ON_FORK;
  return policy == SCHED_RR || policy == SCHED_FIFO;
}

inline void RunAtHeartbeatPriority() {
  thread_local const bool raised = [] {
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kHeartbeatNice);
    sched_param param{};
    param.sched_priority = kHeartbeatRealtimePriority;
    // pid 0: the calling thread (Linux schedules threads, not processes).
    (void)::sched_setscheduler(0, SCHED_RR | SCHED_RESET_ON_FORK, &param);
    return true;
  }();
  (void)raised;
}

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_HEARTBEAT_PRIORITY_H_
