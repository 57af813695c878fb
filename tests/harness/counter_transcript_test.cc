#include "tests/harness/counter_transcript.h"

#include <gtest/gtest.h>

namespace understudy::testing {
namespace {

TEST(CounterTranscriptTest, AcceptsTheCountingSequence) {
  CounterTranscript transcript;
  for (int k = 1; k <= 5; ++k) EXPECT_TRUE(transcript.Observe(std::to_string(k)));
  EXPECT_TRUE(transcript.continuous());
  EXPECT_EQ(transcript.last_number(), 5u);
}

TEST(CounterTranscriptTest, ARepeatIsARollback) {
  CounterTranscript transcript;
  EXPECT_TRUE(transcript.Observe("1"));
  EXPECT_TRUE(transcript.Observe("2"));
  EXPECT_FALSE(transcript.Observe("2"));
  ASSERT_TRUE(transcript.violation());
  EXPECT_EQ(*transcript.violation(), "line 3: expected 3, got '2' (repeat: rolled-back output was shown)");
}

TEST(CounterTranscriptTest, AGapIsLostOutput) {
  CounterTranscript transcript;
  EXPECT_TRUE(transcript.Observe("1"));
  EXPECT_FALSE(transcript.Observe("3"));
  EXPECT_EQ(*transcript.violation(), "line 2: expected 2, got '3' (gap: output was lost)");
}

TEST(CounterTranscriptTest, GarbageIsAViolationAndFirstViolationIsKept) {
  CounterTranscript transcript;
  EXPECT_FALSE(transcript.Observe("SeaBIOS 1"));
  EXPECT_FALSE(transcript.Observe("7"));
  EXPECT_EQ(*transcript.violation(), "line 1: expected 1, got 'SeaBIOS 1' (not a counter line)");
}

}  // namespace
}  // namespace understudy::testing
