// The secondary's configuration: wrong types are errors naming the field (issue 16), and the
// policy a primary's VM definition is checked against comes from here.
#include "secondary/secondary_config.h"

#include <gtest/gtest.h>

namespace understudy::secondary {
namespace {

using nlohmann::json;

json Valid() {
  return json::parse(R"({
    "name": "host2", "vm": "canary1", "listen": "tcp://127.0.0.1:7400", "insecure": true,
    "runtime_dir": "/run/understudy/canary1", "image_dir": "/var/lib/understudy/canary1",
    "max_memory_mib": 4096, "failover": {"arbiter": "none", "heartbeat_listen": "127.0.0.1:0"}
  })");
}

TEST(SecondaryConfigTest, AValidConfigurationParsesWithItsDefinitionPolicy) {
  Result<SecondaryConfig> config = SecondaryConfig::FromJson(Valid());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->vm_policy.image_dir, "/var/lib/understudy/canary1");
  EXPECT_EQ(config->vm_policy.max_memory_mib, 4096u);
  json defaults = Valid();
  defaults.erase("image_dir");
  defaults.erase("max_memory_mib");
  config = SecondaryConfig::FromJson(defaults);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->vm_policy.image_dir, "");
  EXPECT_EQ(config->vm_policy.max_memory_mib, qemu::DefinitionPolicy::kDefaultMaxMemoryMib);
}

TEST(SecondaryConfigTest, FieldsOfTheWrongTypeAreErrorsNamingThem) {
  struct Case {
    const char* pointer;
    json value;
    const char* mentions;
  };
  const Case cases[] = {
      {"/listen", 1, "\"listen\""},
      {"/vm", 1, "\"vm\""},
      {"/vm", "../etc", "\"vm\""},
      {"/image_dir", false, "\"image_dir\""},
      {"/max_memory_mib", "lots", "\"max_memory_mib\""},
      {"/max_memory_mib", 0, "max_memory_mib"},
      {"/verify_period_ms", -5, "\"verify_period_ms\""},
      {"/test_only", json::object({{"ack_delay_ms", "x"}}), "\"ack_delay_ms\""},
      {"/test_only", json::object({{"apply_disk_writes_on_arrival", 1}}), "\"apply_disk_writes_on_arrival\""},
      {"/reprotect", json::object({{"secondary", 1}}), "\"secondary\""},
      {"/reprotect", json::object({{"secondary", "tcp://127.0.0.1:1"}, {"max_in_flight", "4"}}), "\"max_in_flight\""},
      {"/failover/budget_ms", json::object(), "\"budget_ms\""},
      {"/curve", json::object({{"allowed_client_keys", "k"}}), "\"allowed_client_keys\""},
  };
  for (const Case& c : cases) {
    json config = Valid();
    config[json::json_pointer(c.pointer)] = c.value;
    Result<SecondaryConfig> parsed = SecondaryConfig{};
    EXPECT_NO_THROW(parsed = SecondaryConfig::FromJson(config)) << c.pointer;
    ASSERT_FALSE(parsed.ok()) << c.pointer << " = " << c.value.dump();
    EXPECT_NE(parsed.status().message().find(c.mentions), std::string::npos) << c.pointer << ": " << parsed.status();
  }
}

TEST(SecondaryConfigTest, TheVmItProtectsIsRequired) {
  json config = Valid();
  config.erase("vm");
  Result<SecondaryConfig> parsed = SecondaryConfig::FromJson(config);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("\"vm\""), std::string::npos) << parsed.status();
  parsed = SecondaryConfig::FromJson(Valid());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->binding.vm, "canary1");
  EXPECT_TRUE(parsed->binding.identities.empty()) << "tcp:// proves no identity";
}

json Tls(const std::string& listen, const std::string& peer_name) {
  json config = Valid();
  config.erase("insecure");
  config["listen"] = listen;
  // Across hosts "none" is refused on its own (failover_config.h): a real arbiter, so that
  // what is checked here is the transport's binding.
  config["failover"]["arbiter"] = "http://10.0.0.3:2379";
  config["tls"] = {{"ca", "/etc/u/ca.pem"}, {"cert", "/etc/u/host2.pem"}, {"key", "/etc/u/host2.key"}};
  if (!peer_name.empty()) config["tls"]["peer_name"] = peer_name;
  return config;
}

TEST(SecondaryConfigTest, TlsAcrossHostsNeedsThePrimarysNameAndBindsIt) {
  Result<SecondaryConfig> parsed = SecondaryConfig::FromJson(Tls("tls://0.0.0.0:7400", ""));
  ASSERT_FALSE(parsed.ok()) << "tls:// across hosts without peer_name was accepted";
  EXPECT_NE(parsed.status().message().find("peer_name"), std::string::npos) << parsed.status();
  EXPECT_NE(parsed.status().message().find("tls://0.0.0.0:7400"), std::string::npos) << parsed.status();
  // A reprotect address across hosts needs it as well, even with a loopback listener.
  json reprotect = Tls("tls://127.0.0.1:7400", "");
  reprotect["reprotect"] = {{"secondary", "tls://10.0.0.1:7400"}};
  parsed = SecondaryConfig::FromJson(reprotect);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("tls://10.0.0.1:7400"), std::string::npos) << parsed.status();

  // Negative controls: on loopback it may be left out; named, it is the bound identity.
  parsed = SecondaryConfig::FromJson(Tls("tls://127.0.0.1:7400", ""));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->binding.identities.empty());
  parsed = SecondaryConfig::FromJson(Tls("tls://0.0.0.0:7400", "host1"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->binding.identities, std::vector<std::string>{"host1"});
}

TEST(SecondaryConfigTest, CurveNeedsThePrimarysKeysAndBindsThem) {
  json config = Valid();
  config.erase("insecure");
  config["listen"] = "zmq+curve://0.0.0.0:7400";
  config["failover"]["arbiter"] = "http://10.0.0.3:2379";
  config["curve"] = {{"server_public_key", "a"}, {"server_secret_key", "b"}};
  Result<SecondaryConfig> parsed = SecondaryConfig::FromJson(config);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("allowed_client_keys"), std::string::npos) << parsed.status();
  config["curve"]["allowed_client_keys"] = {"key-of-host1"};
  parsed = SecondaryConfig::FromJson(config);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->binding.identities, std::vector<std::string>{"key-of-host1"});
}

}  // namespace
}  // namespace understudy::secondary
