#include "primary/checkpoint_requester.h"

namespace understudy::primary {

CheckpointRequester::CheckpointRequester(CheckpointTriggerOptions options, CheckpointRequesterHooks hooks)
    : hooks_(std::move(hooks)), trigger_(options) {}

CheckpointRequester::~CheckpointRequester() { Stop(); }

void CheckpointRequester::Start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopping_ || thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void CheckpointRequester::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void CheckpointRequester::Changed(std::unique_lock<std::mutex>& lock) {
  dirty_ = true;
  lock.unlock();
  changed_.notify_one();
}

void CheckpointRequester::OutputHeld() {
  std::unique_lock<std::mutex> lock(mutex_);
  // Most output arrives while some is already pending: nothing changes, nobody to wake.
  if (trigger_.pending()) return;
  trigger_.OnOutputHeld();
  Changed(lock);
}

void CheckpointRequester::CheckpointStarted() {
  std::unique_lock<std::mutex> lock(mutex_);
  trigger_.OnCheckpointStarted(std::chrono::steady_clock::now());
  Changed(lock);
}

void CheckpointRequester::Sealing() {
  std::unique_lock<std::mutex> lock(mutex_);
  trigger_.OnSealing();
  Changed(lock);
}

void CheckpointRequester::CheckpointFinished() {
  std::unique_lock<std::mutex> lock(mutex_);
  trigger_.OnCheckpointFinished();
  Changed(lock);
}

void CheckpointRequester::Acked() {
  std::unique_lock<std::mutex> lock(mutex_);
  Changed(lock);
}

uint64_t CheckpointRequester::requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return trigger_.requests();
}

uint64_t CheckpointRequester::failed_requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failed_;
}

void CheckpointRequester::Loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    dirty_ = false;
    // The hook takes other components' locks: never call it holding ours.
    lock.unlock();
    std::optional<uint64_t> in_flight = hooks_.in_flight();
    lock.lock();
    if (stopping_) break;
    CheckpointTrigger::Decision decision;
    if (in_flight) decision = trigger_.Poll(std::chrono::steady_clock::now(), *in_flight);
    if (decision.request) {
      lock.unlock();
      Status requested = hooks_.request();
      lock.lock();
      if (!requested.ok()) ++failed_;
      continue;
    }
    if (dirty_) continue;  // an event arrived while the window was read: look again
    auto woken = [this] { return dirty_ || stopping_; };
    if (decision.recheck) {
      changed_.wait_until(lock, *decision.recheck, woken);
    } else {
      changed_.wait(lock, woken);
    }
  }
}

}  // namespace understudy::primary
