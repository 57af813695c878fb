#include "tests/harness/serial_console.h"

#include <array>

#include "common/fd_io.h"

namespace understudy::testing {

Result<SerialConsole> SerialConsole::Connect(const std::string& path, Deadline deadline) {
  Result<UniqueFd> socket = ConnectUnixSocket(path, deadline);
  if (!socket.ok()) return socket.status().WithContext("serial console");
  return SerialConsole(std::move(*socket));
}

Result<std::string> SerialConsole::ReadLine(Deadline deadline) {
  for (;;) {
    size_t newline = partial_line_.find('\n');
    if (newline != std::string::npos) {
      std::string line = partial_line_.substr(0, newline);
      partial_line_.erase(0, newline + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines_.push_back(line);
      return line;
    }
    std::array<std::byte, 4096> buffer;
    Result<size_t> count = ReadSome(socket_.get(), buffer, deadline);
    if (!count.ok()) return count.status().WithContext("serial console");
    partial_line_.append(reinterpret_cast<const char*>(buffer.data()), *count);
  }
}

Result<std::string> SerialConsole::WaitForLine(const std::function<bool(const std::string&)>& wanted,
                                               Deadline deadline) {
  size_t lines_before = lines_.size();
  for (;;) {
    Result<std::string> line = ReadLine(deadline);
    if (!line.ok()) {
      return line.status().WithContext("waiting for a line (" + std::to_string(lines_.size() - lines_before) +
                                        " other lines seen; last: " + RecentLines(5) + ")");
    }
    if (wanted(*line)) return line;
  }
}

std::string SerialConsole::RecentLines(size_t count) const {
  std::string text;
  size_t start = lines_.size() > count ? lines_.size() - count : 0;
  for (size_t i = start; i < lines_.size(); ++i) {
    if (!text.empty()) text += " | ";
    text += lines_[i];
  }
  return text.empty() ? "<none>" : text;
}

}  // namespace understudy::testing
