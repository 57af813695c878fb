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
//
// While QEMU refuses `migrate` because the previous migration's yank instance is still
// registered (a re-protection right after a COLO exit), passes the descriptor again and
// retries every 10 ms until `deadline` leaves too little for another attempt (60 ms), then
// returns QEMU's refusal. Any other refusal is returned at once.
Status StartColoMigration(qemu::QmpClient& qmp, int migration_fd, std::chrono::milliseconds checkpoint_delay,
                          Deadline deadline);

// Lets QEMU write a whole checkpoint into `qemu_end` (its end of the socketpair) without
// waiting for the agent to read: the kernel's default send buffer (~208 KiB) made QEMU's
// 32 KiB writes of a multi-megabyte checkpoint wait for the reader dozens of times per pause.
// SO_SNDBUFFORCE (root) or else SO_SNDBUF, which the kernel caps at net.core.wmem_max. Best
// effort: returns the send buffer the socket ended up with, in bytes.
int WidenColoSendBuffer(int qemu_end, int wanted_bytes);

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_COLO_SETUP_H_
