#include "common/process_space.h"

#include <sys/stat.h>

#include <fstream>

namespace understudy {

std::string ThisProcessSpace() {
  std::string boot_id = "unknown-boot";
  std::ifstream file("/proc/sys/kernel/random/boot_id");
  std::getline(file, boot_id);
  struct stat pid_namespace {};
  std::string namespace_id = ::stat("/proc/self/ns/pid", &pid_namespace) == 0 ? std::to_string(pid_namespace.st_ino) : "?";
  return boot_id + "/" + namespace_id;
}

}  // namespace understudy
