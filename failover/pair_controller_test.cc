// The PairController's rules, one test each, driven event by event (no simulator).
#include "failover/pair_controller.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace understudy::failover {
namespace {

PairControllerOptions Options(Role role, const char* me) {
  PairControllerOptions o;
  o.role = role;
  o.me = me;
  o.budget_ms = 150;
  o.sync_grace_ms = 600;
  return o;
}

std::vector<Action> Step(PairController& c, const Event& e) {
  Result<std::vector<Action>> actions = c.Step(e);
  EXPECT_TRUE(actions.ok()) << actions.status().ToString();
  return actions.ok() ? *actions : std::vector<Action>{};
}

const Action* Find(const std::vector<Action>& actions, ActionKind kind) {
  auto it = std::find_if(actions.begin(), actions.end(), [&](const Action& a) { return a.kind == kind; });
  return it == actions.end() ? nullptr : &*it;
}

Event Reply(uint64_t request, ArbiterAnswer answer, int64_t now, OwnershipRecord record = {}) {
  Event e = Event::Of(EventKind::kArbiterReply, now);
  e.request = request;
  e.answer = answer;
  e.record = std::move(record);
  return e;
}

Event Heard(int64_t now, uint64_t incarnation, PeerSays says = PeerSays::kPaired) {
  Event e = Event::Of(EventKind::kHeard, now);
  e.peer_incarnation = incarnation;
  e.peer_says = says;
  return e;
}

void HearAllPaths(PairController& c, int64_t now, uint64_t incarnation) {
  for (int p = 0; p < kPathCount; ++p) {
    Event e = Heard(now, incarnation);
    e.path = static_cast<Path>(p);
    Step(c, e);
  }
}

// A primary "a" that claimed the record at revision 5 and is paired with "b" (incarnation 7).
PairController ProtectedPrimary(int64_t& now) {
  PairController c = *PairController::Create(Options(Role::kPrimary, "a"));
  std::vector<Action> out = Step(c, Event::Of(EventKind::kStart, now));
  const Action* read = Find(out, ActionKind::kReadRecord);
  EXPECT_NE(read, nullptr);
  out = Step(c, Reply(read->request, ArbiterAnswer::kRecord, now));
  const Action* cas = Find(out, ActionKind::kCompareAndSwap);
  EXPECT_NE(cas, nullptr);
  EXPECT_EQ(cas->mode, RecordMode::kProtected);
  Step(c, Reply(cas->request, ArbiterAnswer::kWon, now, {"a", "protected", 5}));
  EXPECT_EQ(c.state(), ControllerState::kSyncing);
  Event hello = Event::Of(EventKind::kHello, now);
  hello.peer = "b";
  hello.peer_incarnation = 7;
  out = Step(c, hello);
  const Action* pair = Find(out, ActionKind::kPair);
  EXPECT_NE(pair, nullptr);
  EXPECT_EQ(pair->revision, 5u);
  Event acked = Event::Of(EventKind::kAcked, now);
  acked.epoch = 1;
  acked.peer_incarnation = 7;
  Step(c, acked);
  EXPECT_EQ(c.state(), ControllerState::kProtected);
  return c;
}

// A secondary "b" welcomed by "a" (incarnation 3) at revision 5, holding checkpoint 4.
PairController StandbySecondary(int64_t now) {
  PairController c = *PairController::Create(Options(Role::kSecondary, "b"));
  Step(c, Event::Of(EventKind::kStart, now));
  Event welcome = Event::Of(EventKind::kWelcome, now);
  welcome.peer = "a";
  welcome.peer_incarnation = 3;
  welcome.revision = 5;
  Step(c, welcome);
  Event committed = Event::Of(EventKind::kCommitted, now);
  committed.epoch = 4;
  committed.peer_incarnation = 3;
  Step(c, committed);
  EXPECT_EQ(c.state(), ControllerState::kProtected);
  return c;
}

// Lets the peer fall silent; returns the read the controller issues after the silence.
Action SilenceUntilRead(PairController& c, int64_t& now) {
  for (int i = 0; i < 100; ++i) {
    now += 10;
    std::vector<Action> out = Step(c, Event::Of(EventKind::kTick, now));
    if (c.state() == ControllerState::kContending) {
      const Action* read = Find(out, ActionKind::kReadRecord);
      EXPECT_NE(read, nullptr) << "contending must start with a fresh read";
      EXPECT_EQ(Find(out, ActionKind::kCompareAndSwap), nullptr);
      return read ? *read : Action{ActionKind::kReadRecord};
    }
  }
  ADD_FAILURE() << "never contended; state " << ControllerStateName(c.state());
  return Action{ActionKind::kReadRecord};
}

TEST(PairController, RefusesAConfigWithoutAnArbiter) {
  PairControllerOptions o = Options(Role::kPrimary, "a");
  o.has_arbiter = false;
  Result<PairController> made = PairController::Create(o);
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.status().message().find("no arbiter configured"), std::string::npos) << made.status().ToString();
  o.single_host_without_arbiter = true;
  EXPECT_TRUE(PairController::Create(o).ok());
}

