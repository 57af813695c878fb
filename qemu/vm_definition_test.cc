#include "qemu/vm_definition.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>

namespace understudy::qemu {
namespace {

using nlohmann::json;

bool HasPair(const std::vector<std::string>& args, const std::string& flag, const std::string& value) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == flag && args[i + 1] == value) return true;
  }
  return false;
}

bool Exists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

std::string TestTmpdir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

VmDefinition Sample() {
  VmDefinition definition;
  definition.name = "web1";
  definition.memory_mib = 256;
  definition.kernel = "/guests/counter.elf";
  definition.append = "pages=8 every=10";
  definition.serial = {SerialBackend::Kind::kUnixSocketServer, "/run/u/serial.sock"};
  definition.nic.kind = NicBackend::Kind::kStreamUnixServer;
  definition.nic.mac = "52:54:00:12:34:56";
  definition.nic.path = "/run/u/net.sock";
  definition.disk = {4u << 20, "/run/u/disk.sock", "lineage-b", "lineage-a"};
  return definition;
}

DefinitionPolicy Policy() {
  DefinitionPolicy policy;
  policy.image_dir = "/var/lib/understudy/images";
  policy.max_memory_mib = 1024;
  return policy;
}

// The message of FromPeerJson's refusal of `peer` (ASSERTs that it is refused).
std::string PeerRefusal(const json& peer) {
  Result<VmDefinition> parsed = VmDefinition::FromPeerJson(peer, Policy());
  EXPECT_FALSE(parsed.ok()) << peer.dump();
  if (parsed.ok()) return "";
  EXPECT_EQ(parsed.status().code(), Status::Code::kInvalidArgument);
  return parsed.status().message();
}

