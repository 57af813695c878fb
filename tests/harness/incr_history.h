// INCR history: did a Redis counter keep one serial history across failovers?
//
// Each Redis client (tests/harness/redis_clients.h) owns one key and INCRs it over and over,
// one request outstanding, each request on a fresh connection. A protected VM must answer as
// one machine that never failed: the k-th reply a client sees is exactly k (the key starts
// absent), and at the end the key holds the last reply. The violations, per client:
//   - a reply equal to or below its predecessor ("repeat"): the earlier reply came from state
//     the failover rolled back — what the world saw was taken back;
//   - a reply above its predecessor + 1 ("skip"): an increment was lost to the client or
//     applied twice — unless requests without a reply came between: each of those may or may
//     not have been applied, so the next reply may lie up to that many above predecessor + 1;
//   - a reply that is not a decimal integer (an error reply, garbage);
//   - a final value (GET) below the last reply, or above it by more than the unanswered
//     requests after it: an answered increment was undone, or one nobody sent was applied.
// A request that got no reply (the client gave up on it) is not itself a violation but is
// counted: with output commit a failover must not cost a request, and tests assert none.
//
// Thread safety: CheckIncrHistory is a pure function.
#ifndef UNDERSTUDY_TESTS_HARNESS_INCR_HISTORY_H_
#define UNDERSTUDY_TESTS_HARNESS_INCR_HISTORY_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace understudy::testing {

// One request of one client, in the order the client sent them.
struct IncrOutcome {
  bool answered = false;
  std::string reply;     // what the client printed (answered), e.g. "17"
  std::string error;     // why it got no reply (not answered)
  double sent_ms = 0;    // since the clients started
  double latency_ms = 0; // sent → reply (or → giving up)
};

struct IncrClientLog {
  int client = 0;
  std::string key;
  std::vector<IncrOutcome> outcomes;
};

struct IncrVerdict {
  bool consistent = true;
  std::string violation;          // the first one, e.g. "client 2 (key counter:2): reply #31 is 30 after 30 (repeat: ...)"
  uint64_t replies = 0;           // answered requests, all clients
  uint64_t unanswered = 0;        // requests a client gave up on
  std::string first_error;        // the first unanswered request's reason
  double longest_latency_ms = 0;  // of any answered request: the failover as clients saw it
  // "3 clients, 120 replies, 0 unanswered, longest wait 1065 ms: one serial history" (or the violation).
  std::string Summary() const;
};

// Judges `clients`' logs. `final_values` maps each key to what GET returned after the clients
// finished ("" for a key that does not exist); a key missing from the map is not checked.
IncrVerdict CheckIncrHistory(const std::vector<IncrClientLog>& clients,
                             const std::map<std::string, std::string>& final_values);

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_INCR_HISTORY_H_
