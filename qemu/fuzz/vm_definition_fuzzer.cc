// libFuzzer target for the VM definition (qemu/vm_definition.h) as a secondary reads it from
// its primary's first checkpoint (FromPeerJson, issue 16) and as a host reads its own config
// (FromJson). The first input byte picks the parser (odd: the peer's, even: the host's); the
// rest is the JSON text. Errors are fine; an escaping exception (nlohmann's type_error
// terminated the agent), a crash, or an accepted definition whose command line could carry an
// injected QEMU option are not. (The hello and the lineage record that the same peer sends
// are fuzzed beside their code: replication/fuzz:agent_protocol, disk/fuzz:lineage_record.)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_fields.h"
#include "qemu/vm_definition.h"
#include "tools/fuzz/fuzz_promise.h"

namespace {

using namespace understudy;

using fuzz::Require;

// What an accepted definition may put on QEMU's command line.
void CheckAccepted(const qemu::VmDefinition& definition) {
  Require(definition.Validate().ok(), "an accepted definition validates");
  std::vector<std::string> args = definition.QemuArguments();
  for (size_t i = 0; i < args.size(); ++i) {
    for (char c : args[i]) Require(c >= 0x20 && c != 0x7f, "no control characters reach QEMU");
    if (args[i] == "-device" && i + 1 < args.size() && args[i + 1].rfind(definition.nic.model + ",netdev=", 0) == 0) {
      size_t commas = 0;
      for (char c : args[i + 1]) commas += c == ',';
      // netdev=, romfile= (always empty: no option ROM) and mac= when set.
      Require(commas == (definition.nic.mac.empty() ? 2u : 3u), "the NIC's -device has only our options");
      Require(args[i + 1].find(",romfile=") != std::string::npos && args[i + 1].find("romfile=/") == std::string::npos,
              "the NIC loads no option ROM");
    }
  }
  for (const char* flag : {"-chardev", "-netdev", "-blockdev", "-kernel", "-append"}) {
    size_t count = 0;
    for (const std::string& arg : args) count += arg == flag;
    Require(count <= 1, "each option appears at most once");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool from_peer = data[0] % 2 == 1;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    Result<nlohmann::json> json = ParseJson(text, "fuzz");
    if (!json.ok()) return 0;
    qemu::DefinitionPolicy policy;
    policy.image_dir = "/var/lib/understudy/images";
    policy.max_memory_mib = 4096;
    Result<qemu::VmDefinition> definition =
        from_peer ? qemu::VmDefinition::FromPeerJson(*json, policy) : qemu::VmDefinition::FromJson(*json);
    if (!definition.ok()) return 0;
    CheckAccepted(*definition);
    if (from_peer) {
      Require(definition->kernel.empty() || definition->kernel.rfind(policy.image_dir + "/", 0) == 0,
              "a peer's kernel stays inside image_dir");
      Require(definition->kernel.empty() ||
                  (definition->kernel.find('/', policy.image_dir.size() + 1) == std::string::npos &&
                   definition->kernel.substr(policy.image_dir.size() + 1) != ".."),
              "a peer's kernel is a file directly inside image_dir");
      Require(definition->memory_mib <= policy.max_memory_mib, "memory within the policy");
      // What a primary ships must be what a secondary accepts.
      Require(qemu::VmDefinition::FromPeerJson(definition->ToPeerJson(), policy).ok(), "the peer form round-trips");
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "exception escaped a parser: %s\n", error.what());
    std::abort();
  }
  return 0;
}
