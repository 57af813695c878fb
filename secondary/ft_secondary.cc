// ft-secondary: keeps a ready standby for one protected VM. Usage: ft-secondary --config FILE
// (see secondary_config.h). SIGTERM/SIGINT stop it.
#include "common/agent_main.h"
#include "secondary/secondary_agent.h"

int main(int argc, char** argv) {
  return understudy::RunAgentMain<understudy::secondary::SecondaryConfig, understudy::secondary::SecondaryAgent>(
      argc, argv, "secondary");
}
