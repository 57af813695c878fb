#include "primary/protection_session.h"

#include <sys/socket.h>

#include <algorithm>

#include "common/log.h"
#include "primary/capture_stage.h"
#include "primary/colo_setup.h"
#include "replication/agent_protocol.h"

namespace understudy::primary {

using nlohmann::json;

ProtectionSession::ProtectionSession(VmHost& host, SessionContext context)
    : host_(host),
      context_(std::move(context)),
      config_(*context_.config),
      disk_(host.disk(), context_.config->disk_sync_bytes_per_checkpoint) {
  pacer_ = MakePacer();
}

std::unique_ptr<ProtectionSession> ProtectionSession::Open(VmHost& host, std::unique_ptr<transport::Channel> channel,
                                                           SessionContext context) {
  std::unique_ptr<ProtectionSession> session(new ProtectionSession(host, std::move(context)));
  session->StartShipper(std::move(channel));
  session->heartbeat_thread_ = std::thread([raw = session.get()] { raw->HeartbeatLoop(); });
  return session;
}

ProtectionSession::~ProtectionSession() { Stop(/*goodbye=*/false); }

failover::Event ProtectionSession::MakeEvent(failover::EventKind kind) const {
  failover::Event event;
  event.kind = kind;
  event.peer_incarnation = context_.incarnation;
  return event;
}

void ProtectionSession::StartShipper(std::unique_ptr<transport::Channel> channel) {
  ShipperOptions options;
  options.releases_output = false;  // only the controller's kReleaseUpTo releases
  options.on_peer_message = [this] {
    failover::Event heard = MakeEvent(failover::EventKind::kHeard);
    heard.path = failover::Path::kReplication;
    // A crossed byte cap ends the pairing as a dead secondary would: the record decides.
    if (over_cap_.load()) heard.peer_says = failover::PeerSays::kAlone;
    context_.post(heard);
  };
  options.on_hello = [this](const replication::Hello& hello) {
    Log("primary", "secondary '" + hello.name + "' heartbeats from " + hello.heartbeat_address);
    disk_.SetPeerCopy(hello.disk);
    if (context_.on_peer_heartbeat_address) context_.on_peer_heartbeat_address(hello.heartbeat_address);
    failover::Event event = MakeEvent(failover::EventKind::kHello);
    event.peer = hello.name;
    context_.post(event);
  };
  options.on_shipped = [this](uint64_t pages, uint64_t raw_bytes, uint64_t sent_bytes) {
    context_.metrics->ObserveShipped(pages, raw_bytes, sent_bytes);
  };
  options.on_acked = [this](uint64_t epoch, std::chrono::duration<double> since_stop) { OnAcked(epoch, since_stop); };
  options.max_in_flight = config_.max_in_flight;
  options.caps = config_.byte_caps;  // memory held for the secondary is capped in bytes
  options.max_message_bytes = config_.channel.max_message_bytes;
  if (disk::DiskServer* disk = host_.disk()) options.unshipped_disk_bytes = [disk] { return disk->unsealed_bytes(); };
  options.on_cap_crossed = [this](const CapCrossing& crossing) {
    over_cap_.store(true);
    if (context_.on_pairing_over) context_.on_pairing_over();
    context_.metrics->CountByteCapEvent(crossing.cap);
  };
  // A channel that failed never ships again: were the peer still heard on the heartbeats,
  // output would stay held for good. The pairing ends as after a byte cap (the record decides).
  options.on_lost = [this](const Status&) {
    if (context_.on_pairing_over) context_.on_pairing_over();
  };
  if (host_.relay()) {
    options.network_output = &host_.network_output();
    options.released_network = &host_.released_network();
  }
  options.test_corrupt_epoch = config_.test_corrupt_epoch;
  shipper_ = std::make_unique<CheckpointShipper>(std::move(channel), host_.console_output(), host_.released_console(),
                                                 std::move(options));
}

void ProtectionSession::OnAcked(uint64_t epoch, std::chrono::duration<double> since_stop) {
  disk_.Acked(epoch);
  acked_.store(std::max(acked_.load(), epoch));
  context_.metrics->ObserveCommit(since_stop.count());
  {
    MutexLock lock(&mu_);
    commits_ms_.push_back(since_stop.count() * 1000);
    if (commits_ms_.size() > 2048) commits_ms_.erase(commits_ms_.begin(), commits_ms_.begin() + 1024);
  }
  if (!paired_.load()) return;  // unpaired: its acks mean nothing any more
  failover::Event acked = MakeEvent(failover::EventKind::kAcked);
  acked.epoch = epoch_base_.load() + epoch;
  context_.post(acked);
}

Status ProtectionSession::Pair(uint64_t revision, uint64_t epoch_base) {
  paired_.store(true);
  UNDERSTUDY_RETURN_IF_ERROR(shipper_->SendControl(replication::EncodeHello(
      {config_.failover.name, config_.vm.name, context_.heartbeat_address, /*disk=*/nullptr, revision})));
  if (colo_started_.exchange(true)) return Status::Ok();  // our secondary asked again
  epoch_base_.store(epoch_base);
  last_sealed_.store(epoch_base);
  {
    MutexLock lock(&mu_);
    started_ = std::chrono::steady_clock::now();
  }
  if (config_.test_ship_disk_writes_early) host_.TEST_SetEarlyDiskWriteTarget(shipper_.get());
  return StartCheckpointing();
}

Status ProtectionSession::StartCheckpointing() {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return Status::FromErrno("socketpair", errno);
  UniqueFd ours(pair[0]), theirs(pair[1]);
  (void)WidenColoSendBuffer(theirs.get(), 64 << 20);  // a whole 8192-page checkpoint and more
  CaptureHooks hooks;
  hooks.ram_section_id = [this] { return peer_->reader().ram_section_id().value_or(0); };
  hooks.definition_json = [this] { return PairingDefinitionJson(); };
  hooks.seal = [this](EpochCapture& capture) { Seal(capture); };
  hooks.submit = [this](EpochCapture&& capture) { Submit(std::move(capture)); };
  hooks.test_drop_page_at_epoch = config_.test_drop_page_at_epoch;
  capture_ = std::make_unique<CaptureStage>(std::move(hooks));
  peer_ = std::make_unique<ColoPeer>(std::move(ours), *capture_, PeerOptions());
  if (pacer_) host_.SetOutputObserver([this] { pacer_->OutputHeld(); });
  // Paced: QEMU asks at once after each checkpoint and the pacer holds the reply until due.
  auto delay = pacer_ ? kPacedQemuCheckpointDelay : std::chrono::milliseconds(config_.checkpoint_interval_ms);
  colo_thread_ = std::thread([this] { ColoLoop(); });
  Status started = host_.WithQmp([&](qemu::QmpClient& qmp) {
    return StartColoMigration(qmp, theirs.get(), delay, Deadline::AfterMillis(10000));
  });
  if (!started.ok()) {
    ending_.store(true);
    peer_->RequestStop();
  }
  return started;
}

ColoPeerOptions ProtectionSession::PeerOptions() {
  ColoPeerOptions options;
  options.read_buffer = &capture_->arena();  // pages are kept where they were read, not copied
  options.before_reply = [this](Deadline deadline) {
    if (pacer_) UNDERSTUDY_RETURN_IF_ERROR(pacer_->WaitUntilDue(deadline));
    return WaitForRoomOrStall(deadline);
  };
  options.on_checkpoint_acked = [this](const CheckpointTiming& timing) {
    RecordPause(timing);
    if (pacer_) pacer_->OnCheckpoint(timing);
  };
  if (config_.test_control_commands && context_.test_hold) {
    options.test_before_loaded = [this] {
      return context_.test_hold->WaitIfHeld(shipper_->stats().captured_epoch, stopping_);
    };
  }
  return options;
}

void ProtectionSession::ColoLoop() {
  Status served = peer_->Run();
  host_.SetOutputObserver(nullptr);
  if (ending_.load() || stopping_.load()) return;
  // The COLO stream ended without us asking: QEMU died or broke the stream.
  Log("primary", "the COLO stream ended: " + served.ToString());
  context_.post(MakeEvent(failover::EventKind::kLocalVmDied));
}

void ProtectionSession::Seal(EpochCapture& capture) {
  host_.DrainSerial();
  // Before the buffers are sealed: output noted after this is at worst already sealed (an
  // extra checkpoint), never left behind without a request.
  if (pacer_) pacer_->Sealing();
  uint64_t global = epoch_base_.load() + capture.epoch;
  capture.console_output = host_.console_output().Seal(global);
  if (host_.relay()) capture.network_output = host_.network_output().Seal(global);
  last_sealed_.store(global);
  Status sealed = disk_.Seal(capture);
  if (sealed.ok()) return;
  // Without its disk the standby must never run: this pairing cannot go on.
  Log("primary", "cannot read the disk for the initial copy: " + sealed.ToString() + "; the pairing ends");
  failover::Event gone = MakeEvent(failover::EventKind::kHeard);
  gone.peer_says = failover::PeerSays::kAlone;
  context_.post(gone);
}

void ProtectionSession::Submit(EpochCapture&& capture) {
  failover::Event captured = MakeEvent(failover::EventKind::kCaptured);
  captured.epoch = epoch_base_.load() + capture.epoch;
  shipper_->Submit(std::move(capture));
  context_.post(captured);
}

std::string ProtectionSession::PairingDefinitionJson() const {
  qemu::VmDefinition pairing = host_.vm();
  pairing.disk.lineage = disk_.lineage();
  pairing.disk.base_lineage = disk_.base_lineage();
  return pairing.ToPeerJson().dump();
}

void ProtectionSession::HeartbeatLoop() {
  const std::string heartbeat = replication::EncodeHeartbeat();
  while (!stopping_.load()) {
    std::this_thread::sleep_for(config_.failover.monitor.interval);
    if (fenced_.load()) continue;  // silent: the secondary must treat us as gone
    (void)shipper_->SendControl(heartbeat);
  }
}

Status ProtectionSession::WaitForRoomOrStall(Deadline deadline) {
  // Without acks and without a decision from the controller, the right move is to wait:
  // QEMU's next checkpoint is delayed (the VM keeps running, its output held) — for as long
  // as it takes, since going on without a secondary is the controller's decision.
  auto stalled_since = std::chrono::steady_clock::now();
  auto next_log = stalled_since + std::chrono::seconds(5);
  for (;;) {
    Status room = shipper_->WaitForRoom(Deadline::AfterMillis(100).Min(deadline));
    if (room.code() != Status::Code::kDeadlineExceeded) return room;
    if (stopping_.load() || ending_.load()) return Status::FailedPrecondition("stopping");
    if (std::chrono::steady_clock::now() >= next_log) {
      auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - stalled_since);
      Log("primary", "stalled for " + std::to_string(seconds.count()) + " s: " + room.message() + "; output held");
      next_log += std::chrono::seconds(5);
    }
  }
}

