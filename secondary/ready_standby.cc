#include "secondary/ready_standby.h"

#include <chrono>

#include "common/fd_io.h"
#include "common/log.h"

namespace understudy::secondary {

using nlohmann::json;

void ReadyStandby::Start(const qemu::VmDefinition& definition, const checkpoint::QemuStreamInfo& stream_info,
                         const checkpoint::RamImage& image) {
  auto started = std::chrono::steady_clock::now();
  Result<std::unique_ptr<Standby>> standby = Standby::Start(definition, stream_info, image, options_);
  if (!standby.ok()) {
    // The checkpoint is committed; without a standby, promotion starts a fresh QEMU instead.
    Log("secondary", "could not start the standby: " + standby.status().ToString());
    broken_ = true;
    return;
  }
  standby_ = std::move(*standby);
  broken_ = false;
  Result<UniqueFd> serial = ConnectUnixSocket(standby_->serial_socket_path(), Deadline::AfterMillis(5000));
  if (serial.ok()) serial_ = std::move(*serial);
  if (HasNic(definition)) {
    Status joined = ConnectNetwork(definition);
    if (!joined.ok()) Log("secondary", "the standby's NIC is not on tap " + network_->tap + ": " + joined.ToString());
  }
  Log("secondary", "standby QEMU ready (pid " + std::to_string(standby_->process().pid()) + ", " +
                       std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - started)
                                          .count()) +
                       " ms) for VM '" + definition.name + "'");
}

void ReadyStandby::Forward(const checkpoint::Checkpoint& checkpoint, const checkpoint::RamImage& image) {
  if (!standby_ || broken_) return;
  Status forwarded = standby_->Forward(checkpoint, image);
  if (!forwarded.ok()) {
    Log("secondary", "the standby stopped taking checkpoints; promotion will start a fresh QEMU: " + forwarded.ToString());
    broken_ = true;
  }
}

void ReadyStandby::Discard() {
  relay_.reset();
  standby_.reset();
}

Status ReadyStandby::ConnectNetwork(const qemu::VmDefinition& definition) {
  relay_.reset();
  UNDERSTUDY_ASSIGN_OR_RETURN(relay_, network::FrameRelay::Connect(definition.nic.path, network_->tap, network_->netns,
                                                                   network::FrameRelay::Mode::kSilent));
  return Status::Ok();
}

Status ReadyStandby::Promote(const qemu::VmDefinition& definition, const checkpoint::QemuStreamInfo& stream_info,
                             const checkpoint::RamImage& image, const std::string& device_state) {
  if (!standby_ || broken_) {
    standby_.reset();
    UNDERSTUDY_ASSIGN_OR_RETURN(standby_, Standby::Start(definition, stream_info, image, options_));
    UNDERSTUDY_ASSIGN_OR_RETURN(serial_, ConnectUnixSocket(standby_->serial_socket_path(), Deadline::AfterMillis(5000)));
    relay_.reset();
  }
  if (HasNic(definition) && !relay_) UNDERSTUDY_RETURN_IF_ERROR(ConnectNetwork(definition));
  UNDERSTUDY_RETURN_IF_ERROR(standby_->Promote(device_state, Deadline::AfterMillis(10000)));
  if (relay_) {
    // The VM is unprotected here: its frames go out as they come. Its MAC now lives behind
    // this host's tap; gratuitous announcements make the bridge (and peers) learn that.
    relay_->SetMode(network::FrameRelay::Mode::kDirect);
    Result<json> announced = standby_->process().qmp().Execute(
        "announce-self", {{"initial", 20}, {"max", 200}, {"rounds", 4}, {"step", 60}}, Deadline::AfterMillis(2000));
    if (!announced.ok()) Log("secondary", "announce-self: " + announced.status().ToString());
  }
  return Status::Ok();
}

}  // namespace understudy::secondary
