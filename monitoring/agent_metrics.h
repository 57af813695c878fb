// AgentMetrics: the catalog of what an agent exports on /metrics, and the calls that feed it.
// The agents call these at the moment something happens (a checkpoint paused the VM, an ack
// arrived, the pair changed state); this file knows nothing about how they work inside.
//
// Every series carries the labels vm, role ("primary"/"secondary") and host (the agent's
// name in the ownership record). Names follow Prometheus conventions: base units in the
// name (_seconds, _bytes), counters end in _total. deploy/alerts.yml and
// deploy/grafana-dashboard.json use exactly these names (a test cross-checks the dashboard
// against a live scrape).
//
// Only the series of the agent's role exist (a primary exports no verification results, a
// secondary no pause histogram); calls for the other role's metrics do nothing.
//
// Thread safety: every method may be called from any thread (prometheus-cpp's metrics are
// atomic; the state gauges take a mutex).
#ifndef UNDERSTUDY_MONITORING_AGENT_METRICS_H_
#define UNDERSTUDY_MONITORING_AGENT_METRICS_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/mutex.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace understudy::monitoring {

struct AgentIdentity {
  std::string vm;
  std::string role;  // "primary" or "secondary"
  std::string host;
};

class AgentMetrics {
 public:
  AgentMetrics(prometheus::Registry& registry, AgentIdentity identity);
  AgentMetrics(const AgentMetrics&) = delete;
  AgentMetrics& operator=(const AgentMetrics&) = delete;

  // --- primary: checkpoints ---
  // The VM was paused for `pause_seconds`; `since_last_seconds` since the previous pause began.
  void ObservePause(double pause_seconds, double since_last_seconds);
  // One checkpoint left for the secondary: pages in it, their raw size, the bytes sent.
  void ObserveShipped(uint64_t pages, uint64_t raw_bytes, uint64_t sent_bytes);
  // The secondary acknowledged an epoch `seconds` after the VM stopped for it.
  void ObserveCommit(double seconds);
  void SetInFlight(uint64_t epochs);
  void SetOutputHeldBytes(uint64_t bytes);
  void SetEpochs(uint64_t epoch, uint64_t committed_epoch);
  // How checkpoints are paced (primary/checkpoint_pacer.h), sampled now and then.
  struct PacingSample {
    // Checkpoints started early because guest output was held, since the agent started.
    uint64_t triggered_total = 0;
    double interval_seconds = 0;      // the periodic interval aimed at now (adaptive or fixed)
    double pause_target_seconds = 0;  // max_pause_ms; 0: none set
    bool target_met = true;           // the recent pauses (and run fraction) met the targets
  };
  void SetPacing(const PacingSample& sample);
  // The pair event "byte cap crossed" (primary/byte_caps.h): `cap` is "in_flight",
  // "held_output", "unshipped_disk" or "frame" (understudy_byte_cap_events_total{cap}).
  void CountByteCapEvent(std::string_view cap);

  // --- primary: the VM's disk (disk/disk_server.h) ---
  struct DiskSample {
    uint64_t written_bytes_total = 0;  // the guest's writes since the agent started
    uint64_t unacked_bytes = 0;        // written in epochs the secondary has not committed yet
    uint64_t sync_bytes = 0;           // this pairing's initial copy (full or resync)
    // Share of that copy the secondary has committed: 1 once all of it is, else below 1.
    double sync_progress_ratio = 0;
  };
  void SetDisk(const DiskSample& sample);

  // --- secondary: commits ---
  void CountCommitted(uint64_t received_bytes);
  void CountRejected();
  // One epoch's disk writes went through the journal into the copy, taking `seconds`.
  void ObserveDiskApply(double seconds, uint64_t bytes);

