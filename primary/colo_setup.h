// Turning a running QEMU into a COLO primary whose "secondary" is us.
#ifndef UNDERSTUDY_PRIMARY_COLO_SETUP_H_
#define UNDERSTUDY_PRIMARY_COLO_SETUP_H_

#include <chrono>

#include "common/deadline.h"
#include "common/status.h"
#include "qemu/qmp_client.h"

namespace understudy::primary {

// Enables x-colo (return-path off: QEMU's return-path thread would eat the COLO replies),
// sets x-checkpoint-delay, hands QEMU `migration_fd` (one end of a socketpair) and starts
// `migrate fd:...`. The caller keeps its copy of the descriptor closed or not as it likes;
// QEMU holds its own. The other end must be served by a ColoPeer.
Status StartColoMigration(qemu::QmpClient& qmp, int migration_fd, std::chrono::milliseconds checkpoint_delay,
                          Deadline deadline);

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_COLO_SETUP_H_
