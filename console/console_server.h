// ConsoleServer: serves a ReleasedLog to readers on a UNIX socket (console_protocol.h).
//
// One thread accepts; one thread per reader streams, at most kMaxReaders at once (more are
// refused: closed at once), and finished readers' threads are joined by the accepting thread
// (as new ones arrive, and every 100 ms), so clients that connect and leave in a loop cannot
// exhaust the agent's threads. Stop() (or destruction) closes the socket and joins every
// thread. Thread-safe.
#ifndef UNDERSTUDY_CONSOLE_CONSOLE_SERVER_H_
#define UNDERSTUDY_CONSOLE_CONSOLE_SERVER_H_

#include <atomic>
#include <list>
#include <memory>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "console/released_log.h"

namespace understudy::console {

class ConsoleServer {
 public:
  // Listens on `socket_path` (replacing a stale socket file). `log` must outlive the server.
  static Result<std::unique_ptr<ConsoleServer>> Start(const std::string& socket_path, const ReleasedLog& log);
  ~ConsoleServer();

  static constexpr size_t kMaxReaders = 64;

  void Stop();
  const std::string& socket_path() const { return socket_path_; }
  // Reader threads not yet joined.
  size_t reader_threads() const EXCLUDES(readers_mutex_);

 private:
  struct Reader {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done = std::make_shared<std::atomic<bool>>(false);
  };
  ConsoleServer(std::string socket_path, UniqueFd listener, const ReleasedLog& log);
  void AcceptLoop();
  // Joins the readers that finished; returns how many still run.
  size_t ReapLocked() REQUIRES(readers_mutex_);
  void Serve(UniqueFd client);

  const std::string socket_path_;
  UniqueFd listener_;
  const ReleasedLog& log_;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable Mutex readers_mutex_;
  std::list<Reader> readers_ GUARDED_BY(readers_mutex_);
};

}  // namespace understudy::console

#endif  // UNDERSTUDY_CONSOLE_CONSOLE_SERVER_H_