TEST(PairController, PrimaryReleasesOnlyAckedEpochs) {
  int64_t now = 0;
  PairController c = ProtectedPrimary(now);
  for (uint64_t epoch = 1; epoch <= 3; ++epoch) {
    Event captured = Event::Of(EventKind::kCaptured, now);
    captured.epoch = epoch;
    std::vector<Action> out = Step(c, captured);
    const Action* release = Find(out, ActionKind::kReleaseUpTo);
    if (epoch == 1) {
      ASSERT_NE(release, nullptr);  // epoch 1 was acked before it was captured here
      EXPECT_EQ(release->epoch, 1u);
    } else {
      EXPECT_EQ(release, nullptr) << "released epoch " << epoch << " before its ack";
    }
  }
  Event acked = Event::Of(EventKind::kAcked, now);
  acked.epoch = 2;
  acked.peer_incarnation = 99;  // another run of the peer: ignored
  EXPECT_EQ(Find(Step(c, acked), ActionKind::kReleaseUpTo), nullptr);
  acked.peer_incarnation = 7;
  std::vector<Action> out = Step(c, acked);
  const Action* release = Find(out, ActionKind::kReleaseUpTo);
  ASSERT_NE(release, nullptr);
  EXPECT_EQ(release->epoch, 2u);
}

TEST(PairController, UnknownSwapOutcomeIsResolvedByReadingNotGuessing) {
  int64_t now = 0;
  PairController c = ProtectedPrimary(now);
  Event captured = Event::Of(EventKind::kCaptured, now);
  captured.epoch = 9;
  Step(c, captured);
  Action read = SilenceUntilRead(c, now);
  std::vector<Action> out = Step(c, Reply(read.request, ArbiterAnswer::kRecord, now, {"a", "protected", 5}));
  const Action* cas = Find(out, ActionKind::kCompareAndSwap);
  ASSERT_NE(cas, nullptr);
  EXPECT_EQ(cas->expected_revision, 5u);
  EXPECT_EQ(cas->mode, RecordMode::kUnprotected);
  out = Step(c, Reply(cas->request, ArbiterAnswer::kUnknown, now));
  EXPECT_EQ(c.state(), ControllerState::kContending);
  EXPECT_EQ(Find(out, ActionKind::kReleaseUpTo), nullptr);
  const Action* reread = Find(out, ActionKind::kReadRecord);
  ASSERT_NE(reread, nullptr);
  out = Step(c, Reply(reread->request, ArbiterAnswer::kRecord, now, {"a", "unprotected", 6}));
  EXPECT_EQ(c.state(), ControllerState::kUnprotected);
  const Action* release = Find(out, ActionKind::kReleaseUpTo);
  ASSERT_NE(release, nullptr);
  EXPECT_EQ(release->epoch, 9u);
}

