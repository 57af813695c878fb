// PollUntil: the one way tests wait for something another thread or process will make true
// (a status to change, a log line to appear, bytes to be released).
//
// Checks `done` at once, then every `every`, until it holds or `within` has passed; returns
// whether it held. It checks once more at the deadline, so a condition that became true
// during the last sleep still counts, and it never sleeps past the deadline. The caller's
// assertion says what was awaited: ASSERT_TRUE(PollUntil(...)) << "what never happened".
//
// Thread safety: `done` runs on the calling thread only.
#ifndef UNDERSTUDY_COMMON_TEST_POLL_H_
#define UNDERSTUDY_COMMON_TEST_POLL_H_

#include <chrono>
#include <functional>

namespace understudy {

bool PollUntil(const std::function<bool()>& done, std::chrono::milliseconds within,
               std::chrono::milliseconds every = std::chrono::milliseconds(10));

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_TEST_POLL_H_
