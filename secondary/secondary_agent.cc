#include "secondary/secondary_agent.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>

#include "checkpoint/checkpoint_apply.h"
#include "checkpoint/checkpoint_codec.h"
#include "common/fd_io.h"
#include "common/json_fields.h"
#include "common/log.h"
#include "common/private_directory.h"
#include "common/process_space.h"
#include "console/console_server.h"
#include "control/control_server.h"
#include "failover/takeover.h"
#include "replication/agent_protocol.h"

namespace understudy::secondary {

using nlohmann::json;

std::string_view StateName(SecondaryAgent::State state) {
  switch (state) {
    case SecondaryAgent::State::kWaitingForPrimary: return "waiting-for-primary";
    case SecondaryAgent::State::kSyncing: return "syncing";
    case SecondaryAgent::State::kStandbyReady: return "standby-ready";
    case SecondaryAgent::State::kDegraded: return "degraded";
    case SecondaryAgent::State::kFailingOver: return "failing-over";
    case SecondaryAgent::State::kFenced: return "fenced";
    case SecondaryAgent::State::kPromoting: return "promoting";
    case SecondaryAgent::State::kPromoted: return "promoted";
    case SecondaryAgent::State::kStopped: return "stopped";
    case SecondaryAgent::State::kFailed: return "failed";
  }
  return "unknown";
}

SecondaryAgent::SecondaryAgent(SecondaryConfig config) : config_(std::move(config)) {
  if (config_.verify_period_ms > 0) {
    StandbyVerifierOptions options;
    options.period = std::chrono::milliseconds(config_.verify_period_ms);
    options.runtime_dir = config_.runtime_dir + "/verify";
    options.qemu_binary = config_.qemu_binary;
    // Runs on the verifier's thread; metrics_ exists by then (set at hello, before any commit).
    verifier_ = std::make_unique<StandbyVerifier>(options, [this](const VerificationResult& result) {
      if (metrics_) metrics_->RecordVerification(result.succeeded, result.duration_seconds);
    });
  }
}

void SecondaryAgent::StoreDeviceState(const std::string& device_state) {
  device_state_ = device_state;
  if (test_corrupt_device_state_.load()) device_state_.resize(device_state_.size() / 2);
}

SecondaryAgent::~SecondaryAgent() {
  stop_requested_.store(true);
  verifier_.reset();  // its thread reports into metrics_, which goes before it otherwise
  if (reprotector_) reprotector_->Stop();
  if (serial_thread_.joinable()) serial_thread_.join();
}

void SecondaryAgent::TryReprotect() {
  Result<std::unique_ptr<transport::Channel>> channel =
      transport::Dial(config_.reprotect->secondary_uri, config_.reprotect->channel, Deadline::AfterMillis(500));
  if (!channel.ok()) {
    if (std::chrono::steady_clock::now() >= next_reprotect_log_) {
      Log("secondary", "running unprotected; no new secondary at " + config_.reprotect->secondary_uri + " yet (" +
                           channel.status().message() + ")");
      next_reprotect_log_ = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    }
    return;
  }
  Log("secondary", "a new secondary answered at " + config_.reprotect->secondary_uri + ": protecting the VM again");
  // From here on the guest's output is held until the new secondary acks it: stop releasing
  // it directly. Every byte the serial loop read is already in console_.
  serial_stop_.store(true);
  if (serial_thread_.joinable()) serial_thread_.join();
  primary::PromotedStandby standby{*definition_, &standby_->process().qmp(), standby_->process().pid(),
                                   std::move(standby_serial_), &console_, &metrics_server_->registry(),
                                   disk_server_.get()};
  if (relay_) {
    standby.relay = relay_.get();
    standby.released_network = &released_network_;
  }
  std::lock_guard<std::mutex> lock(status_mutex_);
  // The protecting owner heartbeats from this host's heartbeat address.
  monitor_.reset();
  Result<std::unique_ptr<primary::PromotedVmOwner>> owner = primary::PromotedVmOwner::Start(
      *config_.reprotect, config_.failover, std::move(standby), primary_name_, std::move(*channel));
  if (!owner.ok()) {
    Log("secondary", "cannot protect the VM again: " + owner.status().ToString());
    return;
  }
  reprotector_ = std::move(*owner);
  transitions_.Record("promoted", "re-protecting", "a new secondary at " + config_.reprotect->secondary_uri);
}

void SecondaryAgent::SetState(State state, const std::string& why) {
  std::lock_guard<std::mutex> lock(status_mutex_);
  if (state_ == state) return;
  Log("secondary", "state " + std::string(StateName(state_)) + " -> " + std::string(StateName(state)) +
                       (why.empty() ? "" : " (" + why + ")"));
  transitions_.Record(std::string(StateName(state_)), std::string(StateName(state)), why);
  state_ = state;
  if (metrics_) metrics_->SetPairState(StateName(state));
  standby_qemu_pid_ = standby_ ? standby_->process().pid() : 0;
}

Status SecondaryAgent::Run() {
  UNDERSTUDY_RETURN_IF_ERROR(EnsurePrivateDirectory(config_.runtime_dir));
  std::unique_ptr<console::ConsoleServer> console_server;
  std::thread arbiter_probe([this] { ProbeArbiterLoop(); });
  Status status = [&]() -> Status {
    std::map<std::string, control::Handler> handlers = {
        {"status", [this](const json&) -> Result<json> { return StatusJson(); }},
        {"promote", [this](const json&) -> Result<json> {
           RequestPromotion();
           return json{{"promotion", "requested"}};
         }},
        {"step_down", [this](const json&) -> Result<json> {
           std::lock_guard<std::mutex> lock(status_mutex_);
           if (!reprotector_) return Status::FailedPrecondition("this agent does not run a protected VM");
           UNDERSTUDY_RETURN_IF_ERROR(reprotector_->StepDown());
           return json{{"stepped_down", true}};
         }}};
    // Commands that damage or stall the pair on purpose exist only in a test configuration.
    if (config_.test_control_commands) {
      handlers["test_corrupt_device_state"] = [this](const json& request) -> Result<json> {
        UNDERSTUDY_ASSIGN_OR_RETURN(bool corrupt, OptionalBool(request, "corrupt", true, "test_corrupt_device_state"));
        Log("secondary", std::string("TEST ONLY: committed device state ") + (corrupt ? "damaged from now on" : "intact again"));
        TEST_CorruptDeviceState(corrupt);
        return json{{"corrupt_device_state", corrupt}};
      };
      handlers["test_hold_acks"] = [this](const json& request) -> Result<json> {
        UNDERSTUDY_ASSIGN_OR_RETURN(bool hold, OptionalBool(request, "hold", true, "test_hold_acks"));
        Log("secondary", std::string("TEST ONLY: acks ") + (hold ? "held" : "released"));
        TEST_HoldAcks(hold);
        return json{{"hold_acks", hold}};
      };
      test_ram_dump_.AddControlCommand(handlers);
    }
    if (!config_.disk_image.empty()) {
      UNDERSTUDY_ASSIGN_OR_RETURN(disk_, disk::DiskReplica::Open(config_.disk_image));
    }
    UNDERSTUDY_ASSIGN_OR_RETURN(metrics_server_, monitoring::MetricsServer::Start(config_.metrics_listen));
    Log("secondary", "metrics on http://" + metrics_server_->address() + "/metrics");
    UNDERSTUDY_ASSIGN_OR_RETURN(monitor_, failover::PeerMonitor::Start(config_.failover.monitor, nullptr));
    // The control API starts only now: its status handler reads disk_, metrics_server_ and
    // monitor_ from the control thread, and starting that thread after they are set orders
    // those writes before every read (TSan saw the race when it started first).
    UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<control::ControlServer> control,
                                control::ControlServer::Start(config_.control_socket(), std::move(handlers)));
    UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<transport::Listener> listener,
                                transport::Listen(config_.listen_uri, config_.channel));
    Log("secondary", "listening on " + listener->address());
    {
      std::lock_guard<std::mutex> lock(status_mutex_);
      listen_address_ = listener->address();
    }
    while (!stop_requested_.load()) {
      State state = this->state();
      if (state == State::kPromoted) {
        if (!console_server) {
          UNDERSTUDY_ASSIGN_OR_RETURN(console_server, console::ConsoleServer::Start(config_.console_socket(), console_));
        }
        if (config_.reprotect && !reprotector_) TryReprotect();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      if (state == State::kFenced) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      if (CanTakeOver()) {
        // No primary connected, but a standby: the primary may still be alive (only the link
        // broke) or dead. Only the detector's verdict and the arbiter decide.
        WatchPeer();
        if (this->state() == State::kFenced) continue;
        if (monitor_->verdict() == failover::PeerVerdict::kDead) {
          UNDERSTUDY_RETURN_IF_ERROR(TakeOver("the primary is silent on every path"));
          continue;
        }
        if (promotion_requested_.load()) {
          UNDERSTUDY_RETURN_IF_ERROR(TakeOver("promotion requested"));
          continue;
        }
      }
      Result<std::unique_ptr<transport::Channel>> channel = listener->Accept(Deadline::AfterMillis(10));
      if (!channel.ok()) {
        if (channel.status().code() == Status::Code::kDeadlineExceeded) continue;
        return channel.status();
      }
      {
        std::lock_guard<std::mutex> lock(status_mutex_);
        primary_ = (*channel)->peer_identity();
      }
      Log("secondary", "primary connected from " + (*channel)->peer_identity());
      UNDERSTUDY_RETURN_IF_ERROR(ServePrimary(**channel));
    }
    return Status::Ok();
  }();
  if (!status.ok()) {
    Log("secondary", "failed: " + status.ToString());
    std::lock_guard<std::mutex> lock(status_mutex_);
    last_error_ = status.ToString();
  }
  if (reprotector_) reprotector_->Stop();
  SetState(status.ok() ? State::kStopped : State::kFailed);
  stop_requested_.store(true);
  arbiter_probe.join();
  console_.Close();
  return status;
}

