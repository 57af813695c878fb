// ft-primary: protects one VM. Usage: ft-primary --config FILE (see primary_config.h).
// SIGTERM/SIGINT stop it cleanly: the secondary is told goodbye and does not promote.
#include "common/agent_main.h"
#include "primary/primary_agent.h"

int main(int argc, char** argv) {
  return understudy::RunAgentMain<understudy::primary::PrimaryConfig, understudy::primary::PrimaryAgent>(argc, argv,
                                                                                                         "primary");
}
