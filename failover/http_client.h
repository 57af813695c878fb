// A minimal HTTP/1.1 client for JSON POSTs to etcd's v3 gateway and GETs of Prometheus
// endpoints, on a trusted network. One connection per request (loopback or LAN: a fraction of a millisecond), every
// step bounded by the deadline. Handles Content-Length and chunked responses.
#ifndef UNDERSTUDY_FAILOVER_HTTP_CLIENT_H_
#define UNDERSTUDY_FAILOVER_HTTP_CLIENT_H_

#include <string>
#include <string_view>

#include "common/deadline.h"
#include "common/result.h"

namespace understudy::failover {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// POSTs `body` (application/json) to http://host:port/path.
Result<HttpResponse> HttpPost(const std::string& host, uint16_t port, const std::string& path, const std::string& body,
                              Deadline deadline);

// A complete HTTP/1.1 response (status line, headers, body; chunked bodies decoded).
// kCorruption for anything malformed; never throws.
Result<HttpResponse> ParseHttpResponse(std::string_view response);

// GETs http://host:port/path (`path` already URL-encoded, query included).
Result<HttpResponse> HttpGet(const std::string& host, uint16_t port, const std::string& path, Deadline deadline);

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_HTTP_CLIENT_H_