void SecondaryAgent::ProbeArbiterLoop() {
  // A secondary that cannot reach the arbiter could not take over when it has to: operators
  // must see that while the pair is healthy (the primary probes from its side too).
  std::unique_ptr<failover::Arbiter> arbiter;
  while (!stop_requested_.load()) {
    for (int i = 0; i < 50 && !stop_requested_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::string vm;
    {
      std::lock_guard<std::mutex> lock(status_mutex_);
      vm = vm_name_;
    }
    if (vm.empty()) continue;
    if (!arbiter) {
      Result<std::unique_ptr<failover::Arbiter>> made = config_.failover.MakeArbiterFor(vm);
      if (!made.ok()) continue;
      arbiter = std::move(*made);
    }
    arbiter_reachable_.store(arbiter->Read(Deadline::AfterMillis(1000)).ok() ? 1 : 0);
  }
}

void SecondaryAgent::PublishArbiterReachability() {
  int reachable = arbiter_reachable_.load();
  if (metrics_ && reachable >= 0) metrics_->SetArbiterReachable(reachable == 1);
}

Status SecondaryAgent::SendLocked(transport::Channel& channel, const std::string& message) {
  std::lock_guard<std::mutex> lock(send_mutex_);
  return channel.Send(std::as_bytes(std::span(message.data(), message.size())), Deadline::AfterMillis(5000));
}

bool SecondaryAgent::AcceptHello(const transport::Channel& channel, std::span<const std::byte> message) {
  Result<replication::Hello> hello = replication::DecodeHello(message);
  Status bound = hello.ok() ? config_.binding.CheckHello(*hello, channel)
                            : hello.status().WithContext("the hello from " + channel.peer_identity());
  if (!bound.ok()) {
    RefusePrimary(bound);
    return false;
  }
  OnHello(*hello);
  return true;
}

void SecondaryAgent::RefusePrimary(const Status& why) {
  Log("secondary", "refused the primary: " + why.ToString() + "; connection dropped, standby stays at epoch " +
                       std::to_string(image_ ? image_->committed_epoch() : 0));
  std::lock_guard<std::mutex> lock(status_mutex_);
  ++refused_primaries_;
  last_error_ = why.ToString();
}

void SecondaryAgent::OnHello(const replication::Hello& hello) {
  primary_name_ = hello.name;
  // The VM's name, and with it the ownership record's key, come from this host's own
  // configuration (the hello was checked to name the same VM).
  const std::string& vm = config_.binding.vm;
  if (!metrics_) {
    metrics_ = std::make_unique<monitoring::AgentMetrics>(
        metrics_server_->registry(), monitoring::AgentIdentity{vm, "secondary", config_.failover.name});
    metrics_->SetPairState(StateName(state()));
  }
  monitor_->SetPeerUdpAddress(hello.heartbeat_address);
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    vm_name_ = vm;
  }
  Log("secondary", "primary '" + hello.name + "' protects VM '" + vm + "', heartbeats from " +
                       hello.heartbeat_address);
  Result<std::unique_ptr<failover::Arbiter>> arbiter = config_.failover.MakeArbiterFor(vm);
  if (!arbiter.ok()) {
    Log("secondary", "no arbiter: " + arbiter.status().ToString());
    return;
  }
  arbiter_ = std::move(*arbiter);
  Result<failover::OwnershipRecord> record = arbiter_->Read(Deadline::AfterMillis(2000));
  if (record.ok() && record->owner == hello.name) {
    record_revision_ = record->revision;
    Log("secondary", "the ownership record names '" + hello.name + "' at revision " + std::to_string(record->revision));
  } else {
    Log("secondary", "could not confirm the primary's ownership record (" +
                         (record.ok() ? "owner '" + record->owner + "'" : record.status().ToString()) +
                         "); a takeover will read it again");
  }
}

