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

// One request on `curl`, whose options are reset first (its connections and TLS sessions stay).
Result<std::string> Perform(CURL* curl, const char* method, const std::string& url, const std::string* post_body,
                            Deadline deadline, const HttpOptions& options) {
  const std::string where = std::string(method) + " " + url;
  UNDERSTUDY_RETURN_IF_ERROR(CheckRequest(url, options));
  auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline.Remaining()).count();
  if (remaining <= 0) return Status::DeadlineExceeded(where + ": no time left to send it");
  curl_easy_reset(curl);
  BodySink sink;
  sink.limit = options.max_body_bytes;
  char error_buffer[CURL_ERROR_SIZE] = "";
  ConfigureHandle(curl, url, options, static_cast<long>(remaining), &sink, error_buffer);
  std::unique_ptr<curl_slist, CurlDeleter> headers;
  if (post_body != nullptr) {
    headers.reset(curl_slist_append(nullptr, "Content-Type: application/json"));
    if (!headers) return Status::Internal(where + ": out of memory");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post_body->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(post_body->size()));
  }
  CURLcode code = curl_easy_perform(curl);
  if (code == CURLE_FILESIZE_EXCEEDED) {
    return Status::Corruption(where + ": response body over " + std::to_string(sink.limit) + " bytes");
  }
  if (code != CURLE_OK) return TransferError(code, error_buffer, sink, where);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299) {
    return Status::Broken(where + ": HTTP " + std::to_string(status) + ": " + sink.body.substr(0, 200));
  }
  return std::move(sink.body);
}

// One request on a handle of its own.
Result<std::string> PerformOnce(const char* method, const std::string& url, const std::string* post_body,
                                Deadline deadline, const HttpOptions& options) {
  if (!GlobalInitOnce()) return Status::Internal(std::string(method) + " " + url + ": libcurl failed to initialise");
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return Status::Internal(std::string(method) + " " + url + ": libcurl could not create a handle");
  return Perform(curl.get(), method, url, post_body, deadline, options);
}

}  // namespace

Result<std::string> HttpGet(const std::string& url, Deadline deadline, const HttpOptions& options) {
  return PerformOnce("GET", url, nullptr, deadline, options);
}

Result<std::string> HttpPost(const std::string& url, std::string_view body, Deadline deadline,
                             const HttpOptions& options) {
  const std::string copy(body);  // libcurl reads POSTFIELDS during perform; keep it alive
  return PerformOnce("POST", url, &copy, deadline, options);
}

HttpClient::HttpClient(HttpOptions options) : options_(std::move(options)) {}

HttpClient::~HttpClient() {
  MutexLock lock(&mu_);
  if (handle_ != nullptr) curl_easy_cleanup(handle_);
}

Result<std::string> HttpClient::Get(const std::string& url, Deadline deadline) {
  return Request("GET", url, nullptr, deadline);
}

Result<std::string> HttpClient::Post(const std::string& url, std::string_view body, Deadline deadline) {
  const std::string copy(body);
  return Request("POST", url, &copy, deadline);
}

Result<std::string> HttpClient::Request(const char* method, const std::string& url, const std::string* body,
                                        Deadline deadline) {
  if (!mu_.TryLock()) return PerformOnce(method, url, body, deadline, options_);  // busy: never wait on another call
  Result<std::string> result = RequestLocked(method, url, body, deadline);
  mu_.Unlock();
  return result;
}

Result<std::string> HttpClient::RequestLocked(const char* method, const std::string& url, const std::string* body,
                                              Deadline deadline) {
  if (handle_ == nullptr) {
    if (!GlobalInitOnce()) return Status::Internal(std::string(method) + " " + url + ": libcurl failed to initialise");
    handle_ = curl_easy_init();
    if (handle_ == nullptr) return Status::Internal(std::string(method) + " " + url + ": libcurl could not create a handle");
  }
  return Perform(handle_, method, url, body, deadline, options_);
}

}  // namespace understudy
