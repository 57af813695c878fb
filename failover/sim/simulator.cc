#include "failover/sim/simulator.h"

#include <algorithm>
#include <array>
#include <memory>
#include <queue>
#include <sstream>

#include "failover/sim/brain.h"
#include "failover/sim/legacy_controller.h"

namespace understudy::failover::sim {
namespace {

constexpr int kHosts = 2;
constexpr int64_t kHeartbeatMs = 30;
constexpr int64_t kCaptureMs = 50;
constexpr int64_t kHelloMs = 100;
constexpr int64_t kBudgetMs = 150;
constexpr int64_t kSyncGraceMs = 600;
constexpr int64_t kArbiterTimeoutMs = 500;
const char* const kNames[kHosts] = {"a", "b"};

// splitmix64: small, fast, good enough, and the same everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int64_t Below(int64_t n) { return n <= 0 ? 0 : static_cast<int64_t>(Next() % static_cast<uint64_t>(n)); }
  bool Percent(int64_t p) { return Below(100) < p; }

 private:
  uint64_t state_;
};

uint64_t Mix(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 29)) * 0xBF58476D1CE4E5B9ull;
  return (z ^ (z >> 32)) | 1;  // never 0: 0 means "no token"
}

enum class MsgKind { kHeartbeat, kHello, kWelcome, kCheckpoint, kAck, kGoodbye, kGoodbyeAck, kAtEtcd, kAnswer };

struct Msg {
  int64_t at = 0;
  MsgKind kind = MsgKind::kHeartbeat;
  int from = 0;
  int to = 0;
  int path = 0;
  uint64_t from_inc = 0;
  uint64_t to_inc = 0;
  PeerSays says = PeerSays::kPaired;
  uint64_t epoch = 0;
  uint64_t digest = 0;
  uint64_t first_token_epoch = 0;
  std::vector<uint64_t> tokens;
  // arbiter
  uint64_t request = 0;
  bool cas = false;
  uint64_t expected = 0;
  std::string owner;
  RecordMode mode = RecordMode::kAbsent;
  ArbiterAnswer answer = ArbiterAnswer::kRecord;
  OwnershipRecord record;
  bool duplicate = false;
};

struct Link {
  bool cut = false;
  int64_t delay = 1;
  int64_t loss = 0;    // percent
  int64_t dup = 0;     // percent
  int64_t jitter = 0;  // ms
  int64_t last_at[kHosts] = {0, 0};  // FIFO for the ordered replication link
};

struct Outstanding {
  uint64_t request;
  int64_t deadline;
  bool cas;
};

struct Agent {
  bool up = false;
  uint64_t inc = 0;
  std::unique_ptr<Brain> brain;
  // The VM when it runs here.
  bool vm_running = false;
  uint64_t vm_epoch = 0;
  uint64_t vm_digest = 0;
  uint64_t run_id = 0;
  std::vector<uint64_t> tokens;  // by epoch; 0: this host has no output for it
  uint64_t released = 0;         // highest epoch this host released
  // Pairing as the primary.
  int peer = -1;
  uint64_t peer_inc = 0;
  uint64_t ship_from = 0;
  // Standby as the secondary.
  int primary = -1;
  uint64_t primary_inc = 0;
  uint64_t committed = 0;
  uint64_t committed_digest = 0;
  uint64_t log_start = 0;  // tokens held from log_start + 1
  bool goodbye_received = false;
  bool crash_on_welcome = false;
  std::vector<Outstanding> outstanding;
  int64_t next_heartbeat = 0;
  int64_t next_capture = 0;
  int64_t next_hello = 0;

  uint64_t Token(uint64_t epoch) const { return epoch < tokens.size() ? tokens[epoch] : 0; }
  void SetToken(uint64_t epoch, uint64_t token) {
    if (tokens.size() <= epoch) tokens.resize(epoch + 16, 0);
    tokens[epoch] = token;
  }
};

struct QueueEntry {
  int64_t at;
  uint64_t seq;
  uint32_t slot;
  bool operator>(const QueueEntry& o) const { return at != o.at ? at > o.at : seq > o.seq; }
};

class World {
 public:
  World(const Schedule& schedule, const SimOptions& options) : options_(options), rng_(schedule.seed ^ 0x5EEDull) {
    faults_ = schedule.faults;
    std::stable_sort(faults_.begin(), faults_.end(), [](const Fault& x, const Fault& y) { return x.at_ms < y.at_ms; });
  }

  Outcome Run();