SecondaryAgent::State SecondaryAgent::state() const {
  std::lock_guard<std::mutex> lock(status_mutex_);
  return state_;
}

void SecondaryAgent::WatchPeer() {
  auto now = std::chrono::steady_clock::now();
  if (metrics_ && now >= next_sample_) {
    next_sample_ = now + std::chrono::milliseconds(250);
    failover::HeartbeatStats heartbeats = monitor_->udp_stats();
    metrics_->SetHeartbeat(heartbeats.smoothed_rtt_ms / 1000, heartbeats.lost);
    // Never verified counts from the agent's start, so a verifier that never runs still ages
    // into the alert.
    std::optional<VerificationResult> verified = verifier_ ? verifier_->last() : std::nullopt;
    auto since = verified ? verified->finished : started_at_;
    metrics_->SetVerificationAge(std::chrono::duration<double>(std::chrono::system_clock::now() - since).count());
  }
  State state = this->state();
  failover::PeerVerdict verdict = monitor_->verdict();
  bool healthy = verdict == failover::PeerVerdict::kAlive;
  if (state == State::kStandbyReady && !healthy && verdict != failover::PeerVerdict::kUnknown) SetState(State::kDegraded);
  if (state == State::kDegraded && healthy) SetState(State::kStandbyReady);
  if (!healthy && verdict != failover::PeerVerdict::kUnknown) CheckRecordStillPrimary();
}

