#include "control/control_server.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "common/json_fields.h"

namespace understudy::control {
namespace {

using nlohmann::json;

// UNIX socket paths are limited to 108 bytes, which $TEST_TMPDIR can exceed: a mkdtemp
// directory under /tmp (as tests/harness's ScratchDir), removed by TearDown.
std::string MakeScratchDir() {
  std::string pattern = "/tmp/ut-control-XXXXXX";
  return ::mkdtemp(pattern.data()) ? pattern : "";
}

// A server with a handler written like the agents' (typed field access) and one that still
// uses nlohmann's throwing value() (what every handler was before issue 16).
class ControlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeScratchDir();
    ASSERT_FALSE(dir_.empty());
    path_ = dir_ + "/control.sock";
    auto server = ControlServer::Start(
        path_, {{"hold", [this](const json& request) -> Result<json> {
                   UNDERSTUDY_ASSIGN_OR_RETURN(bool hold, OptionalBool(request, "hold", true, "hold"));
                   held_.store(hold);
                   return json{{"hold", hold}};
                 }},
                {"throwing", [this](const json& request) -> Result<json> {
                   held_.store(request.value("hold", true));
                   return json{{"hold", held_.load()}};
                 }},
                {"quote", [](const json&) -> Result<json> { return json{{"text", std::string("peer said \xff")}}; }},
                {"status", [](const json&) -> Result<json> { return json{{"ok", true}}; }}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  void TearDown() override {
    server_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  Result<json> Call(const json& request) { return CallControl(path_, request, Deadline::AfterMillis(2000)); }

  std::string dir_;
  std::string path_;
  std::atomic<bool> held_{false};
  std::unique_ptr<ControlServer> server_;
};

// Regression (issue 16): {"hold": "x"} aborted the secondary (type_error out of a handler).
TEST_F(ControlServerTest, AFieldOfTheWrongTypeIsAnErrorAndChangesNothing) {
  Result<json> reply = Call({{"command", "hold"}, {"hold", "x"}});
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.status().message().find("\"hold\""), std::string::npos) << reply.status();
  EXPECT_FALSE(held_.load()) << "a refused request must change nothing";
  // A handler that still throws: the server answers with an error instead of terminating.
  reply = Call({{"command", "throwing"}, {"hold", "x"}});
  ASSERT_FALSE(reply.ok());
  EXPECT_FALSE(held_.load());
  // The server keeps serving, and a valid request does change the state (the control).
  EXPECT_TRUE(Call({{"command", "status"}}).ok());
  reply = Call({{"command", "hold"}, {"hold", true}});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(held_.load());
}

TEST_F(ControlServerTest, MalformedRequestsGetErrorsAndTheServerKeepsServing) {
  for (const json& bad : {json{{"command", 1}}, json::array({1}), json("status"), json{{"nocommand", true}},
                          json{{"command", "nope"}}}) {
    Result<json> reply = Call(bad);
    EXPECT_FALSE(reply.ok()) << bad.dump();
  }
  EXPECT_TRUE(Call({{"command", "status"}}).ok());
}

TEST_F(ControlServerTest, ReplyTextThatIsNotUtf8IsReplacedNotThrown) {
  Result<json> reply = Call({{"command", "quote"}});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ((*reply)["text"].get<std::string>().rfind("peer said ", 0), 0u);
  EXPECT_TRUE(Call({{"command", "status"}}).ok());
}

}  // namespace
}  // namespace understudy::control
