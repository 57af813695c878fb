#include "tests/harness/service_history.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

namespace understudy::testing {
namespace {

// "1834 ms"; fractions only when the log has them.
std::string Ms(double at_ms) {
  char text[48];
  if (at_ms == std::floor(at_ms)) {
    std::snprintf(text, sizeof(text), "%.0f ms", at_ms);
  } else {
    std::snprintf(text, sizeof(text), "%.1f ms", at_ms);
  }
  return text;
}

std::string Pair(uint32_t client, uint32_t request) {
  return "client " + std::to_string(client) + " request " + std::to_string(request);
}

void AddViolation(HistoryVerdict& verdict, std::string what) {
  if (verdict.violation_count++ == 0) {
    verdict.consistent = false;
    verdict.violation = what;
  }
  if (verdict.violations.size() < HistoryVerdict::kMaxViolationsKept) verdict.violations.push_back(std::move(what));
}

// One line of a client log, parsed.
struct LogLine {
  enum class Kind { kHeader, kReply, kRetransmit };
  Kind kind = Kind::kHeader;
  uint32_t client = 0;
  uint32_t request = 0;  // reply and retransmit lines
  std::string status;    // reply lines
  uint64_t value = 0;    // reply lines
  uint32_t planned = 0;  // header lines
  double at_ms = 0;
};

std::optional<uint64_t> UnsignedField(const nlohmann::json& object, const char* key, uint64_t max) {
  auto field = object.find(key);
  if (field == object.end() || !field->is_number_unsigned()) return std::nullopt;
  uint64_t value = field->get<uint64_t>();
  if (value > max) return std::nullopt;
  return value;
}

constexpr uint64_t kMaxU32 = std::numeric_limits<uint32_t>::max();

Result<LogLine> ParseLine(const std::string& text) {
  nlohmann::json object = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded() || !object.is_object()) return Status::Corruption("not a JSON object");
  LogLine line;
  std::optional<uint64_t> client = UnsignedField(object, "client", kMaxU32);
  if (!client) return Status::Corruption("no \"client\" id");
  line.client = static_cast<uint32_t>(*client);
  auto at = object.find("at_ms");
  if (at == object.end() || !at->is_number()) return Status::Corruption("no \"at_ms\" time");
  line.at_ms = at->get<double>();

