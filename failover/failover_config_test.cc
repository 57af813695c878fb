// The arbiter part of the failover configuration: no silent single-host mode, and an https
// etcd only with the files to verify it and to prove who we are, checked at load.
#include "failover/failover_config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/test_scratch_dir.h"

namespace understudy::failover {
namespace {

using nlohmann::json;

json Loopback(json failover) {
  failover["heartbeat_listen"] = "127.0.0.1:0";
  return {{"name", "host1"}, {"listen", "tls://127.0.0.1:7400"}, {"failover", failover}};
}

void ExpectRefused(const json& config, const std::string& mentions) {
  Result<FailoverConfig> loaded = FailoverConfig::FromJson(config);
  ASSERT_FALSE(loaded.ok()) << config.dump();
  EXPECT_EQ(loaded.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(loaded.status().message().find(mentions), std::string::npos) << loaded.status();
}

TEST(FailoverConfigTest, AConfigWithoutAnArbiterIsRefusedNamingTheField) {
  ExpectRefused(Loopback(json::object()), "failover.arbiter is missing");
  ExpectRefused({{"name", "host1"}}, "failover.arbiter is missing");
  // Negative control: the same config with an arbiter loads.
  Result<FailoverConfig> loaded = FailoverConfig::FromJson(Loopback({{"arbiter", "http://127.0.0.1:2379"}}));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->arbiter, "http://127.0.0.1:2379");
}

TEST(FailoverConfigTest, NoArbiterOnlyWhenEveryAddressIsLoopback) {
  Result<FailoverConfig> one_host = FailoverConfig::FromJson(Loopback({{"arbiter", "none"}}));
  ASSERT_TRUE(one_host.ok()) << one_host.status();
  EXPECT_EQ(one_host->arbiter, "none");
  json v6 = Loopback({{"arbiter", "none"}});
  v6["secondary"] = "tcp://[::1]:7400";
  v6["metrics_listen"] = "localhost:9464";
  EXPECT_TRUE(FailoverConfig::FromJson(v6).ok());

  struct Case {
    const char* pointer;
    const char* address;
    const char* field;
  };
  for (const Case& c : {Case{"/listen", "tls://10.0.1.2:7400", "listen"},
                        Case{"/secondary", "tls://10.0.1.2:7400", "secondary"},
                        Case{"/metrics_listen", "0.0.0.0:9464", "metrics_listen"},
                        Case{"/reprotect", nullptr, "reprotect.secondary"},
                        Case{"/failover/heartbeat_listen", "10.0.2.1:7401", "failover.heartbeat_listen"},
                        Case{"/failover/second_heartbeat", nullptr, "failover.second_heartbeat.peer"}}) {
    json config = Loopback({{"arbiter", "none"}, {"heartbeat_key_file", ""}});
    if (c.address) {
      config[json::json_pointer(c.pointer)] = c.address;
    } else if (std::string(c.field) == "failover.second_heartbeat.peer") {
      config["failover"]["second_heartbeat"] = {{"listen", "127.0.0.2:7402"}, {"peer", "10.0.3.2:7402"}};
    } else {
      config["reprotect"] = {{"secondary", "tls://10.0.1.1:7400"}};
    }
    if (std::string(c.field) == "failover.heartbeat_listen") {
      // Heartbeats off the host need a key first; give one so the arbiter check is reached.
      Result<TestScratchDir> scratch = TestScratchDir::Create("cfg");
      ASSERT_TRUE(scratch.ok());
      std::ofstream(scratch->File("hb.key")) << std::string(64, 'k');
      config["failover"]["heartbeat_key_file"] = scratch->File("hb.key");
    }
    ExpectRefused(config, std::string("accepted only when every address is loopback (one host: no partition can split "
                                      "it), but ") + c.field + " is");
  }
}

TEST(FailoverConfigTest, HttpsEtcdNeedsItsFilesAndChecksThemAtLoad) {
  Result<TestScratchDir> scratch = TestScratchDir::Create("etcdtls");
  ASSERT_TRUE(scratch.ok());
  for (const char* name : {"ca.pem", "host1.pem", "host1.key"}) std::ofstream(scratch->File(name)) << "pem";
  const json complete = {{"arbiter", "https://127.0.0.1:2379"},
                         {"etcd_ca_file", scratch->File("ca.pem")},
                         {"etcd_cert_file", scratch->File("host1.pem")},
                         {"etcd_key_file", scratch->File("host1.key")}};
  Result<FailoverConfig> loaded = FailoverConfig::FromJson(Loopback(complete));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->etcd.ca_file, scratch->File("ca.pem"));
  EXPECT_EQ(loaded->etcd.cert_file, scratch->File("host1.pem"));
  EXPECT_EQ(loaded->etcd.key_file, scratch->File("host1.key"));

