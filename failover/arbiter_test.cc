// The arbiter against a real etcd: the record's compare-and-swap, both failover races (the
// secondary promoting vs. the primary going unprotected) with exactly one winner every time,
// the loser told to fence itself, and no decision at all while etcd is down.
#include "failover/arbiter.h"

#include <gtest/gtest.h>

#include <thread>

#include "common/base64.h"
#include "common/http_client.h"
#include "failover/etcd_reply.h"
#include "tests/harness/etcd_server.h"

namespace understudy::failover {
namespace {

class ArbiterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto reason = testing::EtcdUnavailableReason()) GTEST_SKIP() << "skipped: " << *reason;
    auto etcd = testing::EtcdServer::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(*etcd);
    auto credentials = etcd_->IssueClientCredentials("agent");
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    credentials_ = *credentials;
  }
  std::unique_ptr<Arbiter> Make(const std::string& key) {
    auto arbiter = MakeEtcdArbiter(etcd_->endpoint(), key, credentials_);
    EXPECT_TRUE(arbiter.ok()) << arbiter.status();
    return std::move(*arbiter);
  }
  std::unique_ptr<testing::EtcdServer> etcd_;
  EtcdCredentials credentials_;
};

TEST_F(ArbiterTest, CompareAndSwapFollowsTheRevision) {
  auto arbiter = Make("/understudy/vms/web1/owner");
  auto empty = arbiter->Read(Deadline::AfterMillis(2000));
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->revision, 0u);
  ASSERT_TRUE(*arbiter->CompareAndSwap(0, "host1", "protected", Deadline::AfterMillis(2000)));
  auto record = arbiter->Read(Deadline::AfterMillis(2000));
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->owner, "host1");
  EXPECT_EQ(record->mode, "protected");
  EXPECT_GT(record->revision, 0u);
  // A stale revision loses; the current one wins.
  EXPECT_FALSE(*arbiter->CompareAndSwap(0, "host2", "promoted", Deadline::AfterMillis(2000)));
  EXPECT_FALSE(*arbiter->CompareAndSwap(record->revision + 100, "host2", "promoted", Deadline::AfterMillis(2000)));
  EXPECT_TRUE(*arbiter->CompareAndSwap(record->revision, "host2", "promoted", Deadline::AfterMillis(2000)));
  EXPECT_EQ(arbiter->Read(Deadline::AfterMillis(2000))->owner, "host2");
}

TEST_F(ArbiterTest, PromoteAndGoUnprotectedRaceHasExactlyOneWinner) {
  int primary_wins = 0, secondary_wins = 0;
  auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < 50; ++round) {
    std::string key = "/understudy/vms/race" + std::to_string(round) + "/owner";
    auto primary = Make(key);
    auto secondary = Make(key);
    ASSERT_TRUE(*primary->CompareAndSwap(0, "host1", "protected", Deadline::AfterMillis(2000)));
    uint64_t seen = primary->Read(Deadline::AfterMillis(2000))->revision;
    // Both sides saw this revision (and so both hold a warm connection to etcd, as agents do).
    ASSERT_EQ(secondary->Read(Deadline::AfterMillis(2000))->revision, seen);
    // The two swaps the PairController sends when each side finds the other gone.
    Result<bool> primary_won = false, secondary_won = false;
    std::thread a([&] { primary_won = primary->CompareAndSwap(seen, "host1", "unprotected", Deadline::AfterMillis(2000)); });
    std::thread b([&] { secondary_won = secondary->CompareAndSwap(seen, "host2", "promoted", Deadline::AfterMillis(2000)); });
    a.join();
    b.join();
    ASSERT_TRUE(primary_won.ok() && secondary_won.ok()) << primary_won.status() << " / " << secondary_won.status();
    ASSERT_NE(*primary_won, *secondary_won) << "round " << round << ": both or neither won";
    const bool primary_outcome_won = *primary_won;
    OwnershipRecord record = *primary->Read(Deadline::AfterMillis(2000));
    if (primary_outcome_won) {
      ++primary_wins;
      EXPECT_EQ(record.owner, "host1");
      EXPECT_EQ(record.mode, "unprotected");
    } else {
      ++secondary_wins;
      EXPECT_EQ(record.owner, "host2");
      EXPECT_EQ(record.mode, "promoted");
    }
  }
  double per_round = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / 50;
  std::printf("50 races: primary won %d, secondary won %d; %.1f ms per round (create, read, two racing swaps)\n",
              primary_wins, secondary_wins, per_round);
}

TEST_F(ArbiterTest, NoDecisionWhileTheArbiterIsDown) {
  auto arbiter = Make("/understudy/vms/down/owner");
  ASSERT_TRUE(*arbiter->CompareAndSwap(0, "host1", "protected", Deadline::AfterMillis(2000)));
  uint64_t seen = arbiter->Read(Deadline::AfterMillis(2000))->revision;
  etcd_->Kill();
  auto start = std::chrono::steady_clock::now();
  Result<bool> while_down = arbiter->CompareAndSwap(seen, "host1", "unprotected", Deadline::AfterMillis(500));
  EXPECT_FALSE(while_down.ok()) << "a swap against a dead arbiter must be an error, never a verdict";
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2)) << "hung on a dead arbiter";
  // Once etcd is back, the same swap decides.
  ASSERT_TRUE(etcd_->Restart().ok());
  Result<bool> after = arbiter->CompareAndSwap(seen, "host1", "unprotected", Deadline::AfterMillis(5000));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(*after);
}

