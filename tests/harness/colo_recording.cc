#include "tests/harness/colo_recording.h"

#include <sys/socket.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "primary/colo_setup.h"

namespace understudy::testing {

namespace {

class NullVisitor : public checkpoint::QemuStreamVisitor {};

}  // namespace

Result<ColoRecording> RecordColoStream(const ColoRecordingOptions& options) {
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<TestGuest> guest, TestGuest::StartCounter(options.guest, "rec"));
  ColoRecording recording;
  recording.definition = CounterGuestDefinition(options.guest, "");

  Result<std::string> first = guest->console().ReadLine(Deadline::AfterMillis(60000));
  if (!first.ok()) return first.status().WithContext("waiting for the guest to boot");

  std::atomic<uint64_t> lines_seen{1};
  std::atomic<bool> stop_console{false};
  std::thread console_thread([&] {
    while (!stop_console.load()) {
      Result<std::string> line = guest->console().ReadLine(Deadline::AfterMillis(100));
      if (line.ok()) lines_seen.fetch_add(1);
    }
  });

  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    stop_console.store(true);
    console_thread.join();
    return Status::FromErrno("socketpair", errno);
  }
  UniqueFd ours(pair[0]), theirs(pair[1]);

  NullVisitor null_visitor;
  primary::ColoPeer* peer_pointer = nullptr;
  primary::ColoPeerOptions peer_options;
  peer_options.raw_tap = [&](std::span<const std::byte> chunk) {
    recording.stream.insert(recording.stream.end(), chunk.begin(), chunk.end());
  };
  peer_options.on_checkpoint_acked = [&](const primary::CheckpointTiming& timing) {
    recording.checkpoints.push_back(timing);
    recording.lines_seen_at_ack.push_back(lines_seen.load());
    if (static_cast<int>(recording.checkpoints.size()) >= options.checkpoints) peer_pointer->RequestStop();
  };
  primary::ColoPeer peer(std::move(ours), options.consumer ? *options.consumer : null_visitor, peer_options);
  peer_pointer = &peer;

  Status started = primary::StartColoMigration(guest->process().qmp(), theirs.get(), options.checkpoint_delay,
                                               Deadline::AfterMillis(10000));
  theirs.reset();  // QEMU holds its own copy
  Status served = started.ok() ? peer.Run() : started;
  recording.lines_seen_at_end = lines_seen.load();
  stop_console.store(true);
  console_thread.join();
  if (!served.ok()) return served.WithContext("recording the COLO stream; QEMU log: " + guest->process().Log());
  return recording;
}

}  // namespace understudy::testing
