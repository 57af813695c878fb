#include "qemu/vm_definition.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace understudy::qemu {
namespace {

bool HasPair(const std::vector<std::string>& args, const std::string& flag, const std::string& value) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == flag && args[i + 1] == value) return true;
  }
  return false;
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
  definition.extra_args = {"-cpu", "qemu32"};
  return definition;
}

TEST(VmDefinitionTest, CommandLineSaysExactlyWhatTheDefinitionSays) {
  std::vector<std::string> args = Sample().QemuArguments();
  EXPECT_TRUE(HasPair(args, "-m", "256"));
  EXPECT_TRUE(HasPair(args, "-accel", "kvm"));
  EXPECT_TRUE(HasPair(args, "-kernel", "/guests/counter.elf"));
  EXPECT_TRUE(HasPair(args, "-append", "pages=8 every=10"));
  EXPECT_TRUE(HasPair(args, "-chardev", "socket,id=serial0,path=/run/u/serial.sock,server=on,wait=off"));
  EXPECT_TRUE(HasPair(args, "-netdev", "stream,id=net0,server=on,addr.type=unix,addr.path=/run/u/net.sock"));
  EXPECT_TRUE(HasPair(args, "-device", "e1000,netdev=net0,mac=52:54:00:12:34:56"));
  EXPECT_TRUE(HasPair(args, "-blockdev", "driver=nbd,node-name=disk0,server.type=unix,server.path=/run/u/disk.sock"));
  EXPECT_TRUE(HasPair(args, "-device", "ide-hd,drive=disk0,bus=ide.0"));
  EXPECT_NE(std::find(args.begin(), args.end(), "-nodefaults"), args.end());
  EXPECT_EQ(args.back(), "qemu32");
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
  EXPECT_EQ(VmDefinition::FromJson(initrd_alone).status().message(), "initrd needs a kernel");
}

TEST(VmDefinitionTest, RoundTripsThroughJson) {
  VmDefinition original = Sample();
  Result<VmDefinition> copy = VmDefinition::FromJson(original.ToJson());
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(copy->QemuArguments(), original.QemuArguments());
  EXPECT_EQ(copy->ToJson(), original.ToJson());
}

TEST(VmDefinitionTest, RejectsUnknownBackendsAndWrongTypesByName) {
  nlohmann::json bad_serial = Sample().ToJson();
  bad_serial["serial"]["kind"] = "telepathy";
  EXPECT_EQ(VmDefinition::FromJson(bad_serial).status().message(), "serial.kind: unknown backend 'telepathy'");

  nlohmann::json bad_memory = Sample().ToJson();
  bad_memory["memory_mib"] = "lots";
  Result<VmDefinition> parsed = VmDefinition::FromJson(bad_memory);
  EXPECT_EQ(parsed.status().code(), Status::Code::kInvalidArgument);

  EXPECT_FALSE(VmDefinition::FromJson(nlohmann::json::array()).ok());
}

}  // namespace
}  // namespace understudy::qemu
