// RedisIncrClients: a few Redis clients hammering the Linux guest's Redis, as a protected
// service's users would — each a thread that runs the real redis-cli (`INCR counter:K`) again
// and again, one request outstanding, a fresh redis-cli process and TCP connection per request
// (so a reply from rolled-back state shows up as a repeated count rather than a stuck
// connection). What every request got is logged for CheckIncrHistory (incr_history.h).
//
// By default a client stops at its first request without a reply (redis-cli failed or
// exceeded request_budget_ms): with output commit on, that is already a failure. A negative
// control keeps going (stop_at_first_unanswered = false): CheckIncrHistory allows for the
// unanswered request having been applied or not.
//
// Thread safety: all methods may be called from any thread; the callback runs on the
// clients' threads, one call at a time.
#ifndef UNDERSTUDY_TESTS_HARNESS_REDIS_CLIENTS_H_
#define UNDERSTUDY_TESTS_HARNESS_REDIS_CLIENTS_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/deadline.h"
#include "common/mutex.h"
#include "common/result.h"
#include "tests/harness/incr_history.h"

namespace understudy::testing {

struct RedisClientsOptions {
  int clients = 3;
  // Requests per client; 0: until Stop().
  uint64_t requests_per_client = 0;
  std::vector<std::string> launcher;  // prefix for redis-cli, e.g. NetnsExec(namespace)
  std::string host;                   // the guest's Redis address
  std::string scratch_dir;            // redis-cli's output files go here
  std::string key_prefix = "counter:";
  int request_budget_ms = 30000;      // one redis-cli run, connection retries included
  bool stop_at_first_unanswered = true;
  // Called after every request (e.g. the demo's live display).
  std::function<void(int client, const IncrOutcome&)> on_outcome;
};

class RedisIncrClients {
 public:
  // Starts the clients' threads at once. REQUIRES: options.clients >= 1.
  static std::unique_ptr<RedisIncrClients> Start(RedisClientsOptions options);
  ~RedisIncrClients();  // Stop() and Finish()

  // Answered requests so far, all clients.
  uint64_t replies() const { return replies_.load(); }
  // Each client ends after its current request.
  void Stop() { stop_ = true; }
  // Waits until every client ended (each request is bounded by request_budget_ms).
  void Finish();
  // What every client got, in order. REQUIRES: Finish() returned.
  std::vector<IncrClientLog> Logs() const;
  // GET of every client's key through redis-cli ("" for a key that does not exist): the
  // final values CheckIncrHistory compares with the last replies.
  Result<std::map<std::string, std::string>> FinalValues(Deadline deadline) const;

 private:
  explicit RedisIncrClients(RedisClientsOptions options);
  void RunClient(int index);

  const RedisClientsOptions options_;
  const std::chrono::steady_clock::time_point started_;
  std::atomic<uint64_t> replies_{0};
  std::atomic<bool> stop_{false};
  mutable Mutex mu_;
  std::vector<IncrClientLog> logs_ GUARDED_BY(mu_);
  Mutex callback_mu_;  // one on_outcome call at a time
  std::vector<std::thread> threads_;  // touched only by Start, Finish and the destructor
};

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_REDIS_CLIENTS_H_