 private:
  // Setup and faults.
  bool StartAgent(int host, Role role);
  void Crash(int host);
  void ApplyFault(const Fault& fault);
  void Heal();
  // Messaging.
  void Send(Msg msg, int64_t delay);
  void SendOnPath(int from, int to, int path, Msg msg);
  void Deliver(Msg& msg);
  void DeliverAnswer(Agent& agent, const Msg& msg);
  void DeliverWelcome(int host, const Msg& msg, Event event);
  void AtEtcd(Msg& msg);
  // Agents.
  // False when the brain refused the event (an operator request it forbids).
  bool Feed(int host, const Event& event);
  void Carry(int host, const Action& action);
  void Pair(int host, const Action& action);
  void SendOnReplicationLink(int host, int to, MsgKind kind);
  void Periodic(int host);
  void Release(int host, uint64_t upto);
  void AskArbiter(int host, const Action& action);
  void Promote(int host);
  void Commit(int host, const Msg& msg);
  void Capture(int host);
  void Violate(const std::string& invariant, const std::string& detail);
  void Trace(const std::string& line) {
    if (options_.trace) trace_ << now_ << "ms " << line << "\n";
  }
  int Other(int host) const { return 1 - host; }

  SimOptions options_;
  Rng rng_;
  std::vector<Fault> faults_;
  size_t next_fault_ = 0;
  int64_t now_ = 0;
  uint64_t steps_ = 0;
  uint64_t seq_ = 0;
  uint64_t next_inc_ = 1;
  std::array<Agent, kHosts> agents_;
  std::array<Link, kPathCount> links_;
  std::array<bool, kHosts> lan_cut_{};
  std::array<int64_t, kHosts> lan_delay_{{1, 1}};
  bool dup_replies_ = false;
  // etcd
  bool etcd_up_ = true;
  int64_t etcd_slow_ = 0;
  int etcd_lose_answers_ = 0;
  OwnershipRecord record_;
  uint64_t etcd_revision_ = 1;
  std::array<OwnershipRecord, kHosts> local_records_;  // "arbiter: none"
  // queue
  std::vector<Msg> slab_;
  std::vector<uint32_t> free_;
  std::priority_queue<QueueEntry, std::vector<QueueEntry>, std::greater<QueueEntry>> queue_;
  // observer
  std::vector<uint64_t> history_ = {0};  // history_[e]: the token the world saw for epoch e
  int64_t grew_at_ = 0;
  bool crashed_ = false;        // a host crashed or a VM died at some point
  bool stopped_on_purpose_ = false;
  bool operator_took_down_ = false;  // a step-down not followed by an accepted promotion
  Outcome outcome_;
  std::ostringstream trace_;
};

bool World::StartAgent(int host, Role role) {
  Agent& agent = agents_[host];
  agent = Agent();
  agent.up = true;
  agent.inc = next_inc_++;
  if (options_.brain == BrainKind::kLegacy) {
    agent.brain = std::make_unique<LegacyController>(role, kNames[host], kBudgetMs, kSyncGraceMs);
  } else {
    PairControllerOptions o;
    o.role = role;
    o.me = kNames[host];
    o.budget_ms = kBudgetMs;
    o.sync_grace_ms = kSyncGraceMs;
    o.has_arbiter = !options_.no_arbiter;
    o.test_fault_for_test = options_.fault;
    Result<PairController> made = PairController::Create(o);
    if (!made.ok()) {
      outcome_.refused = true;
      outcome_.detail = made.status().ToString();
      agent.up = false;
      return false;
    }
    agent.brain = std::make_unique<PairBrain>(std::move(*made));
  }
  agent.next_heartbeat = now_;
  agent.next_hello = now_;
  agent.next_capture = now_ + kCaptureMs;
  if (role == Role::kPrimary) {
    agent.vm_running = true;
    agent.run_id = rng_.Next();
    agent.vm_digest = 0x1234;
  }
  Trace(std::string("start ") + kNames[host] + (role == Role::kPrimary ? " primary" : " secondary") + " inc " +
        std::to_string(agent.inc));
  Feed(host, Event::Of(EventKind::kStart, now_));
  return true;
}

void World::Crash(int host) {
  Agent& agent = agents_[host];
  if (!agent.up) return;
  Trace(std::string("crash ") + kNames[host]);
  agent = Agent();
  crashed_ = true;
}

void World::Violate(const std::string& invariant, const std::string& detail) {
  if (!outcome_.ok) return;
  outcome_.ok = false;
  outcome_.invariant = invariant;
  outcome_.detail = detail;
  outcome_.at_ms = now_;
  Trace("VIOLATION " + invariant + ": " + detail);
}

void World::Send(Msg msg, int64_t delay) {
  msg.at = now_ + std::max<int64_t>(delay, 1);
  uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
    slab_[slot] = std::move(msg);
  } else {
    slot = static_cast<uint32_t>(slab_.size());
    slab_.push_back(std::move(msg));
  }
  queue_.push(QueueEntry{slab_[slot].at, seq_++, slot});
}

void World::SendOnPath(int from, int to, int path, Msg msg) {
  Link& link = links_[path];
  if (link.cut) return;
  msg.from = from;
  msg.to = to;
  msg.path = path;
  if (path == static_cast<int>(Path::kReplication)) {
    // A stream: in order, nothing lost unless cut (then in-flight data is dropped on arrival).
    int64_t at = std::max(now_ + link.delay, link.last_at[from]);
    link.last_at[from] = at;
    Send(std::move(msg), at - now_);
    return;
  }
  if (link.loss > 0 && rng_.Percent(link.loss)) return;
  int64_t delay = link.delay + (link.jitter > 0 ? rng_.Below(link.jitter + 1) : 0);
  if (link.dup > 0 && rng_.Percent(link.dup)) Send(msg, delay + rng_.Below(20));
  Send(std::move(msg), delay);
}

