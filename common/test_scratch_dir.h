// TestScratchDir: a directory that belongs to one test and nothing else.
//
// Tests run in parallel, and sandboxed tests live in PID namespaces where every test sees the
// same small PIDs, so a PID-named path under /tmp is shared by accident. A TestScratchDir is a
// fresh mkdtemp() directory under the test's own $TEST_TMPDIR, or under /tmp when that path is
// too long for the UNIX socket addresses tests put inside it (sun_path holds 107 bytes).
// Removed with everything in it on destruction.
//
// Thread safety: a TestScratchDir is a value; use one from one thread at a time.
#ifndef UNDERSTUDY_COMMON_TEST_SCRATCH_DIR_H_
#define UNDERSTUDY_COMMON_TEST_SCRATCH_DIR_H_

#include <string>
#include <string_view>

#include "common/result.h"

namespace understudy {

class TestScratchDir {
 public:
  // A new, empty directory (mode 0700) whose name starts with `prefix`.
  static Result<TestScratchDir> Create(std::string_view prefix);

  TestScratchDir(TestScratchDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TestScratchDir& operator=(TestScratchDir&&) = delete;
  ~TestScratchDir();

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  explicit TestScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_TEST_SCRATCH_DIR_H_
