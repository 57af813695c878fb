// SerialConsole: reads a guest's COM1 from QEMU's chardev socket, line by line, with deadlines.
//
// The test harness's observer. It keeps the whole transcript so a failing test can print
// what the guest actually said.
//
// Thread safety: not thread-safe.
#ifndef UNDERSTUDY_TESTS_HARNESS_SERIAL_CONSOLE_H_
#define UNDERSTUDY_TESTS_HARNESS_SERIAL_CONSOLE_H_

#include <functional>
#include <string>
#include <vector>

#include "common/deadline.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace understudy::testing {

class SerialConsole {
 public:
  // Connects to QEMU's `-chardev socket,server=on` at `path`.
  static Result<SerialConsole> Connect(const std::string& path, Deadline deadline);

  // The next complete line, without its newline.
  Result<std::string> ReadLine(Deadline deadline);

  // Reads lines until one satisfies `wanted` and returns it. The error names how many lines
  // went by and the last few, so a time-out explains itself.
  Result<std::string> WaitForLine(const std::function<bool(const std::string&)>& wanted, Deadline deadline);
  Result<std::string> WaitForLine(const std::string& exact, Deadline deadline) {
    return WaitForLine([&](const std::string& line) { return line == exact; }, deadline);
  }

  // Every complete line read so far.
  const std::vector<std::string>& lines() const { return lines_; }
  // The last `count` lines joined with " | ", for error messages.
  std::string RecentLines(size_t count) const;

 private:
  explicit SerialConsole(UniqueFd socket) : socket_(std::move(socket)) {}

  UniqueFd socket_;
  std::string partial_line_;
  std::vector<std::string> lines_;
};

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_SERIAL_CONSOLE_H_