bool World::Feed(int host, const Event& event) {
  Agent& agent = agents_[host];
  if (!agent.up) return false;
  Result<std::vector<Action>> actions = agent.brain->Step(event);
  if (!actions.ok()) {
    Trace(std::string(kNames[host]) + " refused: " + actions.status().ToString());
    return false;
  }
  for (const Action& action : *actions) {
    if (!agents_[host].up || agents_[host].inc != agent.inc) return true;
    Carry(host, action);
  }
  return true;
}

void World::Release(int host, uint64_t upto) {
  Agent& agent = agents_[host];
  for (uint64_t e = agent.released + 1; e <= upto; ++e) {
    uint64_t token = agent.Token(e);
    if (token == 0) {
      Violate("I2", std::string(kNames[host]) + " released epoch " + std::to_string(e) + " whose output it does not hold");
      return;
    }
    if (e < history_.size()) {
      if (history_[e] != token) {
        Violate("I1", std::string(kNames[host]) + " released epoch " + std::to_string(e) +
                          " with output different from what the world already saw (two histories)");
        return;
      }
    } else if (e == history_.size()) {
      history_.push_back(token);
      grew_at_ = now_;
    } else {
      Violate("I1", std::string(kNames[host]) + " released epoch " + std::to_string(e) + " but the world has seen only up to " +
                        std::to_string(history_.size() - 1) + " (a gap)");
      return;
    }
    agent.released = e;
  }
}

void World::AskArbiter(int host, const Action& action) {
  Agent& agent = agents_[host];
  bool cas = action.kind == ActionKind::kCompareAndSwap;
  int64_t timeout = action.timeout_ms > 0 ? action.timeout_ms : kArbiterTimeoutMs;
  agent.outstanding.push_back(Outstanding{action.request, now_ + timeout, cas});
  if (options_.no_arbiter) {
    // Each agent's own record, and every swap wins.
    OwnershipRecord& local = local_records_[host];
    Msg answer;
    answer.kind = MsgKind::kAnswer;
    answer.to = host;
    answer.to_inc = agent.inc;
    answer.request = action.request;
    if (cas) {
      local = {action.owner, std::string(RecordModeName(action.mode)), local.revision + 1};
      answer.answer = ArbiterAnswer::kWon;
    }
    answer.record = local;
    Send(std::move(answer), 1);
    return;
  }
  if (lan_cut_[host]) return;  // lost: the client times out, outcome unknown
  Msg msg;
  msg.kind = MsgKind::kAtEtcd;
  msg.from = host;
  msg.from_inc = agent.inc;
  msg.request = action.request;
  msg.cas = cas;
  msg.expected = action.expected_revision;
  msg.owner = action.owner;
  msg.mode = action.mode;
  Send(std::move(msg), lan_delay_[host]);
}

void World::Promote(int host) {
  Agent& agent = agents_[host];
  if (agent.committed == 0) {
    Violate("I2", std::string(kNames[host]) + " promoted without a committed checkpoint");
    return;
  }
  if (agent.goodbye_received) {
    Violate("I3", std::string(kNames[host]) + " promoted after its primary's clean goodbye reached it");
    return;
  }
  uint64_t seen = history_.size() - 1;
  if (seen > agent.committed) {
    Violate("I2", std::string(kNames[host]) + " promoted from epoch " + std::to_string(agent.committed) +
                      " but the world already saw epoch " + std::to_string(seen));
    return;
  }
  ++outcome_.coverage.promotions;
  agent.vm_running = true;
  agent.vm_epoch = agent.committed;
  agent.vm_digest = agent.committed_digest;
  agent.run_id = rng_.Next();
  agent.released = agent.log_start;
  agent.next_capture = now_ + kCaptureMs;
  agent.primary = -1;
}

void World::Carry(int host, const Action& action) {
  Agent& agent = agents_[host];
  Trace(std::string(kNames[host]) + " [" + agent.brain->StateName() + "] " + ActionName(action));
  switch (action.kind) {
    case ActionKind::kReleaseUpTo:
      Release(host, action.epoch);
      break;
    case ActionKind::kReadRecord:
    case ActionKind::kCompareAndSwap:
      AskArbiter(host, action);
      break;
    case ActionKind::kPair:
      Pair(host, action);
      break;
    case ActionKind::kUnpair:
      agent.peer = -1;
      break;
    case ActionKind::kPromote:
      Promote(host);
      break;
    case ActionKind::kGoUnprotected:
      ++outcome_.coverage.went_unprotected;
      break;
    case ActionKind::kFence:
      ++outcome_.coverage.fences;
      agent.vm_running = false;
      agent.committed = 0;
      agent.peer = -1;
      agent.primary = -1;
      break;
    case ActionKind::kStopVm:
      ++outcome_.coverage.clean_stops;
      agent.vm_running = false;
      stopped_on_purpose_ = true;
      break;
    case ActionKind::kSendGoodbye:
      SendOnReplicationLink(host, agent.peer, MsgKind::kGoodbye);
      break;
    case ActionKind::kAckGoodbye:
      SendOnReplicationLink(host, agent.primary, MsgKind::kGoodbyeAck);
      break;
  }
}

