// The other `ftctl drill` kinds, each once against a fresh pair on separate hosts: the
// drill must inject its fault, see the outcome it names, and judge continuity correctly.
//   kill-secondary  the primary goes unprotected, output continues
//   kill-qemu       only the primary's QEMU dies: the secondary promotes
//   slow-link       the replication link at 4 Mbit/s for 3 s: no failover, output continues
#include <gtest/gtest.h>

#include "tests/harness/agent_pair.h"
#include "tests/harness/ftctl_drill.h"

namespace understudy::testing {
namespace {

class DrillKindsTest : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(DrillKindsTest, DrillReportsTheExpectedOutcomeAndContinuity) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/true);
  const auto& [kind, outcome] = GetParam();
  AgentPairOptions options;
  options.separate_hosts = true;
  options.guest = {.pages = 64};
  auto pair = AgentPair::Start(options, "kinds");
  ASSERT_TRUE(pair.ok()) << pair.status();
  Result<nlohmann::json> report = RunFtctlDrill(kind, **pair);
  ASSERT_TRUE(report.ok()) << report.status();
  std::printf("%s: %s\n", kind.c_str(), report->dump().c_str());
  EXPECT_EQ((*report)["outcome"], outcome) << "primary log:\n" << (*pair)->PrimaryLog() << "\nsecondary log:\n"
                                           << (*pair)->SecondaryLog();
  EXPECT_TRUE((*report)["continuity_held"].get<bool>()) << (*report)["verdict"];
  EXPECT_EQ((*report)["exit_status"], 0);
  EXPECT_TRUE((*report)["first_new_output_ms"].is_number());
}

INSTANTIATE_TEST_SUITE_P(Kinds, DrillKindsTest,
                         ::testing::Values(std::make_pair(std::string("kill-secondary"), std::string("primary unprotected")),
                                           std::make_pair(std::string("kill-qemu"), std::string("secondary promoted")),
                                           std::make_pair(std::string("slow-link"),
                                                          std::string("no failover (as it should be)"))),
                         [](const auto& info) {
                           std::string name;
                           for (char c : info.param.first) {
                             if (c != '-') name += c;
                           }
                           return name;
                         });

}  // namespace
}  // namespace understudy::testing
