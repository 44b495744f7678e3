#pragma once

// A child process for integration tests: spawned with posix_spawn, its stdout and stderr captured
// to a file, signalled, and waited for with a deadline. The destructor kills (SIGKILL) and reaps
// a child that is still running, so a failing test never leaks processes.

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rill::testing {

class Process {
 public:
  struct Options {
    // Changes to this process's environment: "NAME=value" sets, a bare "NAME" unsets.
    std::vector<std::string> env;
    // The child's stdin (dup'ed to 0); -1 keeps this process's.
    int stdin_fd = -1;
  };

  // Starts argv[0] with argv; output goes to `log_path` (appended). Null on failure.
  static std::unique_ptr<Process> Spawn(const std::vector<std::string>& argv,
                                        const std::string& log_path);
  static std::unique_ptr<Process> Spawn(const std::vector<std::string>& argv,
                                        const std::string& log_path, const Options& options);
  ~Process();

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);
  // Waits until the child exits or `timeout` passes. Returns the exit code (128 + signal number
  // when killed by a signal), or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  explicit Process(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  std::optional<int> exit_code_;
};

// Reads a whole file ("" if missing).
std::string ReadFile(const std::string& path);

}  // namespace rill::testing