void World::Pair(int host, const Action& action) {
  Agent& agent = agents_[host];
  ++outcome_.coverage.pairings;
  int peer = Other(host);
  if (!agents_[peer].up || kNames[peer] != action.peer || agents_[peer].inc != action.peer_incarnation) return;
  agent.peer = peer;
  agent.peer_inc = action.peer_incarnation;
  agent.ship_from = agent.released;
  Msg msg;
  msg.kind = MsgKind::kWelcome;
  msg.from_inc = agent.inc;
  msg.epoch = action.revision;
  SendOnPath(host, peer, 0, std::move(msg));
}

// A message that carries nothing but its kind, to `to` if there is one (`to` < 0: nobody).
void World::SendOnReplicationLink(int host, int to, MsgKind kind) {
  if (to < 0) return;
  Msg msg;
  msg.kind = kind;
  msg.from_inc = agents_[host].inc;
  SendOnPath(host, to, 0, std::move(msg));
}

void World::AtEtcd(Msg& msg) {
  const int host = msg.from;
  if (lan_cut_[host]) return;
  Msg answer;
  answer.kind = MsgKind::kAnswer;
  answer.to = host;
  answer.to_inc = msg.from_inc;
  answer.request = msg.request;
  if (!etcd_up_) {
    answer.answer = ArbiterAnswer::kUnreachable;
    Send(std::move(answer), lan_delay_[host]);
    return;
  }
  if (msg.cas) {
    if (record_.revision == msg.expected) {
      if (msg.mode == RecordMode::kPromoted && record_.mode == "stopped") {
        Violate("I3", std::string(kNames[host]) + " swapped a stopped record to promoted");
      }
      record_ = {msg.owner, std::string(RecordModeName(msg.mode)), ++etcd_revision_};
      answer.answer = ArbiterAnswer::kWon;
      answer.record = record_;
      Trace(std::string("etcd: ") + kNames[host] + " wrote " + record_.owner + "/" + record_.mode + "@" +
            std::to_string(record_.revision));
      if (etcd_lose_answers_ > 0) {
        --etcd_lose_answers_;
        return;  // applied; the answer never comes
      }
    } else {
      answer.answer = ArbiterAnswer::kLost;
    }
  } else {
    answer.answer = ArbiterAnswer::kRecord;
    answer.record = record_;
  }
  int64_t delay = etcd_slow_ + lan_delay_[host];
  if (dup_replies_) {
    Msg copy = answer;
    copy.duplicate = true;
    Send(std::move(copy), delay + 1 + rng_.Below(30));
  }
  Send(std::move(answer), delay);
}

void World::DeliverAnswer(Agent& agent, const Msg& msg) {
  auto it = std::find_if(agent.outstanding.begin(), agent.outstanding.end(),
                         [&](const Outstanding& o) { return o.request == msg.request; });
  if (it == agent.outstanding.end() && !msg.duplicate) return;  // answered by its timeout already
  if (it != agent.outstanding.end()) agent.outstanding.erase(it);
  Event event = Event::Of(EventKind::kArbiterReply, now_);
  event.request = msg.request;
  event.answer = msg.answer;
  event.record = msg.record;
  Feed(msg.to, event);
}

void World::Commit(int host, const Msg& msg) {
  Agent& agent = agents_[host];
  const int from = msg.from;
  if (agent.primary != from || agent.primary_inc != msg.from_inc || !agent.brain->AcceptsCheckpoints()) return;
  if (msg.epoch <= agent.committed) return;
  if (agent.committed == 0) agent.log_start = msg.first_token_epoch - 1;
  for (size_t i = 0; i < msg.tokens.size(); ++i) agent.SetToken(msg.first_token_epoch + i, msg.tokens[i]);
  agent.committed = msg.epoch;
  agent.committed_digest = msg.digest;
  Event event = Event::Of(EventKind::kCommitted, now_);
  event.peer = kNames[from];
  event.peer_incarnation = msg.from_inc;
  event.epoch = msg.epoch;
  Feed(host, event);
  if (agents_[host].up && agent.brain->AcceptsCheckpoints()) {  // acknowledged only once committed
    Msg ack;
    ack.kind = MsgKind::kAck;
    ack.from_inc = agent.inc;
    ack.epoch = msg.epoch;
    SendOnPath(host, from, 0, std::move(ack));
  }
}

