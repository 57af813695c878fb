#include "monitoring/agent_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <iterator>
#include <vector>

namespace understudy::monitoring {

namespace {

using prometheus::Histogram;

// Pause and commit latency: 0.25 ms to 1 s, roughly doubling, with the alert thresholds
// (50 ms pause, 250 ms commit) as exact bucket edges.
const Histogram::BucketBoundaries kLatencyBuckets = {0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032,
                                                     0.05,    0.064,  0.128, 0.25,  0.512, 1.0};
const Histogram::BucketBoundaries kIntervalBuckets = {0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5};
const Histogram::BucketBoundaries kPageBuckets = {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144};
const Histogram::BucketBoundaries kByteBuckets = {4096,     16384,     65536,     262144,     1048576,
                                                  4194304, 16777216, 67108864, 268435456, 1073741824};
const Histogram::BucketBoundaries kFailoverBuckets = {0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10};

const char* const kPrimaryStates[] = {"syncing",     "protected", "degraded",     "failing-over",
                                      "unprotected", "fenced",    "re-protecting"};
const char* const kSecondaryStates[] = {"waiting-for-primary", "syncing",   "standby-ready", "degraded",
                                        "failing-over",        "promoting", "promoted",      "fenced"};

prometheus::Labels LabelsOf(const AgentIdentity& identity) {
  return {{"vm", identity.vm}, {"role", identity.role}, {"host", identity.host}};
}

Histogram& HistogramIn(prometheus::Registry& registry, const AgentIdentity& identity, const std::string& name,
                       const std::string& help, const Histogram::BucketBoundaries& buckets) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(registry).Add(LabelsOf(identity), buckets);
}

prometheus::Counter& CounterIn(prometheus::Registry& registry, const AgentIdentity& identity, const std::string& name,
                               const std::string& help, const prometheus::Labels& extra = {}) {
  prometheus::Labels labels = LabelsOf(identity);
  labels.insert(extra.begin(), extra.end());
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add(labels);
}

prometheus::Gauge& GaugeIn(prometheus::Registry& registry, const AgentIdentity& identity, const std::string& name,
                           const std::string& help, const prometheus::Labels& extra = {}) {
  prometheus::Labels labels = LabelsOf(identity);
  labels.insert(extra.begin(), extra.end());
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add(labels);
}

}  // namespace

