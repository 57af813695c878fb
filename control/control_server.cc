#include "control/control_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <optional>

#include "common/fd_io.h"
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

}  // namespace

void ControlServer::Serve(int client) {
  if (std::optional<std::string> refused = RefusedPeer(client)) {
    Log("control", "refused a control connection: " + *refused);
    (void)WriteAll(client, json{{"error", *refused}}.dump() + "\n", Deadline::AfterMillis(500));
    return;
  }
  std::string buffer;
  Deadline deadline = Deadline::AfterMillis(2000);
  while (buffer.find('\n') == std::string::npos) {
    std::array<std::byte, 4096> chunk;
    Result<size_t> count = ReadSome(client, chunk, deadline);
    if (!count.ok()) return;
    buffer.append(reinterpret_cast<const char*>(chunk.data()), *count);
  }
  json request = json::parse(buffer.substr(0, buffer.find('\n')), nullptr, /*allow_exceptions=*/false);
  json reply;
  if (request.is_discarded() || !request.is_object() || !request.contains("command") ||
      !request["command"].is_string()) {
    reply = {{"error", "expected a JSON object with a \"command\" string"}};
  } else {
    auto handler = handlers_.find(request["command"].get<std::string>());
    if (handler == handlers_.end()) {
      std::string known;
      for (const auto& [name, unused] : handlers_) known += (known.empty() ? "" : ", ") + name;
      reply = {{"error", "unknown command '" + request["command"].get<std::string>() + "' (known: " + known + ")"}};
    } else {
      Result<json> result = handler->second(request);
      reply = result.ok() ? *result : json{{"error", result.status().ToString()}};
    }
  }
  (void)WriteAll(client, reply.dump() + "\n", Deadline::AfterMillis(2000));
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
  json reply = json::parse(buffer.substr(0, buffer.find('\n')), nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded()) return Status::Corruption("control reply is not JSON");
  if (reply.contains("error")) return Status::FailedPrecondition(reply["error"].get<std::string>());
  return reply;
}

Result<json> AgentStatus(const std::string& runtime_dir, Deadline deadline) {
  return CallControl(runtime_dir + "/control.sock", {{"command", "status"}}, deadline);
}

}  // namespace understudy::control
