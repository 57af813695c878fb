// CounterTranscript: the observer's oracle for the counter guest's console.
//
// The counter guest prints 1, 2, 3, ... one number per line. A correct protected VM shows the
// observer exactly that sequence across any number of failovers: a repeated number means the
// observer saw output that was later rolled back; a skipped number means output was lost.
// Feed every line in the order observed; the first violation is kept with its position.
#ifndef UNDERSTUDY_TESTS_HARNESS_COUNTER_TRANSCRIPT_H_
#define UNDERSTUDY_TESTS_HARNESS_COUNTER_TRANSCRIPT_H_

#include <cstdint>
#include <optional>
#include <string>

namespace understudy::testing {

class CounterTranscript {
 public:
  // For an observer that joined late: the next line must be `next_number`.
  void ExpectNext(uint64_t next_number) { last_number_ = next_number - 1; }

  // Records one observed line. Returns false (and keeps the first violation) if the line is
  // not the number that must come next.
  bool Observe(const std::string& line);

  uint64_t last_number() const { return last_number_; }
  uint64_t lines_observed() const { return lines_observed_; }
  bool continuous() const { return !violation_; }
  // E.g. "line 7: expected 7, got 5 (repeat: rolled-back output was shown)".
  const std::optional<std::string>& violation() const { return violation_; }

 private:
  uint64_t last_number_ = 0;
  uint64_t lines_observed_ = 0;
  std::optional<std::string> violation_;
};

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_COUNTER_TRANSCRIPT_H_
