// etcd's replies as the gateway writes them (int64 as strings, bytes as base64), and each way
// a reply can be malformed: an error naming what is wrong, never an exception.
#include "failover/etcd_reply.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/base64.h"

namespace understudy::failover {
namespace {

const std::string kKey = "/understudy/vms/web1/owner";

std::string RangeReply(const std::string& value, const std::string& mod_revision = "\"7\"",
                       const std::string& key = kKey) {
  return R"({"header":{"cluster_id":"1","member_id":"2","revision":"9","raft_term":"2"},"kvs":[{"key":")" +
         Base64Encode(key) + R"(","create_revision":"5","mod_revision":)" + mod_revision +
         R"(,"version":"2","value":")" + Base64Encode(value) + R"("}],"count":"1"})";
}

TEST(EtcdReplyTest, ARangeReplyGivesTheRecordAndItsRevision) {
  Result<OwnershipRecord> record = ParseEtcdRangeReply(RangeReply(R"({"owner":"host1","mode":"protected"})"), kKey);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(*record, (OwnershipRecord{"host1", "protected", 7}));
  // A JSON number is accepted as well as the gateway's string.
  record = ParseEtcdRangeReply(RangeReply(R"({"owner":"host2","mode":"promoted"})", "8"), kKey);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->revision, 8u);
}

TEST(EtcdReplyTest, AMissingKeyIsRevisionZero) {
  for (const char* reply : {R"({"header":{"revision":"9"}})", R"({"header":{"revision":"9"},"kvs":[]})"}) {
    Result<OwnershipRecord> record = ParseEtcdRangeReply(reply, kKey);
    ASSERT_TRUE(record.ok()) << reply << ": " << record.status();
    EXPECT_EQ(*record, OwnershipRecord{}) << reply;
  }
}

TEST(EtcdReplyTest, MalformedRangeRepliesAreCorruptionNamingTheProblem) {
  struct Case {
    std::string reply;
    const char* mentions;
  };
  const Case cases[] = {
      {"", "not valid JSON"},
      {"[]", "not a JSON object"},
      {R"({"kvs":{}})", "\"kvs\" is malformed"},
      {R"({"kvs":[1]})", "\"kvs\" is malformed"},
      {R"({"kvs":[{},{}]})", "\"kvs\" is malformed"},
      {RangeReply("{}", "\"7\"", "/another/key"), "is not /understudy/vms/web1/owner"},
      {RangeReply("{}", "\"x7\""), "mod_revision"},
      {RangeReply("{}", "-1"), "mod_revision"},
      {RangeReply("{}", "\"0\""), "without \"mod_revision\""},
      {RangeReply(R"({"owner":1})"), "\"owner\""},
      {RangeReply(R"({"owner":"h","mode":[]})"), "\"mode\""},
      {RangeReply("owner=h"), "not valid JSON"},
      {R"({"kvs":[{"key":")" + Base64Encode(kKey) + R"(","mod_revision":"3","value":"@@@"}]})", "not base64"},
  };
  for (const Case& c : cases) {
    Result<OwnershipRecord> record = OwnershipRecord{};
    EXPECT_NO_THROW(record = ParseEtcdRangeReply(c.reply, kKey)) << c.reply;
    ASSERT_FALSE(record.ok()) << c.reply;
    EXPECT_EQ(record.status().code(), Status::Code::kCorruption) << c.reply;
    EXPECT_NE(record.status().message().find(c.mentions), std::string::npos) << c.reply << ": " << record.status();
  }
}

TEST(EtcdReplyTest, TxnRepliesSayWhetherTheSwapWon) {
  EXPECT_TRUE(*ParseEtcdTxnReply(R"({"header":{"revision":"10"},"succeeded":true,"responses":[{"response_put":{}}]})"));
  // etcd leaves "succeeded" out when it is false.
  EXPECT_FALSE(*ParseEtcdTxnReply(R"({"header":{"revision":"10"}})"));
  for (const char* bad : {R"({"succeeded":"true"})", "[true]", "{"}) {
    Result<bool> won = ParseEtcdTxnReply(bad);
    ASSERT_FALSE(won.ok()) << bad;
    EXPECT_EQ(won.status().code(), Status::Code::kCorruption) << bad;
  }
}

TEST(EtcdReplyTest, PutRepliesGiveTheNewRevision) {
  EXPECT_EQ(*ParseEtcdPutReply(R"({"header":{"cluster_id":"1","revision":"12"}})"), 12u);
  for (const char* bad : {"{}", R"({"header":[]})", R"({"header":{}})", R"({"header":{"revision":true}})"}) {
    Result<uint64_t> revision = ParseEtcdPutReply(bad);
    ASSERT_FALSE(revision.ok()) << bad;
    EXPECT_EQ(revision.status().code(), Status::Code::kCorruption) << bad;
  }
}

TEST(EtcdReplyTest, TheSwapComparesTheRevisionAndPutsTheRecord) {
  nlohmann::json request = nlohmann::json::parse(EtcdCompareAndSwapRequest(kKey, 42, "host2", "promoted"));
  EXPECT_EQ(request["compare"][0]["mod_revision"], "42");
  EXPECT_EQ(request["compare"][0]["target"], "MOD");
  EXPECT_EQ(*Base64Decode(request["compare"][0]["key"].get<std::string>()), kKey);
  std::string value = *Base64Decode(request["success"][0]["request_put"]["value"].get<std::string>());
  EXPECT_EQ(nlohmann::json::parse(value), (nlohmann::json{{"owner", "host2"}, {"mode", "promoted"}}));
  EXPECT_EQ(nlohmann::json::parse(EtcdRangeRequest(kKey))["key"], Base64Encode(kKey));
}

}  // namespace
}  // namespace understudy::failover
