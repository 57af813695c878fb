#include "monitoring/agent_metrics.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <string>

namespace understudy::monitoring {
namespace {

double GaugeValue(prometheus::Registry& registry, const std::string& name) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name == name && !family.metric.empty()) return family.metric.front().gauge.value;
  }
  ADD_FAILURE() << name << " is not exported";
  return -1;
}

// Regression: the primary passed the copy's progress (a double) into a bool, so the ratio
// read 1 as soon as any of the copy was committed (gcc's -Wnarrowing warned).
TEST(AgentMetricsTest, DiskSyncProgressIsTheRatioNotABool) {
  prometheus::Registry registry;
  AgentMetrics metrics(registry, {"vm", "primary", "host1"});
  AgentMetrics::DiskSample sample;
  sample.sync_progress_ratio = 0.37;
  metrics.SetDisk(sample);
  EXPECT_DOUBLE_EQ(GaugeValue(registry, "understudy_disk_sync_progress_ratio"), 0.37);
  sample.sync_progress_ratio = 1.0;
  metrics.SetDisk(sample);
  EXPECT_DOUBLE_EQ(GaugeValue(registry, "understudy_disk_sync_progress_ratio"), 1.0);
}

// Both roles say how many independent heartbeat networks they have: 1 is a pair without a
// redundant heartbeat path, which an alert can find.
TEST(AgentMetricsTest, HeartbeatNetworksSaysWhetherTheHeartbeatIsRedundant) {
  for (const char* role : {"primary", "secondary"}) {
    prometheus::Registry registry;
    AgentMetrics metrics(registry, {"vm", role, "host1"});
    metrics.SetHeartbeatNetworks(1);
    EXPECT_DOUBLE_EQ(GaugeValue(registry, "understudy_heartbeat_networks"), 1.0) << role;
    metrics.SetHeartbeatNetworks(2);
    EXPECT_DOUBLE_EQ(GaugeValue(registry, "understudy_heartbeat_networks"), 2.0) << role;
  }
}

}  // namespace
}  // namespace understudy::monitoring
