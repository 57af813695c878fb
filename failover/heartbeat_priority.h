// RunAtHeartbeatPriority(): raises the calling thread's priority (nice -10) once, best effort
// (allowed with CAP_SYS_NICE). The threads that hear the peer and decide on its silence (the
// heartbeat's, the peer monitor's, the controller driver's) must not be the ones a loaded host
// starves first: a heartbeat that waits behind busy work looks like a dead peer.
//
// Thread safety: affects only the calling thread.
#ifndef UNDERSTUDY_FAILOVER_HEARTBEAT_PRIORITY_H_
#define UNDERSTUDY_FAILOVER_HEARTBEAT_PRIORITY_H_

#include <sys/resource.h>
#include <unistd.h>

namespace understudy::failover {

inline constexpr int kHeartbeatNice = -10;

inline void RunAtHeartbeatPriority() {
  thread_local const bool raised = [] {
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kHeartbeatNice);
    return true;
  }();
  (void)raised;
}

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_HEARTBEAT_PRIORITY_H_