void SecondaryAgent::CheckRecordStillPrimary() {
  if (!arbiter_ || record_revision_ == 0 || !image_) return;
  auto now = std::chrono::steady_clock::now();
  if (now < next_record_check_) return;
  next_record_check_ = now + std::chrono::milliseconds(250);
  Result<failover::OwnershipRecord> record = arbiter_->Read(Deadline::AfterMillis(200));
  if (!record.ok()) return;
  if (record->owner == primary_name_ && record->revision == record_revision_) return;
  // The primary went unprotected (or an operator moved the VM): this standby is stale and
  // must never run.
  standby_.reset();
  SetState(State::kFenced, "the ownership record moved to '" + record->owner + "' (" + record->mode +
                               ") at revision " + std::to_string(record->revision) + "; standby discarded");
}

Status SecondaryAgent::ServePrimary(transport::Channel& channel) {
  UNDERSTUDY_RETURN_IF_ERROR(SendLocked(channel, replication::EncodeHello(
                                 {config_.failover.name, "", monitor_->udp_address(),
                                  disk_ ? disk_->lineage_record().ToJson() : nlohmann::json()}))
                                 .WithContext("greeting the primary"));
  std::atomic<bool> serving{true};
  std::thread heartbeats([&] {
    const std::string heartbeat = replication::EncodeHeartbeat();
    while (serving.load()) {
      std::this_thread::sleep_for(config_.failover.monitor.interval);
      std::unique_lock<std::mutex> lock(send_mutex_, std::try_to_lock);
      if (lock.owns_lock()) (void)channel.Send(std::as_bytes(std::span(heartbeat.data(), heartbeat.size())), Deadline::AfterMillis(5000));
    }
  });
  auto stop_heartbeats = [&] {
    serving.store(false);
    heartbeats.join();
  };
  std::vector<std::byte> message;
  bool hello_accepted = false;  // checkpoints only from a primary bound to this VM (primary_binding.h)
  for (;;) {
    if (stop_requested_.load()) {
      stop_heartbeats();
      return Status::Ok();
    }
    if (CanTakeOver()) {
      WatchPeer();
      if (state() == State::kFenced) {
        stop_heartbeats();
        return Status::Ok();
      }
      bool dead = monitor_->verdict() == failover::PeerVerdict::kDead;
      if (dead || promotion_requested_.load()) {
        stop_heartbeats();
        return TakeOver(dead ? "the primary is silent on every path" : "promotion requested");
      }
    }
    Status received = channel.Receive(message, Deadline::AfterMillis(10));
    if (received.code() == Status::Code::kDeadlineExceeded) {
      PublishArbiterReachability();
      if (config_.test_control_commands) test_ram_dump_.ServeIfRequested(image_.get());
      continue;
    }
    if (received.code() == Status::Code::kPeerClosed) {
      Log("secondary", "the primary said goodbye; keeping the standby at epoch " +
                           std::to_string(image_ ? image_->committed_epoch() : 0) + ", not promoting");
      stop_heartbeats();
      if (image_) SetState(State::kWaitingForPrimary);
      return Status::Ok();
    }
    if (received.ok()) {
      monitor_->HeardOnChannel();
      {
        std::lock_guard<std::mutex> lock(status_mutex_);
        bytes_received_ += message.size();
      }
      Result<replication::MessageType> type = replication::TypeOf(message);
      if (type.ok() && *type == replication::MessageType::kHeartbeat) continue;
      if (type.ok() && *type == replication::MessageType::kTestDiskWrite) {
        ApplyUncommittedTestWrite(message);
        continue;
      }
      if (type.ok() && *type == replication::MessageType::kHello) {
        hello_accepted = AcceptHello(channel, message);
        if (hello_accepted) continue;
        stop_heartbeats();
        return Status::Ok();  // refused: the connection drops, nothing committed changes
      }
      if (!hello_accepted) {
        RefusePrimary(Status::FailedPrecondition("a message before the hello from " + channel.peer_identity()));
        stop_heartbeats();
        return Status::Ok();
      }
      // Receive fails only when the channel does (an ack or nack could not be sent).
      received = Receive(channel, message);
      if (received.ok()) continue;
    }
    // The checkpoint link broke. That alone is no reason to promote: the watch in Run()
    // promotes only when the primary is silent on every path and the record is won.
    Log("secondary", "checkpoint link to the primary lost: " + received.ToString());
    stop_heartbeats();
    return Status::Ok();
  }
}

