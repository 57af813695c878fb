#include "tests/harness/incr_history.h"

#include <algorithm>
#include <cstdio>

namespace understudy::testing {
namespace {

bool ParseCount(const std::string& text, uint64_t& value) {
  if (text.empty() || text.size() > 19) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  value = std::stoull(text);
  return true;
}

std::string Who(const IncrClientLog& client) {
  return "client " + std::to_string(client.client) + " (key " + client.key + ")";
}

// The first violation in one client's replies, or "" when they are 1, 2, 3, ...; `last` is
// the last reply's value (0 when none), `pending` the unanswered requests after it.
std::string JudgeClient(const IncrClientLog& client, uint64_t& last, uint64_t& pending) {
  last = 0;
  pending = 0;
  uint64_t answered = 0;
  for (const IncrOutcome& outcome : client.outcomes) {
    if (!outcome.answered) {
      ++pending;  // applied or not: unknowable
      continue;
    }
    ++answered;
    uint64_t value = 0;
    const std::string where = Who(client) + ": reply #" + std::to_string(answered);
    if (!ParseCount(outcome.reply, value)) return where + " is '" + outcome.reply + "', not a count";
    if (value <= last) {
      return where + " is " + std::to_string(value) + " after " + std::to_string(last) +
             " (repeat: an earlier reply came from state the failover rolled back)";
    }
    if (value > last + 1 + pending) {
      return where + " is " + std::to_string(value) + " after " + std::to_string(last) +
             (pending > 0 ? " and " + std::to_string(pending) + " unanswered" : std::string()) +
             " (skip: an increment was lost or applied twice)";
    }
    last = value;
    pending = 0;
  }
  return "";
}

}  // namespace

std::string IncrVerdict::Summary() const {
  char text[160];
  std::snprintf(text, sizeof(text), "%llu replies, %llu unanswered, longest wait %.0f ms: ",
                static_cast<unsigned long long>(replies), static_cast<unsigned long long>(unanswered),
                longest_latency_ms);
  std::string summary = text;
  summary += consistent ? "one serial history" : violation;
  if (!first_error.empty()) summary += "; first unanswered: " + first_error;
  return summary;
}

IncrVerdict CheckIncrHistory(const std::vector<IncrClientLog>& clients,
                             const std::map<std::string, std::string>& final_values) {
  IncrVerdict verdict;
  for (const IncrClientLog& client : clients) {
    for (const IncrOutcome& outcome : client.outcomes) {
      if (outcome.answered) {
        ++verdict.replies;
        verdict.longest_latency_ms = std::max(verdict.longest_latency_ms, outcome.latency_ms);
      } else {
        ++verdict.unanswered;
        if (verdict.first_error.empty()) verdict.first_error = Who(client) + ": " + outcome.error;
      }
    }
    uint64_t last = 0, pending = 0;
    std::string violation = JudgeClient(client, last, pending);
    auto found = final_values.find(client.key);
    if (violation.empty() && found != final_values.end()) {
      uint64_t final_value = 0;
      const bool absent = found->second.empty();
      if ((absent && last > 0) || (!absent && (!ParseCount(found->second, final_value) || final_value < last ||
                                               final_value > last + pending))) {
        violation = Who(client) + ": GET says '" + found->second + "' after the last reply " + std::to_string(last) +
                    " (an increment nobody saw answered was applied, or an answered one undone)";
      }
    }
    if (!violation.empty() && verdict.consistent) {
      verdict.consistent = false;
      verdict.violation = violation;
    }
  }
  return verdict;
}

}  // namespace understudy::testing