void ProtectionSession::GoUnprotected() { shipper_->GoUnprotected(); }

void ProtectionSession::Fence() {
  paired_.store(false);
  fenced_.store(true);
  shipper_->Fence();
}

uint64_t ProtectionSession::EndCheckpointing() {
  ending_.store(true);
  if (colo_started_.load()) {
    // QEMU leaves COLO and runs on as a plain VM; the COLO stream ends.
    Result<json> left = host_.Qmp("x-colo-lost-heartbeat", json::object(), Deadline::AfterMillis(5000));
    if (!left.ok()) Log("primary", "QEMU did not leave COLO: " + left.status().ToString());
  }
  if (pacer_) pacer_->Stop();
  if (colo_thread_.joinable()) colo_thread_.join();
  return last_sealed_.load();
}

void ProtectionSession::Stop(bool goodbye) {
  if (stopping_.exchange(true)) return;
  if (pacer_) pacer_->Stop();  // a COLO peer waiting for the next checkpoint goes on at once
  if (peer_) peer_->RequestStop();
  if (colo_thread_.joinable()) colo_thread_.join();
  host_.TEST_SetEarlyDiskWriteTarget(nullptr);
  shipper_->Stop(goodbye);
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
}

void ProtectionSession::RecordPause(const CheckpointTiming& timing) {
  double since_last = last_pause_start_.time_since_epoch().count() == 0
                          ? 0
                          : std::chrono::duration<double>(timing.reply_sent - last_pause_start_).count();
  last_pause_start_ = timing.reply_sent;
  context_.metrics->ObservePause(std::chrono::duration<double>(timing.pause()).count(), since_last);
  MutexLock lock(&mu_);
  ++checkpoints_;
  pauses_ms_.push_back(std::chrono::duration<double, std::milli>(timing.pause()).count());
  pause_phases_.Add(timing);
  if (pauses_ms_.size() > 2048) pauses_ms_.erase(pauses_ms_.begin(), pauses_ms_.begin() + 1024);
}

bool ProtectionSession::lost() const { return shipper_->stats().secondary_lost; }

bool ProtectionSession::SecondaryCanTakeOver() const { return disk_.SecondaryHasDisk(acked_.load()); }

}  // namespace understudy::primary
