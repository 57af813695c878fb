// FakeQmpServer: QEMU's end of a QMP socket, scripted by a test.
//
// For code that drives QEMU through a QmpClient and must react to answers a real QEMU gives
// only in a narrow race or a rare state (a `migrate` refused while the previous migration is
// still being cleaned up, say). It plays what QEMU 7.2 does on a QMP socket, and no more:
//
//   * listens on a UNIX socket and serves the first client that connects;
//   * greets it as 7.2 does ({"QMP": {"version": ..., "capabilities": ["oob"]}});
//   * answers `qmp_capabilities` itself, and refuses any other command sent before it (and a
//     second `qmp_capabilities` after it) with QEMU's CommandNotFound errors;
//   * accepts descriptors attached with SCM_RIGHTS, counts them, notes which file each one
//     is (its inode) and closes it at once; like QEMU, a `getfd` consumes one descriptor
//     received before it and is refused with QEMU's own error when none came, before the
//     test's Responder sees it;
//   * hands every other command to the Responder, whose answer it sends with the request's
//     id, and records every command, in order of arrival.
//
// It sends no events. A line that is not a QMP command gets QEMU's kind of error and counts
// as a protocol violation, which Stop() reports.
//
// Thread safety: the server runs on a thread of its own, which also calls the Responder (one
// call at a time, never after Stop() returns). commands(), descriptors_received() and Stop()
// may be called from any thread.
#ifndef UNDERSTUDY_QEMU_TESTING_FAKE_QMP_SERVER_H_
#define UNDERSTUDY_QEMU_TESTING_FAKE_QMP_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/deadline.h"
#include "common/mutex.h"
#include "common/result.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "common/unique_fd.h"

namespace understudy::qemu::testing {

// One command as the server received it.
struct ReceivedCommand {
  std::string name;             // the "execute" member, e.g. "getfd"
  nlohmann::json arguments;     // the "arguments" member; an empty object when absent
  int descriptors = 0;          // for `getfd`: descriptors it consumed (0 or 1); 0 for others
  uint64_t descriptor_inode = 0;  // the consumed descriptor's inode (st_ino), 0 when none
};

// The reply body for a command: {"return": value} for success.
nlohmann::json QmpReturn(nlohmann::json value = nlohmann::json::object());
// The reply body for a refusal, as QEMU writes it: {"error": {"class": ..., "desc": ...}}.
nlohmann::json QmpError(std::string_view description, std::string_view error_class = "GenericError");

class FakeQmpServer {
 public:
  // Answers one command (never `qmp_capabilities`, nor a `getfd` that came without a
  // descriptor): returns QmpReturn(...) or QmpError(...). Called on the server's thread.
  using Responder = std::function<nlohmann::json(const std::string& command, const nlohmann::json& arguments)>;

  // Listens at `socket_path` (replacing a stale socket file) before returning, so a client may
  // connect at once, then serves one client on a new thread until Stop(), the client's
  // disconnect or `serve_until`, whichever comes first. Fails if the socket cannot be made.
  static Result<std::unique_ptr<FakeQmpServer>> Start(const std::string& socket_path, Responder responder,
                                                       Deadline serve_until);

  // Stops the server (see Stop()).
  ~FakeQmpServer();
  FakeQmpServer(const FakeQmpServer&) = delete;
  FakeQmpServer& operator=(const FakeQmpServer&) = delete;

  // Ends the serving thread and waits for it. OK when it ended because of Stop() or the
  // client's disconnect and saw no protocol violation; otherwise the first violation, or
  // kDeadlineExceeded when `serve_until` came first. Later calls return the same status.
  Status Stop();

  // Every command received so far (including `qmp_capabilities`), in order.
  std::vector<ReceivedCommand> commands() const;
  // How many descriptors arrived with SCM_RIGHTS in all, whether a `getfd` consumed them or not.
  int descriptors_received() const;

 private:
  FakeQmpServer(UniqueFd listener, UniqueFd wake_reader, UniqueFd wake_writer, Responder responder,
                Deadline serve_until);

  // The serving thread's body; returns its final status.
  Status Serve();
  // Waits until `fd` is readable; false when Stop() asked to end first. kDeadlineExceeded at
  // serve_until_.
  Result<bool> WaitReadable(int fd);
  // Receives bytes (and descriptors) from the client into `pending_bytes_`; false at end of stream.
  Result<bool> Receive(int client);
  // Answers one request line (without its newline).
  Status Answer(int client, std::string_view line);
  // Decides the reply body to `received`; runs the Responder unless QEMU itself would refuse.
  nlohmann::json Decide(const ReceivedCommand& received);
  void NoteViolation(const std::string& what);

  // Constant after construction.
  const UniqueFd listener_;
  const UniqueFd wake_reader_;  // readable once Stop() has been called
  const UniqueFd wake_writer_;
  const Responder responder_;
  const Deadline serve_until_;

  // Only the serving thread touches these.
  std::string pending_bytes_;  // received, not yet a whole line
  bool negotiated_ = false;    // `qmp_capabilities` answered
  std::vector<uint64_t> unconsumed_inodes_;  // descriptors received, not yet taken by a `getfd`

  mutable Mutex mu_;
  std::vector<ReceivedCommand> commands_ GUARDED_BY(mu_);
  int descriptors_received_ GUARDED_BY(mu_) = 0;
  std::optional<Status> first_violation_ GUARDED_BY(mu_);

  // Serialises Stop() calls; taken before mu_, never while the serving thread must wait on it.
  Mutex stop_mu_;
  std::thread thread_ GUARDED_BY(stop_mu_);                // started in Start()
  std::optional<Status> final_status_ GUARDED_BY(stop_mu_);  // set once thread_ is joined
};

}  // namespace understudy::qemu::testing

#endif  // UNDERSTUDY_QEMU_TESTING_FAKE_QMP_SERVER_H_
