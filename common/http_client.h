// HttpGet / HttpPost: one HTTP(S) request through libcurl, bounded in time and in size.
//
// For the few HTTP calls Understudy makes: the arbiter's JSON POSTs to etcd's v3 gateway
// (over https with a CA and a client certificate in clusters), Prometheus scrapes by ftctl
// and the test harness. Why libcurl rather than our own HTTP/1.1 code: TLS with certificate
// verification, chunked bodies and connection handling are easy to get subtly wrong and
// libcurl (Debian libcurl4-openssl-dev, OpenSSL like the rest of the project) has them right.
//
// Every request:
//   * ends by `deadline`, connect and TLS handshake included (kDeadlineExceeded: the request
//     may or may not have reached the server — for a write, its outcome is unknown);
//   * refuses a body larger than `max_body_bytes` (kCorruption), before buffering it all;
//   * goes straight to the URL: no proxy from the environment, no redirects, http/https only;
//   * over https verifies the server against `ca_file` only (not the system's CAs) and its
//     name against the URL's host, and presents `cert_file`/`key_file` when given.
// Non-2xx answers are errors (kBroken) carrying the status and the start of the body. Every
// error message names the method and URL. Never throws.
//
// HttpClient does the same over a kept-alive connection and TLS session: the arbiter's calls
// on the failover path then cost one round trip each, not a TCP and TLS handshake
// (~10-20 ms each on a loaded host).
//
// Thread safety: the functions may be called from any thread concurrently (one libcurl
// handle per call; libcurl's global state is set up once, thread-safely). HttpClient is
// thread-safe: one request at a time uses its connection, and a request that finds it busy
// goes on a fresh connection rather than wait (its deadline holds).
#ifndef UNDERSTUDY_COMMON_HTTP_CLIENT_H_
#define UNDERSTUDY_COMMON_HTTP_CLIENT_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "common/deadline.h"
#include "common/mutex.h"
#include "common/result.h"
#include "common/thread_annotations.h"

typedef void CURL;  // libcurl's easy handle, as <curl/curl.h> declares it

namespace understudy {

struct HttpOptions {
  // PEM file of the CA(s) that sign the server's certificate. Required for https:// URLs.
  std::string ca_file;
  // The client certificate and its key (PEM), for servers that require one (etcd's
  // --client-cert-auth). Both or neither.
  std::string cert_file;
  std::string key_file;
  // A larger response body is refused (kCorruption). etcd's replies to us are a few hundred
  // bytes; a Prometheus /metrics page a few hundred KiB.
  size_t max_body_bytes = 4u << 20;
};

// GETs `url` ("http://host:port/path?query", already URL-encoded). Returns the body of a 2xx.
Result<std::string> HttpGet(const std::string& url, Deadline deadline, const HttpOptions& options = {});

// POSTs `body` as application/json to `url`. Returns the body of a 2xx answer.
Result<std::string> HttpPost(const std::string& url, std::string_view body, Deadline deadline,
                             const HttpOptions& options = {});

// Requests with the same options over one kept-alive connection per server.
class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // As the functions above, with this client's options. A connection the server closed is
  // noticed and replaced before the request is sent.
  Result<std::string> Get(const std::string& url, Deadline deadline);
  Result<std::string> Post(const std::string& url, std::string_view body, Deadline deadline);

 private:
  Result<std::string> Request(const char* method, const std::string& url, const std::string* body, Deadline deadline);
  Result<std::string> RequestLocked(const char* method, const std::string& url, const std::string* body,
                                    Deadline deadline) REQUIRES(mu_);

  const HttpOptions options_;
  Mutex mu_;
  CURL* handle_ GUARDED_BY(mu_) = nullptr;  // keeps the connection and the TLS session
};

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_HTTP_CLIENT_H_