void World::Deliver(Msg& msg) {
  if (msg.kind == MsgKind::kAtEtcd) {
    AtEtcd(msg);
    return;
  }
  const int host = msg.to;
  Agent& agent = agents_[host];
  if (!agent.up) return;
  if (msg.kind == MsgKind::kAnswer) {
    if (msg.to_inc != agent.inc || lan_cut_[host]) return;
    DeliverAnswer(agent, msg);
    return;
  }
  if (links_[msg.path].cut) return;
  const int from = msg.from;
  Event event = Event::Of(EventKind::kTick, now_);
  event.peer = kNames[from];
  event.peer_incarnation = msg.from_inc;
  switch (msg.kind) {
    case MsgKind::kHeartbeat:
      if (msg.says == PeerSays::kGoodbye && agent.primary == from && agent.primary_inc == msg.from_inc) {
        agent.goodbye_received = true;
      }
      event.kind = EventKind::kHeard;
      event.path = static_cast<Path>(msg.path);
      event.peer_says = msg.says;
      Feed(host, event);
      break;
    case MsgKind::kHello:
      event.kind = EventKind::kHello;
      Feed(host, event);
      break;
    case MsgKind::kWelcome:
      DeliverWelcome(host, msg, event);
      break;
    case MsgKind::kCheckpoint:
      Commit(host, msg);
      break;
    case MsgKind::kAck:
      if (agent.peer != from || agent.peer_inc != msg.from_inc) break;
      agent.ship_from = std::max(agent.ship_from, msg.epoch);
      event.kind = EventKind::kAcked;
      event.epoch = msg.epoch;
      Feed(host, event);
      break;
    case MsgKind::kGoodbye:
      if (agent.primary == from && agent.primary_inc == msg.from_inc) agent.goodbye_received = true;
      event.kind = EventKind::kHeard;
      event.path = Path::kReplication;
      event.peer_says = PeerSays::kGoodbye;
      Feed(host, event);
      break;
    case MsgKind::kGoodbyeAck:
      event.kind = EventKind::kGoodbyeAcked;
      Feed(host, event);
      break;
    default:
      break;
  }
}

void World::DeliverWelcome(int host, const Msg& msg, Event event) {
  Agent& agent = agents_[host];
  if (agent.crash_on_welcome) {
    Crash(host);
    return;
  }
  event.kind = EventKind::kWelcome;
  event.revision = msg.epoch;
  Feed(host, event);
  if (agent.up && !agent.brain->Joining() && agent.primary < 0 && agent.brain->AcceptsCheckpoints()) {
    agent.primary = msg.from;
    agent.primary_inc = msg.from_inc;
    agent.committed = 0;
  }
}

void World::Capture(int host) {
  Agent& agent = agents_[host];
  agent.next_capture = now_ + kCaptureMs;
  uint64_t epoch = ++agent.vm_epoch;
  uint64_t token = Mix(Mix(agent.vm_digest, epoch), agent.run_id);
  agent.SetToken(epoch, token);
  agent.vm_digest = Mix(agent.vm_digest, token);
  if (agent.peer >= 0) {
    Msg msg;
    msg.kind = MsgKind::kCheckpoint;
    msg.from_inc = agent.inc;
    msg.epoch = epoch;
    msg.digest = agent.vm_digest;
    msg.first_token_epoch = agent.ship_from + 1;
    for (uint64_t e = agent.ship_from + 1; e <= epoch; ++e) msg.tokens.push_back(agent.Token(e));
    SendOnPath(host, agent.peer, 0, std::move(msg));
  }
  Event captured = Event::Of(EventKind::kCaptured, now_);
  captured.epoch = epoch;
  Feed(host, captured);
}

void World::Periodic(int host) {
  Agent& agent = agents_[host];
  if (!agent.up) return;
  if (agent.brain->Exited()) return;
  // Arbiter requests that ran out of time: the outcome is unknown.
  for (size_t i = 0; i < agent.outstanding.size();) {
    if (agent.outstanding[i].deadline <= now_) {
      uint64_t request = agent.outstanding[i].request;
      agent.outstanding.erase(agent.outstanding.begin() + static_cast<long>(i));
      Event event = Event::Of(EventKind::kArbiterReply, now_);
      event.request = request;
      event.answer = ArbiterAnswer::kUnknown;
      ++outcome_.coverage.unknown_outcomes;
      Feed(host, event);
      if (!agents_[host].up) return;
    } else {
      ++i;
    }
  }
  if (agent.vm_running && now_ >= agent.next_capture) {
    Capture(host);
    if (!agents_[host].up) return;
  }
  if (now_ >= agent.next_heartbeat) {
    agent.next_heartbeat = now_ + kHeartbeatMs;
    int other = Other(host);
    for (int path = 0; path < kPathCount; ++path) {
      // A fenced or stopped agent has closed its replication channel; UDP goes on.
      if (path == static_cast<int>(Path::kReplication) && agent.brain->Terminal()) continue;
      Msg msg;
      msg.kind = MsgKind::kHeartbeat;
      msg.from_inc = agent.inc;
      msg.says = agent.brain->Says();
      SendOnPath(host, other, path, std::move(msg));
    }
  }
  if (agent.brain->Joining() && now_ >= agent.next_hello) {
    agent.next_hello = now_ + kHelloMs;
    Msg msg;
    msg.kind = MsgKind::kHello;
    msg.from_inc = agent.inc;
    SendOnPath(host, Other(host), 0, std::move(msg));
  }
  Feed(host, Event::Of(EventKind::kTick, now_));
}

