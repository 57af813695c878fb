#include "secondary/secondary_agent.h"

#include "common/log.h"
#include "common/private_directory.h"

namespace understudy::secondary {

using failover::ControllerState;
using failover::Event;
using failover::EventKind;

namespace {

Event HeardOn(failover::Path path, uint64_t incarnation, failover::PeerSays says = failover::PeerSays::kPaired) {
  Event event = Event::Of(EventKind::kHeard, 0);
  event.path = path;
  event.peer_incarnation = incarnation;
  event.peer_says = says;
  return event;
}

// A new primary may pair only while the controller is between pairings or serves a
// pairing that a restarted primary has replaced; never while it contends, runs or is fenced.
bool MayPairAgain(ControllerState state) {
  return state == ControllerState::kJoining || state == ControllerState::kStoodDown ||
         state == ControllerState::kSyncing || state == ControllerState::kProtected ||
         state == ControllerState::kDegraded;
}

}  // namespace

SecondaryAgent::SecondaryAgent(SecondaryConfig config) : config_(std::move(config)) {}

SecondaryAgent::~SecondaryAgent() {
  stop_requested_.store(true);
  StopController();
  verifier_.reset();  // its thread reports into metrics_
  StopOwner();
  if (serial_thread_.joinable()) serial_thread_.join();
}

Status SecondaryAgent::Run() {
  UNDERSTUDY_RETURN_IF_ERROR(EnsurePrivateDirectory(config_.runtime_dir));
  // A secondary that cannot reach the arbiter could not take over when it has to: operators
  // must see that while the pair is healthy (the controller reads only when it must).
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<failover::Arbiter> probe_arbiter,
                              config_.failover.MakeArbiterFor(config_.binding.vm));
  auto probe = std::make_unique<failover::ArbiterProbe>(
      *probe_arbiter, std::chrono::seconds(5), [this](bool reachable) { arbiter_reachable_.store(reachable ? 1 : 0); });
  Status status = Serve();
  if (!status.ok()) Log("secondary", "failed: " + status.ToString());
  StopOwner();
  {
    MutexLock lock(&status_mutex_);
    if (!status.ok()) last_error_ = status.ToString();
    final_state_ = status.ok() ? "stopped" : "failed";
  }
  stop_requested_.store(true);
  StopController();
  probe.reset();
  console_.Close();
  return status;
}

Status SecondaryAgent::Serve() {
  UNDERSTUDY_RETURN_IF_ERROR(StartParts());
  // The control API starts only now: its handlers read what StartParts set, and starting its
  // thread after those writes orders them before every read.
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<control::ControlServer> control,
                              control::ControlServer::Start(config_.control_socket(), ControlHandlers()));
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<transport::Listener> listener,
                              transport::Listen(config_.listen_uri, config_.channel));
  Log("secondary", "listening on " + listener->address());
  {
    MutexLock lock(&status_mutex_);
    listen_address_ = listener->address();
  }
  return AcceptPrimaries(*listener);
}

void SecondaryAgent::OnHeartbeatHeard(failover::Path path) {
  // Each heartbeat path reports itself (one network reports both: failover/heartbeat_paths.h).
  const uint64_t incarnation = incarnation_.load();
  if (incarnation == 0) return;
  Post(HeardOn(path, incarnation));
}

void SecondaryAgent::Carry(const failover::Action& action) {
  OwnerRole* owner;
  {
    MutexLock lock(&status_mutex_);
    owner = owner_.get();  // once set, it lives until the agent's destructor
  }
  // The VM runs here and an owner role protects it: every action is the owner's (a fence
  // stops the guest there; the standby was handed over).
  if (owner) {
    owner->Carry(action);
    return;
  }
  MutexLock lock(&status_mutex_);
  switch (action.kind) {
    case failover::ActionKind::kPromote:
      orders_.promote = true;
      return;
    case failover::ActionKind::kFence:
      orders_.fence = true;
      return;
    case failover::ActionKind::kAckGoodbye:
      Log("secondary", "the primary's goodbye is acknowledged: this standby is never promoted");
      return;
    case failover::ActionKind::kUnpair:
      if (!vm_running_ && !orders_.promote) {
        orders_.unpair = true;
        return;
      }
      break;
    default:
      break;
  }
  // Owner actions before an owner role exists: the promoted VM releases its output directly
  // (SerialLoop) until one does.
  Log("secondary", "owner action " + failover::ActionName(action) + ": no owner role yet");
}

SecondaryAgent::Orders SecondaryAgent::TakeOrders() {
  MutexLock lock(&status_mutex_);
  Orders orders = orders_;
  orders_ = Orders{};
  return orders;
}

