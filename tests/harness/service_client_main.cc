// service_client: one client of the network guest's exactly-once increment service
// (tests/guests/net_service.c), logging every reply it gets so that CheckServiceHistory
// (service_history.h) can later judge all clients' logs together.
//
//   service_client --server 10.96.0.2:7000 --client-id K --requests N --log PATH
//                  [--retransmit-ms 200] [--deadline-s 120]
//
// Sends requests 1..N in order, one outstanding: request r is sent once r-1 has an ok reply,
// and sent again (same number) every retransmit-ms until its own ok arrives. Every reply
// datagram, whatever it says, becomes a line of the log, as does every retransmission; the
// format is in service_history.h. Each line is one write(2) to a file opened for appending,
// so a client killed at any moment leaves whole lines behind.
//
// Prints one summary line. Exit status: 0 when all N requests were answered ok before the
// deadline, 1 when not (or on an I/O error), 2 for a bad command line.
//
// Runs wherever it is started (the test uses `ip netns exec NS service_client ...`): an
// ordinary UDP socket connected to the server, so only the server's datagrams arrive.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "tests/harness/service_protocol.h"

namespace understudy::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kUsage[] =
    "usage: service_client --server A.B.C.D:PORT --client-id K --requests N --log PATH\n"
    "                      [--retransmit-ms 200] [--deadline-s 120]\n";

struct Options {
  std::string server_text;
  sockaddr_in server{};
  uint32_t client_id = 0;
  uint32_t requests = 0;
  std::string log_path;
  uint32_t retransmit_ms = 200;
  uint32_t deadline_s = 120;
};

std::optional<uint32_t> ParseU32(std::string_view text) {
  uint32_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

Result<sockaddr_in> ParseServer(const std::string& text) {
  const size_t colon = text.rfind(':');
  sockaddr_in server{};
  server.sin_family = AF_INET;
  std::optional<uint32_t> port = colon == std::string::npos ? std::nullopt : ParseU32(text.substr(colon + 1));
  if (!port || *port == 0 || *port > 65535 ||
      ::inet_pton(AF_INET, text.substr(0, colon).c_str(), &server.sin_addr) != 1) {
    return Status::InvalidArgument("--server wants an IPv4 address and port like 10.96.0.2:7000, not '" + text + "'");
  }
  server.sin_port = htons(static_cast<uint16_t>(*port));
  return server;
}

Result<Options> ParseOptions(int argc, char** argv) {
  Options options;
  bool have_server = false, have_client = false, have_requests = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) return Status::InvalidArgument(std::string(flag) + " needs a value");
    const std::string value = argv[++i];
    auto number = [&](uint32_t& into) -> Status {
      std::optional<uint32_t> parsed = ParseU32(value);
      if (!parsed)
        return Status::InvalidArgument(std::string(flag) + " wants a non-negative number, not '" + value + "'");
      into = *parsed;
      return Status::Ok();
    };
    if (flag == "--server") {
      Result<sockaddr_in> server = ParseServer(value);
      if (!server.ok()) return server.status();
      options.server = *server;
      options.server_text = value;
      have_server = true;
    } else if (flag == "--client-id") {
      UNDERSTUDY_RETURN_IF_ERROR(number(options.client_id));
      have_client = true;
    } else if (flag == "--requests") {
      UNDERSTUDY_RETURN_IF_ERROR(number(options.requests));
      have_requests = true;
    } else if (flag == "--log") {
      options.log_path = value;
    } else if (flag == "--retransmit-ms") {
      UNDERSTUDY_RETURN_IF_ERROR(number(options.retransmit_ms));
      if (options.retransmit_ms == 0) return Status::InvalidArgument("--retransmit-ms must be at least 1");
    } else if (flag == "--deadline-s") {
      UNDERSTUDY_RETURN_IF_ERROR(number(options.deadline_s));
    } else {
      return Status::InvalidArgument("unknown flag " + std::string(flag));
    }
  }
  if (!have_server || !have_client || !have_requests || options.log_path.empty()) {
    return Status::InvalidArgument("--server, --client-id, --requests and --log are required");
  }
  return options;
}