  // --- both: the pair ---
  // Exactly one state series is 1: `state`.
  void SetPairState(std::string_view state);
  void SetHeartbeat(double rtt_seconds, uint64_t lost_total);
  // Independent heartbeat networks to the peer (failover/heartbeat_paths.h): 1 means the pair
  // has no redundant heartbeat path (understudy_heartbeat_networks).
  void SetHeartbeatNetworks(int networks);
  void SetArbiterReachable(bool reachable);
  // This side took over (promoted, or went unprotected) `seconds` after it first noticed.
  void CountFailover(double seconds);

  // --- secondary: standby verification ---
  void RecordVerification(bool succeeded, double duration_seconds);
  void SetVerificationAge(double seconds);

 private:
  const AgentIdentity identity_;

  prometheus::Histogram* pause_seconds_ = nullptr;
  prometheus::Histogram* interval_seconds_ = nullptr;
  prometheus::Histogram* dirty_pages_ = nullptr;
  prometheus::Histogram* dirty_bytes_ = nullptr;
  prometheus::Histogram* sent_bytes_ = nullptr;
  prometheus::Histogram* commit_seconds_ = nullptr;
  prometheus::Histogram* failover_seconds_ = nullptr;
  prometheus::Histogram* disk_apply_seconds_ = nullptr;
  prometheus::Counter* disk_written_ = nullptr;
  prometheus::Counter* disk_applied_ = nullptr;
  prometheus::Gauge* disk_unacked_ = nullptr;
  prometheus::Gauge* disk_sync_bytes_ = nullptr;
  prometheus::Gauge* disk_sync_progress_ = nullptr;
  prometheus::Counter* checkpoints_ = nullptr;
  prometheus::Counter* checkpoints_triggered_ = nullptr;
  std::map<std::string, prometheus::Counter*, std::less<>> byte_cap_events_;  // by cap (primary)
  prometheus::Counter* replication_sent_ = nullptr;
  prometheus::Counter* replication_received_ = nullptr;
  prometheus::Counter* committed_ = nullptr;
  prometheus::Counter* rejected_ = nullptr;
  prometheus::Counter* failovers_ = nullptr;
  prometheus::Counter* heartbeats_lost_ = nullptr;
  prometheus::Counter* verifications_ok_ = nullptr;
  prometheus::Counter* verifications_failed_ = nullptr;
  prometheus::Gauge* interval_target_ = nullptr;
  prometheus::Gauge* pause_target_ = nullptr;
  prometheus::Gauge* pause_target_met_ = nullptr;
  prometheus::Gauge* compression_ratio_ = nullptr;
  prometheus::Gauge* in_flight_ = nullptr;
  prometheus::Gauge* output_held_ = nullptr;
  prometheus::Gauge* epoch_ = nullptr;
  prometheus::Gauge* committed_epoch_ = nullptr;
  prometheus::Gauge* heartbeat_rtt_ = nullptr;
  prometheus::Gauge* heartbeat_networks_ = nullptr;
  prometheus::Gauge* arbiter_reachable_ = nullptr;
  prometheus::Gauge* verification_success_ = nullptr;
  prometheus::Gauge* verification_age_ = nullptr;
  prometheus::Gauge* verification_duration_ = nullptr;

  Mutex mutex_;
  prometheus::Family<prometheus::Gauge>* pair_state_family_ = nullptr;  // set by the constructor
  std::map<std::string, prometheus::Gauge*, std::less<>> pair_states_ GUARDED_BY(mutex_);
  uint64_t raw_bytes_total_ GUARDED_BY(mutex_) = 0;
  uint64_t sent_bytes_total_ GUARDED_BY(mutex_) = 0;
  uint64_t heartbeats_lost_seen_ GUARDED_BY(mutex_) = 0;
  uint64_t disk_written_seen_ GUARDED_BY(mutex_) = 0;
  uint64_t triggered_seen_ GUARDED_BY(mutex_) = 0;
};

}  // namespace understudy::monitoring

#endif  // UNDERSTUDY_MONITORING_AGENT_METRICS_H_