Status SecondaryAgent::Obey(const Orders& orders, bool& drop) {
  if (orders.promote) {
    drop = true;
    Promote();
  }
  if (orders.fence) {
    drop = true;
    Fence();
  }
  if (orders.unpair) drop = true;
  return Status::Ok();
}

Status SecondaryAgent::AcceptPrimaries(transport::Listener& listener) {
  while (!stop_requested_.load()) {
    bool drop = false;
    UNDERSTUDY_RETURN_IF_ERROR(Obey(TakeOrders(), drop));
    Sample();
    bool running, fenced;
    {
      MutexLock lock(&status_mutex_);
      running = vm_running_;
      fenced = state_ == ControllerState::kFenced;
    }
    if (running) {
      UNDERSTUDY_RETURN_IF_ERROR(RunAsOwner());
      continue;
    }
    if (fenced) {  // stays up (nothing runs) so operators can see why
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    Result<std::unique_ptr<transport::Channel>> channel = listener.Accept(Deadline::AfterMillis(10));
    if (!channel.ok()) {
      if (channel.status().code() == Status::Code::kDeadlineExceeded) continue;
      return channel.status();
    }
    {
      MutexLock lock(&status_mutex_);
      primary_ = (*channel)->peer_identity();
    }
    Log("secondary", "primary connected from " + (*channel)->peer_identity());
    UNDERSTUDY_RETURN_IF_ERROR(ServePrimary(**channel));
  }
  return Status::Ok();
}

Status SecondaryAgent::ServePrimary(transport::Channel& channel) {
  UNDERSTUDY_RETURN_IF_ERROR(SendLocked(channel, replication::EncodeHello({config_.failover.name, "", HeartbeatAddress(),
                                                                           committer_->disk()
                                                                               ? committer_->disk()->lineage_record().ToJson()
                                                                               : nlohmann::json()}))
                                 .WithContext("greeting the primary"));
  std::atomic<bool> serving{true};
  std::thread heartbeats([&] { ChannelHeartbeatLoop(channel, serving); });
  std::vector<std::byte> message;
  bool hello_accepted = false;  // checkpoints only from a primary bound to this VM (primary_binding.h)
  while (!stop_requested_.load()) {
    bool drop = false;
    Status obeyed = Obey(TakeOrders(), drop);
    if (!obeyed.ok() || drop) break;
    Sample();
    Status received = channel.Receive(message, Deadline::AfterMillis(10));
    if (received.code() == Status::Code::kDeadlineExceeded) {
      if (config_.test_control_commands) test_ram_dump_.ServeIfRequested(committer_->image());
      continue;
    }
    if (received.code() == Status::Code::kPeerClosed) {
      SayGoodbye();
      break;
    }
    // A broken link alone is no reason to promote: the controller decides from every path.
    if (!received.ok()) {
      Log("secondary", "checkpoint link to the primary lost: " + received.ToString());
      break;
    }
    if (!HandleMessage(channel, message, hello_accepted)) break;
  }
  serving.store(false);
  heartbeats.join();
  return Status::Ok();
}

void SecondaryAgent::ChannelHeartbeatLoop(transport::Channel& channel, const std::atomic<bool>& serving) {
  const std::string heartbeat = replication::EncodeHeartbeat();
  while (serving.load()) {
    std::this_thread::sleep_for(config_.failover.monitor.interval);
    if (!send_mutex_.TryLock()) continue;  // a reply is going out: that is traffic too
    (void)channel.Send(std::as_bytes(std::span(heartbeat.data(), heartbeat.size())), Deadline::AfterMillis(5000));
    send_mutex_.Unlock();
  }
}

void SecondaryAgent::SayGoodbye() {
  // The primary closed the channel on purpose (a clean stop, or it runs on without us): the
  // controller stands down for good. Wait until it did, so a new pairing finds it decided.
  Log("secondary", "the primary said goodbye; the standby stays at epoch " +
                       std::to_string(committer_->committed_epoch()) + " and is not promoted");
  Post(HeardOn(failover::Path::kReplication, incarnation_.load(), failover::PeerSays::kGoodbye));
  if (std::shared_ptr<failover::ControllerDriver> driver = this->driver()) {
    driver->WaitFor([](ControllerState state) { return !MayPairAgain(state) || state == ControllerState::kStoodDown; },
                    Deadline::AfterMillis(1000));
  }
}

bool SecondaryAgent::HandleMessage(transport::Channel& channel, std::span<const std::byte> message,
                                   bool& hello_accepted) {
  if (hello_accepted) Post(HeardOn(failover::Path::kReplication, incarnation_.load()));
  {
    MutexLock lock(&status_mutex_);
    bytes_received_ += message.size();
  }
  Result<replication::MessageType> type = replication::TypeOf(message);
  if (type.ok() && *type == replication::MessageType::kHeartbeat) return true;
  if (type.ok() && *type == replication::MessageType::kTestDiskWrite) {
    ApplyUncommittedTestWrite(message);
    return true;
  }
  if (type.ok() && *type == replication::MessageType::kHello) {
    hello_accepted = AcceptHello(channel, message);
    return hello_accepted;  // refused: the connection drops, nothing committed changes
  }
  if (!hello_accepted) {
    RefusePrimary(Status::FailedPrecondition("a message before the hello from " + channel.peer_identity()));
    return false;
  }
  Status received = Receive(channel, message);  // fails only when the channel does
  if (!received.ok()) Log("secondary", "checkpoint link to the primary lost: " + received.ToString());
  return received.ok();
}

bool SecondaryAgent::AcceptHello(const transport::Channel& channel, std::span<const std::byte> message) {
  Result<replication::Hello> hello = replication::DecodeHello(message);
  Status bound = hello.ok() ? config_.binding.CheckHello(*hello, channel)
                            : hello.status().WithContext("the hello from " + channel.peer_identity());
  std::shared_ptr<failover::ControllerDriver> driver = this->driver();
  ControllerState state = driver ? driver->snapshot().state : ControllerState::kFenced;
  if (bound.ok() && !MayPairAgain(state)) {
    bound = Status::FailedPrecondition("this secondary is " + std::string(failover::ControllerStateName(state)) +
                                       ": it pairs with no primary now");
  }
  // A pairing that ended (goodbye) or that this primary replaces gets a fresh controller.
  if (bound.ok() && state != ControllerState::kJoining) bound = StartController();
  if (!bound.ok()) {
    RefusePrimary(bound);
    return false;
  }
  const uint64_t incarnation = incarnation_.fetch_add(1) + 1;
  SetHeartbeatPeer(hello->heartbeat_address);
  {
    MutexLock lock(&status_mutex_);
    pairing_revision_ = hello->revision;
  }
  Event welcome = Event::Of(EventKind::kWelcome, 0);
  welcome.peer = hello->name;
  welcome.peer_incarnation = incarnation;
  welcome.revision = hello->revision;
  Post(std::move(welcome));
  Log("secondary", "primary '" + hello->name + "' protects VM '" + config_.binding.vm + "' at record revision " +
                       std::to_string(hello->revision) + ", heartbeats from " + hello->heartbeat_address);
  return true;
}

void SecondaryAgent::RefusePrimary(const Status& why) {
  Log("secondary", "refused the primary: " + why.ToString() + "; connection dropped, standby stays at epoch " +
                       std::to_string(committer_->committed_epoch()));
  MutexLock lock(&status_mutex_);
  ++refused_primaries_;
  last_error_ = why.ToString();
}

Status SecondaryAgent::Receive(transport::Channel& channel, std::span<const std::byte> message) {
  Committer::Reply reply = committer_->Receive(message);
  if (!reply.error.empty()) {
    MutexLock lock(&status_mutex_);
    last_error_ = reply.error;
  }
  if (reply.committed_epoch != 0) {
    {
      MutexLock lock(&status_mutex_);
      standby_qemu_pid_ = standby_->pid();
    }
    // Committed, and the standby could run it (the initial disk copy complete too).
    if (committer_->CanTakeOver()) {
      Event committed = Event::Of(EventKind::kCommitted, 0);
      committed.epoch = reply.committed_epoch;
      committed.peer_incarnation = incarnation_.load();
      Post(std::move(committed));
    }
    if (verifier_) {
      verifier_->MaybeStart(*committer_->definition(), *committer_->stream_info(), *committer_->image(),
                            committer_->device_state());
    }
    if (config_.test_ack_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(config_.test_ack_delay_ms));
    while (test_hold_acks_.load() && !stop_requested_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (reply.message.empty()) return Status::Ok();
  return SendLocked(channel, reply.message);
}

void SecondaryAgent::ApplyUncommittedTestWrite(std::span<const std::byte> message) {
  if (!config_.test_apply_disk_writes_on_arrival || !committer_->disk() || !committer_->image()) return;
  Result<checkpoint::DiskWrite> write = replication::DecodeTestDiskWrite(message);
  Status written = write.ok() ? committer_->disk()->WriteUncommitted(*write) : write.status();
  if (!written.ok()) Log("secondary", "TEST: an early disk write: " + written.ToString());
}

Status SecondaryAgent::SendLocked(transport::Channel& channel, const std::string& message) {
  MutexLock lock(&send_mutex_);
  return channel.Send(std::as_bytes(std::span(message.data(), message.size())), Deadline::AfterMillis(5000));
}

}  // namespace understudy::secondary
