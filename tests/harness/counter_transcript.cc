#include "tests/harness/counter_transcript.h"

#include <charconv>

namespace understudy::testing {

bool CounterTranscript::Observe(const std::string& line) {
  ++lines_observed_;
  uint64_t expected = last_number_ + 1;
  uint64_t number = 0;
  auto [end, error] = std::from_chars(line.data(), line.data() + line.size(), number);
  bool parsed = error == std::errc() && end == line.data() + line.size() && !line.empty();
  if (parsed && number == expected) {
    last_number_ = number;
    return true;
  }
  if (!violation_) {
    std::string what = !parsed           ? "not a counter line"
                       : number < expected ? "repeat: rolled-back output was shown"
                                           : "gap: output was lost";
    violation_ = "line " + std::to_string(lines_observed_) + ": expected " + std::to_string(expected) + ", got '" +
                 line + "' (" + what + ")";
  }
  if (parsed) last_number_ = number;
  return false;
}

}  // namespace understudy::testing
