// RunAgentMain: the whole main() of an agent binary (ft-primary, ft-secondary).
//
//   usage: BINARY --config FILE
//
// Loads the configuration with Config::Load, runs Agent(config).Run() on the main thread, and
// turns SIGTERM/SIGINT into Agent::RequestStop() (a clean stop: the agent says goodbye).
// SIGPIPE is ignored: a dead peer is an error value, never a killed agent. Exit status 0 on
// a clean stop, 1 on failure, 2 on bad usage.
#ifndef UNDERSTUDY_COMMON_AGENT_MAIN_H_
#define UNDERSTUDY_COMMON_AGENT_MAIN_H_

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "common/log.h"

namespace understudy {

namespace agent_main_internal {
inline std::atomic<bool> stop_signalled{false};
inline void OnSignal(int) { stop_signalled.store(true); }
}  // namespace agent_main_internal

template <typename Config, typename Agent>
int RunAgentMain(int argc, char** argv, std::string_view component) {
  std::string config_path;
  if (argc == 3 && std::strcmp(argv[1], "--config") == 0) config_path = argv[2];
  if (config_path.empty()) {
    std::fprintf(stderr, "usage: %s --config FILE\n", argv[0]);
    return 2;
  }
  auto config = Config::Load(config_path);
  if (!config.ok()) {
    Log(component, config.status().ToString());
    return 1;
  }
  std::signal(SIGTERM, agent_main_internal::OnSignal);
  std::signal(SIGINT, agent_main_internal::OnSignal);
  std::signal(SIGPIPE, SIG_IGN);
  Agent agent(std::move(*config));
  // Signal handlers may only set a flag; this thread turns it into a stop request.
  std::thread watcher([&] {
    while (!agent_main_internal::stop_signalled.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    agent.RequestStop();
  });
  auto status = agent.Run();
  agent_main_internal::stop_signalled.store(true);
  watcher.join();
  return status.ok() ? 0 : 1;
}

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_AGENT_MAIN_H_