TEST(PairController, ALostAnswerThatWasOurOwnWriteIsAWin) {
  int64_t now = 0;
  PairController c = ProtectedPrimary(now);
  Action read = SilenceUntilRead(c, now);
  std::vector<Action> out = Step(c, Reply(read.request, ArbiterAnswer::kRecord, now, {"a", "protected", 5}));
  const Action* cas = Find(out, ActionKind::kCompareAndSwap);
  ASSERT_NE(cas, nullptr);
  out = Step(c, Reply(cas->request, ArbiterAnswer::kLost, now));  // e.g. our retry after an applied timeout
  EXPECT_NE(c.state(), ControllerState::kFenced);
  const Action* reread = Find(out, ActionKind::kReadRecord);
  ASSERT_NE(reread, nullptr);
  Step(c, Reply(reread->request, ArbiterAnswer::kRecord, now, {"a", "unprotected", 6}));
  EXPECT_EQ(c.state(), ControllerState::kUnprotected);
}

TEST(PairController, ARecordWeOwnIsOursWhateverItsRevision) {
  int64_t now = 0;
  PairController c = ProtectedPrimary(now);
  // Only the UDP paths hear the peer: degraded, the record is watched.
  std::vector<Action> out;
  const Action* read = nullptr;
  for (int i = 0; i < 30 && !read; ++i) {
    now += 10;
    for (int p = 1; p < kPathCount; ++p) {
      Event e = Heard(now, 7);
      e.path = static_cast<Path>(p);
      Step(c, e);
    }
    out = Step(c, Event::Of(EventKind::kTick, now));
    read = Find(out, ActionKind::kReadRecord);
  }
  ASSERT_NE(read, nullptr);
  EXPECT_EQ(c.state(), ControllerState::kDegraded);
  Step(c, Reply(read->request, ArbiterAnswer::kRecord, now, {"a", "protected", 99}));
  EXPECT_EQ(c.state(), ControllerState::kDegraded);
}

TEST(PairController, PrimaryFencesWhenThePeerOwnsTheRecord) {
  int64_t now = 0;
  PairController c = ProtectedPrimary(now);
  Action read = SilenceUntilRead(c, now);
  std::vector<Action> out = Step(c, Reply(read.request, ArbiterAnswer::kRecord, now, {"b", "promoted", 6}));
  EXPECT_EQ(c.state(), ControllerState::kFenced);
  EXPECT_NE(Find(out, ActionKind::kFence), nullptr);
  EXPECT_EQ(Find(out, ActionKind::kCompareAndSwap), nullptr);
}

TEST(PairController, SecondarySwapsTheRevisionOfAReadMadeAfterSilence) {
  int64_t now = 0;
  PairController c = StandbySecondary(now);
  Action read = SilenceUntilRead(c, now);
  std::vector<Action> out = Step(c, Reply(read.request, ArbiterAnswer::kRecord, now, {"a", "protected", 5}));
  const Action* cas = Find(out, ActionKind::kCompareAndSwap);
  ASSERT_NE(cas, nullptr);
  EXPECT_EQ(cas->expected_revision, 5u);
  EXPECT_EQ(cas->mode, RecordMode::kPromoted);
  out = Step(c, Reply(cas->request, ArbiterAnswer::kWon, now, {"b", "promoted", 6}));
  EXPECT_EQ(c.state(), ControllerState::kPromoted);
  const Action* promote = Find(out, ActionKind::kPromote);
  ASSERT_NE(promote, nullptr);
  EXPECT_EQ(promote->epoch, 4u);
}

TEST(PairController, SecondaryNeverPromotesOverAStoppedRecord) {
  int64_t now = 0;
  PairController c = StandbySecondary(now);
  Action read = SilenceUntilRead(c, now);
  std::vector<Action> out = Step(c, Reply(read.request, ArbiterAnswer::kRecord, now, {"a", "stopped", 6}));
  EXPECT_EQ(Find(out, ActionKind::kCompareAndSwap), nullptr);
  EXPECT_EQ(c.state(), ControllerState::kStoodDown);
}

