// The harness's etcd is what the e2e labs and the demo rely on: https only, and a client
// must present a certificate from etcd's CA. Each refusal is checked against a client that
// differs in one thing from one that succeeds (the negative control).
#include "tests/harness/etcd_server.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "common/http_client.h"
#include "tests/harness/runfiles.h"
#include "tests/harness/test_guest.h"

namespace understudy::testing {
namespace {

HttpOptions Tls(const failover::EtcdCredentials& credentials) {
  return {.ca_file = credentials.ca_file,
          .cert_file = credentials.cert_file,
          .key_file = credentials.key_file,
          .max_body_bytes = 64 * 1024};
}

class EtcdServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto reason = EtcdUnavailableReason()) GTEST_SKIP() << "skipped: " << *reason;
    auto etcd = EtcdServer::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(*etcd);
    range_url_ = etcd_->endpoint() + "/v3/kv/range";
  }
  Result<std::string> Range(const HttpOptions& options) {
    return HttpPost(range_url_, R"({"key":"AA=="})", Deadline::AfterMillis(3000), options);
  }
  std::unique_ptr<EtcdServer> etcd_;
  std::string range_url_;
};

TEST_F(EtcdServerTest, ServesHttpsOnly) { EXPECT_EQ(etcd_->endpoint().rfind("https://127.0.0.1:", 0), 0u); }

TEST_F(EtcdServerTest, AClientWithACertificateFromItsCaIsServed) {
  Result<failover::EtcdCredentials> agent = etcd_->IssueClientCredentials("agent1");
  ASSERT_TRUE(agent.ok()) << agent.status();
  Result<std::string> reply = Range(Tls(*agent));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_NE(reply->find("\"header\""), std::string::npos) << *reply;
}

TEST_F(EtcdServerTest, AClientWithoutACertificateIsRefused) {
  Result<std::string> reply = Range(Tls(etcd_->CaOnly()));
  ASSERT_FALSE(reply.ok()) << "etcd answered a client without a certificate: " << *reply;
  EXPECT_EQ(reply.status().code(), Status::Code::kBroken) << reply.status();
  EXPECT_NE(reply.status().message().find(range_url_), std::string::npos) << reply.status();
  // Nor in plain HTTP on the same port.
  std::string plain = "http://" + range_url_.substr(std::string("https://").size());
  Result<std::string> cleartext = HttpPost(plain, R"({"key":"AA=="})", Deadline::AfterMillis(3000));
  EXPECT_FALSE(cleartext.ok()) << "etcd answered plain HTTP: " << *cleartext;
}

TEST_F(EtcdServerTest, ACertificateFromAnotherCaIsRefusedAndEtcdIsNotTrustedUnderIt) {
  Result<ScratchDir> other = ScratchDir::Create("ut-other-ca");
  ASSERT_TRUE(other.ok()) << other.status();
  std::string command = RunfilePath("deploy/make-certs.sh") + " " + other->path() + " intruder > /dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0);
  Result<failover::EtcdCredentials> agent = etcd_->IssueClientCredentials("agent2");
  ASSERT_TRUE(agent.ok()) << agent.status();
  // Our CA for etcd, but a client certificate etcd's CA never signed: refused by etcd.
  failover::EtcdCredentials foreign_client = *agent;
  foreign_client.cert_file = other->path() + "/intruder.pem";
  foreign_client.key_file = other->path() + "/intruder.key";
  Result<std::string> refused = Range(Tls(foreign_client));
  ASSERT_FALSE(refused.ok()) << "etcd accepted a certificate from another CA";
  EXPECT_EQ(refused.status().code(), Status::Code::kBroken) << refused.status();
  // A good client certificate, but checking etcd against another CA: we refuse etcd.
  failover::EtcdCredentials wrong_trust = *agent;
  wrong_trust.ca_file = other->path() + "/ca.pem";
  Result<std::string> untrusted = Range(Tls(wrong_trust));
  ASSERT_FALSE(untrusted.ok()) << "an etcd signed by another CA was trusted";
  EXPECT_NE(untrusted.status().message().find("not trusted"), std::string::npos) << untrusted.status();
  // Negative control: the same agent with etcd's own CA and its own certificate.
  EXPECT_TRUE(Range(Tls(*agent)).ok());
}

}  // namespace
}  // namespace understudy::testing
