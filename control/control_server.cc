#include "control/control_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <optional>

#include "common/fd_io.h"
#include "common/json_fields.h"
#include "common/log.h"

namespace understudy::control {

using nlohmann::json;

Result<std::unique_ptr<ControlServer>> ControlServer::Start(const std::string& socket_path,
                                                            std::map<std::string, Handler> handlers) {
  UNDERSTUDY_ASSIGN_OR_RETURN(UniqueFd listener, ListenUnixSocket(socket_path));
  // Connecting needs write permission on the socket file: nobody else gets it.
  if (::chmod(socket_path.c_str(), 0600) != 0) return Status::FromErrno("chmod 0600 " + socket_path, errno);
  std::unique_ptr<ControlServer> server(new ControlServer(socket_path, std::move(listener), std::move(handlers)));
  server->thread_ = std::thread([s = server.get()] { s->Loop(); });
  return server;
}

ControlServer::~ControlServer() { Stop(); }

void ControlServer::Stop() {
  if (stopping_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
  ::unlink(path_.c_str());
}

void ControlServer::Loop() {
  while (!stopping_.load()) {
    if (!WaitForFd(listener_.get(), /*for_write=*/false, Deadline::AfterMillis(100)).ok()) continue;
    UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (client.valid()) Serve(client.get());
  }
}

namespace {

// Empty if the connected peer may use this agent's control API; otherwise why not.
std::optional<std::string> RefusedPeer(int client) {
  ucred credentials{};
  socklen_t length = sizeof(credentials);
  if (::getsockopt(client, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) {
    return "cannot read the caller's credentials";
  }
  if (credentials.uid == ::geteuid() || credentials.uid == 0) return std::nullopt;
  return "uid " + std::to_string(credentials.uid) + " may not use this agent's control socket (only uid " +
         std::to_string(::geteuid()) + " and root)";
}

// Dumped with bytes that are not UTF-8 replaced rather than thrown on (a handler may quote a
// peer's text).
void Reply(int client, const json& reply) {
  (void)WriteAll(client, reply.dump(-1, ' ', false, json::error_handler_t::replace) + "\n", Deadline::AfterMillis(2000));
}

// Answers a request we did not read to its end, and closes gently: a Unix socket closed with
// unread bytes in its receive queue resets the caller, who then sees "connection reset"
// instead of our answer (a refused caller has usually sent its request before the refusal).
// So stop writing, then discard what the caller still sends, briefly and boundedly.
void ReplyAndDrain(int client, const json& reply) {
  Reply(client, reply);
  ::shutdown(client, SHUT_WR);
  Deadline deadline = Deadline::AfterMillis(500);
  std::array<std::byte, 4096> discard;
  for (size_t drained = 0; drained <= ControlServer::kMaxRequestBytes;) {
    Result<size_t> count = ReadSome(client, discard, deadline);
    if (!count.ok() || *count == 0) return;
    drained += *count;
  }
}

}  // namespace

void ControlServer::Serve(int client) {
  if (std::optional<std::string> refused = RefusedPeer(client)) {
    Log("control", "refused a control connection: " + *refused);
    ReplyAndDrain(client, json{{"error", *refused}});
    return;
  }
  std::string buffer;
  Deadline deadline = Deadline::AfterMillis(2000);
  while (buffer.find('\n') == std::string::npos) {
    if (buffer.size() > kMaxRequestBytes) {
      ReplyAndDrain(client, json{{"error", "request over " + std::to_string(kMaxRequestBytes) + " bytes"}});
      return;
    }
    std::array<std::byte, 4096> chunk;
    Result<size_t> count = ReadSome(client, chunk, deadline);
    if (!count.ok()) return;
    buffer.append(reinterpret_cast<const char*>(chunk.data()), *count);
  }
  Reply(client, AnswerControlRequest(std::string_view(buffer).substr(0, buffer.find('\n')), handlers_));
}

json AnswerControlRequest(std::string_view line, const std::map<std::string, Handler>& handlers) {
  Result<json> request = ParseJsonObject(line, "control request");
  if (!request.ok()) return {{"error", "expected a JSON object with a \"command\" string"}};
  Result<std::string> command = RequireString(*request, "command", "control request");
  if (!command.ok()) return {{"error", "expected a JSON object with a \"command\" string"}};
  auto handler = handlers.find(*command);
  if (handler == handlers.end()) {
    std::string known;
    for (const auto& [name, unused] : handlers) known += (known.empty() ? "" : ", ") + name;
    return {{"error", "unknown command '" + *command + "' (known: " + known + ")"}};
  }
  // The one boundary for this input source: handlers parse their fields without exceptions
  // (common/json_fields.h), and should one slip through anyway it becomes this request's
  // error instead of ending the agent and, with it, the VM.
  try {
    Result<json> result = handler->second(*request);
    return result.ok() ? *result : json{{"error", result.status().ToString()}};
  } catch (const std::exception& error) {
    return {{"error", "Internal: command '" + *command + "' failed: " + error.what()}};
  }
}

Result<json> CallControl(const std::string& socket_path, const json& request, Deadline deadline) {
  UNDERSTUDY_ASSIGN_OR_RETURN(UniqueFd socket, ConnectUnixSocket(socket_path, deadline));
  UNDERSTUDY_RETURN_IF_ERROR(WriteAll(socket.get(), request.dump() + "\n", deadline));
  std::string buffer;
  while (buffer.find('\n') == std::string::npos) {
    std::array<std::byte, 4096> chunk;
    Result<size_t> count = ReadSome(socket.get(), chunk, deadline);
    if (!count.ok()) return count.status().WithContext("control reply from " + socket_path);
    buffer.append(reinterpret_cast<const char*>(chunk.data()), *count);
  }
  Result<json> reply = ParseJsonObject(std::string_view(buffer).substr(0, buffer.find('\n')), "control reply");
  if (!reply.ok()) return Status::Corruption(reply.status().message());
  if (auto error = reply->find("error"); error != reply->end()) {
    return Status::FailedPrecondition(error->is_string() ? error->get<std::string>() : error->dump());
  }
  return reply;
}

Result<json> AgentStatus(const std::string& runtime_dir, Deadline deadline) {
  return CallControl(runtime_dir + "/control.sock", {{"command", "status"}}, deadline);
}

}  // namespace understudy::control
