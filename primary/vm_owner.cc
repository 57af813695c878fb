#include "primary/vm_owner.h"

#include <algorithm>

#include "common/log.h"

namespace understudy::primary {

using failover::ActionKind;
using failover::Event;
using failover::EventKind;
using nlohmann::json;

VmOwner::VmOwner(std::unique_ptr<VmHost> host, OwnerOptions options, std::function<void(Event)> post)
    : options_(std::move(options)),
      post_(std::move(post)),
      host_(std::move(host)),
      next_incarnation_(std::max<uint64_t>(options_.first_incarnation, 1)),
      sealed_epoch_(options_.epochs_after) {}

Result<std::unique_ptr<VmOwner>> VmOwner::Start(std::unique_ptr<VmHost> host, OwnerOptions options,
                                                std::function<void(Event)> post, bool alone,
                                                std::unique_ptr<transport::Channel> first_secondary) {
  std::unique_ptr<VmOwner> owner(new VmOwner(std::move(host), std::move(options), std::move(post)));
  const PrimaryConfig& config = owner->options_.config;
  owner->metrics_ = std::make_unique<monitoring::AgentMetrics>(
      owner->host_->metrics_registry(), monitoring::AgentIdentity{config.vm.name, owner->options_.role, config.failover.name});
  UNDERSTUDY_RETURN_IF_ERROR(owner->StartHeartbeat());
  {
    MutexLock lock(&owner->mu_);
    owner->alone_ = alone;
  }
  if (first_secondary) owner->Offer(std::move(first_secondary));
  owner->seal_thread_ = std::thread([raw = owner.get()] { raw->SealLoop(); });
  owner->redial_thread_ = std::thread([raw = owner.get()] { raw->RedialLoop(); });
  return owner;
}

VmOwner::~VmOwner() { Shutdown(); }

Status VmOwner::StartHeartbeat() {
  UNDERSTUDY_ASSIGN_OR_RETURN(heartbeat_, failover::HeartbeatPaths::Start(options_.config.failover.HeartbeatOptions(),
                                                                          [this](failover::Path path) { OnHeartbeat(path); }));
  metrics_->SetHeartbeatNetworks(heartbeat_->networks());
  if (!heartbeat_->redundant()) {
    Log("primary", "one heartbeat network: the pair has no redundant heartbeat path (failover.second_heartbeat adds one)");
  }
  return Status::Ok();
}

void VmOwner::OnHeartbeat(failover::Path path) {
  NoteHeard();
  Event heard;
  heard.kind = EventKind::kHeard;
  heard.path = path;
  const uint64_t paired = paired_incarnation_.load();
  heard.peer_incarnation = paired;
  if (paired != 0 && over_incarnation_.load() == paired) heard.peer_says = failover::PeerSays::kAlone;
  post_(heard);
}

void VmOwner::Shutdown() {
  if (stopping_.exchange(true)) return;
  if (seal_thread_.joinable()) seal_thread_.join();
  if (redial_thread_.joinable()) redial_thread_.join();
  std::shared_ptr<ProtectionSession> session, offered;
  {
    MutexLock lock(&mu_);
    session = std::move(session_);
    offered = std::move(offered_);
  }
  if (offered) offered->Stop(/*goodbye=*/false);
  if (session) session->Stop(/*goodbye=*/false);
  heartbeat_.reset();
}

void VmOwner::Offer(std::unique_ptr<transport::Channel> channel) {
  SessionContext context;
  context.config = &options_.config;
  context.heartbeat_address = heartbeat_->address();
  context.post = [this](Event event) { OnSessionEvent(std::move(event)); };
  context.on_peer_heartbeat_address = [this](const std::string& address) { heartbeat_->SetPeer(address); };
  context.metrics = metrics_.get();
  context.test_hold = options_.test_hold;
  std::shared_ptr<ProtectionSession> replaced;
  {
    MutexLock lock(&mu_);
    context.incarnation = next_incarnation_++;
    context.on_pairing_over = [this, incarnation = context.incarnation] { EndPairing(incarnation); };
    // The first pairing of a primary, or a new secondary for a VM that runs alone.
    bool first = !session_ && !alone_;
    std::shared_ptr<ProtectionSession> session = ProtectionSession::Open(*host_, std::move(channel), context);
    if (first) {
      session_ = std::move(session);
      session_incarnation_ = context.incarnation;
    } else {
      replaced = std::move(offered_);
      offered_ = std::move(session);
      offered_incarnation_ = context.incarnation;
    }
  }
  if (replaced) replaced->Stop(/*goodbye=*/false);
}

void VmOwner::NoteHeard() {
  last_heard_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count());
}

double VmOwner::SecondsSinceNoticed() const {
  // The controller notices a silent peer once its last sign of life is a budget old.
  const auto noticed = std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(last_heard_ns_.load())) +
                       options_.config.failover.monitor.budget;
  return std::max(0.0, std::chrono::duration<double>(std::chrono::steady_clock::now() - noticed).count());
}

