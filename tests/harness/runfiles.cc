#include "tests/harness/runfiles.h"

#include <cstdlib>

namespace understudy::testing {

std::string RunfilePath(std::string_view workspace_relative) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  std::string base = srcdir ? std::string(srcdir) + "/" + (workspace ? workspace : "understudy") : ".";
  return base + "/" + std::string(workspace_relative);
}

}  // namespace understudy::testing
