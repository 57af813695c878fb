// ConsoleFollower: reads a protected VM's console from whichever agent currently serves it,
// and shows every byte exactly once across failovers.
//
// It knows the console sockets of both agents. It reads from one; when that one goes away
// (killed, or no longer the owner) it tries the others in turn and asks for the first byte
// it lacks. Bytes it already has are dropped, so a new owner re-releasing output is harmless.
// A source that merely falls silent (a partitioned primary holding its output) is not gone;
// so while it is silent the follower asks the others now and then whether they have bytes
// it lacks, and moves to one that has.
// This is the client `ftctl console` uses, and the observer of the end-to-end tests.
//
// Thread safety: not thread-safe.
#ifndef UNDERSTUDY_CONSOLE_CONSOLE_FOLLOWER_H_
#define UNDERSTUDY_CONSOLE_CONSOLE_FOLLOWER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/deadline.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace understudy::console {

class ConsoleFollower {
 public:
  explicit ConsoleFollower(std::vector<std::string> socket_paths, uint64_t start_offset = 0)
      : socket_paths_(std::move(socket_paths)), offset_(start_offset) {}

  // The next new bytes (never empty on success). Switches agents as needed until the
  // deadline; kDeadlineExceeded when no agent had anything new in time.
  Result<std::string> Read(Deadline deadline);

  // The next complete line, without its newline.
  Result<std::string> ReadLine(Deadline deadline);

  // Offset of the next byte this follower will deliver.
  uint64_t offset() const { return offset_; }
  // Which socket it read from last, and how many times it switched.
  const std::string& current_source() const { return socket_paths_[current_]; }
  int switches() const { return switches_; }

 private:
  Status ConnectSomewhere(Deadline deadline);
  // Asks every other source for the bytes we lack; adopts the first that has some.
  bool SwitchToASourceWithNews();

  std::vector<std::string> socket_paths_;
  size_t current_ = 0;
  bool try_next_first_ = false;
  Deadline next_probe_ = Deadline::Now();  // when the current source has been silent too long  // the current source ended: it is no longer the owner
  UniqueFd connection_;
  std::string pending_;   // bytes of an incomplete frame
  std::string partial_line_;
  uint64_t offset_;
  int switches_ = 0;
};

}  // namespace understudy::console

#endif  // UNDERSTUDY_CONSOLE_CONSOLE_FOLLOWER_H_
