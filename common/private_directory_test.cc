#include "common/private_directory.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/test_scratch_dir.h"

namespace understudy {
namespace {

mode_t ModeOf(const std::string& path) {
  struct stat info {};
  return ::lstat(path.c_str(), &info) == 0 ? (info.st_mode & 07777) : 0;
}

TEST(PrivateDirectoryTest, CreatesMissingDirectoriesOwnerOnlyWhateverTheUmask) {
  Result<TestScratchDir> scratch = TestScratchDir::Create("private");
  ASSERT_TRUE(scratch.ok());
  mode_t old_umask = ::umask(0);
  Status status = EnsurePrivateDirectory(scratch->File("a/b/run"));
  ::umask(old_umask);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(ModeOf(scratch->File("a/b/run")), 0700u);
  EXPECT_EQ(ModeOf(scratch->File("a")), 0700u);
}

TEST(PrivateDirectoryTest, TightensAnOpenDirectory) {
  Result<TestScratchDir> scratch = TestScratchDir::Create("private");
  ASSERT_TRUE(scratch.ok());
  std::string dir = scratch->File("run");
  ASSERT_EQ(::mkdir(dir.c_str(), 0777), 0);
  ::chmod(dir.c_str(), 0777);
  ASSERT_TRUE(EnsurePrivateDirectory(dir).ok());
  EXPECT_EQ(ModeOf(dir), 0700u);
}

TEST(PrivateDirectoryTest, RefusesASymlinkAFileAndAnotherUsersDirectory) {
  Result<TestScratchDir> scratch = TestScratchDir::Create("private");
  ASSERT_TRUE(scratch.ok());
  ASSERT_EQ(::symlink("/tmp", scratch->File("link").c_str()), 0);
  Status link = EnsurePrivateDirectory(scratch->File("link"));
  EXPECT_NE(link.message().find("is a symbolic link"), std::string::npos) << link;
  EXPECT_EQ(ModeOf("/tmp") & 01000, 01000u) << "the link's target must be left alone";

  ASSERT_EQ(::close(::creat(scratch->File("file").c_str(), 0600)), 0);
  Status file = EnsurePrivateDirectory(scratch->File("file"));
  EXPECT_NE(file.message().find("is not a directory"), std::string::npos) << file;

  if (::geteuid() == 0) {
    std::string theirs = scratch->File("theirs");
    ASSERT_EQ(::mkdir(theirs.c_str(), 0755), 0);
    ASSERT_EQ(::chown(theirs.c_str(), 65534, 65534), 0);
    Status other = EnsurePrivateDirectory(theirs);
    EXPECT_NE(other.message().find("belongs to uid 65534"), std::string::npos) << other;
    EXPECT_EQ(ModeOf(theirs), 0755u) << "another user's directory must be left as it was";
  }
}

}  // namespace
}  // namespace understudy
