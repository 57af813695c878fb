#include "primary/test_checkpoint_hold.h"

#include <chrono>

#include "common/log.h"

namespace understudy::primary {

using nlohmann::json;

Status TestCheckpointHold::WaitIfHeld(uint64_t epoch, const std::atomic<bool>& stop) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (armed_epoch_ == 0 || armed_epoch_ != epoch) return Status::Ok();
  held_epoch_ = epoch;
  Log("primary", "TEST ONLY: holding the VM stopped at epoch " + std::to_string(epoch) + " until released");
  // Woken by a release; the timed wait only notices `stop`.
  while (armed_epoch_ == epoch && !stop.load()) changed_.wait_for(lock, std::chrono::milliseconds(50));
  held_epoch_ = 0;
  armed_epoch_ = 0;
  Log("primary", "TEST ONLY: epoch " + std::to_string(epoch) + " released");
  return Status::Ok();
}

void TestCheckpointHold::Arm(uint64_t epoch) {
  std::lock_guard<std::mutex> lock(mutex_);
  armed_epoch_ = epoch;
}

void TestCheckpointHold::AddControlCommands(std::map<std::string, control::Handler>& handlers,
                                            std::function<uint64_t()> captured_epoch) {
  handlers["test_hold_checkpoint"] = [this, captured_epoch](const json& request) -> Result<json> {
    if (!request.contains("epoch") || !request["epoch"].is_number_unsigned()) {
      return Status::InvalidArgument("test_hold_checkpoint: \"epoch\" must be a positive integer");
    }
    uint64_t epoch = request["epoch"].get<uint64_t>();
    uint64_t captured = captured_epoch();
    if (epoch <= captured) {
      return Status::InvalidArgument("test_hold_checkpoint: epoch " + std::to_string(epoch) +
                                     " is not in the future (captured " + std::to_string(captured) + ")");
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (armed_epoch_ != 0) return Status::FailedPrecondition("test_hold_checkpoint: a hold is armed already");
    armed_epoch_ = epoch;
    return json{{"hold_epoch", epoch}};
  };
  handlers["test_held_checkpoint"] = [this](const json&) -> Result<json> {
    std::lock_guard<std::mutex> lock(mutex_);
    return json{{"held_epoch", held_epoch_}};
  };
  handlers["test_release_checkpoint"] = [this](const json&) -> Result<json> {
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t released = held_epoch_;
    armed_epoch_ = 0;
    changed_.notify_all();
    return json{{"released_epoch", released}};
  };
}

}  // namespace understudy::primary
