// ft-primary: protects one VM. Usage: ft-primary --config FILE (see primary_config.h).
// SIGTERM/SIGINT stop it cleanly: the secondary is told goodbye and does not promote.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>

#include "common/log.h"
#include "primary/primary_agent.h"

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      config_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s --config FILE\n", argv[0]);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "usage: %s --config FILE\n", argv[0]);
    return 2;
  }
  auto config = understudy::primary::PrimaryConfig::Load(config_path);
  if (!config.ok()) {
    understudy::Log("primary", config.status().ToString());
    return 1;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);
  understudy::primary::PrimaryAgent agent(std::move(*config));
  std::thread watcher([&] {
    while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    agent.RequestStop();
  });
  understudy::Status status = agent.Run();
  g_stop.store(true);
  watcher.join();
  return status.ok() ? 0 : 1;
}
