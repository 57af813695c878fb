// ReadyStandby: the secondary's StandbyFeed (secondary/committer.h) — the ready standby QEMU
// (secondary/standby.h) kept current with every commit, its console socket and its NIC on
// this host's tap (silent until promotion) — and the promotion of that standby.
//
// A standby that fails to start or stops taking checkpoints is marked broken, never retried
// mid-pairing: promotion then starts a fresh QEMU from the committed image instead.
//
// Thread safety: not thread-safe (the secondary's commit thread).
#ifndef UNDERSTUDY_SECONDARY_READY_STANDBY_H_
#define UNDERSTUDY_SECONDARY_READY_STANDBY_H_

#include <memory>
#include <optional>
#include <string>

#include "common/unique_fd.h"
#include "network/frame_relay.h"
#include "network/network_config.h"
#include "secondary/committer.h"
#include "secondary/standby.h"

namespace understudy::secondary {

class ReadyStandby : public StandbyFeed {
 public:
  // `network`: this host's tap for a VM's NIC (none: the VM must have no NIC).
  ReadyStandby(StandbyOptions options, std::optional<network::NetworkConfig> network)
      : options_(std::move(options)), network_(std::move(network)) {}

  void Start(const qemu::VmDefinition& definition, const checkpoint::QemuStreamInfo& stream_info,
             const checkpoint::RamImage& image) override;
  void Forward(const checkpoint::Checkpoint& checkpoint, const checkpoint::RamImage& image) override;
  void Discard() override;

  // Runs the VM from the committed state: the standby (or a fresh QEMU when it is broken)
  // loads `device_state`; its NIC relays directly and announces the VM's new place.
  Status Promote(const qemu::VmDefinition& definition, const checkpoint::QemuStreamInfo& stream_info,
                 const checkpoint::RamImage& image, const std::string& device_state);

  // The standby QEMU, or null.
  Standby* standby() { return standby_.get(); }
  int pid() { return standby_ ? standby_->process().pid() : 0; }
  int serial_fd() const { return serial_.get(); }
  // The standby's console, given away (to a re-protecting primary).
  UniqueFd TakeSerial() { return std::move(serial_); }
  network::FrameRelay* relay() { return relay_.get(); }

 private:
  Status ConnectNetwork(const qemu::VmDefinition& definition);
  static bool HasNic(const qemu::VmDefinition& definition) {
    return definition.nic.kind == qemu::NicBackend::Kind::kStreamUnixServer;
  }

  const StandbyOptions options_;
  const std::optional<network::NetworkConfig> network_;
  std::unique_ptr<Standby> standby_;
  bool broken_ = false;
  UniqueFd serial_;
  // The standby's NIC on this host's tap: silent until promotion, then relaying directly.
  std::unique_ptr<network::FrameRelay> relay_;
};

}  // namespace understudy::secondary

#endif  // UNDERSTUDY_SECONDARY_READY_STANDBY_H_
