// QmpClient: a client for QEMU's machine protocol (QMP) on a UNIX socket.
//
// QMP is JSON, one message per line. On connect QEMU greets; the client answers with
// `qmp_capabilities` and may then issue commands. Replies carry the command's id; events
// (STOP, RESUME, COLO_EXIT, ...) may arrive at any time, including between a command and its
// reply: they are queued and handed out by WaitForEvent / TakeEvents, never lost.
//
// Every call has a Deadline: a QEMU that stops answering costs at most that long.
//
// Thread safety: not thread-safe. One thread owns a client; share it behind a mutex if needed.
#ifndef UNDERSTUDY_QEMU_QMP_CLIENT_H_
#define UNDERSTUDY_QEMU_QMP_CLIENT_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/deadline.h"
#include "common/result.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace understudy::qemu {

struct QmpEvent {
  std::string name;      // e.g. "STOP"
  nlohmann::json data;   // the event's "data" member; an empty object when absent
  double timestamp = 0;  // seconds since the epoch, as QEMU stamped it
};

class QmpClient {
 public:
  // Connects to the socket at `socket_path` (retrying until it exists), reads the greeting
  // and negotiates capabilities. kDeadlineExceeded names the path when QEMU does not answer.
  static Result<std::unique_ptr<QmpClient>> Connect(const std::string& socket_path, Deadline deadline);

  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  // Runs `command` and returns its "return" value. A QMP error reply becomes
  // kFailedPrecondition with QEMU's error class and description in the message.
  Result<nlohmann::json> Execute(std::string_view command, const nlohmann::json& arguments, Deadline deadline);
  Result<nlohmann::json> Execute(std::string_view command, Deadline deadline) {
    return Execute(command, nlohmann::json::object(), deadline);
  }

  // Hands `fd` to QEMU under `fd_name` (QMP `getfd` with SCM_RIGHTS); QEMU keeps its own
  // copy, the caller keeps `fd`.
  Status PassFd(std::string_view fd_name, int fd, Deadline deadline);

  // Returns the first queued or arriving event called `name`; earlier events of other names
  // stay queued.
  Result<QmpEvent> WaitForEvent(std::string_view name, Deadline deadline);

  // Reads whatever events have arrived (without blocking) and returns all queued events.
  std::vector<QmpEvent> TakeEvents();

  // QEMU's version as the greeting announced it, e.g. "7.2.22".
  const std::string& qemu_version() const { return qemu_version_; }

 private:
  explicit QmpClient(UniqueFd socket) : socket_(std::move(socket)) {}

  Status Handshake(Deadline deadline);
  Status Send(const nlohmann::json& message, int fd_to_pass, Deadline deadline);
  // Returns the next complete message; events are NOT filtered here.
  Result<nlohmann::json> ReadMessage(Deadline deadline);
  // Reads messages, queueing events, until the reply to `id` arrives.
  Result<nlohmann::json> AwaitReply(std::string_view command, uint64_t id, Deadline deadline);
  void QueueEvent(const nlohmann::json& message);

  UniqueFd socket_;
  std::string pending_bytes_;  // received but not yet parsed (an incomplete line)
  std::deque<QmpEvent> events_;
  uint64_t next_id_ = 1;
  std::string qemu_version_;
};

}  // namespace understudy::qemu

#endif  // UNDERSTUDY_QEMU_QMP_CLIENT_H_
