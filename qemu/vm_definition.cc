#include "qemu/vm_definition.h"

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

}  // namespace

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
      if (!nic.mac.empty()) device += ",mac=" + nic.mac;
      args.insert(args.end(), {"-device", device});
      break;
    }
  }
  if (disk.size_bytes > 0) {
    args.insert(args.end(), {"-blockdev", "driver=nbd,node-name=disk0,server.type=unix,server.path=" + disk.nbd_socket,
                             "-device", "ide-hd,drive=disk0,bus=ide.0"});
  }
  args.insert(args.end(), extra_args.begin(), extra_args.end());
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
      {"extra_args", extra_args},
  };
}

Result<VmDefinition> VmDefinition::FromJson(const json& input) {
  if (!input.is_object()) return Status::InvalidArgument("VM definition must be a JSON object");
  VmDefinition definition;
  try {
    definition.name = input.value("name", definition.name);
    definition.machine = input.value("machine", definition.machine);
    definition.memory_mib = input.value("memory_mib", definition.memory_mib);
    definition.accelerator = input.value("accelerator", definition.accelerator);
    definition.kernel = input.value("kernel", definition.kernel);
    definition.initrd = input.value("initrd", definition.initrd);
    definition.append = input.value("append", definition.append);
    definition.extra_args = input.value("extra_args", definition.extra_args);
    if (input.contains("serial")) {
      const json& serial = input["serial"];
      std::string kind = serial.value("kind", "none");
      if (kind == "none") {
        definition.serial.kind = SerialBackend::Kind::kNone;
      } else if (kind == "file") {
        definition.serial.kind = SerialBackend::Kind::kFile;
      } else if (kind == "unix-socket-server") {
        definition.serial.kind = SerialBackend::Kind::kUnixSocketServer;
      } else {
        return Status::InvalidArgument("serial.kind: unknown backend '" + kind + "'");
      }
      definition.serial.path = serial.value("path", "");
    }
    if (input.contains("nic")) {
      const json& nic = input["nic"];
      std::string kind = nic.value("kind", "none");
      if (kind == "none") {
        definition.nic.kind = NicBackend::Kind::kNone;
      } else if (kind == "stream-unix-server") {
        definition.nic.kind = NicBackend::Kind::kStreamUnixServer;
      } else {
        return Status::InvalidArgument("nic.kind: unknown backend '" + kind + "'");
      }
      definition.nic.model = nic.value("model", definition.nic.model);
      definition.nic.mac = nic.value("mac", "");
      definition.nic.path = nic.value("path", "");
    }
    if (input.contains("disk")) {
      definition.disk.size_bytes = input["disk"].value("size_bytes", uint64_t{0});
      definition.disk.nbd_socket = input["disk"].value("nbd_socket", "");
      definition.disk.lineage = input["disk"].value("lineage", "");
      definition.disk.base_lineage = input["disk"].value("base_lineage", "");
    }
  } catch (const json::exception& error) {
    // nlohmann reports type mismatches by exception; this is the edge where they become values.
    return Status::InvalidArgument(std::string("VM definition: ") + error.what());
  }
  if (definition.memory_mib == 0) return Status::InvalidArgument("memory_mib must be positive");
  // QEMU would ignore an initrd without -kernel; a definition saying one is wrong, not harmless.
  if (!definition.initrd.empty() && definition.kernel.empty()) {
    return Status::InvalidArgument("initrd needs a kernel");
  }
  return definition;
}

}  // namespace understudy::qemu
