#include "primary/colo_setup.h"

#include <sys/socket.h>

#include <string>
#include <thread>

namespace understudy::primary {
namespace {

// Between `migrate` attempts that QEMU refused for the previous migration's yank instance.
constexpr std::chrono::milliseconds kYankRetryPause(10);
// Time an attempt (getfd + migrate, each one QMP round trip) is given at least. An attempt
// begun with less left would end in a timeout awaiting a reply: the caller would read "QEMU
// did not answer" where QEMU had said why, and a `migrate` QEMU accepts after all would start
// a migration the caller has given up on.
constexpr std::chrono::milliseconds kYankRetryAttemptBudget(50);

}  // namespace

Status StartColoMigration(qemu::QmpClient& qmp, int migration_fd, std::chrono::milliseconds checkpoint_delay,
                          Deadline deadline) {
  using nlohmann::json;
  json capabilities = {{"capabilities",
                        json::array({{{"capability", "x-colo"}, {"state", true}},
                                     {{"capability", "return-path"}, {"state", false}}})}};
  Result<json> reply = qmp.Execute("migrate-set-capabilities", capabilities, deadline);
  if (!reply.ok()) return reply.status().WithContext("enabling COLO");
  reply = qmp.Execute("migrate-set-parameters", {{"x-checkpoint-delay", checkpoint_delay.count()}}, deadline);
  if (!reply.ok()) return reply.status().WithContext("setting the checkpoint interval");
  for (;;) {
    UNDERSTUDY_RETURN_IF_ERROR(
        qmp.PassFd("understudy-colo", migration_fd, deadline).WithContext("passing the COLO socket"));
    reply = qmp.Execute("migrate", {{"uri", "fd:understudy-colo"}}, deadline);
    if (reply.ok()) return Status::Ok();
    // A re-protection starts a new migration right after the previous one left COLO. QEMU 7.2
    // marks that one completed before its cleanup (a bottom half) unregisters the migration's
    // yank instance, and refuses a new `migrate` in between: that refusal (checked before the
    // descriptor is touched) passes within milliseconds, so try again while the deadline leaves
    // an attempt its time; at the end, QEMU's refusal is the error.
    const bool previous_still_cleaning_up = reply.status().message().find("duplicate yank instance") != std::string::npos;
    if (!previous_still_cleaning_up || deadline.Remaining() < kYankRetryPause + kYankRetryAttemptBudget) {
      return reply.status().WithContext("starting the COLO migration");
    }
    std::this_thread::sleep_for(kYankRetryPause);
  }
}

int WidenColoSendBuffer(int qemu_end, int wanted_bytes) {
  // The kernel doubles the value it is given (bookkeeping overhead) and reports the doubled one.
  int half = wanted_bytes / 2;
  if (::setsockopt(qemu_end, SOL_SOCKET, SO_SNDBUFFORCE, &half, sizeof(half)) != 0) {
    (void)::setsockopt(qemu_end, SOL_SOCKET, SO_SNDBUF, &half, sizeof(half));
  }
  int actual = 0;
  socklen_t size = sizeof(actual);
  if (::getsockopt(qemu_end, SOL_SOCKET, SO_SNDBUF, &actual, &size) != 0) return 0;
  return actual;
}

}  // namespace understudy::primary