// Writes `value` verbatim into `key`, as anyone with a certificate for etcd could.
void PutRaw(const std::string& endpoint, const EtcdCredentials& credentials, const std::string& key,
            const std::string& value) {
  nlohmann::json put = {{"key", Base64Encode(key)}, {"value", Base64Encode(value)}};
  HttpOptions tls{.ca_file = credentials.ca_file, .cert_file = credentials.cert_file, .key_file = credentials.key_file,
                  .max_body_bytes = 64 * 1024};
  Result<std::string> reply = HttpPost(endpoint + "/v3/kv/put", put.dump(), Deadline::AfterMillis(2000), tls);
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_TRUE(ParseEtcdPutReply(*reply).ok()) << *reply;
}

// Regression (issue 16): {"owner": 1} in the key made Read throw nlohmann's type_error, which
// ended both agents within one probe period. Each hostile value is an error, the key is left
// as it is, and the arbiter keeps answering once the record is valid again.
TEST_F(ArbiterTest, AHostileRecordIsAnErrorNotACrash) {
  const std::string key = "/understudy/vms/hostile/owner";
  auto arbiter = Make(key);
  struct Case {
    const char* value;
    const char* mentions;
  };
  for (const Case& c : {Case{R"({"owner": 1})", "\"owner\""}, Case{R"({"owner": "h", "mode": []})", "\"mode\""},
                        Case{R"([1, 2])", "not a JSON object"}, Case{"owner=h", "not valid JSON"},
                        Case{"{\"owner\": \"\xff\"}", "not valid JSON"}}) {
    PutRaw(etcd_->endpoint(), credentials_, key, c.value);
    Result<OwnershipRecord> record = OwnershipRecord{};
    EXPECT_NO_THROW(record = arbiter->Read(Deadline::AfterMillis(2000))) << c.value;
    ASSERT_FALSE(record.ok()) << c.value;
    EXPECT_EQ(record.status().code(), Status::Code::kCorruption);
    EXPECT_NE(record.status().message().find(c.mentions), std::string::npos) << c.value << ": " << record.status();
    // The refusal wrote nothing: the key still holds the hostile value (a second arbiter
    // refuses it the same way).
    EXPECT_EQ(Make(key)->Read(Deadline::AfterMillis(2000)).status().message(), record.status().message());
  }
  PutRaw(etcd_->endpoint(), credentials_, key, R"({"owner": "host1", "mode": "protected"})");
  Result<OwnershipRecord> record = arbiter->Read(Deadline::AfterMillis(2000));
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->owner, "host1");
  EXPECT_TRUE(*arbiter->CompareAndSwap(record->revision, "host2", "promoted", Deadline::AfterMillis(2000)));
}

// etcd refuses an agent without a client certificate: the arbiter then decides nothing.
TEST_F(ArbiterTest, WithoutAClientCertificateEtcdRefusesTheArbiter) {
  auto refused = MakeEtcdArbiter(etcd_->endpoint(), "/understudy/vms/nocert/owner", etcd_->CaOnly());
  ASSERT_TRUE(refused.ok()) << refused.status();
  Result<OwnershipRecord> read = (*refused)->Read(Deadline::AfterMillis(2000));
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), Status::Code::kBroken) << read.status();
  EXPECT_NE(read.status().message().find("arbiter unreachable"), std::string::npos) << read.status();
  EXPECT_FALSE((*refused)->CompareAndSwap(0, "host1", "protected", Deadline::AfterMillis(2000)).ok());
  // Negative control: the same arbiter with the certificate.
  EXPECT_TRUE(Make("/understudy/vms/nocert/owner")->Read(Deadline::AfterMillis(2000)).ok());
}

TEST(NoArbiterTest, AlwaysWinsAndSaysSplitBrainIsPossible) {
  auto arbiter = MakeNoArbiter();
  EXPECT_NE(arbiter->Describe().find("split brain possible"), std::string::npos);
  EXPECT_TRUE(*arbiter->CompareAndSwap(0, "a", "promoted", Deadline::AfterMillis(10)));
  EXPECT_TRUE(*arbiter->CompareAndSwap(0, "b", "unprotected", Deadline::AfterMillis(10)));
}

TEST(EtcdArbiterTest, BadEndpointsAreRefused) {
  EXPECT_FALSE(MakeEtcdArbiter("etcd:2379", "/k").ok());
  EXPECT_FALSE(MakeEtcdArbiter("https://x:1", "/k").ok()) << "https without a CA";
  EXPECT_TRUE(MakeEtcdArbiter("https://x:1", "/k", {.ca_file = "/ca.pem", .cert_file = "", .key_file = ""}).ok());
  EXPECT_FALSE(MakeEtcdArbiter("https://x:1", "/k", {.ca_file = "/ca.pem", .cert_file = "/c.pem", .key_file = ""}).ok());
  EXPECT_FALSE(MakeEtcdArbiter("https://x:1/v3", "/k", {.ca_file = "/ca.pem", .cert_file = "", .key_file = ""}).ok());
  EXPECT_FALSE(MakeEtcdArbiter("http://x:port", "/k").ok());
  EXPECT_FALSE(MakeEtcdArbiter("http://x:99999", "/k").ok());
  EXPECT_FALSE(MakeEtcdArbiter("http://x:", "/k").ok());
}

}  // namespace
}  // namespace understudy::failover
