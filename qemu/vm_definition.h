// VmDefinition: everything needed to start the same virtual machine twice.
//
// The primary starts its QEMU from a VmDefinition and ships the same definition to the
// secondary at pairing, so the standby is built from identical machine, memory and devices
// and the two can never drift apart (DESIGN.md, "Send the VM definition through the
// channel"). Host-local details — where the serial and NIC sockets live — are separate
// fields that each agent sets for its own host.
//
// The definition is a declaration, not a command line: every field is typed and checked
// (allowlists for machine types, accelerators and NIC models, MAC syntax, a memory maximum,
// a strict character set for every string), and there is no way to add free-form QEMU
// arguments through it. Arguments only one host needs come from that host's own
// configuration (LaunchOptions::extra_args, the primary's "qemu_extra_args").
//
// Two JSON forms:
//   * ToJson / FromJson: a host's own configuration (the primary's "vm"), host-local paths
//     included;
//   * ToPeerJson / FromPeerJson: what travels to the peer. No host-local paths; the kernel by
//     its file name only, which the receiving host resolves inside a directory its own
//     configuration names (DefinitionPolicy::image_dir).
// Both refuse a definition that fails validation with kInvalidArgument naming the field, and
// refuse unknown fields (an "extra_args" included).
//
// A plain value type.
#ifndef UNDERSTUDY_QEMU_VM_DEFINITION_H_
#define UNDERSTUDY_QEMU_VM_DEFINITION_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace understudy::qemu {

// Where the guest's COM1 goes.
struct SerialBackend {
  enum class Kind {
    kNone,              // no serial port
    kFile,              // appended to `path`
    kUnixSocketServer,  // QEMU listens on `path`; an agent or harness connects
  };
  Kind kind = Kind::kNone;
  std::string path;  // host-local
};

// The guest's network card and the backend behind it.
struct NicBackend {
  enum class Kind {
    kNone,              // no NIC at all (also drops QEMU's default e1000)
    kStreamUnixServer,  // `-netdev stream`, QEMU listens on `path`; an agent connects
  };
  Kind kind = Kind::kNone;
  std::string model = "e1000";
  std::string mac;   // empty: QEMU picks one (then primary and standby may differ: set it)
  std::string path;  // host-local
};

// The guest's disk: an IDE disk whose blocks an agent serves over NBD on a UNIX socket
// (disk/disk_server.h), so the agent sees every write.
struct DiskBackend {
  uint64_t size_bytes = 0;  // 0: no disk
  std::string nbd_socket;   // host-local
  // Replication (disk/lineage_record.h): the pairing's lineage, and the lineage the initial
  // copy is relative to (empty: a full copy). Not QEMU's business.
  std::string lineage;
  std::string base_lineage;
};

// What a host accepts in a definition; from its own configuration, never from the peer.
struct DefinitionPolicy {
  static constexpr uint32_t kDefaultMaxMemoryMib = 65536;
  uint32_t max_memory_mib = kDefaultMaxMemoryMib;
  // Where kernel images a peer's definition names (by file name) are found. Empty: a peer's
  // definition that names a kernel is refused.
  std::string image_dir;
};

struct VmDefinition {
  std::string name = "vm";
  std::string machine = "pc";
  uint32_t memory_mib = 64;
  // "kvm", or "tcg" only with the TCG test vehicle (qemu/tcg/build.sh): stock QEMU 7.2's COLO
  // primary deadlocks under tcg (qemu/tcg/colo-lock-fix.patch). Production uses kvm.
  std::string accelerator = "kvm";
  std::string kernel;               // host-local path of a multiboot or Linux kernel for -kernel; empty: boot from disk
  std::string initrd;               // host-local path for -initrd; REQUIRES kernel (Validate refuses it alone)
  std::string append;               // kernel command line
  SerialBackend serial;
  NicBackend nic;
  DiskBackend disk;

  // OK when every field is valid (see the file comment) and memory_mib <= max_memory_mib;
  // else kInvalidArgument naming the first bad field, e.g. "nic.model: 'e1000,x' is not one
  // of ...".
  Status Validate(uint32_t max_memory_mib = DefinitionPolicy::kDefaultMaxMemoryMib) const;

  // The QEMU command-line arguments for this machine (without the binary, QMP or -S).
  // REQUIRES: Validate().ok() (QemuProcess::Launch checks it): only then is every value safe
  // inside QEMU's comma-separated option syntax.
  std::vector<std::string> QemuArguments() const;

  // A host's own configuration. Validated; the kernel may be any (valid) path.
  nlohmann::json ToJson() const;
  static Result<VmDefinition> FromJson(const nlohmann::json& json);

  // What is shipped to the peer: the machine without this host's paths, the kernel by its
  // file name.
  nlohmann::json ToPeerJson() const;
  // A definition from the peer. Host-local paths in it are refused; the kernel (a plain file
  // name) becomes `policy.image_dir`/name; memory must be within `policy.max_memory_mib`.
  // The caller sets the host-local paths it needs (serial, NIC socket, NBD socket).
  static Result<VmDefinition> FromPeerJson(const nlohmann::json& json, const DefinitionPolicy& policy);
};

}  // namespace understudy::qemu

#endif  // UNDERSTUDY_QEMU_VM_DEFINITION_H_