AgentMetrics::AgentMetrics(prometheus::Registry& registry, AgentIdentity identity) : identity_(std::move(identity)) {
  const bool primary = identity_.role == "primary";
  // Both roles: the pair, the peer, the arbiter, takeovers.
  failover_seconds_ = &HistogramIn(registry, identity_, "understudy_failover_duration_seconds",
                                   "From noticing the peer's failure to running the VM alone", kFailoverBuckets);
  failovers_ = &CounterIn(registry, identity_, "understudy_failovers_total",
                          "Times this side took the VM over (promoted, or went unprotected)");
  heartbeats_lost_ = &CounterIn(registry, identity_, "understudy_heartbeats_lost_total",
                                "Heartbeats from the peer that never arrived", {{"path", "udp"}});
  heartbeat_rtt_ = &GaugeIn(registry, identity_, "understudy_heartbeat_rtt_seconds", "Smoothed heartbeat round-trip time",
                            {{"path", "udp"}});
  heartbeat_networks_ = &GaugeIn(registry, identity_, "understudy_heartbeat_networks",
                                 "Independent UDP heartbeat networks to the peer; below 2 the pair has no redundant "
                                 "heartbeat path (failover.second_heartbeat)");
  arbiter_reachable_ = &GaugeIn(registry, identity_, "understudy_arbiter_reachable",
                                "1 while the arbiter answers; 0 means no failover can happen");
  arbiter_reachable_->Set(1);
  epoch_ = &GaugeIn(registry, identity_, "understudy_epoch", "The newest epoch captured (primary) or received");
  committed_epoch_ = &GaugeIn(registry, identity_, "understudy_committed_epoch", "The newest epoch the secondary committed");
  if (primary) {
    pause_seconds_ = &HistogramIn(registry, identity_, "understudy_checkpoint_pause_seconds",
                                  "How long each checkpoint kept the VM paused", kLatencyBuckets);
    interval_seconds_ = &HistogramIn(registry, identity_, "understudy_checkpoint_interval_seconds",
                                     "Time between the starts of successive checkpoints", kIntervalBuckets);
    dirty_pages_ = &HistogramIn(registry, identity_, "understudy_checkpoint_dirty_pages",
                                "Guest pages each checkpoint carried", kPageBuckets);
    dirty_bytes_ = &HistogramIn(registry, identity_, "understudy_checkpoint_dirty_bytes",
                                "Raw size of the pages each checkpoint carried", kByteBuckets);
    sent_bytes_ = &HistogramIn(registry, identity_, "understudy_checkpoint_sent_bytes",
                               "Encoded size of each checkpoint on the wire", kByteBuckets);
    commit_seconds_ = &HistogramIn(registry, identity_, "understudy_commit_latency_seconds",
                                   "From the VM stopping for a checkpoint to the secondary's ack", kLatencyBuckets);
    checkpoints_ = &CounterIn(registry, identity_, "understudy_checkpoints_total", "Checkpoints taken");
    checkpoints_triggered_ = &CounterIn(registry, identity_, "understudy_checkpoints_triggered_total",
                                        "Checkpoints started early because guest output was held");
    interval_target_ = &GaugeIn(registry, identity_, "understudy_checkpoint_interval_target_seconds",
                                "The periodic checkpoint interval aimed at now (adapted to max_pause_ms, if set)");
    pause_target_ = &GaugeIn(registry, identity_, "understudy_checkpoint_pause_target_seconds",
                             "The configured pause target (max_pause_ms); 0 when none is set");
    pause_target_met_ = &GaugeIn(registry, identity_, "understudy_checkpoint_pause_target_met",
                                 "1 while the recent checkpoints' pause p99 (and run fraction) meet the targets");
    pause_target_met_->Set(1);
    for (const char* cap : {"in_flight", "held_output", "unshipped_disk", "frame"}) {
      byte_cap_events_[cap] = &CounterIn(registry, identity_, "understudy_byte_cap_events_total",
                                         "Times a byte cap was crossed and the pair degraded (primary/byte_caps.h)",
                                         {{"cap", cap}});
    }
    replication_sent_ = &CounterIn(registry, identity_, "understudy_replication_sent_bytes_total",
                                   "Checkpoint bytes sent to the secondary");
    compression_ratio_ = &GaugeIn(registry, identity_, "understudy_checkpoint_compression_ratio",
                                  "Raw page bytes over bytes sent, since start");
    in_flight_ = &GaugeIn(registry, identity_, "understudy_checkpoints_in_flight",
                          "Checkpoints sent and not yet acknowledged");
    output_held_ = &GaugeIn(registry, identity_, "understudy_output_held_bytes",
                            "Guest output produced but not yet released", {{"stream", "console"}});
    disk_written_ = &CounterIn(registry, identity_, "understudy_disk_written_bytes_total",
                               "Bytes the guest wrote to its disk (replicated with their epochs)");
    disk_unacked_ = &GaugeIn(registry, identity_, "understudy_disk_unacked_bytes",
                             "Disk bytes written in epochs the secondary has not committed yet (its copy's lag)");
    disk_sync_bytes_ = &GaugeIn(registry, identity_, "understudy_disk_sync_bytes",
                                "Bytes of this pairing's initial disk copy (all of the disk, or a resync of what differs)");
    disk_sync_progress_ = &GaugeIn(registry, identity_, "understudy_disk_sync_progress_ratio",
                                   "Share of the initial disk copy the secondary has committed");
  } else {
    replication_received_ = &CounterIn(registry, identity_, "understudy_replication_received_bytes_total",
                                       "Checkpoint bytes received from the primary");
    committed_ = &CounterIn(registry, identity_, "understudy_checkpoints_committed_total",
                            "Checkpoints the secondary verified and committed");
    rejected_ = &CounterIn(registry, identity_, "understudy_checkpoints_rejected_total",
                           "Checkpoints the secondary refused (damaged, out of order)");
    verifications_ok_ = &CounterIn(registry, identity_, "understudy_standby_verifications_total",
                                   "Standby verifications, by result", {{"result", "ok"}});
    verifications_failed_ = &CounterIn(registry, identity_, "understudy_standby_verifications_total",
                                       "Standby verifications, by result", {{"result", "failed"}});
    disk_applied_ = &CounterIn(registry, identity_, "understudy_disk_applied_bytes_total",
                               "Disk bytes committed into this host's copy");
    disk_apply_seconds_ = &HistogramIn(registry, identity_, "understudy_disk_apply_seconds",
                                       "Journaling and applying one epoch's disk writes", kLatencyBuckets);
    verification_success_ = &GaugeIn(registry, identity_, "understudy_standby_verification_success",
                                      "1 if the last standby verification loaded and ran the checkpoint");
    verification_age_ = &GaugeIn(registry, identity_, "understudy_standby_verification_age_seconds",
                                 "Seconds since the last standby verification finished");
    verification_duration_ = &GaugeIn(registry, identity_, "understudy_standby_verification_duration_seconds",
                                      "How long the last standby verification took");
    // No verification yet is not a failure: the gauge says so only once one has run.
    verification_success_->Set(1);
  }
  pair_state_family_ = &prometheus::BuildGauge()
                            .Name("understudy_pair_state")
                            .Help("1 for the pair state this agent is in, 0 for the others")
                            .Register(registry);
  // Every state of this role exists from the start (at 0), so queries and alerts see them.
  MutexLock lock(&mutex_);
  for (const char* state : primary ? std::vector<const char*>(std::begin(kPrimaryStates), std::end(kPrimaryStates))
                                   : std::vector<const char*>(std::begin(kSecondaryStates), std::end(kSecondaryStates))) {
    prometheus::Labels labels = LabelsOf(identity_);
    labels["state"] = state;
    pair_states_[state] = &pair_state_family_->Add(labels);
  }
}

