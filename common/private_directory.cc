#include "common/private_directory.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace understudy {

Status EnsurePrivateDirectory(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("runtime directory: empty path");
  for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    (void)::mkdir(path.substr(0, slash).c_str(), 0700);  // parents: only if missing
  }
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return Status::FromErrno("creating " + path, errno);
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) return Status::FromErrno("inspecting " + path, errno);
  if (S_ISLNK(info.st_mode)) return Status::FailedPrecondition(path + " is a symbolic link, not a private directory");
  if (!S_ISDIR(info.st_mode)) return Status::FailedPrecondition(path + " exists and is not a directory");
  if (info.st_uid != ::geteuid()) {
    return Status::FailedPrecondition(path + " belongs to uid " + std::to_string(info.st_uid) + ", not to this agent (uid " +
                                      std::to_string(::geteuid()) + ")");
  }
  if ((info.st_mode & 07777) != 0700 && ::chmod(path.c_str(), 0700) != 0) return Status::FromErrno("chmod 0700 " + path, errno);
  return Status::Ok();
}

}  // namespace understudy