void World::ApplyFault(const Fault& f) {
  Trace(std::string("fault ") + std::string(FaultName(f.kind)) + " host " + kNames[f.host] + " path " +
        std::to_string(f.path) + " value " + std::to_string(f.value));
  Link& link = links_[f.path];
  Event op = Event::Of(EventKind::kTick, now_);
  switch (f.kind) {
    case FaultKind::kCutPath: link.cut = true; break;
    case FaultKind::kHealPath: link.cut = false; break;
    case FaultKind::kChaosPath:
      if (f.path != 0) link.loss = f.value, link.dup = 20, link.jitter = f.extra;
      break;
    case FaultKind::kCalmPath: link.loss = 0, link.dup = 0, link.jitter = 0; break;
    case FaultKind::kDelayPath: link.delay = 1 + f.value; break;
    case FaultKind::kCutLan: lan_cut_[f.host] = true; break;
    case FaultKind::kHealLan: lan_cut_[f.host] = false; break;
    case FaultKind::kSlowLan: lan_delay_[f.host] = 1 + f.value; break;
    case FaultKind::kEtcdDown: etcd_up_ = false; break;
    case FaultKind::kEtcdUp: etcd_up_ = true; break;
    case FaultKind::kEtcdSlow: etcd_slow_ = f.value; break;
    case FaultKind::kEtcdLoseAnswer: ++etcd_lose_answers_; break;
    case FaultKind::kDupReplies: dup_replies_ = f.value != 0; break;
    case FaultKind::kCrash: Crash(f.host); break;
    case FaultKind::kRestart:
      // A crashed host, or an agent that ended for good (fenced, stood down, stopped): it
      // comes back as a fresh secondary. A running agent is left alone.
      if (!agents_[f.host].up || agents_[f.host].brain->Terminal() || agents_[f.host].brain->Exited()) {
        StartAgent(f.host, Role::kSecondary);
      }
      break;
    case FaultKind::kCrashOnWelcome: agents_[f.host].crash_on_welcome = true; break;
    case FaultKind::kVmDies:
      if (agents_[f.host].up && (agents_[f.host].vm_running || agents_[f.host].committed > 0)) {
        crashed_ = true;
        agents_[f.host].vm_running = false;
        agents_[f.host].committed = 0;
        op.kind = EventKind::kLocalVmDied;
        Feed(f.host, op);
      }
      break;
    case FaultKind::kCleanStop:
      op.kind = EventKind::kStopRequested;
      Feed(f.host, op);
      break;
    case FaultKind::kStepDown:
      op.kind = EventKind::kStepDownRequested;
      if (Feed(f.host, op)) operator_took_down_ = true;
      break;
    case FaultKind::kPromote:
      op.kind = EventKind::kPromoteRequested;
      if (Feed(f.host, op)) operator_took_down_ = false;  // the failback's second half
      break;
  }
}

void World::Heal() {
  Trace("heal");
  for (Link& link : links_) {
    link.cut = false;
    link.loss = link.dup = link.jitter = 0;
    link.delay = 1;
  }
  lan_cut_.fill(false);
  lan_delay_.fill(1);
  etcd_up_ = true;
  etcd_slow_ = 0;
  etcd_lose_answers_ = 0;
  dup_replies_ = false;
  if (options_.restart_at_heal) {
    for (int host = 0; host < kHosts; ++host) {
      if (!agents_[host].up) StartAgent(host, Role::kSecondary);
    }
  }
}

