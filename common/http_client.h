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
// Thread safety: the functions may be called from any thread concurrently (one libcurl
// handle per call; libcurl's global state is set up once, thread-safely).
#ifndef UNDERSTUDY_COMMON_HTTP_CLIENT_H_
#define UNDERSTUDY_COMMON_HTTP_CLIENT_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "common/deadline.h"
#include "common/result.h"

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

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_HTTP_CLIENT_H_
