#include "failover/pair_state.h"

#include <gtest/gtest.h>

#include <set>
#include <tuple>

namespace understudy::failover {
namespace {

using E = PairEvent;
using S = PairState;

struct Edge {
  Role role;
  S from;
  E event;
  S to;
};

const std::vector<Edge>& LegalEdges() {
  static const std::vector<Edge> edges = [] {
    std::vector<Edge> all;
    for (Role role : {Role::kPrimary, Role::kSecondary}) {
      S won = role == Role::kPrimary ? S::kUnprotected : S::kPromoted;
      all.insert(all.end(), {
                                {role, S::kSyncing, E::kSyncComplete, S::kProtected},
                                {role, S::kSyncing, E::kPeerDead, S::kFailingOver},
                                {role, S::kSyncing, E::kPathLost, S::kSyncing},
                                {role, S::kSyncing, E::kPathsRestored, S::kSyncing},
                                {role, S::kReprotecting, E::kPathLost, S::kReprotecting},
                                {role, S::kReprotecting, E::kPathsRestored, S::kReprotecting},
                                {role, S::kProtected, E::kPathLost, S::kDegraded},
                                {role, S::kProtected, E::kPathsRestored, S::kProtected},
                                {role, S::kProtected, E::kPeerDead, S::kFailingOver},
                                {role, S::kProtected, E::kRecordLost, S::kFenced},
                                {role, S::kDegraded, E::kPathLost, S::kDegraded},
                                {role, S::kDegraded, E::kPathsRestored, S::kProtected},
                                {role, S::kDegraded, E::kPeerDead, S::kFailingOver},
                                {role, S::kDegraded, E::kRecordLost, S::kFenced},
                                {role, S::kFailingOver, E::kRecordWon, won},
                                {role, S::kFailingOver, E::kRecordLost, S::kFenced},
                                {role, S::kFailingOver, E::kArbiterUnreachable, S::kFailingOver},
                                {role, S::kFailingOver, E::kPathsRestored, S::kProtected},
                                {role, S::kUnprotected, E::kNewSecondary, S::kReprotecting},
                                {role, S::kPromoted, E::kNewSecondary, S::kReprotecting},
                                {role, S::kReprotecting, E::kReprotected, S::kProtected},
                                {role, S::kReprotecting, E::kPeerDead, won},
                            });
    }
    return all;
  }();
  return edges;
}

TEST(PairStateTest, EveryLegalEdgeLeadsWhereTheDesignSays) {
  for (const Edge& edge : LegalEdges()) {
    Result<S> next = NextState(edge.role, edge.from, edge.event);
    ASSERT_TRUE(next.ok()) << StateName(edge.from) << " on " << EventName(edge.event) << ": " << next.status();
    EXPECT_EQ(*next, edge.to) << StateName(edge.from) << " on " << EventName(edge.event);
  }
}

TEST(PairStateTest, EveryOtherTransitionIsRefusedByName) {
  std::set<std::tuple<Role, S, E>> legal;
  for (const Edge& edge : LegalEdges()) legal.insert({edge.role, edge.from, edge.event});
  int refused = 0;
  for (Role role : {Role::kPrimary, Role::kSecondary}) {
    for (int s = 0; s <= static_cast<int>(S::kReprotecting); ++s) {
      for (int e = 0; e <= static_cast<int>(E::kReprotected); ++e) {
        auto state = static_cast<S>(s);
        auto event = static_cast<E>(e);
        if (legal.count({role, state, event})) continue;
        Result<S> next = NextState(role, state, event);
        ASSERT_FALSE(next.ok()) << StateName(state) << " on " << EventName(event) << " should be illegal";
        EXPECT_NE(next.status().message().find(std::string(EventName(event)) + " in state " + std::string(StateName(state))),
                  std::string::npos)
            << next.status();
        ++refused;
      }
    }
  }
  // Every (role, state, event) was checked: legal ones above, the rest refused here.
  const size_t combinations = 2 * (static_cast<size_t>(S::kReprotecting) + 1) * (static_cast<size_t>(E::kReprotected) + 1);
  EXPECT_EQ(refused + legal.size(), combinations);
  EXPECT_GT(refused, 50);
}

TEST(PairStateTest, AFencedSideStaysFenced) {
  for (int e = 0; e <= static_cast<int>(E::kReprotected); ++e) {
    EXPECT_FALSE(NextState(Role::kPrimary, S::kFenced, static_cast<E>(e)).ok());
    EXPECT_FALSE(NextState(Role::kSecondary, S::kFenced, static_cast<E>(e)).ok());
  }
}

}  // namespace
}  // namespace understudy::failover