Status SecondaryAgent::Receive(transport::Channel& channel, std::span<const std::byte> message) {
  auto reply = [&](const std::string& bytes) { return SendLocked(channel, bytes); };
  uint64_t committed = image_ ? image_->committed_epoch() : 0;
  if (message.empty() || message[0] != replication::kCheckpointTag) {
    Log("secondary", "ignored a message that is not a checkpoint");
    return Status::Ok();
  }
  Result<checkpoint::Checkpoint> checkpoint = checkpoint::ParseCheckpoint(message.subspan(1));
  if (!checkpoint.ok()) {
    RecordRejection("(expected epoch " + std::to_string(committed + 1) + ")", checkpoint.status(), committed);
    return reply(replication::EncodeNack(committed + 1, checkpoint.status().message()));
  }
  uint64_t epoch = checkpoint->epoch;
  if (epoch == 1 && committed != 0) {
    Log("secondary", "a new pairing starts; discarding the standby at epoch " + std::to_string(committed));
    relay_.reset();
    standby_.reset();
    image_.reset();
    committed = 0;
  }
  if (epoch <= committed) return reply(replication::EncodeAck(epoch));  // a resend we already have
  if (epoch > committed + 1) return reply(replication::EncodeNack(committed + 1, "out of order"));
  Status committed_status = epoch == 1 ? CommitFirst(*checkpoint) : Commit(*checkpoint);
  if (!committed_status.ok()) {
    RecordRejection(std::to_string(epoch), committed_status, committed);
    return reply(replication::EncodeNack(epoch, committed_status.message()));
  }
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    committed_epoch_ = epoch;
  }
  if (metrics_) {
    metrics_->CountCommitted(message.size());
    metrics_->SetEpochs(epoch, epoch);
  }
  if (verifier_) verifier_->MaybeStart(*definition_, *stream_info_, *image_, device_state_);
  if (config_.test_ack_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(config_.test_ack_delay_ms));
  while (test_hold_acks_.load() && !stop_requested_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return reply(replication::EncodeAck(epoch));
}

void SecondaryAgent::RecordRejection(const std::string& which, const Status& why, uint64_t committed) {
  Log("secondary", "rejected checkpoint " + which + ": " + why.ToString() + "; standby stays at epoch " +
                       std::to_string(committed));
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    ++rejected_;
    last_error_ = why.ToString();
  }
  if (metrics_) metrics_->CountRejected();
}

Status SecondaryAgent::CommitFirst(const checkpoint::Checkpoint& checkpoint) {
  SetState(State::kSyncing);
  if (!checkpoint.machine_definition_json || !checkpoint.ram_blocks || !checkpoint.stream_info ||
      !checkpoint.device_state) {
    return Status::Corruption("the first checkpoint lacks the machine definition, RAM blocks, stream info or device state");
  }
  json definition_json = json::parse(*checkpoint.machine_definition_json, nullptr, /*allow_exceptions=*/false);
  if (definition_json.is_discarded()) return Status::Corruption("the machine definition is not JSON");
  // A declaration checked against this host's own policy; nothing from it reaches a QEMU
  // command line unchecked (qemu/vm_definition.h).
  Result<qemu::VmDefinition> checked = qemu::VmDefinition::FromPeerJson(definition_json, config_.vm_policy);
  if (!checked.ok()) return checked.status().WithContext("the primary's machine definition");
  qemu::VmDefinition definition = std::move(*checked);
  UNDERSTUDY_RETURN_IF_ERROR(config_.binding.CheckDefinitionName(definition.name));
  // The blocks a VM of this much memory can have, checked before anything is allocated.
  UNDERSTUDY_ASSIGN_OR_RETURN(
      std::unique_ptr<checkpoint::RamImage> image,
      checkpoint::RamImage::Create(*checkpoint.ram_blocks, checkpoint::RamImage::MaxImageBytes(definition.memory_mib)));
  // The new pairing's image is validated in full (into a fresh RAM image nobody uses yet)
  // before the disk copy — committed state of the previous pairing — is touched.
  UNDERSTUDY_RETURN_IF_ERROR(checkpoint::ApplyCheckpoint(checkpoint, *image));
  if (definition.disk.size_bytes > 0) {
    if (!disk_) {
      return Status::NotSupported("the primary replicates a " + std::to_string(definition.disk.size_bytes) +
                                  "-byte disk but this secondary has no disk_image configured");
    }
    // The initial copy (all of the disk, or what differs from this copy) comes with epoch 1.
    UNDERSTUDY_RETURN_IF_ERROR(disk_->BeginPairing(definition.disk.size_bytes, definition.disk.base_lineage));
  }
  UNDERSTUDY_RETURN_IF_ERROR(JournalDisk(checkpoint));
  if (definition.disk.size_bytes > 0) {
    UNDERSTUDY_RETURN_IF_ERROR(disk_->Apply());
    disk_syncing_ = checkpoint.disk_sync_incomplete;
    if (!disk_syncing_) UNDERSTUDY_RETURN_IF_ERROR(disk_->FinishPairing(definition.disk.lineage));
    // The standby's disk is this copy, served like the primary's so a promoted VM's writes
    // pass through this agent too — tracked from the first, for a later resync. A server of
    // an earlier pairing (its standby is gone) knows an outdated lineage: start afresh.
    disk_server_.reset();
    disk::DiskServerOptions options;
    options.record_writes = false;
    UNDERSTUDY_ASSIGN_OR_RETURN(disk_server_, disk::DiskServer::Start(disk_->path(), config_.runtime_dir + "/disk.sock",
                                                                      std::move(options)));
    definition.disk.nbd_socket = disk_server_->socket_path();
    disk_bytes_applied_ = 0;
    uint64_t bytes = NoteDiskApplied(checkpoint, definition.disk.lineage);
    Log("secondary", "disk copy " + disk_->path() + ": " +
                         (definition.disk.base_lineage.empty() ? "a full copy" : "a resync") + " begins with " +
                         std::to_string(bytes) + " bytes" +
                         (disk_syncing_ ? "; the standby cannot take over until it completes" : ", complete"));
  }
  if (definition.nic.kind == qemu::NicBackend::Kind::kStreamUnixServer) {
    if (!config_.network) {
      return Status::NotSupported("the VM has a NIC but this secondary has no \"network\" (tap) configured");
    }
    definition.nic.path = config_.runtime_dir + "/net.sock";
  }
  for (const checkpoint::OutputChunk& chunk : checkpoint.outputs) {
    // A re-protected VM's console is mid-stream: this copy of it starts where the first
    // checkpoint's output does.
    if (chunk.stream == checkpoint::OutputStream::kConsole && console_.end() == 0) console_.StartAt(chunk.stream_offset);
  }
  UNDERSTUDY_RETURN_IF_ERROR(AppendOutputs(checkpoint));
  definition_ = std::move(definition);
  stream_info_ = checkpoint.stream_info;
  image_ = std::move(image);
  StoreDeviceState(*checkpoint.device_state);

  // The ready standby, from the primary's own definition.
  StandbyOptions options;
  options.runtime_dir = config_.runtime_dir;
  options.qemu_binary = config_.qemu_binary;
  auto started = std::chrono::steady_clock::now();
  Result<std::unique_ptr<Standby>> standby = Standby::Start(*definition_, *stream_info_, *image_, options);
  if (!standby.ok()) {
    // The checkpoint is committed; without a standby, promotion starts a fresh QEMU instead.
    Log("secondary", "could not start the standby: " + standby.status().ToString());
    standby_broken_ = true;
  } else {
    standby_ = std::move(*standby);
    standby_broken_ = false;
    Result<UniqueFd> serial = ConnectUnixSocket(standby_->serial_socket_path(), Deadline::AfterMillis(5000));
    if (serial.ok()) standby_serial_ = std::move(*serial);
    if (HasNic()) {
      Status joined = ConnectStandbyNetwork(network::FrameRelay::Mode::kSilent);
      if (!joined.ok()) Log("secondary", "the standby's NIC is not on tap " + config_.network->tap + ": " + joined.ToString());
    }
    Log("secondary", "standby QEMU ready (pid " + std::to_string(standby_->process().pid()) + ", " +
                         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now() - started)
                                            .count()) +
                         " ms) for VM '" + definition_->name + "'");
  }
  SetState(State::kStandbyReady);
  return Status::Ok();
}

