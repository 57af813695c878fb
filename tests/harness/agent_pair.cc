#include "tests/harness/agent_pair.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "common/json_file.h"
#include "control/control_server.h"
#include "transport/zmq_channel.h"

namespace understudy::testing {

using nlohmann::json;

namespace {

Status WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream file(path);
  file << contents;
  return file ? Status::Ok() : Status::IOError("cannot write " + path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

Status WaitForState(const std::string& runtime_dir, const std::string& state, Deadline deadline) {
  std::string last = "no answer";
  while (!deadline.Expired()) {
    Result<json> status = control::AgentStatus(runtime_dir, Deadline::AfterMillis(1000));
    if (status.ok()) {
      last = status->dump();
      if (status->value("state", "") == state) return Status::Ok();
      if (status->value("state", "") == "failed") break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::DeadlineExceeded("agent never reached state '" + state + "'; last status: " + last);
}

// failover.etcd_{ca,cert,key}_file for an agent named `name`.
Result<json> EtcdCredentialsJson(const EtcdServer& etcd, const std::string& name) {
  UNDERSTUDY_ASSIGN_OR_RETURN(failover::EtcdCredentials credentials, etcd.IssueClientCredentials(name));
  return json{{"etcd_ca_file", credentials.ca_file},
              {"etcd_cert_file", credentials.cert_file},
              {"etcd_key_file", credentials.key_file}};
}

}  // namespace

std::optional<std::string> AgentPairUnavailableReason(bool separate_hosts) {
  if (auto why = GuestAcceleratorUnavailableReason()) return why;
  if (auto why = EtcdUnavailableReason()) return why;
  if (separate_hosts) return NetworkLabUnavailableReason();
  return std::nullopt;
}

Result<std::unique_ptr<AgentPair>> AgentPair::Start(const AgentPairOptions& options, std::string_view name) {
  GuestAccelerator accelerator;
  if (options.accelerator) {
    accelerator = *options.accelerator;
  } else {
    UNDERSTUDY_ASSIGN_OR_RETURN(accelerator, ChosenAccelerator());
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(ScratchDir dir, ScratchDir::Create("ut-" + std::string(name)));
  std::string secondary_dir = dir.path() + "/secondary";
  std::unique_ptr<NetworkLab> lab;
  // Where each agent listens, and how its processes start (inside its host's namespace).
  std::string secondary_host = "127.0.0.1", primary_heartbeat = "127.0.0.1:0", secondary_heartbeat = "127.0.0.1:0";
  std::string secondary_port = "0";
  std::vector<std::string> primary_exec, secondary_exec;
  if (options.separate_hosts) {
    UNDERSTUDY_ASSIGN_OR_RETURN(lab, NetworkLab::Create(dir.path() + "/lab.json"));
    secondary_host = lab->AddressOf("secondary", "replication");
    secondary_port = "7400";
    primary_heartbeat = lab->AddressOf("primary", "heartbeat") + ":7401";
    secondary_heartbeat = lab->AddressOf("secondary", "heartbeat") + ":7401";
    primary_exec = NetnsExec(lab->NamespaceOf("primary"));
    secondary_exec = NetnsExec(lab->NamespaceOf("secondary"));
  }
  std::unique_ptr<EtcdServer> etcd;
  std::string arbiter = "none";
  if (options.arbiter == "etcd") {
    if (lab) {
      UNDERSTUDY_ASSIGN_OR_RETURN(etcd, EtcdServer::Start(lab->AddressOf("arbiter", "arbiter"), lab->NamespaceOf("arbiter")));
    } else {
      UNDERSTUDY_ASSIGN_OR_RETURN(etcd, EtcdServer::Start());
    }
    arbiter = etcd->endpoint();
  }
  // The pair's heartbeat secret, shared by both agents as a deployment would share it.
  const std::string heartbeat_key = dir.path() + "/heartbeat.key";
  if (std::system(("openssl rand -hex 32 > " + heartbeat_key).c_str()) != 0) {
    return Status::Internal("cannot write the heartbeat key " + heartbeat_key);
  }
  json failover = {{"pair", std::string(name)}, {"arbiter", arbiter}, {"heartbeat_key_file", heartbeat_key}};
  if (options.heartbeat_budget_ms) failover["budget_ms"] = *options.heartbeat_budget_ms;
  // Each agent proves itself to etcd with its own client certificate, as in a deployment.
  json primary_etcd = json::object(), secondary_etcd = json::object();
  if (etcd) {
    UNDERSTUDY_ASSIGN_OR_RETURN(primary_etcd, EtcdCredentialsJson(*etcd, "primary"));
    UNDERSTUDY_ASSIGN_OR_RETURN(secondary_etcd, EtcdCredentialsJson(*etcd, "secondary"));
  }
  // The secondaries' image directory: where the guest's kernel lives (tests/guests for ours).
  // A caller's own VM (the Linux guest) brings its kernel and initrd from its own directory.
  const std::string guest_images =
      options.vm && !options.vm->kernel.empty() ? options.vm->kernel : RunfilePath("tests/guests/counter.elf");
  qemu::VmDefinition vm = options.vm        ? *options.vm
                          : options.network ? NetServiceGuestDefinition()
                          : options.disk  ? DiskGuestDefinition(options.disk_guest_delay)
                                          : CounterGuestDefinition(options.guest, "");
  vm.accelerator = accelerator.name;
  // Every agent, replacements too, runs the chosen accelerator's QEMU, for this VM only.
  json secondary_config = {{"runtime_dir", secondary_dir},
                           {"vm", vm.name},
                           {"name", "secondary"},
                           {"failover", failover},
                           {"qemu_binary", accelerator.qemu_binary},
                           {"image_dir", guest_images.substr(0, guest_images.rfind('/'))}};
  secondary_config["failover"]["heartbeat_listen"] = secondary_heartbeat;
  if (options.secondary_heartbeat_budget_ms) secondary_config["failover"]["budget_ms"] = *options.secondary_heartbeat_budget_ms;
  secondary_config["failover"].update(secondary_etcd);
  json primary_channel = {{"name", "primary"}, {"failover", failover}, {"qemu_binary", accelerator.qemu_binary}};
  primary_channel["failover"]["heartbeat_listen"] = primary_heartbeat;
  primary_channel["failover"].update(primary_etcd);
  const std::string secondary_endpoint = secondary_host + ":" + secondary_port;
  if (options.transport == "tls") {
    std::string pki = dir.path() + "/pki";
    std::string command = RunfilePath("deploy/make-certs.sh") + " " + pki + " primary secondary > /dev/null";
    if (std::system(command.c_str()) != 0) return Status::Internal("deploy/make-certs.sh failed");
    secondary_config["listen"] = "tls://" + secondary_endpoint;
    secondary_config["tls"] = {{"ca", pki + "/ca.pem"}, {"cert", pki + "/secondary.pem"}, {"key", pki + "/secondary.key"},
                               {"peer_name", "primary"}};
    primary_channel["tls"] = {{"ca", pki + "/ca.pem"}, {"cert", pki + "/primary.pem"}, {"key", pki + "/primary.key"},
                              {"peer_name", "secondary"}};
  } else if (options.transport == "zmq+curve") {
    UNDERSTUDY_ASSIGN_OR_RETURN(transport::ZmqCurveKeyPair server, transport::GenerateZmqCurveKeyPair());
    UNDERSTUDY_ASSIGN_OR_RETURN(transport::ZmqCurveKeyPair client, transport::GenerateZmqCurveKeyPair());
    secondary_config["listen"] = "zmq+curve://" + secondary_endpoint;
    secondary_config["curve"] = {{"server_public_key", server.public_key},
                                 {"server_secret_key", server.secret_key},
                                 {"allowed_client_keys", {client.public_key}}};
    primary_channel["curve"] = {{"server_public_key", server.public_key},
                                {"client_public_key", client.public_key},
                                {"client_secret_key", client.secret_key}};
  } else if (options.transport == "tcp") {
    secondary_config["listen"] = "tcp://" + secondary_endpoint;
    secondary_config["insecure"] = true;
    primary_channel["insecure"] = true;
  } else {
    return Status::InvalidArgument("unknown transport '" + options.transport + "'");
  }
  if (options.second_heartbeat) {
    if (!lab) return Status::InvalidArgument("second_heartbeat needs separate_hosts");
    const std::string on_primary = lab->AddressOf("primary", "second_heartbeat") + ":7402";
    const std::string on_secondary = lab->AddressOf("secondary", "second_heartbeat") + ":7402";
    primary_channel["failover"]["second_heartbeat"] = {{"listen", on_primary}, {"peer", on_secondary}};
    secondary_config["failover"]["second_heartbeat"] = {{"listen", on_secondary}, {"peer", on_primary}};
  }
  // Where a replacement secondary would run: the primary's host, under the primary's name.
  json replacement_config = secondary_config;
  replacement_config["name"] = "primary";
  replacement_config["runtime_dir"] = dir.path() + "/replacement";
  replacement_config["failover"]["heartbeat_listen"] = primary_heartbeat;
  if (options.second_heartbeat) replacement_config["failover"]["second_heartbeat"] = primary_channel["failover"]["second_heartbeat"];
  replacement_config["failover"].update(primary_etcd);
  if (options.reprotect) {
    if (!lab || options.transport == "zmq+curve") {
      return Status::InvalidArgument("reprotect needs separate_hosts and tls or tcp");
    }
    const std::string scheme = options.transport + "://";
    const std::string replacement_listen = scheme + lab->AddressOf("primary", "replication") + ":7400";
    secondary_config["reprotect"] = {{"secondary", replacement_listen}};
    replacement_config["listen"] = replacement_listen;
    if (options.transport == "tls") {
      std::string pki = dir.path() + "/pki";
      replacement_config["tls"] = {{"ca", pki + "/ca.pem"}, {"cert", pki + "/primary.pem"}, {"key", pki + "/primary.key"},
                                   {"peer_name", "secondary"}};
    }
  }
  // The harness drives test-only control commands (held acks, damaged device state).
  json secondary_test_only = {{"control_commands", true}};
  if (options.ack_delay_ms > 0) secondary_test_only["ack_delay_ms"] = options.ack_delay_ms;
  if (options.disk_apply_on_arrival) secondary_test_only["apply_disk_writes_on_arrival"] = true;
  if (options.stall_disk_apply_at_epoch > 0) secondary_test_only["stall_disk_apply_at_epoch"] = options.stall_disk_apply_at_epoch;
  if (!secondary_test_only.empty()) secondary_config["test_only"] = secondary_test_only;
  if (options.verify_period_ms) secondary_config["verify_period_ms"] = *options.verify_period_ms;
  if (options.disk) secondary_config["disk_image"] = dir.path() + "/secondary-disk.raw";
  std::unique_ptr<ClientNetwork> client_network;
  if (options.network) {
    UNDERSTUDY_ASSIGN_OR_RETURN(client_network, ClientNetwork::Create());
    secondary_config["network"] = {{"tap", ClientNetwork::kSecondaryTap}, {"netns", client_network->namespace_path()}};
    // A replacement secondary runs on the primary's host: the primary's tap.
    replacement_config["network"] = {{"tap", ClientNetwork::kPrimaryTap}, {"netns", client_network->namespace_path()}};
  }
  UNDERSTUDY_RETURN_IF_ERROR(WriteFile(dir.path() + "/secondary.json", secondary_config.dump(2)));
  secondary_exec.insert(secondary_exec.end(),
                        {RunfilePath("secondary/ft-secondary"), "--config", dir.path() + "/secondary.json"});
  UNDERSTUDY_ASSIGN_OR_RETURN(ChildProcess secondary, ChildProcess::Spawn(secondary_exec, dir.path() + "/secondary.log"));
  std::unique_ptr<AgentPair> pair(new AgentPair(std::move(dir), std::move(lab), std::move(etcd), std::move(secondary)));
  const std::string root = pair->dir_.path();
  pair->replacement_config_ = replacement_config;

  // The secondary listens on a port of its choosing; ask it which.
  std::string listen;
  Deadline deadline = Deadline::AfterMillis(10000);
  while (listen.empty()) {
    Result<json> status = pair->SecondaryStatus();
    if (status.ok()) listen = status->value("listen", "");
    if (deadline.Expired()) return Status::DeadlineExceeded("the secondary did not start: " + pair->SecondaryLog());
    if (listen.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  pair->secondary_listen_ = listen;
  if (options.before_primary_starts && pair->lab()) {
    UNDERSTUDY_RETURN_IF_ERROR(options.before_primary_starts(pair->lab()->topology()));
  }
  pair->network_ = std::move(client_network);
  json primary_config = primary_channel;
  primary_config.update({{"vm", vm.ToJson()},
                         {"secondary", listen},
                         {"runtime_dir", root + "/primary"},
                         {"checkpoint_interval_ms", options.checkpoint_interval_ms},
                         {"max_in_flight", options.max_in_flight},
                         {"output_triggered_checkpoints", options.output_triggered_checkpoints}});
  if (options.min_checkpoint_spacing_ms) primary_config["min_checkpoint_spacing_ms"] = *options.min_checkpoint_spacing_ms;
  if (options.max_pause_ms > 0) primary_config["max_pause_ms"] = options.max_pause_ms;
  if (!options.primary_qemu_args.empty()) primary_config["qemu_extra_args"] = options.primary_qemu_args;
  if (!options.attach_qmp_socket.empty()) {
    primary_config["attach"] = {{"qmp", options.attach_qmp_socket}, {"serial", options.attach_serial_socket}};
  }
  // The harness drives test-only control commands (a checkpoint held for the RAM oracle).
  primary_config["test_only"]["control_commands"] = true;
  if (options.hold_checkpoint_at_epoch > 0) primary_config["test_only"]["hold_checkpoint_at_epoch"] = options.hold_checkpoint_at_epoch;
  if (options.drop_page_at_epoch > 0) primary_config["test_only"]["drop_page_at_epoch"] = options.drop_page_at_epoch;
  if (options.corrupt_epoch) primary_config["test_only"]["corrupt_epoch"] = *options.corrupt_epoch;
  if (options.disk_apply_on_arrival) primary_config["test_only"]["ship_disk_writes_early"] = true;
  if (options.network_output_commit_off) primary_config["test_only"]["network_output_commit_off"] = true;
  if (pair->network_) {
    primary_config["network"] = {{"tap", ClientNetwork::kPrimaryTap},
                                 {"netns", pair->network_->namespace_path()},
                                 {"mac", ClientNetwork::kGuestMac}};
  }
  if (options.disk) {
    const std::string image = root + "/primary-disk.raw";
    {
      std::ofstream create(image, std::ios::binary);
      if (options.disk_filled) {
        const std::string filler(1 << 20, static_cast<char>(0xa5));
        for (uint64_t at = 0; at < options.disk_bytes; at += filler.size()) create.write(filler.data(), filler.size());
      }
    }
    if (::truncate(image.c_str(), static_cast<off_t>(options.disk_bytes)) != 0) return Status::FromErrno("sizing " + image, errno);
    primary_config["disk_image"] = image;
    pair->replacement_config_["disk_image"] = image;
  }
  UNDERSTUDY_RETURN_IF_ERROR(WriteFile(root + "/primary.json", primary_config.dump(2)));
  primary_exec.insert(primary_exec.end(), {RunfilePath("primary/ft-primary"), "--config", root + "/primary.json"});
  UNDERSTUDY_ASSIGN_OR_RETURN(ChildProcess primary, ChildProcess::Spawn(primary_exec, root + "/primary.log"));
  pair->primary_.emplace(std::move(primary));
  Status protecting = pair->WaitForPrimaryState("protected", Deadline::AfterMillis(90000));
  if (!protecting.ok()) {
    return protecting.WithContext("primary log:\n" + pair->PrimaryLog() + "\nsecondary log:\n" + pair->SecondaryLog());
  }
  Result<json> status = pair->PrimaryStatus();
  if (status.ok()) pair->primary_qemu_pid_ = status->value("qemu_pid", 0);
  return pair;
}

Result<json> AgentPair::PrimaryStatus() const {
  return control::AgentStatus(primary_dir(), Deadline::AfterMillis(2000));
}

Result<json> AgentPair::SecondaryStatus() const {
  return control::AgentStatus(secondary_dir(), Deadline::AfterMillis(2000));
}

Status AgentPair::WaitForSecondaryState(const std::string& state, Deadline deadline) const {
  return WaitForState(secondary_dir(), state, deadline);
}

Status AgentPair::WaitForPrimaryState(const std::string& state, Deadline deadline) const {
  return WaitForState(primary_dir(), state, deadline);
}

Status AgentPair::HoldSecondaryAcks(bool hold) const {
  return control::CallControl(dir_.path() + "/secondary/control.sock", {{"command", "test_hold_acks"}, {"hold", hold}},
                              Deadline::AfterMillis(2000))
      .status();
}

Result<json> AgentPair::PrimaryControl(const json& request, Deadline deadline) const {
  return control::CallControl(primary_dir() + "/control.sock", request, deadline);
}

Result<json> AgentPair::SecondaryControl(const json& request, Deadline deadline) const {
  return control::CallControl(secondary_dir() + "/control.sock", request, deadline);
}

Status AgentPair::StartReplacementSecondary() {
  if (!lab_ || !replacement_config_.contains("listen")) {
    return Status::FailedPrecondition("the pair was not started with separate_hosts and reprotect");
  }
  const std::string config = dir_.path() + "/replacement.json";
  UNDERSTUDY_RETURN_IF_ERROR(WriteFile(config, replacement_config_.dump(2)));
  std::vector<std::string> argv = NetnsExec(lab_->NamespaceOf("primary"));
  argv.insert(argv.end(), {RunfilePath("secondary/ft-secondary"), "--config", config});
  UNDERSTUDY_ASSIGN_OR_RETURN(ChildProcess replacement, ChildProcess::Spawn(argv, dir_.path() + "/replacement.log"));
  replacement_.emplace(std::move(replacement));
  return Status::Ok();
}

Status AgentPair::RestartSecondary() {
  UNDERSTUDY_ASSIGN_OR_RETURN(json config, ReadJsonFile(dir_.path() + "/secondary.json"));
  config["listen"] = secondary_listen_;
  config.erase("test_only");
  const std::string path = dir_.path() + "/secondary-restarted.json";
  UNDERSTUDY_RETURN_IF_ERROR(WriteFile(path, config.dump(2)));
  std::vector<std::string> argv = lab_ ? NetnsExec(lab_->NamespaceOf("secondary")) : std::vector<std::string>{};
  argv.insert(argv.end(), {RunfilePath("secondary/ft-secondary"), "--config", path});
  UNDERSTUDY_ASSIGN_OR_RETURN(secondary_, ChildProcess::Spawn(argv, dir_.path() + "/secondary.log"));
  return Status::Ok();
}

Result<json> AgentPair::WaitForReprotection(Deadline deadline) const {
  std::string seen = "unreachable";
  for (;;) {
    Result<json> status = control::AgentStatus(secondary_dir(), Deadline::AfterMillis(1000));
    if (status.ok()) {
      seen = status->value("role", "?") + "/" + status->value("state", "?");
      if (seen == "primary/protected") return status;
    }
    if (deadline.Expired()) {
      return Status::DeadlineExceeded("the promoted agent is " + seen + ", not primary/protected\npromoted agent log:\n" +
                                      SecondaryLog() + "\nnew secondary log:\n" + ReplacementLog());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string AgentPair::ReplacementLog() const { return ReadFile(dir_.path() + "/replacement.log"); }

void AgentPair::KillSecondary() {
  Result<json> status = SecondaryStatus();
  if (status.ok() && status->value("standby_qemu_pid", 0) > 0) ::kill(status->value("standby_qemu_pid", 0), SIGKILL);
  secondary_.Kill();
}

void AgentPair::KillPrimary() {
  if (primary_qemu_pid_ && *primary_qemu_pid_ > 0) ::kill(*primary_qemu_pid_, SIGKILL);
  if (primary_) primary_->Kill();
}

console::ConsoleFollower AgentPair::Follower() const {
  return console::ConsoleFollower({dir_.path() + "/primary/console.sock", dir_.path() + "/secondary/console.sock"});
}

std::string AgentPair::PrimaryLog() const { return ReadFile(dir_.path() + "/primary.log"); }
std::string AgentPair::PrimaryQemuLog() const { return ReadFile(dir_.path() + "/primary/qemu.log"); }
std::string AgentPair::SecondaryLog() const { return ReadFile(dir_.path() + "/secondary.log"); }

}  // namespace understudy::testing
