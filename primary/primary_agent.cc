#include "primary/primary_agent.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>

#include "common/fd_io.h"
#include "common/log.h"
#include "common/private_directory.h"
#include "common/process_space.h"
#include "console/console_server.h"
#include "control/control_server.h"
#include "failover/takeover.h"
#include "primary/colo_setup.h"
#include "replication/agent_protocol.h"

namespace understudy::primary {

namespace qs = checkpoint::qemu_stream;
using nlohmann::json;

namespace {

// How long a peer must stay silent before a syncing primary acts on it (see FailoverLoop).
constexpr auto kSyncGrace = std::chrono::seconds(2);

}  // namespace

std::string_view StateName(PrimaryAgent::State state) {
  switch (state) {
    case PrimaryAgent::State::kStarting: return "starting";
    case PrimaryAgent::State::kRunning: return "running";
    case PrimaryAgent::State::kStopped: return "stopped";
    case PrimaryAgent::State::kFailed: return "failed";
  }
  return "unknown";
}

// Captures each epoch from QEMU's stream. Runs on the COLO peer's thread, inside the VM's
// pause for checkpoints: copies only.
class PrimaryAgent::StreamConsumer : public checkpoint::QemuStreamVisitor {
 public:
  explicit StreamConsumer(PrimaryAgent& agent) : agent_(agent) { current_.epoch = 1; }

  Status OnConfiguration(const checkpoint::StreamConfiguration& configuration) override {
    stream_info_.machine_type = configuration.machine_type;
    stream_info_.capabilities = configuration.capabilities;
    return Status::Ok();
  }
  Status OnRamBlocks(const checkpoint::RamBlockList& blocks) override {
    for (uint32_t i = 0; i < blocks.size(); ++i) {
      if (blocks[i].id == "pc.ram") pc_ram_block_ = i;
    }
    current_.ram_blocks = blocks;
    current_.page_bytes.reserve(64u << 20);
    return Status::Ok();
  }
  Status OnRamPage(uint32_t block, uint64_t offset, std::span<const std::byte> page) override {
    current_.AddPage(block, offset, page);
    return Status::Ok();
  }
  Status OnRamZeroPage(uint32_t block, uint64_t offset, uint8_t fill) override {
    if (fill != 0) return Status::NotSupported("a RAM page filled with byte " + std::to_string(fill));
    current_.AddZeroPage(block, offset);
    return Status::Ok();
  }
  Status OnDeviceState(std::span<const std::byte> state) override {
    current_.device_state.assign(reinterpret_cast<const char*>(state.data()), state.size());
    if (precopy_done_ && agent_.config_.test_drop_page_at_epoch == current_.epoch) TestDropPage();
    if (precopy_done_) Submit();
    return Status::Ok();
  }
  Status OnVmDescription(std::string_view, const std::vector<checkpoint::DeviceSectionSpan>&) override {
    // The precopy is complete and QEMU keeps the VM stopped until checkpoint-ready.
    stream_info_.ram_section_id = agent_.peer_->reader().ram_section_id().value_or(0);
    current_.stream_info = stream_info_;
    SealConsole();
    current_.machine_definition_json = agent_.PairingDefinitionJson();
    precopy_done_ = true;
    Submit();
    return Status::Ok();
  }
  Status OnColoMessage(qs::ColoMessage message) override {
    // vmstate-send comes after QEMU stopped the VM: every byte the guest printed in this
    // epoch has reached the serial socket.
    if (message == qs::ColoMessage::kVmstateSend) SealConsole();
    return Status::Ok();
  }

 private:
  void SealConsole() {
    current_.stopped_at = std::chrono::steady_clock::now();
    agent_.DrainSerial();
    // Before the buffers are sealed: output noted after this is at worst already sealed (an
    // extra checkpoint), never left behind without a request.
    if (agent_.pacer_) agent_.pacer_->Sealing();
    current_.console_output = agent_.console_output_.Seal(current_.epoch);
    if (agent_.relay()) current_.network_output = agent_.network_output_.Seal(current_.epoch);
    agent_.SealDisk(current_);
  }
  void Submit() {
    uint64_t next = current_.epoch + 1;
    agent_.shipper_->Submit(std::move(current_));
    current_ = EpochCapture{};
    current_.epoch = next;
    current_.page_bytes = agent_.TakePageBuffer();
  }

  // TEST ONLY (test_drop_page_at_epoch): leave out pc.ram's highest dirty page, as
  // incomplete dirty tracking would.
  void TestDropPage() {
    auto highest = current_.pages.end();
    for (auto page = current_.pages.begin(); page != current_.pages.end(); ++page) {
      if (page->block == pc_ram_block_ && (highest == current_.pages.end() || page->offset > highest->offset)) highest = page;
    }
    if (highest == current_.pages.end()) return;
    char offset[24];
    std::snprintf(offset, sizeof(offset), "0x%llx", static_cast<unsigned long long>(highest->offset));
    Log("primary", "TEST ONLY: leaving the page of pc.ram at offset " + std::string(offset) + " out of epoch " +
                       std::to_string(current_.epoch));
    current_.pages.erase(highest);  // its bytes stay in page_bytes, unreferenced
  }

