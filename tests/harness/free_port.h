// A loopback TCP port the kernel considers free right now, for a server started a moment
// later (etcd, Prometheus). Racy by nature; good enough for tests on one host.
#ifndef UNDERSTUDY_TESTS_HARNESS_FREE_PORT_H_
#define UNDERSTUDY_TESTS_HARNESS_FREE_PORT_H_

#include <cstdint>

#include "common/result.h"

namespace understudy::testing {

Result<uint16_t> FreePort();

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_FREE_PORT_H_
