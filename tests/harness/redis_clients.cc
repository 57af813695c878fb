#include "tests/harness/redis_clients.h"

#include "tests/harness/linux_guest.h"

namespace understudy::testing {

using Clock = std::chrono::steady_clock;

RedisIncrClients::RedisIncrClients(RedisClientsOptions options)
    : options_(std::move(options)), started_(Clock::now()) {
  MutexLock lock(&mu_);
  for (int i = 0; i < options_.clients; ++i) {
    logs_.push_back({i + 1, options_.key_prefix + std::to_string(i + 1), {}});
  }
}

std::unique_ptr<RedisIncrClients> RedisIncrClients::Start(RedisClientsOptions options) {
  std::unique_ptr<RedisIncrClients> clients(new RedisIncrClients(std::move(options)));
  // Each redis-cli is spawned from its client's thread, which outlives it (PR_SET_PDEATHSIG
  // follows the spawning thread).
  for (int i = 0; i < clients->options_.clients; ++i) {
    clients->threads_.emplace_back([raw = clients.get(), i] { raw->RunClient(i); });
  }
  return clients;
}

RedisIncrClients::~RedisIncrClients() {
  Stop();
  Finish();
}

void RedisIncrClients::Finish() {
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void RedisIncrClients::RunClient(int index) {
  const std::string key = options_.key_prefix + std::to_string(index + 1);
  const std::string output = options_.scratch_dir + "/redis-cli-" + std::to_string(index + 1) + ".out";
  auto millis = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
  for (uint64_t sent = 0; !stop_ && (options_.requests_per_client == 0 || sent < options_.requests_per_client); ++sent) {
    const Clock::time_point at = Clock::now();
    Result<std::string> reply = RunRedisCli(options_.launcher, options_.host, {"INCR", key}, output,
                                            Deadline::AfterMillis(options_.request_budget_ms));
    IncrOutcome outcome;
    outcome.sent_ms = millis(at - started_);
    outcome.latency_ms = millis(Clock::now() - at);
    outcome.answered = reply.ok();
    if (reply.ok()) {
      outcome.reply = *reply;
      ++replies_;
    } else {
      outcome.error = reply.status().ToString();
    }
    {
      MutexLock lock(&mu_);
      logs_[index].outcomes.push_back(outcome);
    }
    if (options_.on_outcome) {
      MutexLock lock(&callback_mu_);
      options_.on_outcome(index + 1, outcome);
    }
    if (!outcome.answered && options_.stop_at_first_unanswered) break;
  }
}

std::vector<IncrClientLog> RedisIncrClients::Logs() const {
  MutexLock lock(&mu_);
  return logs_;
}

Result<std::map<std::string, std::string>> RedisIncrClients::FinalValues(Deadline deadline) const {
  std::map<std::string, std::string> values;
  const std::string output = options_.scratch_dir + "/redis-cli-get.out";
  for (int i = 0; i < options_.clients; ++i) {
    const std::string key = options_.key_prefix + std::to_string(i + 1);
    UNDERSTUDY_ASSIGN_OR_RETURN(std::string value, RunRedisCli(options_.launcher, options_.host, {"GET", key}, output, deadline));
    values[key] = value;
  }
  return values;
}

}  // namespace understudy::testing
