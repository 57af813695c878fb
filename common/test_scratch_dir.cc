#include "common/test_scratch_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

namespace understudy {
namespace {

// Leaves room for a socket or file name of up to ~40 bytes inside the directory.
constexpr size_t kLongestUsableBase = 60;

std::string ScratchBase() {
  const char* test_tmpdir = std::getenv("TEST_TMPDIR");
  if (test_tmpdir != nullptr && *test_tmpdir != '\0' && std::string_view(test_tmpdir).size() <= kLongestUsableBase) {
    return test_tmpdir;
  }
  return "/tmp";
}

}  // namespace

Result<TestScratchDir> TestScratchDir::Create(std::string_view prefix) {
  std::string pattern = ScratchBase() + "/" + std::string(prefix) + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return Status::FromErrno("mkdtemp " + pattern, errno);
  return TestScratchDir(pattern);
}

TestScratchDir::~TestScratchDir() {
  if (path_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace understudy
