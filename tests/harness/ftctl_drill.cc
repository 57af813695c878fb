#include "tests/harness/ftctl_drill.h"

#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include "common/child_process.h"

namespace understudy::testing {

Result<nlohmann::json> RunFtctlDrill(const std::string& kind, const AgentPair& pair) {
  return RunFtctlDrill(kind, pair, pair.primary_dir(), pair.secondary_dir());
}

Result<nlohmann::json> RunFtctlDrill(const std::string& kind, const AgentPair& pair, const std::string& primary_dir,
                                     const std::string& secondary_dir) {
  std::vector<std::string> argv = {RunfilePath("ftctl/ftctl"), "drill", kind, "--agent", primary_dir,
                                   "--agent", secondary_dir, "--json"};
  if (pair.lab()) argv.insert(argv.end(), {"--lab", pair.lab()->description_path()});
  const std::string log = pair.directory() + "/drill-" + kind + ".log";
  std::remove(log.c_str());
  UNDERSTUDY_ASSIGN_OR_RETURN(ChildProcess drill, ChildProcess::Spawn(argv, log));
  UNDERSTUDY_ASSIGN_OR_RETURN(int exited, drill.WaitForExit(Deadline::AfterMillis(60000)));
  std::ifstream file(log);
  std::string line, last;
  while (std::getline(file, line)) {
    if (!line.empty()) last = line;
  }
  nlohmann::json report = nlohmann::json::parse(last, nullptr, /*allow_exceptions=*/false);
  if (!report.is_object()) return Status::Internal("ftctl drill " + kind + " " + DescribeWaitStatus(exited) + ": " + last);
  report["exit_status"] = WIFEXITED(exited) ? WEXITSTATUS(exited) : -1;
  return report;
}

}  // namespace understudy::testing