void AgentMetrics::ObservePause(double pause_seconds, double since_last_seconds) {
  if (!pause_seconds_) return;
  pause_seconds_->Observe(pause_seconds);
  if (since_last_seconds > 0) interval_seconds_->Observe(since_last_seconds);
  checkpoints_->Increment();
}

void AgentMetrics::SetPacing(const PacingSample& sample) {
  if (!checkpoints_triggered_) return;
  interval_target_->Set(sample.interval_seconds);
  pause_target_->Set(sample.pause_target_seconds);
  pause_target_met_->Set(sample.target_met ? 1 : 0);
  MutexLock lock(&mutex_);
  if (sample.triggered_total > triggered_seen_) {
    checkpoints_triggered_->Increment(static_cast<double>(sample.triggered_total - triggered_seen_));
  }
  triggered_seen_ = sample.triggered_total;
}

void AgentMetrics::CountByteCapEvent(std::string_view cap) {
  if (auto counter = byte_cap_events_.find(cap); counter != byte_cap_events_.end()) counter->second->Increment();
}

void AgentMetrics::ObserveShipped(uint64_t pages, uint64_t raw_bytes, uint64_t sent_bytes) {
  if (!dirty_pages_) return;
  dirty_pages_->Observe(static_cast<double>(pages));
  dirty_bytes_->Observe(static_cast<double>(raw_bytes));
  sent_bytes_->Observe(static_cast<double>(sent_bytes));
  replication_sent_->Increment(static_cast<double>(sent_bytes));
  MutexLock lock(&mutex_);
  raw_bytes_total_ += raw_bytes;
  sent_bytes_total_ += sent_bytes;
  if (sent_bytes_total_ > 0) compression_ratio_->Set(static_cast<double>(raw_bytes_total_) / sent_bytes_total_);
}

