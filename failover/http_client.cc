#include "failover/http_client.h"

#include <array>
#include <charconv>

#include "common/fd_io.h"
#include "transport/tcp_channel.h"

namespace understudy::failover {

namespace {

// Every size here comes from the other end: parsed without exceptions, compared without
// overflow.
Result<std::string> DecodeChunked(std::string_view body) {
  std::string out;
  size_t at = 0;
  for (;;) {
    size_t line_end = body.find("\r\n", at);
    if (line_end == std::string::npos) return Status::Corruption("truncated chunked HTTP body");
    std::string_view line = body.substr(at, line_end - at);
    line = line.substr(0, line.find(';'));  // chunk extensions are ignored
    uint64_t size = 0;
    auto [stopped, error] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
    if (line.empty() || error != std::errc() || stopped != line.data() + line.size()) {
      return Status::Corruption("bad HTTP chunk size");
    }
    at = line_end + 2;
    if (size == 0) return out;
    if (size > body.size() - at) return Status::Corruption("truncated HTTP chunk");
    out.append(body.substr(at, size));
    at += size;
    if (body.size() - at < 2) return Status::Corruption("truncated HTTP chunk");
    at += 2;
  }
}

Result<HttpResponse> Exchange(const std::string& method, const std::string& host, uint16_t port, const std::string& path,
                              const std::string& body, Deadline deadline) {
  std::string where = "http://" + host + ":" + std::to_string(port) + path;
  Result<UniqueFd> socket = transport::ConnectRawTcp(host, port, deadline);
  if (!socket.ok()) return socket.status().WithContext(where);
  std::string request = method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" +
                        (method == "POST" ? "Content-Type: application/json\r\n" : "") +
                        "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  UNDERSTUDY_RETURN_IF_ERROR(WriteAll(socket->get(), request, deadline).WithContext(where));
  std::string response;
  for (;;) {
    std::array<std::byte, 16384> buffer;
    Result<size_t> count = ReadSome(socket->get(), buffer, deadline);
    if (!count.ok()) {
      if (count.status().code() == Status::Code::kPeerClosed) break;
      return count.status().WithContext(where);
    }
    response.append(reinterpret_cast<const char*>(buffer.data()), *count);
    if (response.size() > (16u << 20)) return Status::Corruption(where + ": response over 16 MiB");
  }
  Result<HttpResponse> parsed = ParseHttpResponse(response);
  if (!parsed.ok()) return parsed.status().WithContext(where);
  return parsed;
}

}  // namespace

Result<HttpResponse> ParseHttpResponse(std::string_view response) {
  size_t header_end = response.find("\r\n\r\n");
  if (response.substr(0, 9) != "HTTP/1.1 " || header_end == std::string::npos || header_end < 12) {
    return Status::Corruption("not an HTTP response");
  }
  HttpResponse result;
  std::string_view code = response.substr(9, 3);
  auto [stopped, error] = std::from_chars(code.data(), code.data() + code.size(), result.status);
  if (error != std::errc() || stopped != code.data() + code.size() || result.status < 100) {
    return Status::Corruption("not an HTTP response: bad status code");
  }
  std::string headers(response.substr(0, header_end));
  result.body = response.substr(header_end + 4);
  for (char& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (headers.find("transfer-encoding: chunked") != std::string::npos) {
    UNDERSTUDY_ASSIGN_OR_RETURN(result.body, DecodeChunked(result.body));
  }
  return result;
}

Result<HttpResponse> HttpPost(const std::string& host, uint16_t port, const std::string& path, const std::string& body,
                              Deadline deadline) {
  return Exchange("POST", host, port, path, body, deadline);
}

Result<HttpResponse> HttpGet(const std::string& host, uint16_t port, const std::string& path, Deadline deadline) {
  return Exchange("GET", host, port, path, "", deadline);
}

}  // namespace understudy::failover
