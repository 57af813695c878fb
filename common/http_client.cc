#include "common/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <memory>

namespace understudy {

namespace {

// curl_global_init is not thread-safe in every libcurl; a function-local static is.
bool GlobalInitOnce() {
  static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  return ok;
}

struct CurlDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

struct BodySink {
  std::string body;
  size_t limit = 0;
  bool overflowed = false;
};

// libcurl's write callback: appends, or stops the transfer (by consuming less than offered)
// once the body would exceed the limit.
size_t AppendBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  size_t bytes = size * count;
  if (bytes > sink->limit - sink->body.size()) {
    sink->overflowed = true;
    return 0;
  }
  sink->body.append(data, bytes);
  return bytes;
}

bool StartsWith(const std::string& text, std::string_view prefix) { return text.compare(0, prefix.size(), prefix) == 0; }

Status CheckRequest(const std::string& url, const HttpOptions& options) {
  if (!StartsWith(url, "http://") && !StartsWith(url, "https://")) {
    return Status::InvalidArgument("'" + url + "' is not an http:// or https:// URL");
  }
  if (StartsWith(url, "https://") && options.ca_file.empty()) {
    return Status::InvalidArgument(url + ": https needs a CA file to verify the server against");
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return Status::InvalidArgument(url + ": a client certificate needs its key, and a key its certificate");
  }
  return Status::Ok();
}

// The error for a failed transfer, named after what the caller can act on.
Status TransferError(CURLcode code, const char* detail, const BodySink& sink, const std::string& where) {
  std::string why = where + ": " + (detail[0] != '\0' ? std::string(detail) : std::string(curl_easy_strerror(code)));
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return Status::DeadlineExceeded(why + " (the request may or may not have been applied)");
    case CURLE_WRITE_ERROR:
      if (sink.overflowed) return Status::Corruption(where + ": response body over " + std::to_string(sink.limit) + " bytes");
      return Status::Broken(why);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
      return Status::InvalidArgument(why);
    case CURLE_PEER_FAILED_VERIFICATION:
      return Status::Broken(why + " (the server's certificate is not trusted)");
    default:
      return Status::Broken(why);
  }
}

// Everything but the method: limits, TLS, no proxy, no redirects, no signals.
void ConfigureHandle(CURL* curl, const std::string& url, const HttpOptions& options, long timeout_ms, BodySink* sink,
                     char* error_buffer) {
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_PROXY, "");  // never a proxy from http_proxy & co.
  // Signals would reach the other threads of the agent; timeouts work without them.
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_body_bytes));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, sink);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  if (StartsWith(url, "https://")) {
    curl_easy_setopt(curl, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    curl_easy_setopt(curl, CURLOPT_CAINFO, options.ca_file.c_str());
    curl_easy_setopt(curl, CURLOPT_CAPATH, nullptr);  // our CA only, not the system's
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!options.cert_file.empty()) {
      curl_easy_setopt(curl, CURLOPT_SSLCERT, options.cert_file.c_str());
      curl_easy_setopt(curl, CURLOPT_SSLKEY, options.key_file.c_str());
    }
  }
}

Result<std::string> Perform(const char* method, const std::string& url, const std::string* post_body, Deadline deadline,
                            const HttpOptions& options) {
  const std::string where = std::string(method) + " " + url;
  UNDERSTUDY_RETURN_IF_ERROR(CheckRequest(url, options));
  if (!GlobalInitOnce()) return Status::Internal(where + ": libcurl failed to initialise");
  auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline.Remaining()).count();
  if (remaining <= 0) return Status::DeadlineExceeded(where + ": no time left to send it");
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return Status::Internal(where + ": libcurl could not create a handle");
  BodySink sink;
  sink.limit = options.max_body_bytes;
  char error_buffer[CURL_ERROR_SIZE] = "";
  ConfigureHandle(curl.get(), url, options, static_cast<long>(remaining), &sink, error_buffer);
  std::unique_ptr<curl_slist, CurlDeleter> headers;
  if (post_body != nullptr) {
    headers.reset(curl_slist_append(nullptr, "Content-Type: application/json"));
    if (!headers) return Status::Internal(where + ": out of memory");
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, post_body->data());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(post_body->size()));
  }
  CURLcode code = curl_easy_perform(curl.get());
  if (code == CURLE_FILESIZE_EXCEEDED) {
    return Status::Corruption(where + ": response body over " + std::to_string(sink.limit) + " bytes");
  }
  if (code != CURLE_OK) return TransferError(code, error_buffer, sink, where);
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299) {
    return Status::Broken(where + ": HTTP " + std::to_string(status) + ": " + sink.body.substr(0, 200));
  }
  return std::move(sink.body);
}

}  // namespace

Result<std::string> HttpGet(const std::string& url, Deadline deadline, const HttpOptions& options) {
  return Perform("GET", url, nullptr, deadline, options);
}

Result<std::string> HttpPost(const std::string& url, std::string_view body, Deadline deadline,
                             const HttpOptions& options) {
  const std::string copy(body);  // libcurl reads POSTFIELDS during perform; keep it alive
  return Perform("POST", url, &copy, deadline, options);
}

}  // namespace understudy
