// OwnerDisplayState: the state an owner of a running VM shows operators (status "state",
// transitions, the pair-state metric), named from its controller's state.
//
// Operators read "protected" as "a standby could take over now", which takes more than the
// controller's first ack: the new secondary must also hold the whole disk. And a pairing made
// after the VM ran alone (a lost secondary, or a promoted standby) reads "re-protecting" until
// then, however briefly the controller itself was in `re-protecting` (its swap takes one
// arbiter round trip). Used by ft-primary and by a promoted secondary's owner role alike, so
// both name one history the same way.
//
// Thread safety: not thread-safe (one watcher thread calls Next).
#ifndef UNDERSTUDY_PRIMARY_OWNER_DISPLAY_STATE_H_
#define UNDERSTUDY_PRIMARY_OWNER_DISPLAY_STATE_H_

#include <string>

#include "failover/pair_controller.h"

namespace understudy::primary {

class OwnerDisplayState {
 public:
  // `starts_alone`: the VM already runs without a secondary (a promoted standby), so its first
  // pairing is a re-protection too.
  explicit OwnerDisplayState(bool starts_alone = false) : reprotecting_(starts_alone) {}

  // The name for `state` now; `secondary_ready`: the current secondary could take over now.
  std::string Next(failover::ControllerState state, bool secondary_ready);

 private:
  bool reprotecting_;  // pairing with a secondary after the VM ran alone
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_OWNER_DISPLAY_STATE_H_
