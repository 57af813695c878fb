#include "replication/agent_protocol.h"

#include <gtest/gtest.h>

#include <string>

namespace understudy::replication {
namespace {

std::span<const std::byte> Bytes(const std::string& text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

std::string HelloOf(const std::string& json_text) { return std::string(1, static_cast<char>(MessageType::kHello)) + json_text; }

TEST(AgentProtocolTest, HelloRoundTrips) {
  Hello hello{"host1", "vm1", "127.0.0.1:7401", nlohmann::json{{"lineage", "ab"}}, /*revision=*/912};
  std::string message = EncodeHello(hello);
  Result<Hello> decoded = DecodeHello(Bytes(message));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->name, "host1");
  EXPECT_EQ(decoded->vm, "vm1");
  EXPECT_EQ(decoded->heartbeat_address, "127.0.0.1:7401");
  EXPECT_EQ(decoded->disk, hello.disk);
  EXPECT_EQ(decoded->revision, 912u);
}

// Regression (issue 16): {"name": 1} threw nlohmann's type_error out of DecodeHello and
// terminated the agent. Each of these is an error value naming the field.
TEST(AgentProtocolTest, HelloFieldsOfTheWrongTypeAreErrorsNotExceptions) {
  struct Case {
    const char* json;
    const char* mentions;
  };
  for (const Case& c : {Case{R"({"name": 1})", "\"name\""}, Case{R"({"name": "h", "vm": []})", "\"vm\""},
                        Case{R"({"name": "h", "heartbeat": {"a": 1}})", "\"heartbeat\""},
                        Case{R"({"name": null})", "\"name\""}, Case{R"([1, 2])", "not a JSON object"},
                        Case{R"("name")", "not a JSON object"}, Case{R"({"name": "x")", "not valid JSON"},
                        Case{"{\"name\": \"\xff\"}", "not valid JSON"}, Case{R"({"vm": "v"})", "without a name"},
                        Case{R"({"name": "h", "vm": "../../other/owner"})", "not a VM name"},
                        Case{R"({"name": "h", "vm": "a/b"})", "not a VM name"},
                        Case{R"({"name": "h", "revision": -1})", "\"revision\""},
                        Case{R"({"name": "h", "revision": "7"})", "\"revision\""}}) {
    Result<Hello> decoded = Hello{};
    EXPECT_NO_THROW(decoded = DecodeHello(Bytes(HelloOf(c.json)))) << c.json;
    ASSERT_FALSE(decoded.ok()) << c.json;
    EXPECT_EQ(decoded.status().code(), Status::Code::kCorruption) << c.json;
    EXPECT_NE(decoded.status().message().find(c.mentions), std::string::npos) << c.json << ": " << decoded.status();
  }
}

TEST(AgentProtocolTest, AcksAndNacksDecodeAndOtherMessagesAreRefused) {
  Result<AckMessage> ack = DecodeAck(Bytes(EncodeAck(41)));
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->epoch, 41u);
  Result<AckMessage> nack = DecodeAck(Bytes(EncodeNack(7, "bad crc")));
  ASSERT_TRUE(nack.ok());
  EXPECT_EQ(nack->type, MessageType::kNack);
  EXPECT_EQ(nack->reason, "bad crc");
  EXPECT_FALSE(DecodeAck(Bytes(EncodeAck(41) + "x")).ok());
  EXPECT_FALSE(DecodeAck(Bytes(std::string("\x02\x01", 2))).ok());
  EXPECT_FALSE(DecodeAck(Bytes(EncodeHello(Hello{"h", "", "", {}}))).ok());
}

}  // namespace
}  // namespace understudy::replication
