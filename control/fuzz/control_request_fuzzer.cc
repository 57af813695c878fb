// libFuzzer target for the control API's requests (control/control_server.h): one request
// line through AnswerControlRequest — the server's whole parsing — to handlers that read their
// fields exactly as the secondary's test_hold_acks, test_corrupt_device_state and test_dump_ram
// do (common/json_fields.h; those live inside the agents, bound to them). Errors are fine; a
// crash, an exception (even one the server would have caught: "Internal: command ... failed"),
// or a reply that is not a JSON object the server can send are not. Only control/ and common/
// are built in: the primary's test checkpoint hold (primary/test_checkpoint_hold.h) is
// primary/'s own test scaffolding and is not fuzzed from here (control/ must not depend on
// the agents).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "common/json_fields.h"
#include "control/control_server.h"
#include "tools/fuzz/fuzz_promise.h"

namespace {

using namespace understudy;
using nlohmann::json;

using fuzz::Require;

std::map<std::string, control::Handler> Handlers() {
  return {
      {"status", [](const json&) -> Result<json> { return json{{"role", "secondary"}}; }},
      {"promote", [](const json&) -> Result<json> { return json{{"promotion", "requested"}}; }},
      {"test_hold_acks",
       [](const json& request) -> Result<json> {
         UNDERSTUDY_ASSIGN_OR_RETURN(bool hold, OptionalBool(request, "hold", true, "test_hold_acks"));
         return json{{"hold_acks", hold}};
       }},
      {"test_corrupt_device_state",
       [](const json& request) -> Result<json> {
         UNDERSTUDY_ASSIGN_OR_RETURN(bool corrupt, OptionalBool(request, "corrupt", true, "test_corrupt_device_state"));
         return json{{"corrupt_device_state", corrupt}};
       }},
      {"test_dump_ram", [](const json& request) -> Result<json> {
         UNDERSTUDY_ASSIGN_OR_RETURN(std::string path, RequireString(request, "path", "test_dump_ram"));
         UNDERSTUDY_ASSIGN_OR_RETURN(std::string block, OptionalString(request, "block", "pc.ram", "test_dump_ram"));
         if (path.empty()) return Status::InvalidArgument("test_dump_ram: \"path\" must be a file name");
         return json{{"path", path}, {"block", block}};
       }}};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > control::ControlServer::kMaxRequestBytes) return 0;  // the server refuses longer lines unread
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const std::map<std::string, control::Handler> handlers = Handlers();
  try {
    json reply = control::AnswerControlRequest(line, handlers);
    Require(reply.is_object(), "every reply is a JSON object");
    if (auto error = reply.find("error"); error != reply.end()) {
      Require(error->is_string(), "an error is a string");
      Require(error->get<std::string>().rfind("Internal: command", 0) != 0, "no handler throws");
    }
    // What the server writes back (bytes that are not UTF-8 replaced, never thrown on).
    std::string sent = reply.dump(-1, ' ', false, json::error_handler_t::replace);
    Require(!sent.empty() && sent.find('\n') == std::string::npos, "a reply is one line");
  } catch (const std::exception& error) {
    std::fprintf(stderr, "exception escaped: %s\n", error.what());
    std::abort();
  }
  return 0;
}
