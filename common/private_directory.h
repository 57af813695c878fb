// EnsurePrivateDirectory: the agent's runtime directory holds its control socket, QEMU's QMP
// socket, console and logs — everything a local user could use to command the VM. It must be
// a real directory (not a symlink someone planted), owned by this process's user, and closed
// to everyone else (0700), whatever the umask.
#ifndef UNDERSTUDY_COMMON_PRIVATE_DIRECTORY_H_
#define UNDERSTUDY_COMMON_PRIVATE_DIRECTORY_H_

#include <string>

#include "common/status.h"

namespace understudy {

// Creates `path` (and missing parents, 0700) if absent; then requires that it is a directory,
// not a symlink, owned by the effective uid, and sets its mode to 0700. An error names the
// path and what is wrong with it; nothing is removed.
Status EnsurePrivateDirectory(const std::string& path);

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_PRIVATE_DIRECTORY_H_
