// The demonstration `./quickstart.sh demo` runs: boots the counter guest under KVM, shows
// its console as an observer sees it, and says whether the sequence stayed continuous.
#include <cstdio>

#include "tests/harness/counter_transcript.h"
#include "tests/harness/test_guest.h"

using namespace understudy;
using namespace understudy::testing;

int main() {
  if (auto reason = KvmUnavailableReason()) {
    std::printf("This demo needs KVM: %s\n", reason->c_str());
    return 1;
  }
  constexpr int kLines = 20;
  std::printf("Booting the counter guest under KVM (64 pages dirtied per pass, a line every 500 passes)...\n");
  Result<std::unique_ptr<TestGuest>> guest = TestGuest::StartCounter({.pages = 64, .every = 500}, "demo");
  if (!guest.ok()) {
    std::printf("Could not start the guest: %s\n", guest.status().ToString().c_str());
    return 1;
  }
  std::printf("QEMU %s, pid %d. Guest console:\n", (*guest)->process().qmp().qemu_version().c_str(),
              (*guest)->process().pid());
  CounterTranscript transcript;
  Deadline deadline = Deadline::AfterMillis(120000);
  while (transcript.lines_observed() < kLines) {
    Result<std::string> line = (*guest)->console().ReadLine(deadline);
    if (!line.ok()) {
      std::printf("Console stopped: %s\n", line.status().ToString().c_str());
      return 1;
    }
    transcript.Observe(*line);
    std::printf("  [%2llu/%d] %s\n", static_cast<unsigned long long>(transcript.lines_observed()), kLines,
                line->c_str());
    std::fflush(stdout);
  }
  if (!transcript.continuous()) {
    std::printf("Sequence broken: %s\n", transcript.violation()->c_str());
    return 1;
  }
  std::printf("%d lines, continuous (no repeats, no gaps). Stopping the guest.\n", kLines);
  return 0;
}