  PrimaryAgent& agent_;
  uint32_t pc_ram_block_ = UINT32_MAX;
  EpochCapture current_;
  checkpoint::QemuStreamInfo stream_info_;
  bool precopy_done_ = false;
};

PrimaryAgent::PrimaryAgent(PrimaryConfig config)
    : config_(std::move(config)), vm_(config_.vm), released_console_(own_released_console_) {}

void PrimaryAgent::SealDisk(EpochCapture& capture) {
  disk::DiskServer* served = disk();
  if (!served) return;
  disk::DiskDelta delta = served->Seal();
  capture.disk_flushed = delta.flushed;
  if (capture.epoch == 1) {
    // A new pairing: its initial copy replaces the writes so far (it reads them back).
    disk::LineageRecord peer;
    {
      std::lock_guard<std::mutex> lock(peer_disk_mutex_);
      peer = peer_disk_;
    }
    disk_lineage_ = disk::LineageRecord::NewLineage();
    Result<disk::CopyPlan> plan = served->BeginLineage(peer, disk_lineage_);
    if (!plan.ok()) return StopForDisk(plan.status());
    initial_copy_.emplace(std::move(*plan));
    disk_generation_of_epoch1_.store(delta.generation);
    disk_base_lineage_ = initial_copy_->base_lineage();
    Log("primary", std::string(initial_copy_->full() ? "initial disk copy" : "disk resync against the secondary's copy") +
                       ": " + std::to_string(initial_copy_->total_bytes()) + " of " +
                       std::to_string(served->size_bytes()) + " bytes to cover, " +
                       std::to_string(config_.disk_sync_bytes_per_checkpoint >> 20) + " MiB per checkpoint");
  } else {
    if (uint64_t bytes = delta.data_bytes(); bytes > 0) {
      std::lock_guard<std::mutex> lock(unacked_disk_mutex_);
      unacked_disk_bytes_.emplace_back(capture.epoch, bytes);
    }
    capture.disk_writes = std::move(delta.writes);
  }
  if (!initial_copy_ || initial_copy_->done()) return;
  Result<std::vector<disk::DiskWrite>> part = initial_copy_->NextPart(*served, config_.disk_sync_bytes_per_checkpoint);
  if (!part.ok()) return StopForDisk(part.status());
  capture.disk_writes.insert(capture.disk_writes.end(), std::make_move_iterator(part->begin()),
                             std::make_move_iterator(part->end()));
  capture.disk_sync_incomplete = !initial_copy_->done();
  if (initial_copy_->done()) {
    disk_sync_complete_epoch_.store(capture.epoch);
    Log("primary", "the initial disk copy is complete with epoch " + std::to_string(capture.epoch) + " (" +
                       std::to_string(initial_copy_->carried_bytes()) + " bytes carried)");
  }
  std::lock_guard<std::mutex> lock(status_mutex_);
  disk_sync_ = {initial_copy_->full() ? "full" : "resync", initial_copy_->carried_bytes(),
                initial_copy_->total_bytes() ? double(initial_copy_->covered_bytes()) / initial_copy_->total_bytes() : 1.0};
}

void PrimaryAgent::StopForDisk(const Status& why) {
  // Without its disk the standby must never run: stop protecting (the secondary is told
  // goodbye and keeps nothing it could promote).
  Log("primary", "cannot read the disk for the initial copy: " + why.ToString() + "; stopping");
  RequestStop();
}

bool PrimaryAgent::SecondaryCanTakeOver(uint64_t acked_epoch) const {
  if (acked_epoch < 1) return false;
  if (!disk()) return true;
  uint64_t complete = disk_sync_complete_epoch_.load();
  return complete != 0 && acked_epoch >= complete;
}

std::string PrimaryAgent::PairingDefinitionJson() const {
  qemu::VmDefinition pairing = vm_;
  pairing.disk.lineage = disk_lineage_;
  pairing.disk.base_lineage = disk_base_lineage_;
  return pairing.ToPeerJson().dump();
}

PrimaryAgent::PrimaryAgent(PrimaryConfig config, AdoptedVm adopted)
    : config_(std::move(config)), vm_(config_.vm), adopted_(std::move(adopted)), released_console_(*adopted_->released) {
  // Output continues the stream the adopter has released so far.
  console_output_.StartAt(released_console_.end());
  pair_state_ = failover::PairState::kReprotecting;
}

std::vector<std::byte> PrimaryAgent::TakePageBuffer() {
  std::lock_guard<std::mutex> lock(page_buffers_mutex_);
  if (page_buffers_.empty()) return {};
  // The largest one: the next epoch is likely as dirty as the recent ones.
  auto largest = std::max_element(page_buffers_.begin(), page_buffers_.end(),
                                  [](const auto& a, const auto& b) { return a.capacity() < b.capacity(); });
  std::vector<std::byte> buffer = std::move(*largest);
  page_buffers_.erase(largest);
  buffer.clear();  // keeps the capacity, and the memory stays faulted in
  return buffer;
}

std::unique_ptr<CheckpointPacer> PrimaryAgent::MakePacer() {
  if (!config_.output_triggered_checkpoints && config_.max_pause_ms == 0 && config_.min_run_fraction == 0) return nullptr;
  CheckpointPacerOptions options;
  options.trigger.min_spacing = std::chrono::milliseconds(config_.min_checkpoint_spacing_ms);
  options.trigger.output_triggered = config_.output_triggered_checkpoints;
  options.adaptive.max_interval_ms = config_.checkpoint_interval_ms;
  options.adaptive.min_interval_ms = std::min(config_.min_checkpoint_spacing_ms, config_.checkpoint_interval_ms);
  options.adaptive.max_pause_ms = config_.max_pause_ms;
  options.adaptive.min_run_fraction = config_.min_run_fraction;
  options.output_waits_for_ack = [this] {
    if (!shipper_) return false;
    ShipperStats shipping = shipper_->stats();
    // Unprotected, output goes out as it comes; fenced, it never does: nothing to hurry.
    return !shipping.unprotected && !shipping.fenced;
  };
  return std::make_unique<CheckpointPacer>(std::move(options));
}

json PrimaryAgent::PacingJson() const {
  if (!pacer_) return {{"paced_by", "qemu"}, {"interval_ms", config_.checkpoint_interval_ms}};
  PacerStats stats = pacer_->stats();
  const AdaptiveInterval::Report& adaptive = stats.adaptive_report;
  return {
      {"paced_by", "agent"},
      {"interval_ms", stats.interval_ms},
      {"started_by_output", stats.started_by_output},
      {"started_by_interval", stats.started_by_interval},
      {"output_wait_ms_p50", stats.output_wait_ms_p50},
      {"output_wait_ms_p99", stats.output_wait_ms_p99},
      {"max_pause_ms", config_.max_pause_ms},
      {"min_run_fraction", config_.min_run_fraction},
      {"adaptive", stats.adaptive},
      {"meeting_target", adaptive.meeting_target},
      {"why_not", adaptive.why_not},
      {"recent_pause_ms_p99", adaptive.recent_pause_p99_ms},
      {"recent_run_fraction", adaptive.recent_run_fraction},
      {"dirty_pages_per_ms", adaptive.dirty_pages_per_ms},
      {"pause_fixed_ms", adaptive.pause_fixed_ms},
      {"pause_per_page_us", adaptive.pause_per_page_us},
      {"predicted_pause_ms", adaptive.predicted_pause_ms},
  };
}

PrimaryAgent::~PrimaryAgent() {
  RequestStop();
  if (serial_thread_.joinable()) serial_thread_.join();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  if (arbiter_probe_thread_.joinable()) arbiter_probe_thread_.join();
  if (failover_thread_.joinable()) failover_thread_.join();
}

void PrimaryAgent::RequestStop() {
  stop_requested_.store(true);
  if (pacer_) pacer_->Stop();  // a COLO peer waiting for the next checkpoint goes on at once
  if (peer_) peer_->RequestStop();
  std::lock_guard<std::mutex> lock(status_mutex_);
  if (protector_) protector_->RequestStop();
}

bool PrimaryAgent::TryHandOverToNewSecondary() {
  // Only the original primary redials: an adopted one belongs to an agent that re-protects
  // by itself (failover/reprotector.h).
  if (adopted_) return false;
  auto now = std::chrono::steady_clock::now();
  if (now < next_redial_) return false;
  next_redial_ = now + std::chrono::seconds(1);
  Result<std::unique_ptr<transport::Channel>> channel =
      transport::Dial(config_.secondary_uri, config_.channel, Deadline::AfterMillis(300));
  if (!channel.ok()) return false;
  Log("primary", "a secondary answers at " + config_.secondary_uri + " again: protecting the VM again");
  handover_channel_ = std::move(*channel);
  session_over_.store(true);
  // QEMU leaves COLO and runs on as a plain VM; the COLO stream ends, and ProtectLoop hands
  // the VM to a fresh PrimaryAgent, exactly as a promoted standby is re-protected.
  Result<json> left = [&] {
    std::lock_guard<std::mutex> lock(qmp_mutex_);
    return qmp().Execute("x-colo-lost-heartbeat", Deadline::AfterMillis(5000));
  }();
  if (!left.ok()) {
    Log("primary", "QEMU did not leave COLO (" + left.status().ToString() + "); staying unprotected");
    handover_channel_.reset();
    session_over_.store(false);
    return false;
  }
  return true;
}

Status PrimaryAgent::HandOverToNewSecondary() {
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  if (arbiter_probe_thread_.joinable()) arbiter_probe_thread_.join();
  if (failover_thread_.joinable()) failover_thread_.join();
  if (serial_thread_.joinable()) serial_thread_.join();
  early_disk_write_target_.store(nullptr);
  shipper_->Stop(/*goodbye=*/false);
  // This host owns the VM unprotected: whatever the guest printed since the last checkpoint
  // goes out now; from here on the new protector holds output until its secondary acks.
  DrainSerial();
  console_output_.Seal(UINT64_MAX);
  Status released = console_output_.Release(UINT64_MAX, released_console_);
  if (!released.ok()) Log("primary", "releasing the last unprotected output: " + released.ToString());
  if (relay_) {
    // Until the protector holds them (before its first checkpoint), the guest's frames are
    // dropped: never sent unacknowledged, and clients retransmit.
    relay_->SetMode(network::FrameRelay::Mode::kHold, [](std::string_view) {});
    network_output_.Seal(UINT64_MAX);
    (void)network_output_.Release(UINT64_MAX, released_network_);
  }
  monitor_.reset();  // the protector heartbeats from the same address

  PrimaryConfig protector_config = config_;
  protector_config.vm = vm_;  // as launched: host-local paths and the disk filled in
  protector_config.runtime_dir = config_.runtime_dir + "/reprotect";
  UNDERSTUDY_RETURN_IF_ERROR(EnsurePrivateDirectory(protector_config.runtime_dir));
  AdoptedVm vm;
  vm.qmp = &qmp();
  vm.qemu_pid = qemu_ ? qemu_->pid() : 0;
  vm.serial = std::move(serial_);
  vm.released = &released_console_;
  vm.channel = std::move(handover_channel_);
  vm.metrics_registry = &metrics_server_->registry();
  vm.disk = disk_server_.get();
  vm.relay = relay_.get();
  vm.released_network = &released_network_;
  SetPairState(failover::PairEvent::kNewSecondary);
  PrimaryAgent* protector = nullptr;
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    if (stop_requested_.load()) return Status::Ok();
    protector_ = std::make_unique<PrimaryAgent>(std::move(protector_config), std::move(vm));
    protector = protector_.get();
  }
  return protector->Run();
}