  if (object.contains("retransmit")) {
    std::optional<uint64_t> request = UnsignedField(object, "retransmit", kMaxU32);
    if (!request) return Status::Corruption("\"retransmit\" is not a request number");
    line.kind = LogLine::Kind::kRetransmit;
    line.request = static_cast<uint32_t>(*request);
    return line;
  }
  if (object.contains("status")) {
    std::optional<uint64_t> request = UnsignedField(object, "request", kMaxU32);
    std::optional<uint64_t> value = UnsignedField(object, "value", std::numeric_limits<uint64_t>::max());
    auto status = object.find("status");
    if (!request || !value || !status->is_string()) {
      return Status::Corruption("a reply line needs \"request\", \"status\" (a name) and \"value\"");
    }
    line.kind = LogLine::Kind::kReply;
    line.request = static_cast<uint32_t>(*request);
    line.status = status->get<std::string>();
    line.value = *value;
    return line;
  }
  if (object.contains("requests")) {
    std::optional<uint64_t> planned = UnsignedField(object, "requests", kMaxU32);
    if (!planned) return Status::Corruption("\"requests\" is not a count");
    line.kind = LogLine::Kind::kHeader;
    line.planned = static_cast<uint32_t>(*planned);
    return line;
  }
  return Status::Corruption("neither a header, a reply nor a retransmission");
}

// An ok value some (client, request) was answered, and when it first arrived.
struct OkAnswer {
  uint64_t value = 0;
  double at_ms = 0;
};

// One client's log replayed against the client's own rules (one request outstanding, the next
// sent on the first ok), recording into `verdict` the violations visible in this log alone.
struct ClientReplay {
  ClientHistory history;
  // The distinct ok values each request got, in order of arrival.
  std::map<uint32_t, std::vector<OkAnswer>> ok;
  // (request, status) of refusals already reported: every retransmission draws the same
  // refusal again, and one report says it all.
  std::set<std::pair<uint32_t, std::string>> refusals_reported;
};

void ReplayReply(const LogLine& line, ClientReplay& replay, uint32_t& outstanding, double& outstanding_since_ms,
                 HistoryVerdict& verdict) {
  ClientHistory& history = replay.history;
  const uint32_t client = history.client_id;
  const std::string at = " at " + Ms(line.at_ms);
  if (line.client != client) {
    AddViolation(verdict, "the log of client " + std::to_string(client) + " holds a reply to " +
                              Pair(line.client, line.request) + at + ": a reply delivered to the wrong client");
    return;
  }
  // The client sends request r once r-1 is answered ok, and stops after the planned last.
  const uint32_t last_sent = std::min(outstanding, history.requests_planned);
  if (line.request == 0 || line.request > last_sent) {
    AddViolation(verdict, Pair(client, line.request) + " was answered " + line.status + at +
                              ", a request the client never sent (it had sent up to request " +
                              std::to_string(last_sent) + "): a reply the service should not have produced");
    return;
  }
  if (line.status == "ok") {
    std::vector<OkAnswer>& answers = replay.ok[line.request];
    auto same = std::find_if(answers.begin(), answers.end(), [&](const OkAnswer& a) { return a.value == line.value; });
    if (same == answers.end()) {
      if (!answers.empty()) {
        const OkAnswer& first = answers.front();
        AddViolation(verdict, Pair(client, line.request) + " was answered " + std::to_string(first.value) + " at " +
                                  Ms(first.at_ms) + " and " + std::to_string(line.value) + at +
                                  ": the first reply came from state that was later rolled back");
      }
      answers.push_back({line.value, line.at_ms});
    }
    if (line.request == outstanding) {
      const double stall = line.at_ms - outstanding_since_ms;
      if (history.longest_stall_request == 0 || stall > history.longest_stall_ms) {
        history.longest_stall_ms = stall;
        history.longest_stall_request = line.request;
      }
      ++outstanding;
      outstanding_since_ms = line.at_ms;
    }
    return;
  }
  const bool refusal = line.status == "gap" || (line.status == "stale" && line.request == outstanding);
  if (refusal && !replay.refusals_reported.emplace(line.request, line.status).second) return;
  if (line.status == "gap") {
    if (line.request == 1) {
      AddViolation(verdict, Pair(client, 1) + " was answered gap" + at + ", which the protocol never does");
      return;
    }
    // Request r was sent, so r-1 had its ok, which moved `outstanding` past it.
    const OkAnswer& previous = replay.ok.at(line.request - 1).front();
    AddViolation(verdict, Pair(client, line.request) + " was answered gap" + at + " although request " +
                              std::to_string(line.request - 1) + " had been answered ok (" +
                              std::to_string(previous.value) + ") at " + Ms(previous.at_ms) +
                              ": the service lost a request it had acknowledged");
    return;
  }
  if (line.status == "stale" && line.request == outstanding) {
    AddViolation(verdict, Pair(client, line.request) + " was answered stale" + at +
                              " before any ok for it: the service had applied a later request of client " +
                              std::to_string(client) + " that was never sent (another client with the same id?)");
  }
  // Other stale replies answer retransmissions of requests already done; "invalid" and
  // undefined statuses say nothing about the history (the client then never completes).
}

Result<ClientReplay> ReplayLog(const std::string& path, HistoryVerdict& verdict) {
  std::ifstream file(path);
  if (!file) return Status::NotFound("cannot read service client log " + path);
  ClientReplay replay;
  replay.history.log_path = path;
  bool have_header = false;
  uint32_t outstanding = 1;
  double outstanding_since_ms = 0;
  std::string text;
  for (uint64_t number = 1; std::getline(file, text); ++number) {
    if (text.empty()) continue;
    const std::string where = path + " line " + std::to_string(number);
    Result<LogLine> parsed = ParseLine(text);
    if (!parsed.ok()) return parsed.status().WithContext(where);
    const LogLine& line = *parsed;
    if (!have_header) {
      if (line.kind != LogLine::Kind::kHeader) {
        return Status::Corruption(where + ": the first line is not a service_client header");
      }
      have_header = true;
      replay.history.client_id = line.client;
      replay.history.requests_planned = line.planned;
      outstanding_since_ms = line.at_ms;
      continue;
    }
    switch (line.kind) {
      case LogLine::Kind::kHeader:
        return Status::Corruption(where + ": a second header; was the log reused for another run?");
      case LogLine::Kind::kRetransmit:
        ++replay.history.retransmissions;
        break;
      case LogLine::Kind::kReply:
        ++replay.history.replies;
        ReplayReply(line, replay, outstanding, outstanding_since_ms, verdict);
        break;
    }
  }
  if (!have_header) return Status::Corruption(path + ": empty, not even the service_client header");
  ClientHistory& history = replay.history;
  history.requests_answered = static_cast<uint32_t>(std::count_if(
      replay.ok.begin(), replay.ok.end(), [&](const auto& entry) { return entry.first <= history.requests_planned; }));
  history.completed = history.requests_answered == history.requests_planned;
  return replay;
}

// Per client, ok values must grow with the request number.
void CheckIncreasing(const ClientReplay& replay, HistoryVerdict& verdict) {
  const uint32_t client = replay.history.client_id;
  const std::pair<const uint32_t, std::vector<OkAnswer>>* previous = nullptr;
  for (const auto& entry : replay.ok) {
    if (previous != nullptr) {
      const OkAnswer& before = previous->second.front();
      const OkAnswer& after = entry.second.front();
      if (after.value <= before.value) {
        AddViolation(verdict, Pair(client, previous->first) + " was answered " + std::to_string(before.value) + " at " +
                                  Ms(before.at_ms) + " but the later request " + std::to_string(entry.first) +
                                  " was answered " + std::to_string(after.value) + " at " + Ms(after.at_ms) +
                                  ": the values of one client must increase");
      }
    }
    previous = &entry;
  }
}

struct Holder {
  uint32_t client = 0;
  uint32_t request = 0;
  double at_ms = 0;
};

// Each ok value belongs to one (client, request); with every client's replies seen, nobody
// but a client that gave up may hide an applied value.
void CheckValuesAcrossClients(const std::vector<ClientReplay>& replays, HistoryVerdict& verdict) {
  std::map<uint64_t, Holder> holders;
  for (const ClientReplay& replay : replays) {
    for (const auto& [request, answers] : replay.ok) {
      ++verdict.distinct_requests;
      for (const OkAnswer& answer : answers) {
        verdict.max_value = std::max(verdict.max_value, answer.value);
        Holder here{replay.history.client_id, request, answer.at_ms};
        auto [existing, inserted] = holders.emplace(answer.value, here);
        if (inserted) continue;
        const Holder& first = existing->second;
        AddViolation(verdict, "value " + std::to_string(answer.value) + " was answered to " +
                                  Pair(first.client, first.request) + " at " + Ms(first.at_ms) + " and to " +
                                  Pair(here.client, here.request) + " at " + Ms(here.at_ms) +
                                  " (each client's own clock): a request was applied twice, or a value was "
                                  "handed out again after a rollback");
      }
    }
  }

  uint64_t gave_up = 0;
  for (const ClientReplay& replay : replays) gave_up += replay.history.completed ? 0 : 1;
  std::vector<uint64_t> missing;
  uint64_t missing_count = 0;
  uint64_t expected = 1;
  auto note_missing_below = [&](uint64_t bound) {
    for (; expected < bound; ++expected) {
      if (missing.size() < 5) missing.push_back(expected);
      ++missing_count;
    }
  };
  for (const auto& [value, holder] : holders) {
    note_missing_below(value);
    expected = value + 1;
  }
  if (missing_count <= gave_up) return;
  std::string listed;
  for (uint64_t value : missing) listed += (listed.empty() ? "" : ", ") + std::to_string(value);
  if (missing_count > missing.size()) listed += ", ...";
  AddViolation(verdict, std::to_string(missing_count) + " of the values 1.." + std::to_string(verdict.max_value) +
                            " (" + listed + ") were answered to nobody, but only " + std::to_string(gave_up) +
                            " client(s) stopped with a request outstanding: the service applied requests "
                            "whose replies no client saw");
}

}  // namespace

