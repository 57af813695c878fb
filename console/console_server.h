// ConsoleServer: serves a ReleasedLog to readers on a UNIX socket (console_protocol.h).
//
// One thread accepts; one thread per reader streams. Stop() (or destruction) closes the
// socket and joins every thread. Thread-safe.
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

  void Stop();
  const std::string& socket_path() const { return socket_path_; }

 private:
  ConsoleServer(std::string socket_path, UniqueFd listener, const ReleasedLog& log);
  void AcceptLoop();
  void Serve(UniqueFd client);

  const std::string socket_path_;
  UniqueFd listener_;
  const ReleasedLog& log_;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  Mutex readers_mutex_;
  std::list<std::thread> readers_ GUARDED_BY(readers_mutex_);
};

}  // namespace understudy::console

#endif  // UNDERSTUDY_CONSOLE_CONSOLE_SERVER_H_