void PrimaryAgent::SetState(State state) {
  std::lock_guard<std::mutex> lock(status_mutex_);
  if (state_ == state) return;
  Log("primary", "lifecycle " + std::string(StateName(state_)) + " -> " + std::string(StateName(state)));
  transitions_.Record(std::string(StateName(state_)), std::string(StateName(state)), "lifecycle");
  state_ = state;
}

failover::PairState PrimaryAgent::pair_state() const {
  std::lock_guard<std::mutex> lock(status_mutex_);
  return pair_state_;
}

void PrimaryAgent::SetPairState(failover::PairEvent event) {
  std::lock_guard<std::mutex> lock(status_mutex_);
  Result<failover::PairState> next = failover::NextState(failover::Role::kPrimary, pair_state_, event);
  if (!next.ok()) {
    Log("primary", next.status().message());
    return;
  }
  if (*next == pair_state_) return;
  Log("primary", "pair " + std::string(failover::StateName(pair_state_)) + " -> " +
                     std::string(failover::StateName(*next)) + " (" + std::string(failover::EventName(event)) + ")");
  transitions_.Record(std::string(failover::StateName(pair_state_)), std::string(failover::StateName(*next)),
                      std::string(failover::EventName(event)));
  pair_state_ = *next;
  if (pair_state_ == failover::PairState::kProtected) protected_since_ = std::chrono::steady_clock::now();
  if (metrics_) metrics_->SetPairState(failover::StateName(pair_state_));
}

Status PrimaryAgent::ClaimOwnership() {
  UNDERSTUDY_ASSIGN_OR_RETURN(arbiter_, config_.failover.MakeArbiterFor(config_.vm.name));
  const std::string& me = config_.failover.name;
  for (int attempt = 0; attempt < 5; ++attempt) {
    Result<failover::OwnershipRecord> record = arbiter_->Read(Deadline::AfterMillis(2000));
    if (!record.ok()) return record.status().WithContext("reading the ownership record from " + arbiter_->Describe());
    if (record->revision != 0 && record->owner != me) {
      return Status::FailedPrecondition("VM '" + config_.vm.name + "' is owned by " + record->owner + " (" + record->mode +
                                        ") in " + arbiter_->Describe() + "; refusing to run a second copy");
    }
    // Ours, but left by an earlier run that did not stop cleanly (a crash, a kill): its
    // secondary may be promoting the VM right now, and starting it afresh would throw that
    // state away. Only a clean stop ("stopped"), or our own promotion or unprotected run
    // (re-protection), is ours to take back.
    bool clean = record->revision == 0 || record->mode == "stopped" ||
                 (adopted_ && (record->mode == "promoted" || record->mode == "unprotected"));
    if (!clean) {
      return Status::FailedPrecondition(
          "an earlier run on this host left VM '" + config_.vm.name + "' in mode '" + record->mode +
          "' without stopping cleanly; its secondary may be taking it over. Check the secondary (ftctl status); if no "
          "copy of the VM runs anywhere, delete the record in " + arbiter_->Describe() + " and start again");
    }
    Result<bool> won = arbiter_->CompareAndSwap(record->revision, me, "protected", Deadline::AfterMillis(2000));
    if (!won.ok()) return won.status().WithContext("claiming the ownership record");
    if (*won) {
      UNDERSTUDY_ASSIGN_OR_RETURN(failover::OwnershipRecord mine, arbiter_->Read(Deadline::AfterMillis(2000)));
      if (mine.owner != me) continue;
      record_revision_ = mine.revision;
      Log("primary", "owns VM '" + config_.vm.name + "' at revision " + std::to_string(record_revision_) + " (" +
                         arbiter_->Describe() + ")");
      return Status::Ok();
    }
  }
  return Status::FailedPrecondition("could not claim the ownership record");
}

