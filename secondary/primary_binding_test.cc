// PrimaryBinding::CheckHello: a hello must name the VM this secondary's configuration names,
// over a channel that proved one of the configured identities (issue 16, item 2). The agent
// level (refusal, dropped connection, nothing committed) is in hostile_primary_test.
#include "secondary/primary_binding.h"

#include <gtest/gtest.h>

namespace understudy::secondary {
namespace {

// A channel that proved `identity`; carries nothing.
class ProvedChannel : public transport::Channel {
 public:
  explicit ProvedChannel(std::string identity) : identity_(std::move(identity)), where_(identity_ + "@10.0.0.1:5000") {}
  Status Send(std::span<const transport::MessagePart>, Deadline) override { return Status::Ok(); }
  Status Receive(std::vector<std::byte>&, Deadline) override { return Status::Broken("no peer"); }
  Status Close(Deadline) override { return Status::Ok(); }
  const std::string& peer_identity() const override { return where_; }
  std::string authenticated_identity() const override { return identity_; }

 private:
  std::string identity_;
  std::string where_;
};

replication::Hello HelloFor(const std::string& vm) { return {"host1", vm, "10.0.0.1:7401", nullptr}; }

TEST(PrimaryBindingTest, TheBoundPrimaryForTheBoundVmIsAccepted) {
  PrimaryBinding binding{"canary1", {"host1", "host3"}};
  EXPECT_TRUE(binding.CheckHello(HelloFor("canary1"), ProvedChannel("host1")).ok());
  EXPECT_TRUE(binding.CheckHello(HelloFor("canary1"), ProvedChannel("host3")).ok());
  EXPECT_TRUE(binding.CheckDefinitionName("canary1").ok());
}

TEST(PrimaryBindingTest, AnotherVmIsRefusedNamingBothAndWhere) {
  PrimaryBinding binding{"canary1", {"host1"}};
  Status refused = binding.CheckHello(HelloFor("payroll"), ProvedChannel("host1"));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("'payroll'"), std::string::npos) << refused;
  EXPECT_NE(refused.message().find("'canary1'"), std::string::npos) << refused;
  EXPECT_NE(refused.message().find("10.0.0.1:5000"), std::string::npos) << refused;
  EXPECT_FALSE(binding.CheckHello(HelloFor(""), ProvedChannel("host1")).ok()) << "a hello naming no VM";
  Status definition = binding.CheckDefinitionName("payroll");
  ASSERT_FALSE(definition.ok());
  EXPECT_NE(definition.message().find("'payroll'"), std::string::npos) << definition;
}

TEST(PrimaryBindingTest, AnotherIdentityIsRefusedNamingIt) {
  PrimaryBinding binding{"canary1", {"host1"}};
  Status refused = binding.CheckHello(HelloFor("canary1"), ProvedChannel("host3"));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("'host3'"), std::string::npos) << refused;
  EXPECT_NE(refused.message().find("'host1'"), std::string::npos) << refused;
  // A channel that proved nobody (tcp://) cannot pass a binding that names someone.
  EXPECT_FALSE(binding.CheckHello(HelloFor("canary1"), ProvedChannel("")).ok());
  // Without identities (tcp://, insecure) only the VM is checked.
  PrimaryBinding unauthenticated{"canary1", {}};
  EXPECT_TRUE(unauthenticated.CheckHello(HelloFor("canary1"), ProvedChannel("")).ok());
}

}  // namespace
}  // namespace understudy::secondary
