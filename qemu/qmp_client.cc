#include "qemu/qmp_client.h"

#include <array>
#include <chrono>

#include "common/fd_io.h"

namespace understudy::qemu {

using nlohmann::json;

Result<std::unique_ptr<QmpClient>> QmpClient::Connect(const std::string& socket_path, Deadline deadline) {
  Result<UniqueFd> socket = ConnectUnixSocket(socket_path, deadline);
  if (!socket.ok()) return socket.status().WithContext("QMP did not answer on " + socket_path);
  std::unique_ptr<QmpClient> client(new QmpClient(std::move(*socket)));
  Status handshake = client->Handshake(deadline);
  if (!handshake.ok()) return handshake.WithContext("QMP handshake on " + socket_path);
  return client;
}

Status QmpClient::Handshake(Deadline deadline) {
  Result<json> greeting = ReadMessage(deadline);
  if (!greeting.ok()) return greeting.status().WithContext("waiting for the QMP greeting");
  if (!greeting->contains("QMP")) return Status::Corruption("first message is not a QMP greeting: " + greeting->dump());
  const json& version = (*greeting)["QMP"]["version"]["qemu"];
  if (version.is_object()) {
    qemu_version_ = std::to_string(version.value("major", 0)) + "." + std::to_string(version.value("minor", 0)) + "." +
                    std::to_string(version.value("micro", 0));
  }
  return Execute("qmp_capabilities", deadline).status();
}

Result<json> QmpClient::Execute(std::string_view command, const json& arguments, Deadline deadline) {
  uint64_t id = next_id_++;
  json message = {{"execute", command}, {"id", id}};
  if (!arguments.empty()) message["arguments"] = arguments;
  UNDERSTUDY_RETURN_IF_ERROR(Send(message, /*fd_to_pass=*/-1, deadline).WithContext(std::string(command)));
  return AwaitReply(command, id, deadline);
}

Status QmpClient::PassFd(std::string_view fd_name, int fd, Deadline deadline) {
  uint64_t id = next_id_++;
  json message = {{"execute", "getfd"}, {"arguments", {{"fdname", fd_name}}}, {"id", id}};
  UNDERSTUDY_RETURN_IF_ERROR(Send(message, fd, deadline).WithContext("getfd"));
  return AwaitReply("getfd", id, deadline).status();
}

Status QmpClient::Send(const json& message, int fd_to_pass, Deadline deadline) {
  std::string line = message.dump() + "\n";
  if (fd_to_pass >= 0) return SendWithFd(socket_.get(), line, fd_to_pass, deadline);
  return WriteAll(socket_.get(), line, deadline);
}

Result<json> QmpClient::ReadMessage(Deadline deadline) {
  for (;;) {
    size_t newline = pending_bytes_.find('\n');
    if (newline != std::string::npos) {
      std::string line = pending_bytes_.substr(0, newline);
      pending_bytes_.erase(0, newline + 1);
      if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
      json message = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (message.is_discarded() || !message.is_object()) {
        return Status::Corruption("QEMU sent a line that is not a JSON object: " + line.substr(0, 200));
      }
      return message;
    }
    std::array<std::byte, 16384> buffer;
    Result<size_t> count = ReadSome(socket_.get(), buffer, deadline);
    if (!count.ok()) {
      if (count.status().code() == Status::Code::kPeerClosed) return Status::Broken("QEMU closed the QMP connection");
      return count.status();
    }
    pending_bytes_.append(reinterpret_cast<const char*>(buffer.data()), *count);
  }
}

Result<json> QmpClient::AwaitReply(std::string_view command, uint64_t id, Deadline deadline) {
  for (;;) {
    Result<json> message = ReadMessage(deadline);
    if (!message.ok()) return message.status().WithContext("awaiting the reply to '" + std::string(command) + "'");
    if (message->contains("event")) {
      QueueEvent(*message);
      continue;
    }
    // QEMU answers unparseable input with an error that has no id; it is still our reply.
    bool ours = !message->contains("id") || (*message)["id"] == id;
    if (!ours) continue;
    if (message->contains("error")) {
      const json& error = (*message)["error"];
      return Status::FailedPrecondition("QMP command '" + std::string(command) + "' failed (" +
                                        error.value("class", "?") + "): " + error.value("desc", "no description"));
    }
    if (!message->contains("return")) return Status::Corruption("QMP reply without 'return': " + message->dump());
    return (*message)["return"];
  }
}

void QmpClient::QueueEvent(const json& message) {
  QmpEvent event;
  event.name = message.value("event", "");
  event.data = message.value("data", json::object());
  if (message.contains("timestamp")) {
    const json& stamp = message["timestamp"];
    event.timestamp = stamp.value("seconds", 0.0) + stamp.value("microseconds", 0.0) / 1e6;
  }
  events_.push_back(std::move(event));
}

Result<QmpEvent> QmpClient::WaitForEvent(std::string_view name, Deadline deadline) {
  for (;;) {
    for (auto it = events_.begin(); it != events_.end(); ++it) {
      if (it->name == name) {
        QmpEvent event = std::move(*it);
        events_.erase(it);
        return event;
      }
    }
    Result<json> message = ReadMessage(deadline);
    if (!message.ok()) return message.status().WithContext("waiting for QMP event " + std::string(name));
    if (message->contains("event")) QueueEvent(*message);
  }
}

std::vector<QmpEvent> QmpClient::TakeEvents() {
  for (;;) {
    Result<json> message = ReadMessage(Deadline::Now());
    if (!message.ok()) break;
    if (message->contains("event")) QueueEvent(*message);
  }
  std::vector<QmpEvent> events(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
  events_.clear();
  return events;
}

}  // namespace understudy::qemu