Status PrimaryAgent::WaitForRoomOrStall(Deadline deadline) {
  // Without acks and without a decision from the arbiter, the right move is to wait: QEMU's
  // next checkpoint is delayed (the VM keeps running, its output held) — indefinitely, since
  // going on without a secondary is only safe after winning the ownership record.
  auto stalled_since = std::chrono::steady_clock::now();
  auto next_log = stalled_since + std::chrono::seconds(5);
  for (;;) {
    Status room = shipper_->WaitForRoom(Deadline::AfterMillis(100).Min(deadline));
    if (room.code() != Status::Code::kDeadlineExceeded) return room;
    if (stop_requested_.load()) return Status::FailedPrecondition("stopping");
    if (std::chrono::steady_clock::now() >= next_log) {
      Log("primary", "stalled for " +
                         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                                         stalled_since)
                                            .count()) +
                         " s: " + room.message() + "; output held");
      next_log += std::chrono::seconds(5);
    }
  }
}

void PrimaryAgent::HeartbeatLoop() {
  const std::string heartbeat = replication::EncodeHeartbeat();
  while (!SessionOver()) {
    std::this_thread::sleep_for(config_.failover.monitor.interval);
    if (shipper_) (void)shipper_->SendControl(heartbeat);
  }
}

void PrimaryAgent::ProbeArbiterLoop() {
  // An arbiter outage while the pair is healthy changes nothing now but forbids every
  // failover later: operators must see it before they need it.
  while (!SessionOver()) {
    metrics_->SetArbiterReachable(arbiter_->Read(Deadline::AfterMillis(1000)).ok());
    for (int i = 0; i < 50 && !SessionOver(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void PrimaryAgent::FailoverLoop() {
  using failover::PairEvent;
  using failover::PairState;
  failover::PeerVerdict last = failover::PeerVerdict::kUnknown;
  while (!stop_requested_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    SampleMetrics();
    // A crossed byte cap (primary/byte_caps.h) ends protection as a dead secondary does: the
    // record first, then output goes out.
    failover::PeerVerdict verdict = shipper_->stats().over_cap ? failover::PeerVerdict::kDead : monitor_->verdict();
    PairState state = pair_state();
    // Protected means a standby could take over now: the secondary committed the initial
    // image (epoch 1), not merely that QEMU finished sending it.
    if (state == PairState::kSyncing && SecondaryCanTakeOver(shipper_->stats().acked_epoch)) {
      SetPairState(PairEvent::kSyncComplete);
      state = pair_state();
    }
    if (state == PairState::kReprotecting && SecondaryCanTakeOver(shipper_->stats().acked_epoch)) {
      SetPairState(PairEvent::kReprotected);
      state = pair_state();
    }
    if (state == PairState::kUnprotected && TryHandOverToNewSecondary()) return;
    if (state == PairState::kUnprotected || state == PairState::kFenced) continue;
    if (verdict != last) {
      if (verdict == failover::PeerVerdict::kAlive && last != failover::PeerVerdict::kUnknown) {
        SetPairState(PairEvent::kPathsRestored);
      } else if (verdict == failover::PeerVerdict::kDegraded || verdict == failover::PeerVerdict::kLinkDown) {
        SetPairState(PairEvent::kPathLost);
      }
      last = verdict;
    }
    if (verdict != failover::PeerVerdict::kAlive && verdict != failover::PeerVerdict::kUnknown) {
      CheckRecordStillOurs();
      if (pair_state() == PairState::kFenced) continue;
    }
    if (verdict != failover::PeerVerdict::kDead) {
      dead_since_.reset();
      continue;
    }
    auto now = std::chrono::steady_clock::now();
    if (!dead_since_) dead_since_ = now;
    // The initial image is one huge message: on a loaded host neither side may hear the other
    // while it is in flight, and a secondary without an image cannot take over anyway. So a
    // syncing pair gives the peer longer before acting on its silence.
    bool syncing = state == PairState::kSyncing || state == PairState::kReprotecting;
    if (syncing && now - *dead_since_ < kSyncGrace) continue;
    if (state != PairState::kFailingOver) {
      peer_declared_dead_ = std::chrono::steady_clock::now();
      SetPairState(PairEvent::kPeerDead);
    }
    PairEvent outcome = failover::ContendForOwnership(*arbiter_, failover::Role::kPrimary, config_.failover.name,
                                                       record_revision_, Deadline::AfterMillis(1000));
    metrics_->SetArbiterReachable(outcome != PairEvent::kArbiterUnreachable);
    if (outcome == PairEvent::kRecordWon) {
      shipper_->GoUnprotected();
      metrics_->CountFailover(std::chrono::duration<double>(std::chrono::steady_clock::now() - peer_declared_dead_).count());
      Log("primary", "running unprotected: the secondary is gone and this host owns the VM");
    } else if (outcome == PairEvent::kRecordLost) {
      FenceSelf("another host owns the VM");
      continue;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    SetPairState(outcome);
  }
}

void PrimaryAgent::SampleMetrics() {
  auto now = std::chrono::steady_clock::now();
  if (now < next_sample_) return;
  next_sample_ = now + std::chrono::milliseconds(250);
  ShipperStats shipping = shipper_->stats();
  metrics_->SetEpochs(shipping.captured_epoch, shipping.acked_epoch);
  metrics_->SetInFlight(shipping.captured_epoch - std::min(shipping.captured_epoch, shipping.acked_epoch));
  metrics_->SetOutputHeldBytes(console_output_.held_bytes());
  if (pacer_) {
    PacerStats pacing = pacer_->stats();
    metrics_->SetPacing({pacing.started_by_output, pacing.interval_ms / 1000, config_.max_pause_ms / 1000.0,
                         pacing.adaptive_report.meeting_target});
  } else {
    metrics_->SetPacing({0, config_.checkpoint_interval_ms / 1000.0, 0, true});
  }
  failover::HeartbeatStats heartbeats = monitor_->udp_stats();
  metrics_->SetHeartbeat(heartbeats.smoothed_rtt_ms / 1000, heartbeats.lost);
  if (disk::DiskServer* served = disk()) {
    std::lock_guard<std::mutex> lock(status_mutex_);
    bool committed = SecondaryCanTakeOver(shipping.acked_epoch);
    metrics_->SetDisk({served->bytes_written(), UnackedDiskBytes(), disk_sync_.carried_bytes,
                       committed ? 1.0 : std::min(disk_sync_.progress, 0.99)});
  }
}

uint64_t PrimaryAgent::UnackedDiskBytes() const {
  std::lock_guard<std::mutex> lock(unacked_disk_mutex_);
  uint64_t total = 0;
  for (const auto& [epoch, bytes] : unacked_disk_bytes_) total += bytes;
  return total;
}

void PrimaryAgent::FenceSelf(const std::string& why) {
  // The state first: whatever the fence makes fail next (the COLO stream, the shipper) must
  // find this agent fenced, not failed.
  SetPairState(failover::PairEvent::kRecordLost);
  shipper_->Fence();
  // Console clients must move on to the new owner: this log will never grow again.
  released_console_.Close();
  Result<json> stopped = [&] {
    std::lock_guard<std::mutex> lock(qmp_mutex_);
    return qmp().Execute("stop", Deadline::AfterMillis(2000));
  }();
  Log("primary", "fenced: " + why + "; guest stopped (" + (stopped.ok() ? std::string("ok") : stopped.status().ToString()) +
                     "), nothing unacknowledged will ever be released");
}

Status PrimaryAgent::StepDown() {
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    if (protector_) return protector_->StepDown();
  }
  failover::PairState state = pair_state();
  if (state != failover::PairState::kProtected) {
    return Status::FailedPrecondition("only a protected primary can step down (this one is " +
                                      std::string(failover::StateName(state)) + "): the secondary must be ready");
  }
  FenceSelf("stepping down at an operator's request (failback); the secondary takes over");
  return Status::Ok();
}

void PrimaryAgent::CheckRecordStillOurs() {
  auto now = std::chrono::steady_clock::now();
  if (now < next_record_check_) return;
  next_record_check_ = now + std::chrono::milliseconds(250);
  Result<failover::OwnershipRecord> record = arbiter_->Read(Deadline::AfterMillis(200));
  metrics_->SetArbiterReachable(record.ok());
  if (!record.ok()) return;  // unreachable: keep holding output, as before
  if (record->owner == config_.failover.name && record->revision == record_revision_) return;
  FenceSelf("the ownership record moved to '" + record->owner + "' (" + record->mode + ") at revision " +
            std::to_string(record->revision));
}

void PrimaryAgent::RecordPause(const CheckpointTiming& timing) {
  double since_last = last_pause_start_.time_since_epoch().count() == 0
                          ? 0
                          : std::chrono::duration<double>(timing.reply_sent - last_pause_start_).count();
  last_pause_start_ = timing.reply_sent;
  metrics_->ObservePause(std::chrono::duration<double>(timing.pause()).count(), since_last);
  std::lock_guard<std::mutex> lock(status_mutex_);
  ++checkpoints_;
  pauses_ms_.push_back(std::chrono::duration<double, std::milli>(timing.pause()).count());
  pause_phases_.Add(timing);
  if (pauses_ms_.size() > 2048) pauses_ms_.erase(pauses_ms_.begin(), pauses_ms_.begin() + 1024);
}

size_t PrimaryAgent::DrainSerial() {
  std::lock_guard<std::mutex> lock(serial_mutex_);
  std::array<std::byte, 4096> buffer;
  size_t total = 0;
  for (;;) {
    Result<size_t> count = ReadSome(serial_.get(), buffer, Deadline::Now());
    if (!count.ok()) return total;
    console_output_.Append({reinterpret_cast<const char*>(buffer.data()), *count});
    total += *count;
  }
}

void PrimaryAgent::SerialLoop() {
  while (!SessionOver()) {
    if (WaitForFd(serial_.get(), /*for_write=*/false, Deadline::AfterMillis(100)).ok() && DrainSerial() > 0) {
      NoteOutputHeld();
    }
  }
}

qemu::QmpClient& PrimaryAgent::qmp() {
  if (adopted_) return *adopted_->qmp;
  return qemu_ ? qemu_->qmp() : *attached_qmp_;
}

Status PrimaryAgent::Attach() {
  // QEMU already runs (started by someone else with a QMP and a serial socket); it must be
  // the machine config_.vm describes, since the standby is built from that definition.
  const AttachConfig& attach = *config_.attach;
  Result<std::unique_ptr<qemu::QmpClient>> qmp = qemu::QmpClient::Connect(attach.qmp_socket, Deadline::AfterMillis(5000));
  if (!qmp.ok()) return qmp.status().WithContext("attaching to QEMU");
  attached_qmp_ = std::move(*qmp);
  Result<json> status = attached_qmp_->Execute("query-status", Deadline::AfterMillis(5000));
  if (!status.ok()) return status.status().WithContext("attaching to QEMU");
  Log("primary", "attached to a running QEMU " + attached_qmp_->qemu_version() + " (" +
                     status->value("status", "?") + ") for VM '" + config_.vm.name + "'");
  UNDERSTUDY_ASSIGN_OR_RETURN(serial_, ConnectUnixSocket(attach.serial_socket, Deadline::AfterMillis(5000)));
  serial_thread_ = std::thread([this] { SerialLoop(); });
  if (status->value("running", false)) return Status::Ok();  // already up: protect it now
  Result<json> resumed = attached_qmp_->Execute("cont", Deadline::AfterMillis(5000));
  if (!resumed.ok()) return resumed.status().WithContext("starting the attached guest");
  return WaitForBoot();
}

Status PrimaryAgent::WaitForBoot() {
  // Protect the VM once it is up: the first checkpoint of a booting guest is needlessly big.
  Deadline boot = Deadline::AfterMillis(config_.boot_timeout_ms);
  while (console_output_.produced_offset() == 0) {
    if (stop_requested_.load()) return Status::Ok();
    if (boot.Expired()) return Status::DeadlineExceeded("the guest printed nothing within the boot timeout");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::Ok();
}

Status PrimaryAgent::Start() {
  UNDERSTUDY_RETURN_IF_ERROR(EnsurePrivateDirectory(config_.runtime_dir));
  if (config_.attach) return Attach();
  qemu::VmDefinition& vm = vm_;
  vm.serial.kind = qemu::SerialBackend::Kind::kUnixSocketServer;
  vm.serial.path = config_.runtime_dir + "/serial.sock";
  if (!config_.disk_image.empty()) {
    disk::DiskServerOptions disk_options;
    if (config_.test_ship_disk_writes_early) {
      disk_options.test_on_write = [this](const disk::DiskWrite& write) {
        if (CheckpointShipper* shipper = early_disk_write_target_.load()) {
          (void)shipper->SendControl(replication::EncodeTestDiskWrite(write));
        }
      };
    }
    UNDERSTUDY_ASSIGN_OR_RETURN(disk_server_, disk::DiskServer::Start(config_.disk_image, config_.runtime_dir + "/disk.sock",
                                                                      std::move(disk_options)));
    vm.disk.size_bytes = disk_server_->size_bytes();
    vm.disk.nbd_socket = disk_server_->socket_path();
    Log("primary", "serving the disk " + config_.disk_image + " (" + std::to_string(vm.disk.size_bytes) + " bytes) over NBD");
  }
  if (config_.network) {
    vm.nic.kind = qemu::NicBackend::Kind::kStreamUnixServer;
    vm.nic.path = config_.runtime_dir + "/net.sock";
    if (!config_.network->mac.empty()) vm.nic.mac = config_.network->mac;
  }
  qemu::LaunchOptions launch;
  launch.qemu_binary = config_.qemu_binary;
  launch.runtime_dir = config_.runtime_dir;
  launch.start_paused = true;  // attach the console before the first byte
  launch.extra_args = config_.qemu_extra_args;
  UNDERSTUDY_ASSIGN_OR_RETURN(qemu_, qemu::QemuProcess::Launch(vm, launch));
  Log("primary", "QEMU started (pid " + std::to_string(qemu_->pid()) + ") for VM '" + vm.name + "'");
  UNDERSTUDY_ASSIGN_OR_RETURN(serial_, ConnectUnixSocket(vm.serial.path, Deadline::AfterMillis(5000)));
  serial_thread_ = std::thread([this] { SerialLoop(); });
  if (config_.network) UNDERSTUDY_RETURN_IF_ERROR(ConnectNetwork());
  Result<json> resumed = qemu_->qmp().Execute("cont", Deadline::AfterMillis(5000));
  if (!resumed.ok()) return resumed.status().WithContext("starting the guest");
  return WaitForBoot();
}

Status PrimaryAgent::ConnectNetwork() {
  network::FrameRelay::Mode mode = network::FrameRelay::Mode::kHold;
  if (config_.test_network_output_commit_off) {
    Log("primary", "TEST: network output commit is off; frames go out before their epoch is committed");
    mode = network::FrameRelay::Mode::kDirect;
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(relay_, network::FrameRelay::Connect(
                                          vm_.nic.path, config_.network->tap, config_.network->netns, mode,
                                          [this](std::string_view framed) {
                                            network_output_.Append(framed);
                                            NoteOutputHeld();
                                          }));
  relay_->ReleaseFrom(released_network_, 0);
  Log("primary", "the guest's NIC (" + vm_.nic.model + ", " + vm_.nic.mac + ") is on tap " + config_.network->tap +
                     "; its frames are released only once their epoch is committed");
  return Status::Ok();
}

Status PrimaryAgent::ProtectLoop(std::unique_ptr<transport::Channel> channel) {

  UNDERSTUDY_ASSIGN_OR_RETURN(monitor_, failover::PeerMonitor::Start(config_.failover.monitor, nullptr));
  ShipperOptions shipper_options;
  shipper_options.on_peer_message = [this] { monitor_->HeardOnChannel(); };
  shipper_options.recycle_page_buffer = [this](std::vector<std::byte>&& buffer) {
    std::lock_guard<std::mutex> lock(page_buffers_mutex_);
    if (page_buffers_.size() < config_.max_in_flight + 1) page_buffers_.push_back(std::move(buffer));
  };
  shipper_options.on_hello = [this](const replication::Hello& hello) {
    Log("primary", "secondary '" + hello.name + "' heartbeats from " + hello.heartbeat_address);
    monitor_->SetPeerUdpAddress(hello.heartbeat_address);
    std::lock_guard<std::mutex> lock(peer_disk_mutex_);
    peer_disk_ = disk::LineageRecord::FromJson(hello.disk);
  };
  shipper_options.on_shipped = [this](uint64_t pages, uint64_t raw_bytes, uint64_t sent_bytes) {
    metrics_->ObserveShipped(pages, raw_bytes, sent_bytes);
  };
  shipper_options.on_acked = [this](uint64_t epoch, std::chrono::duration<double> since_stop) {
    if (uint64_t first = disk_generation_of_epoch1_.load(); first != 0 && disk()) {
      disk()->PeerCommitted(first + epoch - 1);
      std::lock_guard<std::mutex> lock(unacked_disk_mutex_);
      while (!unacked_disk_bytes_.empty() && unacked_disk_bytes_.front().first <= epoch) unacked_disk_bytes_.pop_front();
    }
    metrics_->ObserveCommit(since_stop.count());
    std::lock_guard<std::mutex> lock(status_mutex_);
    commits_ms_.push_back(since_stop.count() * 1000);
    if (commits_ms_.size() > 2048) commits_ms_.erase(commits_ms_.begin(), commits_ms_.begin() + 1024);
  };
  shipper_options.max_in_flight = config_.max_in_flight;
  // Memory held for the secondary is capped in bytes (primary/byte_caps.h).
  shipper_options.caps = config_.byte_caps;
  shipper_options.max_message_bytes = config_.channel.max_message_bytes;
  shipper_options.unshipped_disk_bytes = [this] { return disk() ? disk()->unsealed_bytes() : 0; };
  shipper_options.on_cap_crossed = [this](const CapCrossing& crossing) { metrics_->CountByteCapEvent(crossing.cap); };
  if (network::FrameRelay* nic = relay()) {
    if (adopted_) {
      // The adopted VM's frames continue the stream the adopter released so far.
      network_output_.StartAt(released_network().end());
      nic->SetMode(network::FrameRelay::Mode::kHold, [this](std::string_view framed) {
        network_output_.Append(framed);
        NoteOutputHeld();
      });
    }
    shipper_options.network_output = &network_output_;
    shipper_options.released_network = &released_network();
  }
  shipper_options.test_corrupt_epoch = config_.test_corrupt_epoch;
  shipper_ = std::make_unique<CheckpointShipper>(std::move(channel), console_output_, released_console_,
                                                 shipper_options);
  if (config_.test_ship_disk_writes_early) early_disk_write_target_.store(shipper_.get());
  if (adopted_ && adopted_->disk) adopted_->disk->StartRecording();
  UNDERSTUDY_RETURN_IF_ERROR(shipper_->SendControl(replication::EncodeHello(
      {config_.failover.name, config_.vm.name, monitor_->udp_address(), /*disk=*/nullptr, record_revision_})));
  heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
  arbiter_probe_thread_ = std::thread([this] { ProbeArbiterLoop(); });
  failover_thread_ = std::thread([this] { FailoverLoop(); });

  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return Status::FromErrno("socketpair", errno);
  UniqueFd ours(pair[0]), theirs(pair[1]);
  (void)WidenColoSendBuffer(theirs.get(), 64 << 20);  // a whole 8192-page checkpoint and more
  StreamConsumer consumer(*this);
  ColoPeerOptions peer_options;
  peer_options.before_reply = [this](Deadline deadline) {
    if (pacer_) UNDERSTUDY_RETURN_IF_ERROR(pacer_->WaitUntilDue(deadline));
    return WaitForRoomOrStall(deadline);
  };
  peer_options.on_checkpoint_acked = [this](const CheckpointTiming& timing) {
    RecordPause(timing);
    if (pacer_) pacer_->OnCheckpoint(timing);
  };
  if (config_.test_control_commands) {
    peer_options.test_before_loaded = [this] { return test_hold_.WaitIfHeld(shipper_->stats().captured_epoch, stop_requested_); };
  }
  peer_ = std::make_unique<ColoPeer>(std::move(ours), consumer, peer_options);
  if (stop_requested_.load()) peer_->RequestStop();

  SetState(State::kRunning);
  // Paced: QEMU asks at once after each checkpoint and the pacer holds the reply until due.
  UNDERSTUDY_RETURN_IF_ERROR(StartColoMigration(
      qmp(), theirs.get(), pacer_ ? kPacedQemuCheckpointDelay : std::chrono::milliseconds(config_.checkpoint_interval_ms),
      Deadline::AfterMillis(10000)));
  theirs.reset();
  if (disk()) disk()->SetWriteObserver([this] { NoteOutputHeld(); });
  Status served = peer_->Run();
  if (disk()) disk()->SetWriteObserver(nullptr);
  if (session_over_.load() && !stop_requested_.load()) return HandOverToNewSecondary();
  bool goodbye = stop_requested_.load() && pair_state() != failover::PairState::kFenced;
  if (pair_state() == failover::PairState::kFenced) {
    // Stay up (VM stopped, nothing released) so operators can see why; exit on request.
    while (!stop_requested_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    served = Status::Ok();
  }
  stop_requested_.store(true);
  early_disk_write_target_.store(nullptr);
  // The relay outlives an adopted agent: it must not hand frames to this one any more.
  if (adopted_ && adopted_->relay) adopted_->relay->SetMode(network::FrameRelay::Mode::kSilent);
  shipper_->Stop(goodbye);
  if (goodbye) MarkRecordStopped();
  return served;
}

void PrimaryAgent::MarkRecordStopped() {
  // A clean stop leaves the record as "stopped" so the next start may take it back (see
  // ClaimOwnership). Best effort: without it the next start refuses and says why.
  Result<failover::OwnershipRecord> record = arbiter_->Read(Deadline::AfterMillis(1000));
  if (!record.ok() || record->owner != config_.failover.name) return;
  Result<bool> marked = arbiter_->CompareAndSwap(record->revision, config_.failover.name, "stopped", Deadline::AfterMillis(1000));
  Log("primary", marked.ok() && *marked ? "ownership record marked stopped" : "could not mark the ownership record stopped");
}

std::map<std::string, control::Handler> PrimaryAgent::WithTestControlCommands(
    std::map<std::string, control::Handler> handlers) {
  if (config_.test_control_commands) {
    test_hold_.AddControlCommands(handlers, [this] { return shipper_ ? shipper_->stats().captured_epoch : 0; });
    if (config_.test_hold_checkpoint_at_epoch > 0) test_hold_.Arm(config_.test_hold_checkpoint_at_epoch);
  }
  return handlers;
}

Status PrimaryAgent::Run() {
  std::unique_ptr<console::ConsoleServer> console_server;
  std::unique_ptr<control::ControlServer> control_server;
  Status status = [&]() -> Status {
    prometheus::Registry* registry = adopted_ ? adopted_->metrics_registry : nullptr;
    if (!registry) {
      UNDERSTUDY_ASSIGN_OR_RETURN(metrics_server_, monitoring::MetricsServer::Start(config_.metrics_listen));
      registry = &metrics_server_->registry();
      Log("primary", "metrics on http://" + metrics_server_->address() + "/metrics");
    }
    metrics_ = std::make_unique<monitoring::AgentMetrics>(
        *registry, monitoring::AgentIdentity{config_.vm.name, "primary", config_.failover.name});
    metrics_->SetPairState(failover::StateName(pair_state()));
    if (adopted_) {
      UNDERSTUDY_RETURN_IF_ERROR(ClaimOwnership());
      serial_ = std::move(adopted_->serial);
      serial_thread_ = std::thread([this] { SerialLoop(); });
      Log("primary", "protecting the running VM '" + config_.vm.name + "' again (QEMU pid " +
                         std::to_string(adopted_->qemu_pid) + "), console from offset " +
                         std::to_string(console_output_.produced_offset()));
      return ProtectLoop(std::move(adopted_->channel));
    }
    UNDERSTUDY_RETURN_IF_ERROR(EnsurePrivateDirectory(config_.runtime_dir));
    UNDERSTUDY_ASSIGN_OR_RETURN(console_server, console::ConsoleServer::Start(config_.console_socket(), released_console_));
    UNDERSTUDY_ASSIGN_OR_RETURN(
        control_server,
        control::ControlServer::Start(config_.control_socket(),
                                      WithTestControlCommands({{"status", [this](const json&) -> Result<json> { return StatusJson(); }},
                                       {"step_down", [this](const json&) -> Result<json> {
                                          UNDERSTUDY_RETURN_IF_ERROR(StepDown());
                                          return json{{"stepped_down", true}};
                                        }}})));
    UNDERSTUDY_RETURN_IF_ERROR(ClaimOwnership());
    UNDERSTUDY_RETURN_IF_ERROR(Start());
    if (stop_requested_.load()) return Status::Ok();
    Result<std::unique_ptr<transport::Channel>> channel =
        transport::Dial(config_.secondary_uri, config_.channel, Deadline::AfterMillis(30000));
    if (!channel.ok()) return channel.status().WithContext("connecting to the secondary");
    Log("primary", "connected to the secondary at " + config_.secondary_uri);
    return ProtectLoop(std::move(*channel));
  }();
  if (!status.ok()) {
    std::lock_guard<std::mutex> lock(status_mutex_);
    last_error_ = status.ToString();
  }
  SetState(status.ok() ? State::kStopped : State::kFailed);
  if (!status.ok()) Log("primary", "failed: " + status.ToString());
  stop_requested_.store(true);
  if (!adopted_) released_console_.Close();  // an adopter keeps serving its log
  return status;
}

namespace {

double Percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  size_t index = static_cast<size_t>(fraction * (values.size() - 1) + 0.5);
  std::nth_element(values.begin(), values.begin() + index, values.end());
  return values[index];
}

}  // namespace

json PrimaryAgent::StatusJson() const {
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    if (protector_) {
      // One agent to operators: the protector's view, with this agent's history before it.
      json status = protector_->StatusJson();
      status["transitions"] = transitions_.MergedWith(status.value("transitions", json::array()));
      status["metrics_address"] = metrics_server_ ? metrics_server_->address() : "";
      return status;
    }
  }
  ShipperStats shipping = shipper_ ? shipper_->stats() : ShipperStats{};
  std::lock_guard<std::mutex> lock(status_mutex_);
  std::vector<double> recent(pauses_ms_.end() - std::min<size_t>(pauses_ms_.size(), 1000), pauses_ms_.end());
  std::vector<double> recent_commits(commits_ms_.end() - std::min<size_t>(commits_ms_.size(), 1000), commits_ms_.end());
  json disk_status = nullptr;
  if (disk::DiskServer* served = disk()) {
    disk::LineageRecord record = served->lineage_record();
    disk_status = {
        {"size_bytes", served->size_bytes()},
        {"bytes_written", served->bytes_written()},
        {"lineage", record.lineage},
        {"suspect_extents", record.suspect_extents.size()},
        {"initial_copy", disk_sync_.kind},
        {"initial_copy_bytes", disk_sync_.carried_bytes},
        {"initial_copy_progress", disk_sync_.progress},
        {"initial_copy_committed", SecondaryCanTakeOver(shipping.acked_epoch)},
        {"unacked_bytes", UnackedDiskBytes()},
    };
  }
  json network_status = nullptr;
  if (network::FrameRelay* nic = relay()) {
    network::FrameRelay::Counters frames = nic->counters();
    network_status = {{"held_bytes", network_output_.held_bytes()},
                      // Offset in the frame stream up to which frames went out (acked).
                      {"released_offset", network_output_.produced_offset() - network_output_.held_bytes()},
                      {"frames_to_guest", frames.frames_in},
                      {"frames_to_network", frames.frames_out},
                      {"frames_dropped", frames.frames_dropped}};
  }
  double seconds = pair_state_ == failover::PairState::kProtected
                       ? std::chrono::duration<double>(std::chrono::steady_clock::now() - protected_since_).count()
                       : 0;
  return {
      {"role", "primary"},
      {"vm", config_.vm.name},
      {"state", state_ == State::kRunning ? failover::StateName(pair_state_) : StateName(state_)},
      {"owner_name", config_.failover.name},
      {"record_revision", record_revision_},
      {"peer", monitor_ ? failover::VerdictName(monitor_->verdict()) : "unknown"},
      {"heartbeat_rtt_ms", monitor_ ? monitor_->udp_stats().smoothed_rtt_ms : 0.0},
      {"heartbeat_lost", monitor_ ? monitor_->udp_stats().lost : 0},
      {"heartbeat_rejected", monitor_ ? monitor_->udp_stats().rejected : 0},
      {"heartbeat_address", monitor_ ? monitor_->udp_address() : ""},
      {"heartbeat_budget_ms", monitor_ ? monitor_->budget().count() : 0},
      {"pid", ::getpid()},
      {"process_space", ThisProcessSpace()},
      {"metrics_address", metrics_server_ ? metrics_server_->address() : ""},
      {"qemu_pid", adopted_ ? adopted_->qemu_pid : qemu_ ? qemu_->pid() : 0},
      {"transitions", transitions_.ToJson()},
      {"epoch", shipping.captured_epoch},
      {"shipped_epoch", shipping.shipped_epoch},
      {"committed_epoch", shipping.acked_epoch},
      {"in_flight", shipping.captured_epoch - shipping.acked_epoch},
      {"checkpoints", checkpoints_},
      {"checkpoints_per_second", seconds > 0 ? checkpoints_ / seconds : 0.0},
      {"checkpoints_triggered", pacer_ ? pacer_->stats().started_by_output : 0},
      {"pacing", PacingJson()},
      {"pause_ms_p50", Percentile(recent, 0.5)},
      {"pause_ms_p99", Percentile(recent, 0.99)},
      {"pause_phases_ms", pause_phases_.ToJson()},
      {"commit_ms_p50", Percentile(recent_commits, 0.5)},
      {"commit_ms_p99", Percentile(recent_commits, 0.99)},
      {"bytes_sent", shipping.bytes_sent},
      {"pages_sent", shipping.pages_sent},
      {"compression_ratio", shipping.bytes_sent ? double(shipping.raw_page_bytes) / shipping.bytes_sent : 0.0},
      {"nacks", shipping.nacks},
      {"console_held_bytes", console_output_.held_bytes()},
      {"console_released_bytes", released_console_.end()},
      {"disk", disk_status},
      {"network", network_status},
      {"byte_caps", ByteCapsStatus(config_.byte_caps,
                                   {shipping.in_flight_bytes, console_output_.held_bytes() + network_output_.held_bytes(),
                                    disk() ? disk()->unsealed_bytes() : 0},
                                   shipping.cap_crossed)},
      {"last_error", last_error_.empty() ? shipping.last_error : last_error_},
  };
}

}  // namespace understudy::primary