bool StartsWith(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

TEST(VmDefinitionTest, CommandLineSaysExactlyWhatTheDefinitionSays) {
  ASSERT_TRUE(Sample().Validate().ok()) << Sample().Validate();
  std::vector<std::string> args = Sample().QemuArguments();
  EXPECT_TRUE(HasPair(args, "-m", "256"));
  EXPECT_TRUE(HasPair(args, "-accel", "kvm"));
  EXPECT_TRUE(HasPair(args, "-kernel", "/guests/counter.elf"));
  EXPECT_TRUE(HasPair(args, "-append", "pages=8 every=10"));
  EXPECT_TRUE(HasPair(args, "-chardev", "socket,id=serial0,path=/run/u/serial.sock,server=on,wait=off"));
  EXPECT_TRUE(HasPair(args, "-netdev", "stream,id=net0,server=on,addr.type=unix,addr.path=/run/u/net.sock"));
  EXPECT_TRUE(HasPair(args, "-device", "e1000,netdev=net0,romfile=,mac=52:54:00:12:34:56"));
  EXPECT_TRUE(HasPair(args, "-blockdev", "driver=nbd,node-name=disk0,server.type=unix,server.path=/run/u/disk.sock"));
  EXPECT_TRUE(HasPair(args, "-device", "ide-hd,drive=disk0,bus=ide.0"));
  EXPECT_NE(std::find(args.begin(), args.end(), "-nodefaults"), args.end());
}

TEST(VmDefinitionTest, ALinuxKernelTakesItsInitrd) {
  VmDefinition linux_guest = Sample();
  linux_guest.kernel = "/guests/vmlinuz";
  linux_guest.initrd = "/guests/initrd.img";
  std::vector<std::string> args = linux_guest.QemuArguments();
  EXPECT_TRUE(HasPair(args, "-initrd", "/guests/initrd.img"));
  EXPECT_TRUE(HasPair(args, "-kernel", "/guests/vmlinuz"));
  const std::vector<std::string> without = Sample().QemuArguments();
  EXPECT_EQ(std::find(without.begin(), without.end(), "-initrd"), without.end());

  Result<VmDefinition> copy = VmDefinition::FromJson(linux_guest.ToJson());
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(copy->initrd, "/guests/initrd.img");

  nlohmann::json initrd_alone = linux_guest.ToJson();
  initrd_alone["kernel"] = "";
  EXPECT_NE(VmDefinition::FromJson(initrd_alone).status().message().find("needs a kernel"), std::string::npos);
}

TEST(VmDefinitionTest, RoundTripsThroughJson) {
  VmDefinition original = Sample();
  Result<VmDefinition> copy = VmDefinition::FromJson(original.ToJson());
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(copy->QemuArguments(), original.QemuArguments());
  EXPECT_EQ(copy->ToJson(), original.ToJson());
}

TEST(VmDefinitionTest, ThePeerGetsNoHostLocalPathsAndItsKernelIsResolvedInTheImageDir) {
  json peer = Sample().ToPeerJson();
  EXPECT_EQ(peer["kernel"], "counter.elf");
  EXPECT_FALSE(peer["serial"].contains("path"));
  EXPECT_FALSE(peer["nic"].contains("path"));
  EXPECT_FALSE(peer["disk"].contains("nbd_socket"));
  Result<VmDefinition> received = VmDefinition::FromPeerJson(peer, Policy());
  ASSERT_TRUE(received.ok()) << received.status();
  EXPECT_EQ(received->kernel, "/var/lib/understudy/images/counter.elf");
  EXPECT_EQ(received->nic.mac, "52:54:00:12:34:56");
  EXPECT_EQ(received->disk.lineage, "lineage-b");
  EXPECT_TRUE(received->serial.path.empty());
  EXPECT_TRUE(received->nic.path.empty());
}

// The proof: a peer's definition asking for a chardev that writes a file on this host.
TEST(VmDefinitionTest, ExtraArgumentsFromThePeerAreRefusedAndNothingIsWritten) {
  const std::string target = TestTmpdir() + "/written-by-the-peer";
  json peer = Sample().ToPeerJson();
  peer["extra_args"] = {"-chardev", "file,id=pwn,path=" + target, "-serial", "chardev:pwn"};
  std::string why = PeerRefusal(peer);
  EXPECT_TRUE(StartsWith(why, "extra_args: free-form QEMU arguments")) << why;
  // The same from a host's own "vm" configuration: there is no such field any more.
  Result<VmDefinition> local = VmDefinition::FromJson(peer);
  EXPECT_FALSE(local.ok());
  EXPECT_FALSE(Exists(target));
}

TEST(VmDefinitionTest, ACommaInTheNicModelIsRefused) {
  json peer = Sample().ToPeerJson();
  peer["nic"]["model"] = "e1000,netdev=net0 -chardev file,id=x,path=/tmp/x";
  EXPECT_TRUE(StartsWith(PeerRefusal(peer), "nic.model: ")) << PeerRefusal(peer);
  peer["nic"]["model"] = "e1000,romfile=/etc/shadow";
  EXPECT_TRUE(StartsWith(PeerRefusal(peer), "nic.model: "));
  // And via the local path, Validate catches it before any command line is built.
  VmDefinition definition = Sample();
  definition.nic.model = "virtio-net-pci,x=y";
  EXPECT_TRUE(StartsWith(definition.Validate().message(), "nic.model: "));
  definition.nic.model = "virtio-net-pci";
  EXPECT_TRUE(definition.Validate().ok());
}

TEST(VmDefinitionTest, EveryFieldIsCheckedAndTheRefusalNamesIt) {
  struct Case {
    const char* pointer;  // JSON pointer of the field
    json value;
    const char* field;  // how the refusal begins
  };
  const Case cases[] = {
      {"/name", "web1\nx", "name: "},
      {"/name", "web1,x", "name: "},
      {"/name", "", "name: "},
      {"/name", "-web", "name: "},
      {"/machine", "pc,accel=tcg", "machine: "},
      {"/machine", "pc-i440fx-7.2,x", "machine: "},
      {"/machine", "none", "machine: "},
      {"/accelerator", "hvf", "accelerator: "},
      {"/accelerator", "kvm:tcg", "accelerator: "},
      {"/memory_mib", 0, "memory_mib: "},
      {"/memory_mib", 1025, "memory_mib: "},
      {"/memory_mib", "lots", "VM definition: \"memory_mib\""},
      {"/memory_mib", uint64_t{1} << 40, "VM definition: \"memory_mib\""},
      {"/kernel", "../../etc/passwd", "kernel: "},
      {"/kernel", "/etc/passwd", "kernel: "},
      {"/kernel", "..", "kernel: "},
      {"/kernel", "a/b.elf", "kernel: "},
      {"/append", "x\ny", "append: "},
      {"/nic/mac", "52:54:00:12:34", "nic.mac: "},
      {"/nic/mac", "52:54:00:12:34:5g", "nic.mac: "},
      {"/nic/mac", "52:54:00:12:34:56,x", "nic.mac: "},
      {"/nic/mac", "01:00:5e:00:00:01", "nic.mac: "},
      {"/nic/model", "none", "nic.model: "},
      {"/nic/kind", "tap", "nic.kind: "},
      {"/nic/path", "/tmp/elsewhere.sock", "nic.path: "},
      {"/serial/path", "/tmp/serial", "serial.path: "},
      {"/serial/kind", "telepathy", "serial.kind: "},
      {"/disk/nbd_socket", "/tmp/nbd", "disk.nbd_socket: "},
      {"/disk/size_bytes", 1000, "disk.size_bytes: "},
      {"/disk/size_bytes", uint64_t{1} << 50, "disk.size_bytes: "},
      {"/disk/lineage", "a,b", "disk.lineage: "},
      {"/disk/base_lineage", "a=b", "disk.base_lineage: "},
      {"/disk/extra", 1, "disk.extra: unknown field"},
      {"/smbios", "x", "smbios: unknown field"},
  };
  for (const Case& c : cases) {
    json peer = Sample().ToPeerJson();
    peer[json::json_pointer(c.pointer)] = c.value;
    std::string why = PeerRefusal(peer);
    EXPECT_TRUE(StartsWith(why, c.field)) << c.pointer << " = " << c.value.dump() << ": " << why;
  }
  EXPECT_FALSE(VmDefinition::FromPeerJson(json::array(), Policy()).ok());
  EXPECT_FALSE(VmDefinition::FromJson(json("vm")).ok());
}

TEST(VmDefinitionTest, AllowlistedValuesAreAccepted) {
  for (const char* machine : {"pc", "q35", "microvm", "pc-i440fx-7.2", "pc-q35-8.0"}) {
    json peer = Sample().ToPeerJson();
    peer["machine"] = machine;
    peer["accelerator"] = "tcg";
    EXPECT_TRUE(VmDefinition::FromPeerJson(peer, Policy()).ok()) << machine;
  }
  json peer = Sample().ToPeerJson();
  peer["nic"]["mac"] = "AE:54:00:12:34:56";  // locally administered, unicast, upper case
  EXPECT_TRUE(VmDefinition::FromPeerJson(peer, Policy()).ok());
  peer["append"] = "console=ttyS0,115200 root=/dev/sda1";
  EXPECT_TRUE(VmDefinition::FromPeerJson(peer, Policy()).ok());
}

TEST(VmDefinitionTest, APeerKernelNeedsThisHostsImageDir) {
  DefinitionPolicy policy = Policy();
  policy.image_dir.clear();
  Result<VmDefinition> parsed = VmDefinition::FromPeerJson(Sample().ToPeerJson(), policy);
  ASSERT_FALSE(parsed.ok());
  EXPECT_TRUE(StartsWith(parsed.status().message(), "kernel: ")) << parsed.status();
  json diskless = Sample().ToPeerJson();
  diskless["kernel"] = "";
  EXPECT_TRUE(VmDefinition::FromPeerJson(diskless, policy).ok());
}

}  // namespace
}  // namespace understudy::qemu