void VmOwner::OnSessionEvent(Event event) {
  if (event.kind == EventKind::kHeard) NoteHeard();
  if (event.kind == EventKind::kHello) {
    // A new secondary for a VM that runs alone: from now on output is held for it (the
    // controller goes re-protecting); sealing it here would put it in no checkpoint.
    MutexLock lock(&mu_);
    if (alone_) seal_paused_ = true;
  }
  post_(std::move(event));
}

void VmOwner::Carry(const failover::Action& action) {
  // After Shutdown (an owner role stopping while its driver still carries): nothing is left
  // to act on, the heartbeats included.
  if (stopping_.load()) return;
  switch (action.kind) {
    case ActionKind::kPair: return Pair(action);
    case ActionKind::kUnpair:
      // Heartbeats can only say "alive": to a dropped secondary we go silent instead, so it
      // does not keep taking us for its primary (it reads the record, and fences).
      heartbeat_->Pause(true);
      return WithSession([](ProtectionSession& session) { session.Unpair(); });
    case ActionKind::kReleaseUpTo: {
      Status released = host_->Release(action.epoch);
      if (!released.ok()) Log("primary", "releasing output up to epoch " + std::to_string(action.epoch) + ": " + released.ToString());
      return;
    }
    case ActionKind::kGoUnprotected: {
      {
        MutexLock lock(&mu_);
        alone_ = true;
        seal_paused_ = false;
      }
      // A takeover: this side runs the VM without its secondary from now on.
      metrics_->CountFailover(SecondsSinceNoticed());
      Log("primary", "running unprotected: this host owns the VM without a secondary");
      return WithSession([](ProtectionSession& session) { session.GoUnprotected(); });
    }
    case ActionKind::kFence: {
      {
        MutexLock lock(&mu_);
        done_ = true;
      }
      // Heartbeats can only say "alive": a fenced owner goes silent instead, so its peer
      // treats it as gone (and the record decides).
      heartbeat_->Pause(true);
      WithSession([](ProtectionSession& session) { session.Fence(); });
      host_->Fence("this host no longer owns the VM (record lost, guest died, or stepped down)");
      return;
    }
    case ActionKind::kStopVm: {
      {
        MutexLock lock(&mu_);
        done_ = true;
      }
      WithSession([](ProtectionSession& session) { session.EndCheckpointing(); });
      host_->StopGuest();
      return;
    }
    case ActionKind::kSendGoodbye: return WithSession([](ProtectionSession& session) { session.Stop(/*goodbye=*/true); });
    default: return;
  }
}

void VmOwner::WithSession(const std::function<void(ProtectionSession&)>& use) {
  std::shared_ptr<ProtectionSession> session;
  {
    MutexLock lock(&mu_);
    session = session_;
  }
  if (session) use(*session);
}

void VmOwner::Pair(const failover::Action& action) {
  std::shared_ptr<ProtectionSession> session, previous;
  uint64_t base = 0;
  {
    MutexLock lock(&mu_);
    if (offered_ && offered_incarnation_ == action.peer_incarnation) {
      previous = std::move(session_);
      session_ = std::move(offered_);
      session_incarnation_ = offered_incarnation_;
    } else if (session_incarnation_ != action.peer_incarnation) {
      Log("primary", "the controller paired with a secondary this host no longer talks to; ignored");
      return;
    }
    session = session_;
    alone_ = false;
    seal_paused_ = true;  // the session seals from now on
    base = sealed_epoch_;
    paired_incarnation_.store(action.peer_incarnation);
  }
  if (previous) {
    // The VM ran alone with checkpoints taken locally: end them; QEMU runs on and the new
    // session starts a new COLO migration.
    base = std::max(base, previous->EndCheckpointing());
    previous->Stop(/*goodbye=*/false);
  }
  heartbeat_->Pause(false);
  record_revision_.store(action.revision);
  Log("primary", "paired with secondary '" + action.peer + "' at record revision " + std::to_string(action.revision));
  Status paired = session->Pair(action.revision, base);
  if (!paired.ok()) {
    // This pairing cannot checkpoint, and would hold the guest's output for good. End it:
    // every path tells the controller the pairing is over (as after a byte cap), so the VM
    // runs alone and the owner dials a secondary again; the secondary, told "alone" by the
    // heartbeats, leaves the pairing too.
    Log("primary", "starting the pairing: " + paired.ToString() + "; the pairing ends");
    EndPairing(action.peer_incarnation);
    session->Stop(/*goodbye=*/false);
    return;
  }
  // Its channel may have failed before this pairing was the owner's (the shipper says so
  // once, and EndPairing ignored it then): end it now.
  if (session->lost()) EndPairing(action.peer_incarnation);
}

void VmOwner::EndPairing(uint64_t incarnation) {
  {
    MutexLock lock(&mu_);
    // A replaced or offered session, one stopping after a decision, or an owner shutting down:
    // not the pairing that runs.
    if (session_incarnation_ != incarnation || alone_ || done_ || stopping_.load()) return;
    over_incarnation_.store(incarnation);
  }
  // Also before the controller paired with it (then the event is ignored, and Pair ends the
  // pairing again once it is paired).
  Event over = Event::Of(EventKind::kHeard, 0);
  over.path = failover::Path::kReplication;
  over.peer_incarnation = incarnation;
  over.peer_says = failover::PeerSays::kAlone;
  post_(over);
}

