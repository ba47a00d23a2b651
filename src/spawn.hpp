// spawn_process: starting a child with posix_spawn. Not API.
//
// posix_spawn in glibc clones with CLONE_VM | CLONE_VFORK: the child shares
// the parent's memory until it calls exec, so nothing is copied (a fork of a
// process with gigabytes mapped copies its page tables, which takes
// milliseconds), and an exec failure comes back as the call's return value.
// The child's setup is a list of file actions and attributes the C library
// applies between the clone and the exec: the three standard streams, the
// working directory, closing inherited descriptors, a new session or process
// group, default signal dispositions and an empty signal mask.
//
// Thread-safety: callable from any thread; it touches nothing shared.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tulip::detail {

struct SpawnRequest {
  std::vector<std::string> argv;  // argv[0]: the program; searched in PATH without a '/'
  std::optional<std::map<std::string, std::string>> env;  // nullopt: the parent's environment
  std::optional<std::string> cwd;
  // The descriptor each of the child's 0, 1, 2 becomes (-1: the parent's own).
  // stderr may name the same descriptor as stdout.
  int stdio[3] = {-1, -1, -1};
  std::vector<int> pass_fds;
  bool close_fds = true;
  bool start_new_session = false;
  std::optional<pid_t> process_group;
};

/// Checks `request` for what can never be spawned (an empty argv, a NUL byte
/// inside an argument or an environment entry, '=' in a variable's name);
/// throws std::invalid_argument saying which, naming `operation`.
void validate_spawn_request(const SpawnRequest& request, const char* operation);

/// Starts the child and returns its pid. Throws OSError with the errno of the
/// spawn (ENOENT for a program that is not there, EACCES, ENOEXEC, a bad cwd)
/// and a message naming the program.
pid_t spawn_process(const SpawnRequest& request);

/// Test hook and benchmark: the same child started with fork() and execve()
/// instead, to compare what the two cost. Returns the pid or throws as
/// spawn_process (an exec failure is only seen when the child exits 127).
pid_t fork_and_exec_for_comparison(const SpawnRequest& request);

}  // namespace tulip::detail