void AgentMetrics::ObserveCommit(double seconds) {
  if (commit_seconds_) commit_seconds_->Observe(seconds);
}

void AgentMetrics::SetInFlight(uint64_t epochs) {
  if (in_flight_) in_flight_->Set(static_cast<double>(epochs));
}

void AgentMetrics::SetOutputHeldBytes(uint64_t bytes) {
  if (output_held_) output_held_->Set(static_cast<double>(bytes));
}

void AgentMetrics::SetEpochs(uint64_t epoch, uint64_t committed_epoch) {
  epoch_->Set(static_cast<double>(epoch));
  committed_epoch_->Set(static_cast<double>(committed_epoch));
}

void AgentMetrics::CountCommitted(uint64_t received_bytes) {
  if (!committed_) return;
  committed_->Increment();
  replication_received_->Increment(static_cast<double>(received_bytes));
}

void AgentMetrics::CountRejected() {
  if (rejected_) rejected_->Increment();
}

void AgentMetrics::SetPairState(std::string_view state) {
  MutexLock lock(&mutex_);
  auto found = pair_states_.find(state);
  if (found == pair_states_.end()) {
    prometheus::Labels labels = LabelsOf(identity_);
    labels["state"] = std::string(state);
    found = pair_states_.emplace(std::string(state), &pair_state_family_->Add(labels)).first;
  }
  for (auto& [name, gauge] : pair_states_) gauge->Set(name == state ? 1 : 0);
}

void AgentMetrics::SetHeartbeat(double rtt_seconds, uint64_t lost_total) {
  heartbeat_rtt_->Set(rtt_seconds);
  MutexLock lock(&mutex_);
  if (lost_total > heartbeats_lost_seen_) {
    heartbeats_lost_->Increment(static_cast<double>(lost_total - heartbeats_lost_seen_));
  }
  heartbeats_lost_seen_ = lost_total;
}

void AgentMetrics::SetDisk(const DiskSample& sample) {
  if (!disk_written_) return;
  disk_unacked_->Set(static_cast<double>(sample.unacked_bytes));
  disk_sync_bytes_->Set(static_cast<double>(sample.sync_bytes));
  disk_sync_progress_->Set(sample.sync_progress_ratio);
  MutexLock lock(&mutex_);
  if (sample.written_bytes_total > disk_written_seen_) {
    disk_written_->Increment(static_cast<double>(sample.written_bytes_total - disk_written_seen_));
  }
  disk_written_seen_ = sample.written_bytes_total;
}

void AgentMetrics::ObserveDiskApply(double seconds, uint64_t bytes) {
  if (!disk_applied_) return;
  disk_applied_->Increment(static_cast<double>(bytes));
  disk_apply_seconds_->Observe(seconds);
}

void AgentMetrics::SetHeartbeatNetworks(int networks) { heartbeat_networks_->Set(networks); }

void AgentMetrics::SetArbiterReachable(bool reachable) { arbiter_reachable_->Set(reachable ? 1 : 0); }

void AgentMetrics::CountFailover(double seconds) {
  failovers_->Increment();
  failover_seconds_->Observe(seconds);
}

void AgentMetrics::RecordVerification(bool succeeded, double duration_seconds) {
  if (!verification_success_) return;
  (succeeded ? verifications_ok_ : verifications_failed_)->Increment();
  verification_success_->Set(succeeded ? 1 : 0);
  verification_duration_->Set(duration_seconds);
  verification_age_->Set(0);
}

void AgentMetrics::SetVerificationAge(double seconds) {
  if (verification_age_) verification_age_->Set(seconds);
}

}  // namespace understudy::monitoring