// The log: one JSON object per line, each written whole with one write(2) in append mode.
class ReplyLog {
 public:
  static Result<ReplyLog> Open(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!fd.valid()) return Status::FromErrno("opening log " + path, errno);
    return ReplyLog(std::move(fd));
  }

  Status Append(const nlohmann::ordered_json& record) {
    const std::string line = record.dump() + "\n";
    size_t written = 0;
    while (written < line.size()) {
      ssize_t count = ::write(fd_.get(), line.data() + written, line.size() - written);
      if (count < 0 && errno == EINTR) continue;
      if (count < 0) return Status::FromErrno("writing the log", errno);
      written += static_cast<size_t>(count);
    }
    return Status::Ok();
  }

 private:
  explicit ReplyLog(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// Errors a lost datagram would look like: the network may be down or the server unreachable
// for a while (during a failover, say), which retransmission is there to ride out.
bool IsTransientNetworkError(int error) {
  return error == ECONNREFUSED || error == EHOSTUNREACH || error == ENETUNREACH || error == EHOSTDOWN ||
         error == ENETDOWN || error == ENOBUFS || error == EAGAIN || error == EWOULDBLOCK || error == EINTR;
}

struct Outcome {
  uint32_t answered = 0;  // requests with an ok reply, 1..answered
  uint64_t retransmissions = 0;
  uint64_t replies = 0;
  double longest_stall_ms = 0;
  uint32_t longest_stall_request = 0;
};

class Client {
 public:
  Client(const Options& options, ReplyLog log, UniqueFd socket)
      : options_(options), log_(std::move(log)), socket_(std::move(socket)), start_(Clock::now()) {}

  // Runs requests 1..N until done or the deadline; fails only on a local I/O error.
  Result<Outcome> Run() {
    UNDERSTUDY_RETURN_IF_ERROR(log_.Append({{"client", options_.client_id},
                                            {"server", options_.server_text},
                                            {"requests", options_.requests},
                                            {"retransmit_ms", options_.retransmit_ms},
                                            {"started_unix_ms", UnixMillis()},
                                            {"at_ms", 0}}));
    const Clock::time_point deadline = start_ + std::chrono::seconds(options_.deadline_s);
    const auto retransmit_after = std::chrono::milliseconds(options_.retransmit_ms);
    for (uint32_t request = 1; request <= options_.requests; ++request) {
      const Clock::time_point first_sent = Clock::now();
      UNDERSTUDY_RETURN_IF_ERROR(Send(request));
      Clock::time_point next_send = first_sent + retransmit_after;
      bool answered = false;
      while (!answered) {
        const Clock::time_point now = Clock::now();
        if (now >= deadline) return outcome_;
        if (now >= next_send) {
          UNDERSTUDY_RETURN_IF_ERROR(Send(request));
          UNDERSTUDY_RETURN_IF_ERROR(
              log_.Append({{"client", options_.client_id}, {"retransmit", request}, {"at_ms", AtMs()}}));
          ++outcome_.retransmissions;
          next_send = now + retransmit_after;
        }
        const auto wait = std::chrono::ceil<std::chrono::milliseconds>(std::min(next_send, deadline) - Clock::now());
        pollfd readable{socket_.get(), POLLIN, 0};
        if (::poll(&readable, 1, static_cast<int>(std::max<int64_t>(wait.count(), 0))) < 0 && errno != EINTR) {
          return Status::FromErrno("poll", errno);
        }
        Result<bool> got = ReceiveWaiting(request);
        if (!got.ok()) return got.status();
        answered = *got;
      }
      const double stall = std::chrono::duration<double, std::milli>(Clock::now() - first_sent).count();
      if (outcome_.longest_stall_request == 0 || stall > outcome_.longest_stall_ms) {
        outcome_.longest_stall_ms = stall;
        outcome_.longest_stall_request = request;
      }
      outcome_.answered = request;
    }
    return outcome_;
  }

 private:
  Status Send(uint32_t request) {
    const auto datagram = EncodeServiceRequest(options_.client_id, request);
    if (::send(socket_.get(), datagram.data(), datagram.size(), 0) < 0 && !IsTransientNetworkError(errno)) {
      return Status::FromErrno("sending request " + std::to_string(request), errno);
    }
    return Status::Ok();
  }

  // Logs every reply already waiting; true if one of them is the ok for `request`.
  Result<bool> ReceiveWaiting(uint32_t request) {
    bool answered = false;
    for (;;) {
      uint8_t datagram[64];
      ssize_t size = ::recv(socket_.get(), datagram, sizeof(datagram), MSG_DONTWAIT);
      if (size < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return answered;
        // An ICMP error for an earlier datagram, reported here; the retransmission covers it.
        if (IsTransientNetworkError(errno)) continue;
        return Status::FromErrno("receiving replies", errno);
      }
      std::optional<ServiceReply> reply = DecodeServiceReply(std::span(datagram, static_cast<size_t>(size)));
      if (!reply) continue;  // not the service's; it ignores such datagrams too
      ++outcome_.replies;
      UNDERSTUDY_RETURN_IF_ERROR(log_.Append({{"client", reply->client_id},
                                              {"request", reply->request_no},
                                              {"status", ReplyStatusName(reply->status)},
                                              {"value", reply->value},
                                              {"at_ms", AtMs()}}));
      if (reply->client_id == options_.client_id && reply->request_no == request && reply->status == ReplyStatus::kOk) {
        answered = true;
      }
    }
  }

  // Milliseconds since the start, to the microsecond (latency benchmarks read these).
  double AtMs() const {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_).count()) / 1000;
  }

  static int64_t UnixMillis() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  const Options& options_;
  ReplyLog log_;
  UniqueFd socket_;
  const Clock::time_point start_;
  Outcome outcome_;
};

