// TestRamDump: TEST ONLY. Writes one block of the secondary's committed RAM image (e.g.
// "pc.ram") to a file, for the RAM-equality oracle (tests/e2e/ram_equality_test.cc).
//
// The control thread asks (Request) and waits; the commit thread serves (ServeIfRequested)
// between checkpoints, so the file is exactly one committed epoch's memory — never half of
// one — and the reply names that epoch. The file holds the block's bytes, offset for offset.
//
// Reached only through the control command AddControlCommand registers, which the agent
// offers only with "test_only": {"control_commands": true}.
//
// Thread safety: Request and AddControlCommand's handler from any thread; ServeIfRequested
// from the one thread that owns the image.
#ifndef UNDERSTUDY_SECONDARY_TEST_RAM_DUMP_H_
#define UNDERSTUDY_SECONDARY_TEST_RAM_DUMP_H_

#include <map>
#include <optional>
#include <string>

#include "checkpoint/ram_image.h"
#include "common/deadline.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "control/control_server.h"

namespace understudy::secondary {

class TestRamDump {
 public:
  // Adds test_dump_ram {"path": P, "block": B (default "pc.ram")} → {"epoch", "block",
  // "bytes", "path"}; waits up to 20 s for the commit thread.
  void AddControlCommand(std::map<std::string, control::Handler>& handlers);

  // On the commit thread: serves a pending request from `image` (null: none yet, the request
  // fails).
  void ServeIfRequested(const checkpoint::RamImage* image) EXCLUDES(mutex_);

 private:
  struct Pending {
    std::string path;
    std::string block;
    std::optional<Result<nlohmann::json>> result;  // set by the commit thread
  };
  static Result<nlohmann::json> Write(const checkpoint::RamImage& image, const std::string& block,
                                      const std::string& path);

  // The control thread's side: waits (up to 20 s) for the commit thread to serve the dump.
  Result<nlohmann::json> Dump(std::string path, std::string block) EXCLUDES(mutex_);

  Mutex mutex_;
  CondVar served_;
  Pending* pending_ GUARDED_BY(mutex_) = nullptr;  // owned by the waiting handler
};

}  // namespace understudy::secondary

#endif  // UNDERSTUDY_SECONDARY_TEST_RAM_DUMP_H_