Result<HistoryVerdict> CheckServiceHistory(const std::vector<std::string>& log_paths) {
  if (log_paths.empty()) return Status::InvalidArgument("no service client logs to check");
  HistoryVerdict verdict;
  std::vector<ClientReplay> replays;
  std::map<uint32_t, std::string> path_of_client;
  for (const std::string& path : log_paths) {
    Result<ClientReplay> replay = ReplayLog(path, verdict);
    if (!replay.ok()) return replay.status();
    auto [existing, inserted] = path_of_client.emplace(replay->history.client_id, path);
    if (!inserted) {
      return Status::InvalidArgument(existing->second + " and " + path + " both log client " +
                                     std::to_string(replay->history.client_id));
    }
    replays.push_back(std::move(*replay));
  }
  for (const ClientReplay& replay : replays) CheckIncreasing(replay, verdict);
  CheckValuesAcrossClients(replays, verdict);
  for (const ClientReplay& replay : replays) {
    verdict.all_completed = verdict.all_completed && replay.history.completed;
    verdict.replies += replay.history.replies;
    verdict.retransmissions += replay.history.retransmissions;
    verdict.clients.push_back(replay.history);
  }
  return verdict;
}

std::string HistoryVerdict::Summary() const {
  std::string summary = consistent ? "consistent" : "INCONSISTENT";
  summary += ": " + std::to_string(clients.size()) + " clients, " + std::to_string(distinct_requests) +
             " requests answered ok (largest value " + std::to_string(max_value) + "), " + std::to_string(replies) +
             " replies, " + std::to_string(retransmissions) + " retransmissions";
  uint64_t unfinished = 0;
  for (const ClientHistory& client : clients) unfinished += client.completed ? 0 : 1;
  summary += unfinished == 0 ? ", all completed" : ", " + std::to_string(unfinished) + " not completed";
  const ClientHistory* stalled = nullptr;
  for (const ClientHistory& client : clients) {
    if (client.longest_stall_request != 0 && (!stalled || client.longest_stall_ms > stalled->longest_stall_ms)) {
      stalled = &client;
    }
  }
  if (stalled != nullptr) {
    summary += "; longest stall " + Ms(stalled->longest_stall_ms) + " (" +
               Pair(stalled->client_id, stalled->longest_stall_request) + ")";
  }
  if (!consistent) {
    summary += "; " + std::to_string(violation_count) + " violation(s), the first: " + violation;
  }
  return summary;
}

}  // namespace understudy::testing