  json no_ca = complete;
  no_ca.erase("etcd_ca_file");
  ExpectRefused(Loopback(no_ca), "is https: failover.etcd_ca_file must name the CA");
  json cert_only = complete;
  cert_only.erase("etcd_key_file");
  ExpectRefused(Loopback(cert_only), "both or neither");
  json missing_key = complete;
  missing_key["etcd_key_file"] = scratch->File("absent.key");
  ExpectRefused(Loopback(missing_key), "failover.etcd_key_file '" + scratch->File("absent.key") + "' cannot be read");
  json bad_endpoint = complete;
  bad_endpoint["arbiter"] = "etcd:2379";
  ExpectRefused(Loopback(bad_endpoint), "is not https://host:port");
}

json WithSecondHeartbeat(json second) {
  json config = Loopback({{"arbiter", "http://127.0.0.1:2379"}});
  config["failover"]["second_heartbeat"] = std::move(second);
  return config;
}

TEST(FailoverConfigTest, ASecondHeartbeatNetworkIsReadAndHandedToTheHeartbeatPaths) {
  Result<FailoverConfig> one = FailoverConfig::FromJson(Loopback({{"arbiter", "http://127.0.0.1:2379"}}));
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_FALSE(one->second_heartbeat.configured()) << "no second network unless configured";
  EXPECT_FALSE(one->HeartbeatOptions().second.configured());

  Result<FailoverConfig> two =
      FailoverConfig::FromJson(WithSecondHeartbeat({{"listen", "127.0.0.2:7402"}, {"peer", "127.0.0.3:7402"}}));
  ASSERT_TRUE(two.ok()) << two.status();
  HeartbeatPathsOptions paths = two->HeartbeatOptions();
  EXPECT_EQ(paths.listen, "127.0.0.1:0");
  EXPECT_EQ(paths.second.listen, "127.0.0.2:7402");
  EXPECT_EQ(paths.second.peer, "127.0.0.3:7402");
  EXPECT_EQ(paths.auth.key, two->monitor.heartbeat_key);
  EXPECT_EQ(paths.auth.max_echo_age, 2 * two->monitor.budget);
}

TEST(FailoverConfigTest, ABadSecondHeartbeatIsRefusedNamingTheField) {
  ExpectRefused(WithSecondHeartbeat("10.0.3.1:7402"), "\"second_heartbeat\"");
  ExpectRefused(WithSecondHeartbeat({{"peer", "127.0.0.3:7402"}}), "failover.second_heartbeat.listen is missing");
  ExpectRefused(WithSecondHeartbeat({{"listen", "127.0.0.2:7402"}}), "failover.second_heartbeat.peer is missing");
  ExpectRefused(WithSecondHeartbeat({{"listen", "127.0.0.2:0"}, {"peer", "127.0.0.3:7402"}}),
                "failover.second_heartbeat.listen '127.0.0.2:0' needs a port in 1..65535: the peer's configuration");
  ExpectRefused(WithSecondHeartbeat({{"listen", "127.0.0.2:7402"}, {"peer", "peer-b:7402"}}),
                "failover.second_heartbeat.peer 'peer-b:7402' must be IPv4 host:port");
  ExpectRefused(WithSecondHeartbeat({{"listen", "127.0.0.2:70000"}, {"peer", "127.0.0.3:7402"}}),
                "failover.second_heartbeat.listen '127.0.0.2:70000' needs a port");
  ExpectRefused(WithSecondHeartbeat({{"listen", "127.0.0.2:7402"}, {"peer", 7402}}), "\"peer\" must be a string");

  json same = WithSecondHeartbeat({{"listen", "127.0.0.1:7401"}, {"peer", "127.0.0.3:7402"}});
  same["failover"]["heartbeat_listen"] = "127.0.0.1:7401";
  ExpectRefused(same, "is failover.heartbeat_listen: path B must use a second network");

  // Off this host: the wildcard, the same host address as path A, and no key.
  Result<TestScratchDir> scratch = TestScratchDir::Create("hb2");
  ASSERT_TRUE(scratch.ok());
  std::ofstream(scratch->File("hb.key")) << std::string(64, 'k');
  json remote = WithSecondHeartbeat({{"listen", "10.0.2.1:7402"}, {"peer", "10.0.3.2:7402"}});
  remote["failover"]["heartbeat_listen"] = "10.0.2.1:7401";
  remote["failover"]["heartbeat_key_file"] = scratch->File("hb.key");
  ExpectRefused(remote, "is on the same host address as failover.heartbeat_listen");
  remote["failover"]["second_heartbeat"]["listen"] = "0.0.0.0:7402";
  ExpectRefused(remote, "not a wildcard");
  remote["failover"]["second_heartbeat"]["listen"] = "10.0.3.1:7402";
  Result<FailoverConfig> good = FailoverConfig::FromJson(remote);
  EXPECT_TRUE(good.ok()) << good.status() << " (negative control: the fixed config loads)";
  json unkeyed = WithSecondHeartbeat({{"listen", "10.0.3.1:7402"}, {"peer", "10.0.3.2:7402"}});
  ExpectRefused(unkeyed, "failover.heartbeat_key_file is required when heartbeats leave this host (second_heartbeat.listen");
}

}  // namespace
}  // namespace understudy::failover
