// Configuration files are input too: a field of the wrong type is an error naming it, never an
// exception (issue 16), and the VM definition in them has no free-form QEMU arguments.
#include "primary/primary_config.h"

#include <gtest/gtest.h>

namespace understudy::primary {
namespace {

using nlohmann::json;

json Valid() {
  return json::parse(R"({
    "name": "host1",
    "vm": {"name": "canary1", "memory_mib": 64, "kernel": "/var/lib/understudy/counter.elf"},
    "secondary": "tcp://127.0.0.1:7400", "insecure": true, "runtime_dir": "/run/understudy/canary1",
    "failover": {"arbiter": "none", "heartbeat_listen": "127.0.0.1:0"},
    "reprotect": {"secondary": "tcp://127.0.0.1:7401"}
  })");
}

TEST(PrimaryConfigTest, AValidConfigurationParses) {
  Result<PrimaryConfig> config = PrimaryConfig::FromJson(Valid());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->vm.kernel, "/var/lib/understudy/counter.elf");
  EXPECT_EQ(config->max_in_flight, 4u);
}

TEST(PrimaryConfigTest, FieldsOfTheWrongTypeAreErrorsNamingThem) {
  struct Case {
    const char* pointer;
    json value;
    const char* mentions;
  };
  const Case cases[] = {
      {"/secondary", 1, "\"secondary\""},
      {"/runtime_dir", json::array(), "\"runtime_dir\""},
      {"/max_in_flight", "4", "\"max_in_flight\""},
      {"/max_in_flight", -1, "\"max_in_flight\""},
      {"/checkpoint_interval_ms", 1.5, "\"checkpoint_interval_ms\""},
      {"/qemu_extra_args", "-S", "\"qemu_extra_args\""},
      {"/qemu_extra_args", json::array({1}), "\"qemu_extra_args\""},
      {"/attach", json::object({{"qmp", 1}}), "\"qmp\""},
      {"/test_only", json::object({{"corrupt_epoch", "x"}}), "\"corrupt_epoch\""},
      {"/insecure", "yes", "\"insecure\""},
      {"/tls", json::object({{"ca", 1}}), "\"ca\""},
      {"/failover/interval_ms", "20", "\"interval_ms\""},
      {"/failover", "none", "\"failover\""},
      {"/name", 7, "\"name\""},
      {"/network", json::object({{"tap", 3}}), "\"tap\""},
      {"/vm/memory_mib", "lots", "\"memory_mib\""},
      {"/vm/extra_args", json::array({"-chardev", "file,id=x,path=/tmp/x"}), "extra_args"},
      {"/vm/nic", json::object({{"kind", "stream-unix-server"}, {"model", "e1000,x=y"}}), "nic.model"},
  };
  for (const Case& c : cases) {
    json config = Valid();
    config[json::json_pointer(c.pointer)] = c.value;
    Result<PrimaryConfig> parsed = PrimaryConfig{};
    EXPECT_NO_THROW(parsed = PrimaryConfig::FromJson(config)) << c.pointer;
    ASSERT_FALSE(parsed.ok()) << c.pointer << " = " << c.value.dump();
    EXPECT_EQ(parsed.status().code(), Status::Code::kInvalidArgument) << c.pointer;
    EXPECT_NE(parsed.status().message().find(c.mentions), std::string::npos) << c.pointer << ": " << parsed.status();
  }
  EXPECT_FALSE(PrimaryConfig::FromJson(json::array()).ok());
}

TEST(PrimaryConfigTest, OutputTriggeredCheckpointsAreOnByDefaultTwoMillisecondsApart) {
  Result<PrimaryConfig> config = PrimaryConfig::FromJson(Valid());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->output_triggered_checkpoints);
  EXPECT_EQ(config->min_checkpoint_spacing_ms, 2u);
}

TEST(PrimaryConfigTest, OutputTriggeredCheckpointsCanBeTurnedOffAndSpaced) {
  nlohmann::json json = Valid();
  json["output_triggered_checkpoints"] = false;
  json["min_checkpoint_spacing_ms"] = 12;
  Result<PrimaryConfig> config = PrimaryConfig::FromJson(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->output_triggered_checkpoints);
  EXPECT_EQ(config->min_checkpoint_spacing_ms, 12u);
}

TEST(PrimaryConfigTest, AZeroSpacingIsRefused) {
  nlohmann::json json = Valid();
  json["min_checkpoint_spacing_ms"] = 0;
  Result<PrimaryConfig> config = PrimaryConfig::FromJson(json);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), "min_checkpoint_spacing_ms must be positive");
}

TEST(PrimaryConfigTest, TlsAcrossHostsNeedsTheSecondarysName) {
  json config = Valid();
  config.erase("insecure");
  config["secondary"] = "tls://10.0.0.2:7400";
  config["failover"]["arbiter"] = "http://10.0.0.3:2379";  // across hosts "none" is refused on its own
  config["tls"] = {{"ca", "/etc/u/ca.pem"}, {"cert", "/etc/u/host1.pem"}, {"key", "/etc/u/host1.key"}};
  Result<PrimaryConfig> parsed = PrimaryConfig::FromJson(config);
  ASSERT_FALSE(parsed.ok()) << "tls:// across hosts without peer_name was accepted";
  EXPECT_NE(parsed.status().message().find("peer_name"), std::string::npos) << parsed.status();
  // Negative controls: named, or on loopback, it starts.
  config["tls"]["peer_name"] = "host2";
  Result<PrimaryConfig> named = PrimaryConfig::FromJson(config);
  EXPECT_TRUE(named.ok()) << named.status();
  config["tls"].erase("peer_name");
  config["secondary"] = "tls://127.0.0.1:7400";
  Result<PrimaryConfig> loopback = PrimaryConfig::FromJson(config);
  EXPECT_TRUE(loopback.ok()) << loopback.status();
}

TEST(PrimaryConfigTest, APauseTargetIsOffByDefaultAndParses) {
  Result<PrimaryConfig> defaults = PrimaryConfig::FromJson(Valid());
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->max_pause_ms, 0u);
  EXPECT_EQ(defaults->min_run_fraction, 0);
  nlohmann::json json = Valid();
  json["max_pause_ms"] = 10;
  json["min_run_fraction"] = 0.9;
  Result<PrimaryConfig> config = PrimaryConfig::FromJson(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->max_pause_ms, 10u);
  EXPECT_EQ(config->min_run_fraction, 0.9);
}

TEST(PrimaryConfigTest, ARunFractionOfOneOrMoreIsRefused) {
  for (double fraction : {1.0, 1.5, -0.1}) {
    nlohmann::json json = Valid();
    json["min_run_fraction"] = fraction;
    Result<PrimaryConfig> config = PrimaryConfig::FromJson(json);
    ASSERT_FALSE(config.ok()) << fraction;
    EXPECT_EQ(config.status().message(), "min_run_fraction must be within [0, 1)");
  }
}

}  // namespace
}  // namespace understudy::primary
