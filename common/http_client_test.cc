// HttpGet/HttpPost against a real loopback listener that answers what each test scripts:
// the request arrives as sent, and every way a server can misbehave (never answering, an
// endless or oversized body, an error status) is an error value naming the URL, on time.
// TLS (verification against our CA, client certificates) is tested against a real etcd in
// tests/harness/etcd_server_test.cc.
#include "common/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.h"

namespace understudy {
namespace {

using namespace std::chrono_literals;

// Accepts one connection on 127.0.0.1, reads the request (headers and a Content-Length body),
// then writes `reply` — or, with an empty reply, holds the connection open without a word.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::string reply) : reply_(std::move(reply)) {
    listener_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    bound_ = listener_.valid() && ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
             ::listen(listener_.get(), 4) == 0 &&
             ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0;
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    thread_.join();
  }
  bool bound() const { return bound_; }
  std::string Url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  // The request as received (after the server has answered).
  std::string request() {
    thread_.join();
    thread_ = std::thread([] {});
    return request_;
  }

 private:
  bool WaitReadable(int fd) {
    while (!stop_) {
      pollfd poll_fd{fd, POLLIN, 0};
      if (::poll(&poll_fd, 1, 20) > 0) return true;
    }
    return false;
  }
  void Serve() {
    if (!bound_ || !WaitReadable(listener_.get())) return;
    UniqueFd connection(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    size_t header_end = std::string::npos;
    while (WaitReadable(connection.get())) {
      char buffer[4096];
      ssize_t got = ::read(connection.get(), buffer, sizeof(buffer));
      if (got <= 0) return;
      request_.append(buffer, static_cast<size_t>(got));
      header_end = request_.find("\r\n\r\n");
      if (header_end == std::string::npos) continue;
      size_t length_at = request_.find("Content-Length: ");
      size_t body_size = length_at == std::string::npos ? 0 : std::stoul(request_.substr(length_at + 16));
      if (request_.size() >= header_end + 4 + body_size) break;
    }
    if (reply_.empty()) {
      while (!stop_) std::this_thread::sleep_for(10ms);  // silent: the client must give up by itself
      return;
    }
    for (size_t sent = 0; sent < reply_.size() && !stop_;) {
      ssize_t wrote = ::send(connection.get(), reply_.data() + sent, reply_.size() - sent, MSG_NOSIGNAL);
      if (wrote <= 0) return;  // the client hung up (a refused oversized body)
      sent += static_cast<size_t>(wrote);
    }
  }

  std::string reply_;
  UniqueFd listener_;
  bool bound_ = false;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::string request_;
  std::thread thread_;
};

// Answers every request "ok" and keeps each connection open; counts the connections.
class KeepAliveServer {
 public:
  KeepAliveServer() {
    listener_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    bound_ = listener_.valid() && ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
             ::listen(listener_.get(), 8) == 0 &&
             ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0;
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~KeepAliveServer() {
    stop_ = true;
    thread_.join();
  }
  bool bound() const { return bound_; }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
  int connections() const { return connections_; }

 private:
  void Serve() {
    std::vector<UniqueFd> open;
    std::vector<std::string> pending;
    while (!stop_) {
      std::vector<pollfd> fds = {{listener_.get(), POLLIN, 0}};
      for (const UniqueFd& fd : open) fds.push_back({fd.get(), POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        UniqueFd accepted(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (accepted.valid()) {
          ++connections_;
          open.push_back(std::move(accepted));
          pending.emplace_back();
        }
      }
      for (size_t i = 0; i + 1 < fds.size(); ++i) {
        if (!(fds[i + 1].revents & POLLIN)) continue;
        char buffer[4096];
        ssize_t got = ::read(open[i].get(), buffer, sizeof(buffer));
        if (got <= 0) continue;
        pending[i].append(buffer, static_cast<size_t>(got));
        // GETs only: a request ends with its headers.
        for (size_t end; (end = pending[i].find("\r\n\r\n")) != std::string::npos;) {
          pending[i].erase(0, end + 4);
          const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
          if (::send(open[i].get(), reply.data(), reply.size(), MSG_NOSIGNAL) < 0) break;
        }
      }
    }
  }

  UniqueFd listener_;
  bool bound_ = false;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

std::string Reply(const std::string& status_line, const std::string& body) {
  return "HTTP/1.1 " + status_line + "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

TEST(HttpClientTest, PostSendsTheJsonBodyAndReturnsTheAnswer) {
  ScriptedServer server(Reply("200 OK", R"({"ok":true})"));
  ASSERT_TRUE(server.bound());
  Result<std::string> body = HttpPost(server.Url("/v3/kv/range"), R"({"key":"AA=="})", Deadline::AfterMillis(2000));
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, R"({"ok":true})");
  std::string request = server.request();
  EXPECT_EQ(request.rfind("POST /v3/kv/range HTTP/1.1\r\n", 0), 0u) << request;
  EXPECT_NE(request.find("Content-Type: application/json\r\n"), std::string::npos) << request;
  EXPECT_NE(request.find("\r\n\r\n{\"key\":\"AA==\"}"), std::string::npos) << request;
}

TEST(HttpClientTest, ChunkedBodiesAreDecoded) {
  ScriptedServer server("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                        "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  ASSERT_TRUE(server.bound());
  Result<std::string> body = HttpGet(server.Url("/metrics"), Deadline::AfterMillis(2000));
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, "abcde");
}

TEST(HttpClientTest, ASilentServerCostsTheDeadlineAndNoMore) {
  ScriptedServer server("");
  ASSERT_TRUE(server.bound());
  auto start = std::chrono::steady_clock::now();
  Result<std::string> body = HttpPost(server.Url("/v3/kv/txn"), "{}", Deadline::AfterMillis(300));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.status().code(), Status::Code::kDeadlineExceeded) << body.status();
  EXPECT_NE(body.status().message().find("POST " + server.Url("/v3/kv/txn")), std::string::npos) << body.status();
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 1500ms) << "the deadline did not bound the request";
}

TEST(HttpClientTest, AnExpiredDeadlineSendsNothing) {
  Result<std::string> body = HttpGet("http://127.0.0.1:9/x", Deadline::Now());
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.status().code(), Status::Code::kDeadlineExceeded);
}

TEST(HttpClientTest, AnOversizedBodyIsRefusedWithOrWithoutALength) {
  HttpOptions options;
  options.max_body_bytes = 1000;
  // Negative control: exactly the limit is accepted.
  ScriptedServer fits(Reply("200 OK", std::string(1000, 'x')));
  ASSERT_TRUE(fits.bound());
  Result<std::string> accepted = HttpGet(fits.Url("/"), Deadline::AfterMillis(2000), options);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_EQ(accepted->size(), 1000u);

  ScriptedServer announced(Reply("200 OK", std::string(1001, 'x')));
  ScriptedServer streamed("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + std::string(1 << 20, 'y'));
  for (ScriptedServer* server : {&announced, &streamed}) {
    ASSERT_TRUE(server->bound());
    Result<std::string> body = HttpGet(server->Url("/big"), Deadline::AfterMillis(2000), options);
    ASSERT_FALSE(body.ok());
    EXPECT_EQ(body.status().code(), Status::Code::kCorruption) << body.status();
    EXPECT_NE(body.status().message().find("over 1000 bytes"), std::string::npos) << body.status();
    EXPECT_NE(body.status().message().find(server->Url("/big")), std::string::npos) << body.status();
  }
}

TEST(HttpClientTest, NonSuccessStatusesAreErrorsWithStatusAndBody) {
  ScriptedServer server(Reply("503 Service Unavailable", "etcdserver: leader changed"));
  ASSERT_TRUE(server.bound());
  Result<std::string> body = HttpPost(server.Url("/v3/kv/txn"), "{}", Deadline::AfterMillis(2000));
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.status().code(), Status::Code::kBroken);
  EXPECT_NE(body.status().message().find("HTTP 503: etcdserver: leader changed"), std::string::npos) << body.status();
  EXPECT_NE(body.status().message().find(server.Url("/v3/kv/txn")), std::string::npos) << body.status();
}

TEST(HttpClientTest, NobodyListeningIsBrokenNamingTheUrl) {
  std::string url;
  {
    ScriptedServer closed("x");
    ASSERT_TRUE(closed.bound());
    url = closed.Url("/gone");
  }  // its listening socket is closed now: connections to `url` are refused
  Result<std::string> body = HttpGet(url, Deadline::AfterMillis(2000));
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.status().code(), Status::Code::kBroken) << body.status();
  EXPECT_NE(body.status().message().find("GET " + url), std::string::npos) << body.status();
}

TEST(HttpClientTest, BadRequestsAreRefusedBeforeConnecting) {
  struct Case {
    std::string url;
    HttpOptions options;
    const char* mentions;
  };
  const Case cases[] = {
      {"ftp://127.0.0.1:21/x", {}, "not an http:// or https:// URL"},
      {"127.0.0.1:2379", {}, "not an http:// or https:// URL"},
      {"https://127.0.0.1:2379/v3/kv/range", {}, "https needs a CA file"},
      {"https://127.0.0.1:2379/", {.ca_file = "/ca.pem", .cert_file = "/c.pem", .key_file = "", .max_body_bytes = 4096}, "needs its key"},
  };
  for (const Case& c : cases) {
    Result<std::string> body = HttpGet(c.url, Deadline::AfterMillis(1000), c.options);
    ASSERT_FALSE(body.ok()) << c.url;
    EXPECT_EQ(body.status().code(), Status::Code::kInvalidArgument) << c.url;
    EXPECT_NE(body.status().message().find(c.mentions), std::string::npos) << body.status();
  }
}

TEST(HttpClientTest, AClientKeepsItsConnectionAcrossRequests) {
  KeepAliveServer server;
  ASSERT_TRUE(server.bound());
  HttpClient client(HttpOptions{});
  for (int i = 0; i < 3; ++i) {
    Result<std::string> body = client.Get(server.Url(), Deadline::AfterMillis(2000));
    ASSERT_TRUE(body.ok()) << body.status();
    EXPECT_EQ(*body, "ok");
  }
  EXPECT_EQ(server.connections(), 1);
  // Negative control: the one-off function opens a connection per request.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(HttpGet(server.Url(), Deadline::AfterMillis(2000)).ok());
  EXPECT_EQ(server.connections(), 4);
}

TEST(HttpClientTest, AClientReconnectsWhenTheServerClosedItsConnection) {
  HttpClient client(HttpOptions{});
  for (int round = 0; round < 2; ++round) {
    ScriptedServer server(Reply("200 OK", "round " + std::to_string(round)));  // closes after answering
    ASSERT_TRUE(server.bound());
    Result<std::string> body = client.Post(server.Url("/v3/kv/range"), "{}", Deadline::AfterMillis(2000));
    ASSERT_TRUE(body.ok()) << "round " << round << ": " << body.status();
    EXPECT_EQ(*body, "round " + std::to_string(round));
  }
}

}  // namespace
}  // namespace understudy
