// RunfilePath: where a file of this workspace is at test time (Bazel's runfiles tree).
#ifndef UNDERSTUDY_TESTS_HARNESS_RUNFILES_H_
#define UNDERSTUDY_TESTS_HARNESS_RUNFILES_H_

#include <string>
#include <string_view>

namespace understudy::testing {

// Absolute path of a file in this test's runfiles, e.g. "tests/guests/counter.elf" (relative to
// the working directory when not run by Bazel).
std::string RunfilePath(std::string_view workspace_relative);

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_RUNFILES_H_