TEST(PairController, SecondaryNeverPromotesOverThePrimarysUnprotectedRecord) {
  int64_t now = 0;
  PairController c = StandbySecondary(now);
  Action read = SilenceUntilRead(c, now);
  std::vector<Action> out = Step(c, Reply(read.request, ArbiterAnswer::kRecord, now, {"a", "unprotected", 6}));
  EXPECT_EQ(Find(out, ActionKind::kCompareAndSwap), nullptr);
  EXPECT_EQ(Find(out, ActionKind::kPromote), nullptr);
  EXPECT_EQ(c.state(), ControllerState::kFenced);
}

TEST(PairController, SecondaryRefusesARecordOfAnotherPairing) {
  int64_t now = 0;
  PairController c = StandbySecondary(now);
  Action read = SilenceUntilRead(c, now);
  // The primary re-protected with someone else since: same owner and mode, newer revision.
  std::vector<Action> out = Step(c, Reply(read.request, ArbiterAnswer::kRecord, now, {"a", "protected", 9}));
  EXPECT_EQ(Find(out, ActionKind::kCompareAndSwap), nullptr);
  EXPECT_EQ(c.state(), ControllerState::kFenced);
}

TEST(PairController, GoodbyeBlocksPromotionEvenWithTheArbiterDown) {
  int64_t now = 0;
  PairController c = StandbySecondary(now);
  std::vector<Action> out = Step(c, Heard(now, 3, PeerSays::kGoodbye));
  EXPECT_EQ(c.state(), ControllerState::kStoodDown);
  EXPECT_NE(Find(out, ActionKind::kAckGoodbye), nullptr);
  for (int i = 0; i < 300; ++i) {  // the primary is silent for 3 s; no arbiter is ever asked
    now += 10;
    out = Step(c, Event::Of(EventKind::kTick, now));
    EXPECT_EQ(Find(out, ActionKind::kReadRecord), nullptr);
    EXPECT_EQ(Find(out, ActionKind::kCompareAndSwap), nullptr);
  }
  Result<std::vector<Action>> promote = c.Step(Event::Of(EventKind::kPromoteRequested, now));
  ASSERT_FALSE(promote.ok());
  EXPECT_NE(promote.status().message().find("stood-down"), std::string::npos) << promote.status().ToString();
}

TEST(PairController, IllegalOperatorRequestsAreRefusedByName) {
  int64_t now = 0;
  PairController c = *PairController::Create(Options(Role::kPrimary, "a"));
  Step(c, Event::Of(EventKind::kStart, now));
  Result<std::vector<Action>> step_down = c.Step(Event::Of(EventKind::kStepDownRequested, now));
  ASSERT_FALSE(step_down.ok());
  EXPECT_NE(step_down.status().message().find("claiming"), std::string::npos) << step_down.status().ToString();
  Result<std::vector<Action>> promote = c.Step(Event::Of(EventKind::kPromoteRequested, now));
  ASSERT_FALSE(promote.ok());
}

TEST(PairController, LateAndDuplicatedAnswersAreIgnored) {
  int64_t now = 0;
  PairController c = StandbySecondary(now);
  Action read = SilenceUntilRead(c, now);
  std::vector<Action> out = Step(c, Reply(read.request, ArbiterAnswer::kRecord, now, {"a", "protected", 5}));
  const Action* cas = Find(out, ActionKind::kCompareAndSwap);
  ASSERT_NE(cas, nullptr);
  // A duplicate of the read's answer arrives now: nothing changes.
  out = Step(c, Reply(read.request, ArbiterAnswer::kRecord, now, {"a", "protected", 5}));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(c.state(), ControllerState::kContending);
}

TEST(PairController, HearingThePeerAgainBeforeAnySwapCancelsTheTakeover) {
  int64_t now = 0;
  PairController c = StandbySecondary(now);
  Action read = SilenceUntilRead(c, now);
  HearAllPaths(c, now, 3);
  std::vector<Action> out = Step(c, Reply(read.request, ArbiterAnswer::kRecord, now, {"a", "protected", 5}));
  EXPECT_EQ(Find(out, ActionKind::kCompareAndSwap), nullptr);
  EXPECT_EQ(c.state(), ControllerState::kProtected);
}

}  // namespace
}  // namespace understudy::failover
