// ControlServer: an agent's control API on a UNIX socket.
//
// Protocol: one JSON object per line each way. Request {"command": "status", ...}; reply is
// the handler's JSON object, or {"error": "..."}. A malformed request (not JSON, not an
// object, no "command" string, over kMaxRequestBytes, a field of the wrong type) gets an
// error reply and the server keeps serving: handlers read their fields with
// common/json_fields.h, and the server turns anything a handler throws into an error reply. `ftctl` is the usual client. Handlers run
// on the server's thread, one request at a time; they must be quick and thread-safe with
// respect to the agent.
//
// Local callers only, and only this user: the socket is created 0600 (it should also live
// in a 0700 directory, common/private_directory.h), and every connection's peer credentials
// (SO_PEERCRED) must name this process's effective uid or root; others get an error reply
// naming their uid and are dropped before any handler runs.
#ifndef UNDERSTUDY_CONTROL_CONTROL_SERVER_H_
#define UNDERSTUDY_CONTROL_CONTROL_SERVER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>

#include "common/deadline.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace understudy::control {

using Handler = std::function<Result<nlohmann::json>(const nlohmann::json& request)>;

class ControlServer {
 public:
  static constexpr size_t kMaxRequestBytes = 64 * 1024;

  static Result<std::unique_ptr<ControlServer>> Start(const std::string& socket_path,
                                                      std::map<std::string, Handler> handlers);
  ~ControlServer();
  void Stop();

 private:
  ControlServer(std::string path, UniqueFd listener, std::map<std::string, Handler> handlers)
      : path_(std::move(path)), listener_(std::move(listener)), handlers_(std::move(handlers)) {}
  void Loop();
  void Serve(int client);

  std::string path_;
  UniqueFd listener_;
  std::map<std::string, Handler> handlers_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// The reply the server sends to one request line (without its newline): the handler's result,
// or {"error": ...} for a malformed request, an unknown command, a handler's error — or an
// exception a handler let escape, reported as "Internal: command '...' failed: ..." instead of
// ending the agent. Pure apart from what the handler does; never throws. The server's whole
// request parsing, exposed for control/fuzz.
nlohmann::json AnswerControlRequest(std::string_view line, const std::map<std::string, Handler>& handlers);

// One request/response round trip, for ftctl and tests.
Result<nlohmann::json> CallControl(const std::string& socket_path, const nlohmann::json& request, Deadline deadline);

// The "status" of the agent whose runtime directory is `runtime_dir` (its control.sock).
Result<nlohmann::json> AgentStatus(const std::string& runtime_dir, Deadline deadline);

}  // namespace understudy::control

#endif  // UNDERSTUDY_CONTROL_CONTROL_SERVER_H_
