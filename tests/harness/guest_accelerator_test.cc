// The accelerator switch: which accelerator and QEMU each situation gets, and where the TCG
// vehicle is looked for.
#include "tests/harness/guest_accelerator.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <regex>

#include "tests/harness/runfiles.h"

namespace understudy::testing {
namespace {

const std::optional<std::string> kKvmWorks = std::nullopt;
const std::optional<std::string> kNoKvm = std::string("cannot open /dev/kvm: No such file or directory");
const Result<std::string> kVehicle = std::string("/cache/qemu-tcg/key/qemu-system-x86_64");
const Result<std::string> kNoVehicle = Status::NotFound("the TCG vehicle is not built");

TEST(GuestAcceleratorTest, KvmWithStockQemuWhenDevKvmWorks) {
  Result<GuestAccelerator> chosen = ChooseAccelerator("", kKvmWorks, kVehicle);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(chosen->name, "kvm");
  EXPECT_EQ(chosen->qemu_binary, "qemu-system-x86_64");
}

TEST(GuestAcceleratorTest, TcgWithTheVehicleWhenKvmIsMissing) {
  Result<GuestAccelerator> chosen = ChooseAccelerator("", kNoKvm, kVehicle);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(chosen->name, "tcg");
  EXPECT_EQ(chosen->qemu_binary, *kVehicle);
  EXPECT_NE(chosen->why.find("/dev/kvm"), std::string::npos) << chosen->why;
}

TEST(GuestAcceleratorTest, NeitherIsAnErrorNamingBoth) {
  Result<GuestAccelerator> chosen = ChooseAccelerator("", kNoKvm, kNoVehicle);
  ASSERT_FALSE(chosen.ok());
  EXPECT_NE(chosen.status().message().find("/dev/kvm"), std::string::npos) << chosen.status();
  EXPECT_NE(chosen.status().message().find("TCG vehicle"), std::string::npos) << chosen.status();
}

TEST(GuestAcceleratorTest, OverrideForcesTcgOnAKvmMachine) {
  Result<GuestAccelerator> chosen = ChooseAccelerator("tcg", kKvmWorks, kVehicle);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(chosen->name, "tcg");
  EXPECT_EQ(chosen->qemu_binary, *kVehicle);
  // Stock QEMU would deadlock as a COLO primary under TCG: a forced TCG without the vehicle
  // is an error, never a fallback to stock QEMU.
  EXPECT_FALSE(ChooseAccelerator("tcg", kKvmWorks, kNoVehicle).ok());
}

TEST(GuestAcceleratorTest, OverrideForcesKvmOrFails) {
  Result<GuestAccelerator> chosen = ChooseAccelerator("kvm", kKvmWorks, kVehicle);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(chosen->name, "kvm");
  EXPECT_FALSE(ChooseAccelerator("kvm", kNoKvm, kVehicle).ok());
  EXPECT_EQ(ChooseAccelerator("qemu", kKvmWorks, kVehicle).status().code(), Status::Code::kInvalidArgument);
}

TEST(GuestAcceleratorTest, TheVehicleIsFoundUnderTheCacheRootByItsKey) {
  std::ifstream key_file(RunfilePath("qemu/tcg/vehicle_key.txt"));
  std::string key;
  ASSERT_TRUE(key_file >> key);
  // build.sh's key: source version + the first 12 hex digits of the patch's sha256.
  EXPECT_TRUE(std::regex_match(key, std::regex(R"([0-9][0-9.]*\+dfsg-[0-9a-f]{12})"))) << key;

  const std::string root = std::string(std::getenv("TEST_TMPDIR")) + "/cache";
  ASSERT_EQ(::setenv("UNDERSTUDY_CACHE", root.c_str(), 1), 0);
  Result<std::string> missing = TcgVehiclePath();
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("qemu/tcg/build.sh"), std::string::npos) << missing.status();

  const std::string dir = root + "/qemu-tcg/" + key;
  ASSERT_EQ(std::system(("mkdir -p '" + dir + "'").c_str()), 0);
  const std::string wrapper = dir + "/qemu-system-x86_64";
  std::ofstream(wrapper) << "#!/bin/sh\n";
  ASSERT_EQ(::chmod(wrapper.c_str(), 0755), 0);
  Result<std::string> found = TcgVehiclePath();
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, wrapper);

  // A vehicle built from another patch (another key) is not this one.
  ASSERT_EQ(std::rename(dir.c_str(), (root + "/qemu-tcg/7.2+dfsg-000000000000").c_str()), 0);
  EXPECT_FALSE(TcgVehiclePath().ok());
  ::unsetenv("UNDERSTUDY_CACHE");
}

}  // namespace
}  // namespace understudy::testing
