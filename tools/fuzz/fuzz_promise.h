// Require(): how a fuzz target states a promise of the code under test. A broken promise is a
// finding: the message goes to stderr and the process aborts, so libFuzzer keeps the input
// and the corpus tests fail on it. (A crash or an escaping exception is a finding anyway.)
//
// Thread safety: stateless.
#ifndef UNDERSTUDY_TOOLS_FUZZ_FUZZ_PROMISE_H_
#define UNDERSTUDY_TOOLS_FUZZ_FUZZ_PROMISE_H_

#include <cstdio>
#include <cstdlib>

namespace understudy::fuzz {

inline void Require(bool condition, const char* promise) {
  if (condition) return;
  std::fprintf(stderr, "broken promise: %s\n", promise);
  std::abort();
}

}  // namespace understudy::fuzz

#endif  // UNDERSTUDY_TOOLS_FUZZ_FUZZ_PROMISE_H_