Outcome World::Run() {
  record_ = {};
  if (!StartAgent(0, Role::kPrimary)) return outcome_;
  StartAgent(1, Role::kSecondary);
  const int64_t end = options_.fault_window_ms + options_.heal_ms;
  bool healed = false;
  for (now_ = 0; now_ <= end && outcome_.ok; now_ += kStepMs) {
    ++steps_;
    if (!healed && now_ >= options_.fault_window_ms) {
      Heal();
      healed = true;
    }
    while (next_fault_ < faults_.size() && faults_[next_fault_].at_ms <= now_ && !healed) {
      ApplyFault(faults_[next_fault_++]);
    }
    while (!queue_.empty() && queue_.top().at <= now_ && outcome_.ok) {
      uint32_t slot = queue_.top().slot;
      queue_.pop();
      Msg msg = std::move(slab_[slot]);
      free_.push_back(slot);
      Deliver(msg);
    }
    for (int host = 0; host < kHosts && outcome_.ok; ++host) Periodic(host);
  }
  now_ = std::min(now_, end);
  if (outcome_.ok && !stopped_on_purpose_ && !operator_took_down_) {
    bool serving = false;
    bool viable_copy = false;
    const uint64_t seen = history_.size() - 1;
    for (const Agent& agent : agents_) {
      if (!agent.up) continue;
      if (agent.brain->Serving() && agent.vm_running) serving = true;
      if (!agent.brain->Terminal() && ((agent.vm_running && agent.vm_epoch >= seen) || agent.committed >= std::max<uint64_t>(seen, 1))) {
        viable_copy = true;
      }
    }
    if (!serving && (!crashed_ || viable_copy)) {
      std::string states;
      for (int host = 0; host < kHosts; ++host) {
        states += std::string(" ") + kNames[host] + "=" + (agents_[host].up ? agents_[host].brain->StateName() : "down");
      }
      Violate("I4", "faults healed " + std::to_string(options_.heal_ms) + " ms ago, etcd answers, yet no copy runs the VM:" +
                        states);
    } else if (serving && now_ - grew_at_ > kGrowthWindowMs) {
      Violate("I5", "a copy runs but released output has not grown for " + std::to_string(now_ - grew_at_) +
                        " ms after the faults healed (last epoch " + std::to_string(seen) + ")");
    }
  }
  outcome_.steps = steps_;
  if (options_.trace) outcome_.trace = trace_.str();
  return outcome_;
}

Fault At(int64_t at, FaultKind kind, int host = 0, int path = 0, int64_t value = 0, int64_t extra = 0) {
  return Fault{at, kind, host, path, value, extra};
}

// Kinds 0-5: the paths between the hosts and each host's arbiter LAN.
void AddNetworkFault(int kind, int64_t at, int64_t span, int host, int path, Rng& rng, std::vector<Fault>& f) {
  switch (kind) {
    case 0:  // a partition between the hosts: every path
      for (int p = 0; p < kPathCount; ++p) {
        f.push_back(At(at, FaultKind::kCutPath, host, p));
        f.push_back(At(at + span, FaultKind::kHealPath, host, p));
      }
      break;
    case 1:
      f.push_back(At(at, FaultKind::kCutPath, host, path));
      f.push_back(At(at + span, FaultKind::kHealPath, host, path));
      break;
    case 2:
      f.push_back(At(at, FaultKind::kChaosPath, host, 1 + static_cast<int>(rng.Below(2)), 10 + rng.Below(90), rng.Below(60)));
      f.push_back(At(at + span, FaultKind::kCalmPath, host, path));
      break;
    case 3:
      f.push_back(At(at, FaultKind::kDelayPath, host, path, rng.Below(200)));
      f.push_back(At(at + span, FaultKind::kDelayPath, host, path, 0));
      break;
    case 4:
      f.push_back(At(at, FaultKind::kCutLan, host));
      f.push_back(At(at + span, FaultKind::kHealLan, host));
      break;
    case 5:
      f.push_back(At(at, FaultKind::kSlowLan, host, 0, rng.Below(800)));
      f.push_back(At(at + span, FaultKind::kSlowLan, host, 0, 0));
      break;
  }
}

// Kinds 6-9: etcd itself.
void AddEtcdFault(int kind, int64_t at, int64_t span, Rng& rng, std::vector<Fault>& f) {
  switch (kind) {
    case 6:
      f.push_back(At(at, FaultKind::kEtcdDown));
      f.push_back(At(at + span, FaultKind::kEtcdUp));
      break;
    case 7:
      f.push_back(At(at, FaultKind::kEtcdSlow, 0, 0, rng.Below(1500)));
      f.push_back(At(at + span, FaultKind::kEtcdSlow, 0, 0, 0));
      break;
    case 8:
      f.push_back(At(at, FaultKind::kEtcdLoseAnswer));
      break;
    case 9:
      f.push_back(At(at, FaultKind::kDupReplies, 0, 0, 1));
      f.push_back(At(at + span, FaultKind::kDupReplies, 0, 0, 0));
      break;
  }
}

// Kinds 10-16: the hosts, their VMs and the operator.
void AddHostFault(int kind, int64_t at, int64_t span, int host, Rng& rng, std::vector<Fault>& f) {
  switch (kind) {
    case 10:
      f.push_back(At(at, FaultKind::kCrash, host));
      if (rng.Percent(60)) f.push_back(At(at + span, FaultKind::kRestart, host));
      break;
    case 11:
      f.push_back(At(at, FaultKind::kVmDies, host));
      break;
    case 12:
      f.push_back(At(at, FaultKind::kCleanStop, host));
      break;
    case 13:  // failback
      f.push_back(At(at, FaultKind::kStepDown, host));
      f.push_back(At(at + 30, FaultKind::kPromote, 1 - host));
      break;
    case 14:
      f.push_back(At(at, FaultKind::kPromote, host));
      break;
    case 15:
      f.push_back(At(at, FaultKind::kCrashOnWelcome, host));
      break;
    default:  // an operator restarts a fenced / stood-down agent (or a crashed host)
      f.push_back(At(at, FaultKind::kRestart, host));
      break;
  }
}

