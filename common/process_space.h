// Which machine and PID namespace this process runs in: "<boot id>/<pid namespace inode>".
// Two processes with the same value can signal each other's pids meaningfully; tools that
// kill by a pid another process reported (drills) compare it first, so a pid from another
// host never hits an unrelated local process.
#ifndef UNDERSTUDY_COMMON_PROCESS_SPACE_H_
#define UNDERSTUDY_COMMON_PROCESS_SPACE_H_

#include <string>

namespace understudy {

std::string ThisProcessSpace();

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_PROCESS_SPACE_H_
