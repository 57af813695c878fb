// ftctl drill: rehearse a failure on the live pair (drill/drill.h) and print the report.
#include <cstdio>

#include "drill/drill.h"
#include "ftctl/commands.h"

namespace understudy::ftctl {

int DrillCommand(const std::string& kind_name, const std::vector<std::string>& agents, const std::string& lab,
                 bool as_json) {
  Result<drill::DrillKind> kind = drill::ParseDrillKind(kind_name);
  if (!kind.ok()) {
    std::fprintf(stderr, "drill: %s\n", kind.status().message().c_str());
    return 2;
  }
  if (agents.size() != 2) {
    std::fprintf(stderr, "drill: give the primary's and then the secondary's --agent DIR\n");
    return 2;
  }
  drill::DrillOptions options;
  options.primary_dir = agents[0];
  options.secondary_dir = agents[1];
  options.lab_path = lab;
  if (!as_json) std::printf("drill %s: watching the pair, then injecting the fault...\n", kind_name.c_str());
  std::fflush(stdout);
  Result<drill::DrillReport> report = drill::RunDrill(*kind, options);
  if (!report.ok()) {
    std::fprintf(stderr, "drill %s could not run: %s\n", kind_name.c_str(), report.status().ToString().c_str());
    return 2;
  }
  std::printf("%s\n", as_json ? report->ToJson().dump().c_str() : report->ToText().c_str());
  return report->continuity_held ? 0 : 1;
}

}  // namespace understudy::ftctl