// Appends the fault(s) of kind `kind` (one of GenerateSchedule's 17) at `at`.
void AddFault(int kind, int64_t at, int64_t span, int host, int path, Rng& rng, std::vector<Fault>& f) {
  if (kind <= 5) {
    AddNetworkFault(kind, at, span, host, path, rng, f);
  } else if (kind <= 9) {
    AddEtcdFault(kind, at, span, rng, f);
  } else {
    AddHostFault(kind, at, span, host, rng, f);
  }
}

}  // namespace

std::string_view FaultName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kCutPath: return "cut-path";
    case FaultKind::kHealPath: return "heal-path";
    case FaultKind::kChaosPath: return "chaos-path";
    case FaultKind::kCalmPath: return "calm-path";
    case FaultKind::kDelayPath: return "delay-path";
    case FaultKind::kCutLan: return "cut-arbiter-lan";
    case FaultKind::kHealLan: return "heal-arbiter-lan";
    case FaultKind::kSlowLan: return "slow-arbiter-lan";
    case FaultKind::kEtcdDown: return "etcd-down";
    case FaultKind::kEtcdUp: return "etcd-up";
    case FaultKind::kEtcdSlow: return "etcd-slow";
    case FaultKind::kEtcdLoseAnswer: return "etcd-apply-then-time-out";
    case FaultKind::kDupReplies: return "duplicate-arbiter-answers";
    case FaultKind::kCrash: return "crash";
    case FaultKind::kRestart: return "restart";
    case FaultKind::kCrashOnWelcome: return "crash-on-welcome";
    case FaultKind::kVmDies: return "vm-dies";
    case FaultKind::kCleanStop: return "clean-stop";
    case FaultKind::kStepDown: return "step-down";
    case FaultKind::kPromote: return "promote";
  }
  return "?";
}

Schedule GenerateSchedule(uint64_t seed, const SimOptions& options) {
  Schedule schedule;
  schedule.seed = seed;
  Rng rng(seed);
  const int64_t window = options.fault_window_ms;
  // Swarm testing: each schedule draws from its own subset of fault kinds, so that rare
  // combinations are not drowned by the common ones.
  constexpr int kKinds = 17;
  uint32_t enabled = static_cast<uint32_t>(rng.Next()) & ((1u << kKinds) - 1);
  if (enabled == 0) enabled = (1u << kKinds) - 1;
  int count = static_cast<int>(rng.Below(13));
  auto& f = schedule.faults;
  for (int i = 0; i < count; ++i) {
    int64_t at = 200 + rng.Below(window - 200);
    int64_t span = 20 + rng.Below(1500);
    int host = static_cast<int>(rng.Below(kHosts));
    int path = static_cast<int>(rng.Below(kPathCount));
    int kind = static_cast<int>(rng.Below(kKinds));
    while ((enabled & (1u << kind)) == 0) kind = (kind + 1) % kKinds;
    AddFault(kind, at, span, host, path, rng, f);
  }
  std::stable_sort(f.begin(), f.end(), [](const Fault& x, const Fault& y) { return x.at_ms < y.at_ms; });
  return schedule;
}

std::string DescribeCoverage(const Outcome::Coverage& c) {
  std::ostringstream out;
  out << c.promotions << " promotions, " << c.went_unprotected << " primaries gone unprotected, " << c.fences
      << " fences, " << c.pairings << " pairings, " << c.unknown_outcomes << " timed-out arbiter requests, "
      << c.clean_stops << " clean stops";
  return out.str();
}

std::string DescribeSchedule(const Schedule& schedule) {
  std::ostringstream out;
  out << "seed " << schedule.seed << ", " << schedule.faults.size() << " faults:";
  for (const Fault& f : schedule.faults) {
    out << "\n  " << f.at_ms << " ms " << FaultName(f.kind) << " host=" << kNames[f.host] << " path=" << f.path;
    if (f.value != 0) out << " value=" << f.value;
    if (f.extra != 0) out << " extra=" << f.extra;
  }
  return out.str();
}

Outcome RunSchedule(const Schedule& schedule, const SimOptions& options) {
  World world(schedule, options);
  return world.Run();
}

Schedule Shrink(const Schedule& schedule, const SimOptions& options) {
  SimOptions quiet = options;
  quiet.trace = false;
  Outcome first = RunSchedule(schedule, quiet);
  if (first.ok) return schedule;
  Schedule best = schedule;
  bool progress = true;
  while (progress) {
    progress = false;
    for (size_t i = 0; i < best.faults.size(); ++i) {
      Schedule candidate = best;
      candidate.faults.erase(candidate.faults.begin() + static_cast<long>(i));
      Outcome outcome = RunSchedule(candidate, quiet);
      if (!outcome.ok && outcome.invariant == first.invariant) {
        best = std::move(candidate);
        progress = true;
        --i;
      }
    }
  }
  return best;
}

}  // namespace understudy::failover::sim
