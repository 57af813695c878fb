// Service history: did the exactly-once service keep its promises across a failover?
//
// Every service_client (tests/harness/service_client_main.cc) appends to its own log, one JSON
// object per line:
//   {"client":K,"server":"10.96.0.2:7000","requests":N,"retransmit_ms":200,
//    "started_unix_ms":T,"at_ms":0}                             once, first: who and what
//   {"client":K,"request":r,"status":"ok","value":v,"at_ms":t}  each reply datagram received
//   {"client":K,"retransmit":r,"at_ms":t}                       each retransmission of request r
// "client" in a reply line is the client id the reply carries; "status" is ok, stale, gap,
// invalid (or "status N" for a number the protocol does not define); at_ms counts from that
// client's start, so times of different clients are not comparable.
//
// CheckServiceHistory asks whether every reply any client received fits ONE serial history of
// the service: what a correct Understudy promises, since a reply may leave the protected VM
// only once the state that produced it survives a failover. A client sends request r only
// after request r-1 was answered ok, one request outstanding. The violations:
//   - the same (client, request) answered ok with two values: the first reply came from
//     state that was later rolled back;
//   - one ok value answered to two (client, request) pairs: a request was applied twice, or a
//     value was handed out again after a rollback;
//   - a client's ok values not strictly increasing with its request numbers;
//   - a reply to a request the client had not sent yet, or addressed to another client;
//   - "gap" for a request sent after its predecessor's ok: the service lost an acknowledged
//     request; "stale" for the outstanding request: the service had applied a later request
//     of that client that was never sent;
//   - values below the largest one answered that nobody was answered, more of them than
//     clients that stopped with a request outstanding (each such client may have had one
//     request applied whose reply it never saw).
// The last check assumes the logs cover every client that sent increments.
//
// Thread safety: CheckServiceHistory is a pure function of the files it reads.
#ifndef UNDERSTUDY_TESTS_HARNESS_SERVICE_HISTORY_H_
#define UNDERSTUDY_TESTS_HARNESS_SERVICE_HISTORY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace understudy::testing {

// What one client's log shows.
struct ClientHistory {
  std::string log_path;
  uint32_t client_id = 0;
  uint32_t requests_planned = 0;   // N from the log's first line
  uint32_t requests_answered = 0;  // how many of 1..N were answered ok
  bool completed = false;          // every one of 1..N was answered ok
  uint64_t replies = 0;            // reply datagrams received, any status
  uint64_t retransmissions = 0;
  // The longest time from first sending a request (right after its predecessor's first ok, or
  // at start for request 1) to its first ok reply; 0 and request 0 when none was answered.
  double longest_stall_ms = 0;
  uint32_t longest_stall_request = 0;
};

struct HistoryVerdict {
  bool consistent = true;
  // The first violation found, "" when consistent; e.g. "client 2 request 57 was answered 112
  // at 1834 ms and 109 at 2210 ms: the first reply came from state that was later rolled back".
  std::string violation;
  // The first kMaxViolationsKept violations, in the order found; violation_count counts all.
  std::vector<std::string> violations;
  uint64_t violation_count = 0;
  static constexpr size_t kMaxViolationsKept = 20;

  bool all_completed = true;       // every client had every planned request answered ok
  uint64_t replies = 0;            // reply lines in all logs
  uint64_t distinct_requests = 0;  // (client, request) pairs answered ok
  uint64_t max_value = 0;          // the largest ok value answered to anyone
  uint64_t retransmissions = 0;
  std::vector<ClientHistory> clients;  // one per log, in the order given

  // One line for a test's output: the counts, the longest stall, and the first violation.
  std::string Summary() const;
};

// Reads the logs (one per client) and judges them together. A history with violations is a
// successful call with consistent == false. Fails with kNotFound when a log cannot be read,
// kCorruption (naming file and line) when a line is not one of the three kinds above or the
// first line is not the header, kInvalidArgument when two logs claim the same client id or
// no log is given.
Result<HistoryVerdict> CheckServiceHistory(const std::vector<std::string>& log_paths);

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_SERVICE_HISTORY_H_