Status SecondaryAgent::JournalDisk(const checkpoint::Checkpoint& checkpoint) {
  if (checkpoint.disk_writes.empty()) return Status::Ok();
  if (!disk_) return Status::NotSupported("the checkpoint carries disk writes but this secondary has no disk_image configured");
  return disk_->Journal(checkpoint.epoch, checkpoint.disk_writes);
}

Status SecondaryAgent::Commit(const checkpoint::Checkpoint& checkpoint) {
  if (!image_) return Status::FailedPrecondition("a checkpoint before the initial image");
  const auto commit_started = std::chrono::steady_clock::now();
  // Disk first into the journal, then RAM (all or nothing), then the disk copy itself: a
  // crash anywhere leaves memory and disk at the same epoch once the journal is repaired.
  UNDERSTUDY_RETURN_IF_ERROR(JournalDisk(checkpoint));
  Status ram = checkpoint::ApplyCheckpoint(checkpoint, *image_);
  if (!ram.ok()) {
    if (disk_) (void)disk_->Discard();
    return ram;
  }
  if (disk_) {
    if (config_.test_stall_disk_apply_at_epoch != 0 && checkpoint.epoch >= config_.test_stall_disk_apply_at_epoch &&
        !checkpoint.disk_writes.empty()) {
      uint64_t epoch = checkpoint.epoch;
      disk_->test_mid_apply = [this, epoch] {
        Log("secondary", "TEST: stalled halfway through applying the disk writes of epoch " + std::to_string(epoch));
        {
          std::lock_guard<std::mutex> lock(status_mutex_);
          test_stalled_in_disk_apply_ = epoch;
        }
        while (!stop_requested_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      };
    }
    Status applied = disk_->Apply();
    if (!applied.ok()) {
      // Memory is at this epoch, the disk copy may not be: this standby must never run.
      Log("secondary", "the disk copy could not take epoch " + std::to_string(checkpoint.epoch) + ": " +
                           applied.ToString() + "; discarding the standby");
      standby_.reset();
      image_.reset();
      return applied;
    }
    uint64_t bytes = NoteDiskApplied(checkpoint, definition_->disk.lineage);
    if (disk_syncing_ && !checkpoint.disk_sync_incomplete) {
      Status named = disk_->FinishPairing(definition_->disk.lineage);
      if (!named.ok()) Log("secondary", "recording the disk copy's lineage: " + named.ToString());
      if (disk_server_) disk_server_->ReloadLineageRecord();
      disk_syncing_ = false;
      Log("secondary", "the initial disk copy is complete with epoch " + std::to_string(checkpoint.epoch) +
                           ": the standby can take over");
    }
    if (metrics_ && bytes > 0) {
      metrics_->ObserveDiskApply(std::chrono::duration<double>(std::chrono::steady_clock::now() - commit_started).count(), bytes);
    }
  }
  // Committed from here on: what follows cannot reject the checkpoint any more.
  if (checkpoint.device_state) StoreDeviceState(*checkpoint.device_state);
  Status outputs = AppendOutputs(checkpoint);
  if (!outputs.ok()) Log("secondary", "console output of epoch " + std::to_string(checkpoint.epoch) + ": " + outputs.ToString());
  if (standby_ && !standby_broken_) {
    Status forwarded = standby_->Forward(checkpoint, *image_);
    if (!forwarded.ok()) {
      Log("secondary", "the standby stopped taking checkpoints; promotion will start a fresh QEMU: " + forwarded.ToString());
      standby_broken_ = true;
    }
  }
  return Status::Ok();
}

uint64_t SecondaryAgent::NoteDiskApplied(const checkpoint::Checkpoint& checkpoint, const std::string& lineage) {
  uint64_t bytes = 0;
  for (const checkpoint::DiskWrite& write : checkpoint.disk_writes) bytes += write.length;
  disk_bytes_applied_ += bytes;
  std::lock_guard<std::mutex> lock(status_mutex_);
  disk_status_ = {{"path", disk_->path()},
                  {"size_bytes", disk_->size_bytes()},
                  {"lineage", lineage},
                  {"applied_epoch", checkpoint.epoch},
                  {"bytes_applied", disk_bytes_applied_},
                  {"initial_copy_complete", !checkpoint.disk_sync_incomplete}};
  return bytes;
}

void SecondaryAgent::ApplyUncommittedTestWrite(std::span<const std::byte> message) {
  if (!config_.test_apply_disk_writes_on_arrival || !disk_ || !image_) return;
  Result<checkpoint::DiskWrite> write = replication::DecodeTestDiskWrite(message);
  Status written = write.ok() ? disk_->WriteUncommitted(*write) : write.status();
  if (!written.ok()) Log("secondary", "TEST: an early disk write: " + written.ToString());
}

Status SecondaryAgent::AppendOutputs(const checkpoint::Checkpoint& checkpoint) {
  for (const checkpoint::OutputChunk& chunk : checkpoint.outputs) {
    if (chunk.stream == checkpoint::OutputStream::kConsole) {
      UNDERSTUDY_RETURN_IF_ERROR(console_.Append(chunk.stream_offset, chunk.bytes));
    }
  }
  return Status::Ok();
}

Status SecondaryAgent::TakeOver(std::string_view why) {
  promotion_requested_.store(false);
  SetState(State::kFailingOver, std::string(why));
  takeover_started_ = std::chrono::steady_clock::now();
  if (!arbiter_) return Status::FailedPrecondition("no arbiter: the primary never said hello");
  while (!stop_requested_.load()) {
    if (record_revision_ == 0) {
      // The primary's record could not be read at hello time; read it now.
      Result<failover::OwnershipRecord> record = arbiter_->Read(Deadline::AfterMillis(1000));
      if (record.ok() && record->owner == primary_name_) record_revision_ = record->revision;
    }
    failover::PairEvent outcome = failover::ContendForOwnership(*arbiter_, failover::Role::kSecondary,
                                                                 config_.failover.name, record_revision_,
                                                                 Deadline::AfterMillis(1000));
    if (metrics_) metrics_->SetArbiterReachable(outcome != failover::PairEvent::kArbiterUnreachable);
    if (outcome == failover::PairEvent::kRecordWon) return Promote(why);
    if (outcome == failover::PairEvent::kRecordLost) {
      standby_.reset();  // fenced: this copy of the VM must never run
      SetState(State::kFenced, "the ownership record went to another host; standby discarded");
      return Status::Ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (monitor_->verdict() != failover::PeerVerdict::kDead) {
      Log("secondary", "the primary is heard again before the arbiter decided; no takeover");
      SetState(State::kStandbyReady);
      return Status::Ok();
    }
  }
  return Status::Ok();
}

Status SecondaryAgent::Promote(std::string_view why) {
  promotion_requested_.store(false);
  auto started = std::chrono::steady_clock::now();
  SetState(State::kPromoting);
  Log("secondary", "promoting the standby at epoch " + std::to_string(image_->committed_epoch()) + ": " +
                       std::string(why));
  if (!standby_ || standby_broken_) {
    StandbyOptions options;
    options.runtime_dir = config_.runtime_dir;
    options.qemu_binary = config_.qemu_binary;
    standby_.reset();
    UNDERSTUDY_ASSIGN_OR_RETURN(standby_, Standby::Start(*definition_, *stream_info_, *image_, options));
    UNDERSTUDY_ASSIGN_OR_RETURN(standby_serial_, ConnectUnixSocket(standby_->serial_socket_path(), Deadline::AfterMillis(5000)));
    relay_.reset();
  }
  if (HasNic() && !relay_) UNDERSTUDY_RETURN_IF_ERROR(ConnectStandbyNetwork(network::FrameRelay::Mode::kSilent));
  UNDERSTUDY_RETURN_IF_ERROR(standby_->Promote(device_state_, Deadline::AfterMillis(10000)));
  if (relay_) {
    // The VM is unprotected here: its frames go out as they come. Its MAC now lives behind
    // this host's tap; gratuitous announcements make the bridge (and peers) learn that.
    relay_->SetMode(network::FrameRelay::Mode::kDirect);
    Result<json> announced = standby_->process().qmp().Execute(
        "announce-self", {{"initial", 20}, {"max", 200}, {"rounds", 4}, {"step", 60}}, Deadline::AfterMillis(2000));
    if (!announced.ok()) Log("secondary", "announce-self: " + announced.status().ToString());
  }
  double elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  serial_thread_ = std::thread([this] { SerialLoop(); });
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    promotion_ms_ = elapsed;
  }
  Log("secondary", "promoted: the guest runs from epoch " + std::to_string(image_->committed_epoch()) + " after " +
                       std::to_string(elapsed) + " ms; console continues at offset " + std::to_string(console_.end()));
  if (metrics_) {
    metrics_->CountFailover(std::chrono::duration<double>(std::chrono::steady_clock::now() - takeover_started_).count());
  }
  SetState(State::kPromoted, "record won; standby running");
  return Status::Ok();
}

Status SecondaryAgent::ConnectStandbyNetwork(network::FrameRelay::Mode mode) {
  relay_.reset();
  UNDERSTUDY_ASSIGN_OR_RETURN(relay_, network::FrameRelay::Connect(definition_->nic.path, config_.network->tap,
                                                                   config_.network->netns, mode));
  return Status::Ok();
}

void SecondaryAgent::SerialLoop() {
  // The promoted VM runs unprotected here: its output is released as it comes.
  std::array<std::byte, 4096> buffer;
  while (!stop_requested_.load() && !serial_stop_.load()) {
    Result<size_t> count = ReadSome(standby_serial_.get(), buffer, Deadline::AfterMillis(100));
    if (count.ok()) {
      Status appended = console_.Append(console_.end(), {reinterpret_cast<const char*>(buffer.data()), *count});
      if (!appended.ok()) Log("secondary", appended.ToString());
    } else if (count.status().code() != Status::Code::kDeadlineExceeded) {
      Log("secondary", "the promoted VM's console closed: " + count.status().ToString());
      return;
    }
  }
}

namespace {

json VerificationJson(const std::optional<VerificationResult>& result) {
  if (!result) return nullptr;
  return {{"succeeded", result->succeeded},
          {"epoch", result->epoch},
          {"duration_ms", result->duration_seconds * 1000},
          {"age_s", std::chrono::duration<double>(std::chrono::system_clock::now() - result->finished).count()},
          {"error", result->error}};
}

}  // namespace

json SecondaryAgent::StatusJson() const {
  std::lock_guard<std::mutex> lock(status_mutex_);
  if (reprotector_) {
    // This host runs the VM now and protects it: it answers as a primary.
    json status = reprotector_->StatusJson();
    // One history: how this host came to run the VM, then how it protects it.
    status["transitions"] = transitions_.MergedWith(status.value("transitions", json::array()));
    status["promotion_ms"] = promotion_ms_;
    return status;
  }
  return {
      {"role", "secondary"},
      {"state", StateName(state_)},
      {"listen", listen_address_},
      {"owner_name", config_.failover.name},
      {"record_revision", record_revision_},
      {"peer", monitor_ ? failover::VerdictName(monitor_->verdict()) : "unknown"},
      {"heartbeat_rtt_ms", monitor_ ? monitor_->udp_stats().smoothed_rtt_ms : 0.0},
      {"heartbeat_lost", monitor_ ? monitor_->udp_stats().lost : 0},
      {"heartbeat_rejected", monitor_ ? monitor_->udp_stats().rejected : 0},
      {"heartbeat_address", monitor_ ? monitor_->udp_address() : ""},
      {"heartbeat_budget_ms", monitor_ ? monitor_->budget().count() : 0},
      {"primary", primary_},
      {"pid", ::getpid()},
      {"process_space", ThisProcessSpace()},
      {"metrics_address", metrics_server_ ? metrics_server_->address() : ""},
      {"standby_qemu_pid", standby_qemu_pid_},
      {"transitions", transitions_.ToJson()},
      {"committed_epoch", committed_epoch_},
      {"rejected_checkpoints", rejected_},
      {"refused_primaries", refused_primaries_},
      {"bytes_received", bytes_received_},
      {"promotion_ms", promotion_ms_},
      {"last_verification", VerificationJson(verifier_ ? verifier_->last() : std::nullopt)},
      {"disk", disk_status_},
      {"arbiter_reachable", arbiter_reachable_.load() < 0 ? json(nullptr) : json(arbiter_reachable_.load() == 1)},
      {"test_stalled_in_disk_apply", test_stalled_in_disk_apply_},
      {"last_error", last_error_},
  };
}

}  // namespace understudy::secondary
