// SecondaryAgent: what it tells operators (status, transitions, metrics) and the control API.
#include <unistd.h>

#include <cstdio>

#include "common/json_fields.h"
#include "common/log.h"
#include "common/process_space.h"
#include "secondary/secondary_agent.h"

namespace understudy::secondary {

using failover::ControllerState;
using nlohmann::json;

namespace {

json VerificationJson(const std::optional<VerificationResult>& result) {
  if (!result) return nullptr;
  return {{"succeeded", result->succeeded},
          {"epoch", result->epoch},
          {"duration_ms", result->duration_seconds * 1000},
          {"age_s", std::chrono::duration<double>(std::chrono::system_clock::now() - result->finished).count()},
          {"error", result->error}};
}

// What the controller's state says about the primary, as the failure detector used to.
const char* PeerView(ControllerState state) {
  switch (state) {
    case ControllerState::kProtected: return "alive";
    case ControllerState::kDegraded: return "degraded";
    case ControllerState::kContending:
    case ControllerState::kPromoted: return "dead";
    default: return "unknown";
  }
}

std::string WhyNow(ControllerState to) {
  switch (to) {
    case ControllerState::kContending: return "the primary is silent on every path, or a promotion was requested";
    case ControllerState::kFenced: return "the ownership record is not this pairing's; standby discarded";
    case ControllerState::kStoodDown: return "the primary said goodbye (or the record says stopped)";
    case ControllerState::kPromoted: return "the ownership record is ours";
    default: return "";
  }
}

}  // namespace

std::string SecondaryAgent::StateNameLocked() const {
  if (!final_state_.empty()) return final_state_;
  switch (state_) {
    case ControllerState::kJoining: return "waiting-for-primary";
    case ControllerState::kProtected: return "standby-ready";
    case ControllerState::kContending: return "failing-over";
    case ControllerState::kPromoted: return vm_running_ ? "promoted" : "promoting";
    default: return std::string(failover::ControllerStateName(state_));
  }
}

std::string SecondaryAgent::HeartbeatSummary(ControllerState to) const {
  // Only where the peer may be silent: what the heartbeat path heard tells a real silence (nothing
  // sent, or nothing fresh arrived) from a local one.
  if (to != ControllerState::kDegraded && to != ControllerState::kContending) return "";
  MutexLock lock(&status_mutex_);
  if (!heartbeat_) return "";
  failover::HeartbeatStats stats = heartbeat_->stats();
  char text[200];
  std::snprintf(text, sizeof(text), "; heartbeat path A sent %llu, heard %llu, stale %llu, rejected %llu, lost %llu, rtt %.1f ms",
                static_cast<unsigned long long>(stats.sent), static_cast<unsigned long long>(stats.received),
                static_cast<unsigned long long>(stats.stale), static_cast<unsigned long long>(stats.rejected),
                static_cast<unsigned long long>(stats.lost), stats.last_rtt_ms);
  return text;
}

void SecondaryAgent::OnControllerState(ControllerState to) {
  std::string before, after;
  {
    MutexLock lock(&status_mutex_);
    before = StateNameLocked();
    state_ = to;
    after = StateNameLocked();
    if (to == ControllerState::kContending) failing_over_since_ = std::chrono::steady_clock::now();
    // Once an owner role protects the VM, it names the states (as a primary) and records them.
    if (owner_) return;
  }
  if (before == after) return;
  const std::string why = WhyNow(to);
  Log("secondary", "state " + before + " -> " + after + (why.empty() ? "" : " (" + why + ")") + HeartbeatSummary(to));
  transitions_.Record(before, after, why);
  metrics_->SetPairState(after);
}

Status SecondaryAgent::RequestPromotion() {
  std::shared_ptr<failover::ControllerDriver> driver = this->driver();
  if (!driver) return Status::FailedPrecondition("the secondary is not running");
  return driver->Request(failover::Event::Of(failover::EventKind::kPromoteRequested, 0), Deadline::AfterMillis(1500));
}

json SecondaryAgent::StatusJson() const {
  Committer::Snapshot committed = committer_->status();
  MutexLock lock(&status_mutex_);
  if (owner_) {
    // This host runs the VM now and protects it: it answers as a primary, with one history.
    json status = owner_->StatusJson();
    status["transitions"] = transitions_.MergedWith(status.value("transitions", json::array()));
    status["promotion_ms"] = promotion_ms_;
    return status;
  }
  failover::HeartbeatStats heartbeats = heartbeat_ ? heartbeat_->stats() : failover::HeartbeatStats{};
  const int reachable = arbiter_reachable_.load();
  return {
      {"role", "secondary"},
      {"state", StateNameLocked()},
      {"controller_state", failover::ControllerStateName(state_)},
      {"listen", listen_address_},
      {"owner_name", config_.failover.name},
      {"record_revision", pairing_revision_},
      {"peer", PeerView(state_)},
      {"heartbeat_rtt_ms", heartbeats.smoothed_rtt_ms},
      {"heartbeat_lost", heartbeats.lost},
      {"heartbeat_rejected", heartbeats.rejected},
      {"heartbeat_address", heartbeat_ ? heartbeat_->address() : ""},
      {"heartbeat_second_address", heartbeat_ ? heartbeat_->second_address() : ""},
      {"heartbeat_networks", heartbeat_ ? heartbeat_->networks() : 0},
      {"heartbeat_redundant", heartbeat_ && heartbeat_->redundant()},
      {"heartbeat_received", heartbeats.received},
      {"heartbeat_second_received", heartbeat_ ? heartbeat_->second_stats().received : 0},
      {"heartbeat_second_lost", heartbeat_ ? heartbeat_->second_stats().lost : 0},
      {"heartbeat_budget_ms", config_.failover.monitor.budget.count()},
      {"primary", primary_},
      {"pid", ::getpid()},
      {"process_space", ThisProcessSpace()},
      {"metrics_address", metrics_server_ ? metrics_server_->address() : ""},
      {"standby_qemu_pid", standby_qemu_pid_},
      {"transitions", transitions_.ToJson()},
      {"committed_epoch", committed.committed_epoch},
      {"rejected_checkpoints", committed.rejected},
      {"refused_primaries", refused_primaries_},
      {"bytes_received", bytes_received_},
      {"promotion_ms", promotion_ms_},
      {"last_verification", VerificationJson(verifier_ ? verifier_->last() : std::nullopt)},
      {"disk", committed.disk},
      {"arbiter_reachable", reachable < 0 ? json(nullptr) : json(reachable == 1)},
      {"test_stalled_in_disk_apply", committed.test_stalled_in_disk_apply},
      {"last_error", last_error_},
  };
}

std::map<std::string, control::Handler> SecondaryAgent::ControlHandlers() {
  std::map<std::string, control::Handler> handlers = {
      {"status", [this](const json&) -> Result<json> { return StatusJson(); }},
      {"promote", [this](const json&) -> Result<json> {
         UNDERSTUDY_RETURN_IF_ERROR(RequestPromotion());
         return json{{"promotion", "requested"}};
       }},
      {"step_down", [this](const json&) -> Result<json> { return StepDownOwner(); }}};
  // Commands that damage or stall the pair on purpose exist only in a test configuration.
  if (config_.test_control_commands) AddTestControlHandlers(handlers);
  return handlers;
}

void SecondaryAgent::AddTestControlHandlers(std::map<std::string, control::Handler>& handlers) {
  handlers["test_corrupt_device_state"] = [this](const json& request) -> Result<json> {
    UNDERSTUDY_ASSIGN_OR_RETURN(bool corrupt, OptionalBool(request, "corrupt", true, "test_corrupt_device_state"));
    Log("secondary", std::string("TEST ONLY: committed device state ") + (corrupt ? "damaged from now on" : "intact again"));
    committer_->TEST_CorruptDeviceState(corrupt);
    return json{{"corrupt_device_state", corrupt}};
  };
  handlers["test_hold_acks"] = [this](const json& request) -> Result<json> {
    UNDERSTUDY_ASSIGN_OR_RETURN(bool hold, OptionalBool(request, "hold", true, "test_hold_acks"));
    Log("secondary", std::string("TEST ONLY: acks ") + (hold ? "held" : "released"));
    test_hold_acks_.store(hold);
    return json{{"hold_acks", hold}};
  };
  test_ram_dump_.AddControlCommand(handlers);
}

}  // namespace understudy::secondary
