#include "qemu/vm_definition.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <initializer_list>

#include "common/json_fields.h"

namespace understudy::qemu {

using nlohmann::json;

namespace {

std::string_view SerialKindName(SerialBackend::Kind kind) {
  switch (kind) {
    case SerialBackend::Kind::kNone: return "none";
    case SerialBackend::Kind::kFile: return "file";
    case SerialBackend::Kind::kUnixSocketServer: return "unix-socket-server";
  }
  return "none";
}

std::string_view NicKindName(NicBackend::Kind kind) {
  switch (kind) {
    case NicBackend::Kind::kNone: return "none";
    case NicBackend::Kind::kStreamUnixServer: return "stream-unix-server";
  }
  return "none";
}

// Strings that end up inside QEMU's comma-separated option syntax (-device e1000,mac=...,
// -chardev ...,path=...) must not contain ',' (QEMU's separator; ",," escapes it) or '=', and
// nothing may contain control characters. Each kind of value has the narrowest character set
// that serves it.
bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; }
bool IsPathChar(char c) { return IsWordChar(c) || c == '/' || c == '+'; }

constexpr size_t kMaxNameBytes = 64;
constexpr size_t kMaxPathBytes = 1024;
constexpr size_t kMaxAppendBytes = 4096;
constexpr size_t kMaxLineageBytes = 128;
// A disk larger than this is refused: 16 TiB, far above anything this appliance protects.
constexpr uint64_t kMaxDiskBytes = uint64_t{1} << 44;

constexpr std::array<std::string_view, 4> kMachines = {"pc", "q35", "microvm", "isapc"};
// Versioned machine types: one of these prefixes, then MAJOR.MINOR ("pc-i440fx-7.2").
constexpr std::array<std::string_view, 2> kVersionedMachinePrefixes = {"pc-i440fx-", "pc-q35-"};
constexpr std::array<std::string_view, 2> kAccelerators = {"kvm", "tcg"};
constexpr std::array<std::string_view, 5> kNicModels = {"e1000", "e1000e", "rtl8139", "virtio-net-pci", "none"};

template <size_t N>
bool OneOf(const std::array<std::string_view, N>& allowed, std::string_view value) {
  return std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

template <size_t N>
std::string Listed(const std::array<std::string_view, N>& allowed) {
  std::string list;
  for (std::string_view item : allowed) list += (list.empty() ? "" : ", ") + std::string(item);
  return list;
}

// `value` shown safely in a message: at most 64 bytes, non-printables as '?'.
std::string Shown(std::string_view value) {
  std::string shown(value.substr(0, 64));
  for (char& c : shown) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return "'" + shown + (value.size() > 64 ? "...'" : "'");
}

Status Bad(std::string_view field, std::string_view value, std::string_view why) {
  return Status::InvalidArgument(std::string(field) + ": " + Shown(value) + " " + std::string(why));
}

bool IsVersionedMachine(std::string_view machine) {
  for (std::string_view prefix : kVersionedMachinePrefixes) {
    if (machine.substr(0, prefix.size()) != prefix) continue;
    std::string_view version = machine.substr(prefix.size());
    size_t dot = version.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == version.size() || version.size() > 8) return false;
    for (size_t i = 0; i < version.size(); ++i) {
      if (i != dot && !std::isdigit(static_cast<unsigned char>(version[i]))) return false;
    }
    return true;
  }
  return false;
}

Status CheckName(std::string_view field, std::string_view value) {
  if (value.empty() || value.size() > kMaxNameBytes) return Bad(field, value, "must be 1 to 64 characters");
  if (!std::isalnum(static_cast<unsigned char>(value[0]))) return Bad(field, value, "must begin with a letter or digit");
  for (char c : value) {
    if (!IsWordChar(c)) return Bad(field, value, "may only contain letters, digits, '-', '_' and '.'");
  }
  return Status::Ok();
}

// A host-local path (empty allowed): path characters only, no ".." component.
Status CheckPath(std::string_view field, std::string_view value) {
  if (value.size() > kMaxPathBytes) return Bad(field, value, "is too long");
  for (char c : value) {
    if (!IsPathChar(c)) return Bad(field, value, "may only contain letters, digits, '/', '-', '_', '+' and '.'");
  }
  std::string_view rest = value;
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    if (rest.substr(0, slash) == "..") return Bad(field, value, "must not contain '..'");
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return Status::Ok();
}

// REQUIRES: std::isxdigit(c).
int HexValue(char c) {
  if (std::isdigit(static_cast<unsigned char>(c))) return c - '0';
  return std::tolower(static_cast<unsigned char>(c)) - 'a' + 10;
}

bool IsMac(std::string_view mac) {
  if (mac.size() != 17) return false;
  for (size_t i = 0; i < mac.size(); ++i) {
    if (i % 3 == 2 ? mac[i] != ':' : !std::isxdigit(static_cast<unsigned char>(mac[i]))) return false;
  }
  return true;
}

Status CheckLineage(std::string_view field, std::string_view value) {
  if (value.size() > kMaxLineageBytes) return Bad(field, value, "is too long");
  for (char c : value) {
    if (!IsWordChar(c)) return Bad(field, value, "may only contain letters, digits, '-', '_' and '.'");
  }
  return Status::Ok();
}

// Refuses any field of `object` not in `known`: a misspelt or unexpected field (an
// "extra_args" from an older version or a hostile peer) is an error, not silently ignored.
Status CheckKnownFields(const json& object, std::string_view where, std::initializer_list<std::string_view> known) {
  if (!object.is_object()) return Status::InvalidArgument(std::string(where) + ": must be a JSON object");
  for (const auto& [key, value] : object.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string shown = Shown(key);  // the peer chose this name: printable and short in messages
    shown = shown.substr(1, shown.size() - 2);
    std::string field = where == "VM definition" ? shown : std::string(where) + "." + shown;
    if (key == "extra_args") {
      return Status::InvalidArgument(field +
                                     ": free-form QEMU arguments are not part of a VM definition (a host's own "
                                     "configuration adds them, e.g. the primary's \"qemu_extra_args\")");
    }
    return Status::InvalidArgument(field + ": unknown field");
  }
  return Status::Ok();
}

enum class Source { kLocal, kPeer };

Result<VmDefinition> Parse(const json& input, Source source) {
  const std::string_view top = "VM definition";
  UNDERSTUDY_RETURN_IF_ERROR(CheckKnownFields(
      input, top, {"name", "machine", "memory_mib", "accelerator", "kernel", "initrd", "append", "serial", "nic", "disk"}));
  VmDefinition definition;
  UNDERSTUDY_ASSIGN_OR_RETURN(definition.name, OptionalString(input, "name", definition.name, top));
  UNDERSTUDY_ASSIGN_OR_RETURN(definition.machine, OptionalString(input, "machine", definition.machine, top));
  UNDERSTUDY_ASSIGN_OR_RETURN(definition.memory_mib, OptionalUint32(input, "memory_mib", definition.memory_mib, top));
  UNDERSTUDY_ASSIGN_OR_RETURN(definition.accelerator, OptionalString(input, "accelerator", definition.accelerator, top));
  UNDERSTUDY_ASSIGN_OR_RETURN(definition.kernel, OptionalString(input, "kernel", "", top));
  UNDERSTUDY_ASSIGN_OR_RETURN(definition.initrd, OptionalString(input, "initrd", "", top));
  UNDERSTUDY_ASSIGN_OR_RETURN(definition.append, OptionalString(input, "append", "", top));
  const bool local = source == Source::kLocal;

  UNDERSTUDY_ASSIGN_OR_RETURN(const json* serial, OptionalObject(input, "serial", top));
  if (serial) {
    UNDERSTUDY_RETURN_IF_ERROR(CheckKnownFields(*serial, "serial", {"kind", "path"}));
    UNDERSTUDY_ASSIGN_OR_RETURN(std::string kind, OptionalString(*serial, "kind", "none", "serial"));
    if (kind == "none") {
      definition.serial.kind = SerialBackend::Kind::kNone;
    } else if (kind == "file") {
      definition.serial.kind = SerialBackend::Kind::kFile;
    } else if (kind == "unix-socket-server") {
      definition.serial.kind = SerialBackend::Kind::kUnixSocketServer;
    } else {
      return Status::InvalidArgument("serial.kind: unknown backend " + Shown(kind));
    }
    UNDERSTUDY_ASSIGN_OR_RETURN(definition.serial.path, OptionalString(*serial, "path", "", "serial"));
    if (!local && !definition.serial.path.empty()) return Bad("serial.path", definition.serial.path, "is host-local: not accepted from the peer");
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(const json* nic, OptionalObject(input, "nic", top));
  if (nic) {
    UNDERSTUDY_RETURN_IF_ERROR(CheckKnownFields(*nic, "nic", {"kind", "model", "mac", "path"}));
    UNDERSTUDY_ASSIGN_OR_RETURN(std::string kind, OptionalString(*nic, "kind", "none", "nic"));
    if (kind == "none") {
      definition.nic.kind = NicBackend::Kind::kNone;
    } else if (kind == "stream-unix-server") {
      definition.nic.kind = NicBackend::Kind::kStreamUnixServer;
    } else {
      return Status::InvalidArgument("nic.kind: unknown backend " + Shown(kind));
    }
    UNDERSTUDY_ASSIGN_OR_RETURN(definition.nic.model, OptionalString(*nic, "model", definition.nic.model, "nic"));
    UNDERSTUDY_ASSIGN_OR_RETURN(definition.nic.mac, OptionalString(*nic, "mac", "", "nic"));
    UNDERSTUDY_ASSIGN_OR_RETURN(definition.nic.path, OptionalString(*nic, "path", "", "nic"));
    if (!local && !definition.nic.path.empty()) return Bad("nic.path", definition.nic.path, "is host-local: not accepted from the peer");
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(const json* disk, OptionalObject(input, "disk", top));
  if (disk) {
    UNDERSTUDY_RETURN_IF_ERROR(CheckKnownFields(*disk, "disk", {"size_bytes", "nbd_socket", "lineage", "base_lineage"}));
    UNDERSTUDY_ASSIGN_OR_RETURN(definition.disk.size_bytes, OptionalUint64(*disk, "size_bytes", 0, "disk"));
    UNDERSTUDY_ASSIGN_OR_RETURN(definition.disk.nbd_socket, OptionalString(*disk, "nbd_socket", "", "disk"));
    UNDERSTUDY_ASSIGN_OR_RETURN(definition.disk.lineage, OptionalString(*disk, "lineage", "", "disk"));
    UNDERSTUDY_ASSIGN_OR_RETURN(definition.disk.base_lineage, OptionalString(*disk, "base_lineage", "", "disk"));
    if (!local && !definition.disk.nbd_socket.empty()) {
      return Bad("disk.nbd_socket", definition.disk.nbd_socket, "is host-local: not accepted from the peer");
    }
  }
  return definition;
}

}  // namespace

Status VmDefinition::Validate(uint32_t max_memory_mib) const {
  UNDERSTUDY_RETURN_IF_ERROR(CheckName("name", name));
  if (!OneOf(kMachines, machine) && !IsVersionedMachine(machine)) {
    return Bad("machine", machine, "is not one of " + Listed(kMachines) + ", pc-i440fx-X.Y, pc-q35-X.Y");
  }
  if (memory_mib == 0 || memory_mib > max_memory_mib) {
    return Status::InvalidArgument("memory_mib: " + std::to_string(memory_mib) + " is not within 1.." +
                                   std::to_string(max_memory_mib));
  }
  if (!OneOf(kAccelerators, accelerator)) return Bad("accelerator", accelerator, "is not one of " + Listed(kAccelerators));
  UNDERSTUDY_RETURN_IF_ERROR(CheckPath("kernel", kernel));
  UNDERSTUDY_RETURN_IF_ERROR(CheckPath("initrd", initrd));
  // QEMU would ignore an initrd without -kernel; a definition saying one is wrong, not harmless.
  if (!initrd.empty() && kernel.empty()) return Bad("initrd", initrd, "needs a kernel");
  // The kernel command line is the guest's, passed to QEMU as one argument of its own and
  // never parsed as QEMU options, so '=' and ',' (console=ttyS0,115200) are fine there; it is
  // still limited to printable ASCII.
  if (append.size() > kMaxAppendBytes) return Bad("append", append, "is too long");
  for (char c : append) {
    if (c < 0x20 || c > 0x7e) return Bad("append", append, "may only contain printable ASCII");
  }
  UNDERSTUDY_RETURN_IF_ERROR(CheckPath("serial.path", serial.path));
  if (!OneOf(kNicModels, nic.model)) return Bad("nic.model", nic.model, "is not one of " + Listed(kNicModels));
  if (nic.kind != NicBackend::Kind::kNone && nic.model == "none") {
    return Bad("nic.model", nic.model, "cannot back a NIC (nic.kind is not none)");
  }
  if (!nic.mac.empty() && !IsMac(nic.mac)) return Bad("nic.mac", nic.mac, "is not a MAC address (xx:xx:xx:xx:xx:xx)");
  // The first octet's lowest bit marks a group address: no NIC may have one.
  if (!nic.mac.empty() && HexValue(nic.mac[1]) % 2 != 0) {
    return Bad("nic.mac", nic.mac, "is a multicast address");
  }
  UNDERSTUDY_RETURN_IF_ERROR(CheckPath("nic.path", nic.path));
  if (disk.size_bytes % 512 != 0 || disk.size_bytes > kMaxDiskBytes) {
    return Status::InvalidArgument("disk.size_bytes: " + std::to_string(disk.size_bytes) +
                                   " is not a multiple of 512 up to 16 TiB");
  }
  UNDERSTUDY_RETURN_IF_ERROR(CheckPath("disk.nbd_socket", disk.nbd_socket));
  UNDERSTUDY_RETURN_IF_ERROR(CheckLineage("disk.lineage", disk.lineage));
  UNDERSTUDY_RETURN_IF_ERROR(CheckLineage("disk.base_lineage", disk.base_lineage));
  return Status::Ok();
}

std::vector<std::string> VmDefinition::QemuArguments() const {
  // -nodefaults: no implicit VGA, NIC, serial or monitor, so the device set (and therefore the
  // migration stream) is exactly what this definition says on both hosts.
  std::vector<std::string> args = {
      "-name", name, "-machine", machine, "-accel", accelerator, "-m", std::to_string(memory_mib),
      "-nodefaults", "-no-user-config", "-display", "none",
  };
  if (!kernel.empty()) {
    args.insert(args.end(), {"-kernel", kernel});
    if (!initrd.empty()) args.insert(args.end(), {"-initrd", initrd});
    if (!append.empty()) args.insert(args.end(), {"-append", append});
  }
  switch (serial.kind) {
    case SerialBackend::Kind::kNone:
      break;
    case SerialBackend::Kind::kFile:
      args.insert(args.end(), {"-chardev", "file,id=serial0,path=" + serial.path, "-serial", "chardev:serial0"});
      break;
    case SerialBackend::Kind::kUnixSocketServer:
      args.insert(args.end(), {"-chardev", "socket,id=serial0,path=" + serial.path + ",server=on,wait=off", "-serial",
                               "chardev:serial0"});
      break;
  }
  switch (nic.kind) {
    case NicBackend::Kind::kNone:
      break;
    case NicBackend::Kind::kStreamUnixServer: {
      args.insert(args.end(), {"-netdev", "stream,id=net0,server=on,addr.type=unix,addr.path=" + nic.path});
      std::string device = nic.model + ",netdev=net0";
      // Guests boot with -kernel and never from the network: a NIC's option ROM (iPXE) is
      // dead weight, and the TCG vehicle's firmware path has none (QEMU exits without it).
      device += ",romfile=";
      if (!nic.mac.empty()) device += ",mac=" + nic.mac;
      args.insert(args.end(), {"-device", device});
      break;
    }
  }
  if (disk.size_bytes > 0) {
    args.insert(args.end(), {"-blockdev", "driver=nbd,node-name=disk0,server.type=unix,server.path=" + disk.nbd_socket,
                             "-device", "ide-hd,drive=disk0,bus=ide.0"});
  }
  return args;
}

json VmDefinition::ToJson() const {
  return {
      {"name", name},
      {"machine", machine},
      {"memory_mib", memory_mib},
      {"accelerator", accelerator},
      {"kernel", kernel},
      {"initrd", initrd},
      {"append", append},
      {"serial", {{"kind", SerialKindName(serial.kind)}, {"path", serial.path}}},
      {"nic", {{"kind", NicKindName(nic.kind)}, {"model", nic.model}, {"mac", nic.mac}, {"path", nic.path}}},
      {"disk",
       {{"size_bytes", disk.size_bytes},
        {"nbd_socket", disk.nbd_socket},
        {"lineage", disk.lineage},
        {"base_lineage", disk.base_lineage}}},
  };
}

json VmDefinition::ToPeerJson() const {
  json peer = ToJson();
  peer["serial"].erase("path");
  peer["nic"].erase("path");
  peer["disk"].erase("nbd_socket");
  // The peer finds the kernel and initrd by their file names in its own image directory.
  for (const char* field : {"kernel", "initrd"}) {
    const std::string& path = peer[field].get_ref<const std::string&>();
    size_t slash = path.find_last_of('/');
    peer[field] = slash == std::string::npos ? path : path.substr(slash + 1);
  }
  return peer;
}

Result<VmDefinition> VmDefinition::FromJson(const json& input) {
  UNDERSTUDY_ASSIGN_OR_RETURN(VmDefinition definition, Parse(input, Source::kLocal));
  UNDERSTUDY_RETURN_IF_ERROR(definition.Validate());
  return definition;
}

Result<VmDefinition> VmDefinition::FromPeerJson(const json& input, const DefinitionPolicy& policy) {
  UNDERSTUDY_ASSIGN_OR_RETURN(VmDefinition definition, Parse(input, Source::kPeer));
  for (auto [field, file] : {std::pair<const char*, std::string*>{"kernel", &definition.kernel}, {"initrd", &definition.initrd}}) {
    if (file->empty()) continue;
    // A plain file name (no '/', so neither an absolute path nor '..' can leave the directory).
    UNDERSTUDY_RETURN_IF_ERROR(CheckName(field, *file));
    if (policy.image_dir.empty()) return Bad(field, *file, "is named by the peer but this host has no image_dir configured");
    *file = policy.image_dir + "/" + *file;
  }
  UNDERSTUDY_RETURN_IF_ERROR(definition.Validate(policy.max_memory_mib));
  return definition;
}

}  // namespace understudy::qemu
