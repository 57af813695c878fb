#include "primary/colo_setup.h"

#include <sys/socket.h>

namespace understudy::primary {

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
  UNDERSTUDY_RETURN_IF_ERROR(qmp.PassFd("understudy-colo", migration_fd, deadline).WithContext("passing the COLO socket"));
  reply = qmp.Execute("migrate", {{"uri", "fd:understudy-colo"}}, deadline);
  if (!reply.ok()) return reply.status().WithContext("starting the COLO migration");
  return Status::Ok();
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
