// VmDefinition: everything needed to start the same virtual machine twice.
//
// The primary starts its QEMU from a VmDefinition and ships the same definition to the
// secondary at pairing, so the standby is built from identical machine, memory and devices
// and the two can never drift apart (DESIGN.md, "Send the VM definition through the
// channel"). Host-local details — where the serial and NIC sockets live — are separate
// fields that each agent sets for its own host.
//
// A plain value type; it round-trips through JSON (ToJson / FromJson).
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

struct VmDefinition {
  std::string name = "vm";
  std::string machine = "pc";
  uint32_t memory_mib = 64;
  // "kvm", or "tcg" only with the TCG test vehicle (qemu/tcg/build.sh): stock QEMU 7.2's COLO
  // primary deadlocks under tcg (qemu/tcg/colo-lock-fix.patch). Production uses kvm.
  std::string accelerator = "kvm";
  std::string kernel;               // path of a multiboot or Linux kernel for -kernel; empty: boot from disk
  std::string initrd;               // -initrd for a Linux kernel; REQUIRES kernel (FromJson refuses it alone)
  std::string append;               // kernel command line
  SerialBackend serial;
  NicBackend nic;
  DiskBackend disk;
  std::vector<std::string> extra_args;  // appended verbatim, after everything above

  // The QEMU command-line arguments for this machine (without the binary, QMP or -S).
  std::vector<std::string> QemuArguments() const;

  nlohmann::json ToJson() const;
  // kInvalidArgument naming the field when `json` is not a valid definition.
  static Result<VmDefinition> FromJson(const nlohmann::json& json);
};

}  // namespace understudy::qemu

#endif  // UNDERSTUDY_QEMU_VM_DEFINITION_H_