void VmOwner::SealLoop() {
  auto next_sample = std::chrono::steady_clock::now();
  while (!stopping_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    SealAlone();
    if (std::chrono::steady_clock::now() < next_sample) continue;
    next_sample += std::chrono::milliseconds(250);
    failover::HeartbeatStats heartbeats = heartbeat_->stats();
    metrics_->SetHeartbeat(heartbeats.smoothed_rtt_ms / 1000, heartbeats.lost);
    if (std::string held_up = heartbeat_->TakeHoldUpReport(); !held_up.empty()) Log("primary", held_up);
    WithSession([](ProtectionSession& session) { session.SampleMetrics(); });
  }
}

void VmOwner::SealAlone() {
  Event captured;
  {
    MutexLock lock(&mu_);
    if (!alone_ || seal_paused_ || done_) return;
    if (session_ && session_->checkpointing()) {
      sealed_epoch_ = std::max(sealed_epoch_, session_->last_sealed_epoch());
      return;
    }
    host_->DrainSerial();
    if (host_->console_output().held_bytes() == 0 && (!host_->relay() || host_->network_output().held_bytes() == 0)) return;
    captured.epoch = ++sealed_epoch_;
    host_->console_output().Seal(captured.epoch);
    if (host_->relay()) host_->network_output().Seal(captured.epoch);
  }
  captured.kind = EventKind::kCaptured;
  post_(captured);
}

void VmOwner::RedialLoop() {
  const PrimaryConfig& config = options_.config;
  while (!stopping_.load()) {
    for (int i = 0; i < 10 && !stopping_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    {
      MutexLock lock(&mu_);
      if (!alone_ || offered_ || done_ || config.secondary_uri.empty()) continue;
    }
    Result<std::unique_ptr<transport::Channel>> channel =
        transport::Dial(config.secondary_uri, config.channel, Deadline::AfterMillis(300));
    if (!channel.ok()) continue;
    Log("primary", "a secondary answers at " + config.secondary_uri + ": offering it to protect the VM again");
    Offer(std::move(*channel));
  }
}

bool VmOwner::SecondaryCanTakeOver() const {
  MutexLock lock(&mu_);
  return session_ && session_->SecondaryCanTakeOver();
}

json VmOwner::StatusJson() const {
  std::shared_ptr<ProtectionSession> session;
  {
    MutexLock lock(&mu_);
    session = session_;
  }
  // The fields of a session, zero until the first one runs.
  json status = {{"epoch", 0},         {"shipped_epoch", 0},  {"committed_epoch", 0}, {"in_flight", 0},
                 {"checkpoints", 0},   {"checkpoints_per_second", 0.0},              {"bytes_sent", 0},
                 {"pages_sent", 0},    {"compression_ratio", 0.0},                   {"nacks", 0},
                 {"pause_ms_p50", 0.0}, {"pause_ms_p99", 0.0}, {"commit_ms_p50", 0.0}, {"commit_ms_p99", 0.0},
                 {"disk", nullptr},    {"last_error", ""}};
  if (session) session->AddStatus(status);
  status["record_revision"] = record_revision_.load();
  failover::HeartbeatStats heartbeats = heartbeat_->stats();
  status["heartbeat_rtt_ms"] = heartbeats.smoothed_rtt_ms;
  status["heartbeat_lost"] = heartbeats.lost;
  status["heartbeat_received"] = heartbeats.received;
  status["heartbeat_rejected"] = heartbeats.rejected;
  status["heartbeat_address"] = heartbeat_->address();
  status["heartbeat_second_address"] = heartbeat_->second_address();
  status["heartbeat_networks"] = heartbeat_->networks();
  status["heartbeat_redundant"] = heartbeat_->redundant();
  failover::HeartbeatStats second = heartbeat_->second_stats();
  status["heartbeat_second_received"] = second.received;
  status["heartbeat_second_lost"] = second.lost;
  status["heartbeat_budget_ms"] = options_.config.failover.monitor.budget.count();
  status["metrics_address"] = host_->metrics_address();
  status["qemu_pid"] = host_->qemu_pid();
  status["console_held_bytes"] = host_->console_output().held_bytes();
  status["console_released_bytes"] = host_->released_console().end();
  json network = nullptr;
  if (network::FrameRelay* nic = host_->relay()) {
    network::FrameRelay::Counters frames = nic->counters();
    OutputBuffer& held = host_->network_output();
    network = {{"held_bytes", held.held_bytes()},
               // Offset in the frame stream up to which frames went out (acked).
               {"released_offset", held.produced_offset() - held.held_bytes()},
               {"frames_to_guest", frames.frames_in},
               {"frames_to_network", frames.frames_out},
               {"frames_dropped", frames.frames_dropped}};
  }
  status["network"] = network;
  return status;
}

}  // namespace understudy::primary