Result<UniqueFd> ConnectTo(const sockaddr_in& server) {
  UniqueFd socket(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!socket.valid()) return Status::FromErrno("socket", errno);
  if (::connect(socket.get(), reinterpret_cast<const sockaddr*>(&server), sizeof(server)) != 0) {
    return Status::FromErrno("connecting a UDP socket to the server", errno);
  }
  return socket;
}

int Main(int argc, char** argv) {
  Result<Options> options = ParseOptions(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "service_client: %s\n%s", options.status().message().c_str(), kUsage);
    return 2;
  }
  Result<ReplyLog> log = ReplyLog::Open(options->log_path);
  Result<UniqueFd> socket = log.ok() ? ConnectTo(options->server) : Result<UniqueFd>(log.status());
  if (!socket.ok()) {
    std::fprintf(stderr, "service_client %u: %s\n", options->client_id, socket.status().ToString().c_str());
    return 1;
  }
  Client client(*options, std::move(*log), std::move(*socket));
  Result<Outcome> outcome = client.Run();
  if (!outcome.ok()) {
    std::fprintf(stderr, "service_client %u: %s\n", options->client_id, outcome.status().ToString().c_str());
    return 1;
  }
  const bool done = outcome->answered == options->requests;
  std::string summary = "service_client " + std::to_string(options->client_id) + ": " +
                        std::to_string(outcome->answered) + "/" + std::to_string(options->requests) +
                        " requests answered ok";
  if (!done) summary += " (gave up on request " + std::to_string(outcome->answered + 1) + " at the deadline)";
  summary += ", " + std::to_string(outcome->retransmissions) + " retransmissions, " + std::to_string(outcome->replies) +
             " replies";
  if (outcome->longest_stall_request != 0) {
    char stall[64];
    std::snprintf(stall, sizeof(stall), ", longest stall %.0f ms (request %u)", outcome->longest_stall_ms,
                  outcome->longest_stall_request);
    summary += stall;
  }
  std::printf("%s\n", summary.c_str());
  return done ? 0 : 1;
}

}  // namespace
}  // namespace understudy::testing

int main(int argc, char** argv) { return understudy::testing::Main(argc, argv); }
