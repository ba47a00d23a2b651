#include "spawn.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "socket_ops.hpp"
#include "tulip/errors.hpp"

extern char** environ;

namespace tulip::detail {
namespace {

bool holds_nul(std::string_view text) { return text.find('\0') != std::string_view::npos; }

// The PATH to search: the child's, if it is given an environment of its own
// (as Python's os.get_exec_path(env) does), else the parent's, else the C
// library's default.
std::string search_path(const SpawnRequest& request) {
  if (request.env) {
    auto it = request.env->find("PATH");
    if (it != request.env->end()) return it->second;
  } else if (const char* path = std::getenv("PATH")) {
    return path;
  }
  return "/bin:/usr/bin";
}

// The file to execute, as execvp finds it: a name with a '/' as given, else
// the first executable file of that name in PATH. `error` is ENOENT when
// there is none, EACCES when one was found but may not be executed.
std::string resolve_program(const SpawnRequest& request, int& error) {
  const std::string& name = request.argv[0];
  error = 0;
  if (name.find('/') != std::string::npos) {
    // Checked here too, though the spawn reports the same: where the C
    // library cannot share memory with the child (under valgrind, which turns
    // the vfork into a fork), an exec failure would otherwise show only as a
    // child exiting 127. A relative name is the child's to resolve, after its
    // chdir.
    bool relative_to_new_cwd = request.cwd && name[0] != '/';
    if (!relative_to_new_cwd && ::access(name.c_str(), X_OK) != 0) error = errno;
    return name;
  }
  if (name.empty()) {
    error = ENOENT;
    return name;
  }
  std::string path = search_path(request);
  bool denied = false;
  std::size_t start = 0;
  for (;;) {
    std::size_t end = path.find(':', start);
    std::string dir =
        path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    // An empty entry is the current directory, as for execvp.
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (errno == EACCES) denied = true;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  error = denied ? EACCES : ENOENT;
  return name;
}

[[noreturn]] void throw_spawn_error(int error, const SpawnRequest& request) {
  throw OSError(
      errno_code(error),
      "cannot start '" + request.argv[0] + "': " + errno_code(error).message() +
          (request.cwd && error == ENOENT ? " (program or working directory '" + *request.cwd + "')"
                                          : std::string()));
}

// argv and envp as the C library wants them: NUL-terminated arrays of
// pointers into strings that outlive the call.
struct CStrings {
  std::vector<std::string> owned;
  std::vector<char*> pointers;
  void add(std::string text) { owned.push_back(std::move(text)); }
  char** get() {
    pointers.clear();
    for (std::string& text : owned) pointers.push_back(text.data());
    pointers.push_back(nullptr);
    return pointers.data();
  }
};

// posix_spawn's file actions and attributes, released in every case.
class SpawnSetup {
 public:
  SpawnSetup() {
    ::posix_spawn_file_actions_init(&actions_);
    ::posix_spawnattr_init(&attributes_);
  }
  ~SpawnSetup() {
    ::posix_spawn_file_actions_destroy(&actions_);
    ::posix_spawnattr_destroy(&attributes_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  posix_spawn_file_actions_t* actions() { return &actions_; }
  posix_spawnattr_t* attributes() { return &attributes_; }

  // Each call returns an errno value; the first failure is kept.
  void check(int result) {
    if (result != 0 && error_ == 0) error_ = result;
  }
  int error() const { return error_; }

 private:
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attributes_;
  int error_ = 0;
};

void describe_child(const SpawnRequest& request, SpawnSetup& setup) {
  posix_spawn_file_actions_t* actions = setup.actions();
  // The standard streams. dup2 onto the same number only clears close-on-exec,
  // which is what an explicitly given descriptor 0, 1 or 2 needs. The caller
  // makes sure no source is itself 0, 1 or 2 unless it is its own target, so
  // that one dup2 never overwrites the source of the next.
  for (int target = 0; target < 3; ++target) {
    int source = request.stdio[target];
    if (source >= 0) setup.check(::posix_spawn_file_actions_adddup2(actions, source, target));
  }
  // pass_fds keep their numbers, without close-on-exec.
  std::vector<int> kept;
  for (int fd : request.pass_fds) {
    if (fd > 2) kept.push_back(fd);
  }
  std::sort(kept.begin(), kept.end());
  kept.erase(std::unique(kept.begin(), kept.end()), kept.end());
  for (int fd : kept) setup.check(::posix_spawn_file_actions_adddup2(actions, fd, fd));
  if (request.close_fds) {
    // Everything above 2 goes, except pass_fds: single closes for the gaps
    // below the highest kept descriptor (a close of a descriptor that is not
    // open is ignored), then one close_range for the rest.
    int next = 3;
    for (int fd : kept) {
      for (int gap = next; gap < fd; ++gap) {
        setup.check(::posix_spawn_file_actions_addclose(actions, gap));
      }
      next = fd + 1;
    }
    setup.check(::posix_spawn_file_actions_addclosefrom_np(actions, next));
  }
  if (request.cwd) {
    setup.check(::posix_spawn_file_actions_addchdir_np(actions, request.cwd->c_str()));
  }

  posix_spawnattr_t* attributes = setup.attributes();
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  // The child starts with no signal blocked, whatever this thread blocks: a
  // child that inherited a blocked SIGTERM would ignore terminate().
  sigset_t none;
  sigemptyset(&none);
  setup.check(::posix_spawnattr_setsigmask(attributes, &none));
  // Ignored dispositions survive exec; these two go back to their defaults,
  // as Python's subprocess does (restore_signals).
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGXFSZ);
  setup.check(::posix_spawnattr_setsigdefault(attributes, &defaults));
  if (request.start_new_session) flags |= POSIX_SPAWN_SETSID;
  if (request.process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    setup.check(::posix_spawnattr_setpgroup(attributes, *request.process_group));
  }
  setup.check(::posix_spawnattr_setflags(attributes, flags));
}

}  // namespace

void validate_spawn_request(const SpawnRequest& request, const char* operation) {
  if (request.argv.empty() || request.argv[0].empty()) {
    throw std::invalid_argument(std::string(operation) + "() needs a program to run");
  }
  for (const std::string& argument : request.argv) {
    if (holds_nul(argument)) {
      throw std::invalid_argument(std::string(operation) + "(): an argument holds a NUL byte");
    }
  }
  if (request.env) {
    for (const auto& [name, value] : *request.env) {
      if (name.empty() || name.find('=') != std::string::npos || holds_nul(name) ||
          holds_nul(value)) {
        throw std::invalid_argument(std::string(operation) +
                                    "(): an environment variable's name is empty or holds '=' "
                                    "or NUL, or its value holds NUL");
      }
    }
  }
  if (request.cwd && holds_nul(*request.cwd)) {
    throw std::invalid_argument(std::string(operation) + "(): cwd holds a NUL byte");
  }
}

pid_t spawn_process(const SpawnRequest& request) {
  int error = 0;
  std::string program = resolve_program(request, error);
  if (error != 0) throw_spawn_error(error, request);
  // The same early check for the working directory (see resolve_program).
  if (request.cwd && ::access(request.cwd->c_str(), X_OK) != 0) throw_spawn_error(errno, request);
  SpawnSetup setup;
  describe_child(request, setup);
  if (setup.error() != 0) throw_spawn_error(setup.error(), request);
  CStrings argv;
  for (const std::string& argument : request.argv) argv.add(argument);
  CStrings envp;
  char** environment = environ;
  if (request.env) {
    for (const auto& [name, value] : *request.env) envp.add(name + "=" + value);
    environment = envp.get();
  }
  pid_t pid = -1;
  int result = ::posix_spawn(&pid, program.c_str(), setup.actions(), setup.attributes(), argv.get(),
                             environment);
  if (result != 0) throw_spawn_error(result, request);
  return pid;
}

pid_t fork_and_exec_for_comparison(const SpawnRequest& request) {
  int error = 0;
  std::string program = resolve_program(request, error);
  if (error != 0) throw_spawn_error(error, request);
  CStrings argv;
  for (const std::string& argument : request.argv) argv.add(argument);
  char** arguments = argv.get();
  pid_t pid = ::fork();
  if (pid < 0) throw_spawn_error(errno, request);
  if (pid == 0) {
    for (int target = 0; target < 3; ++target) {
      if (request.stdio[target] >= 0) ::dup2(request.stdio[target], target);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(program.c_str(), arguments, environ);
    ::_exit(127);
  }
  return pid;
}

}  // namespace tulip::detail
