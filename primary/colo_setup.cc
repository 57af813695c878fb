#include "primary/colo_setup.h"

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

}  // namespace understudy::primary
