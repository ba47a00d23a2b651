// Subprocesses: EventLoop::subprocess_exec and subprocess_shell
// (asyncio.SubprocessTransport, asyncio.SubprocessProtocol).
//
// loop.subprocess_exec(factory, {"program", "arg", ...}, options) starts a
// child process and completes its Future with SubprocessConnection<P>{transport,
// protocol} once the protocol's connection_made has run; subprocess_shell(
// factory, "command", options) runs the command with /bin/sh -c. Each of the
// child's standard streams is, per SubprocessOptions, a pipe (the default
// here, as for asyncio's loop.subprocess_exec), /dev/null, the parent's own,
// a descriptor of the caller's, or (stderr only) the same as stdout.
//
// Call order, for every child:
//
//     connection_made -> (pipe_data_received | pipe_connection_lost)*
//                     -> process_exited -> connection_lost
//
// pipe_data_received(fd, data) carries bytes the child wrote to its stdout
// (fd 1) or stderr (fd 2); pipe_connection_lost(fd, error) comes once per pipe
// (0, 1, 2) when it closes. process_exited comes after every pipe has been
// lost, even when the child's exit is noticed first: all the bytes the child
// wrote have been delivered by then (a descendant that keeps the child's
// stdout open holds process_exited back until it closes it too). Then
// connection_lost(no error) ends the transport. get_returncode() is set as
// soon as the exit is known: the exit status, or -N for a child killed by
// signal N.
//
// Spawning uses posix_spawn (a vfork-style clone: the parent's memory is not
// copied, so starting a child costs the same from a small or a huge process).
// A program named without a '/' is searched in the PATH of `env` when given,
// else in the parent's. A program that cannot be started (missing, not
// executable, a cwd that does not exist) fails the Future with OSError
// carrying the errno from the spawn itself, naming the program; no child is
// left behind. By default every descriptor but 0, 1, 2 and pass_fds is
// closed in the child (close_fds); signal dispositions SIGPIPE and SIGXFSZ go
// back to their defaults and the child starts with no signal blocked.
//
// Reaping: the loop watches each child through a pidfd (Linux 5.3 and later)
// and reaps it with waitpid on that child's pid only: no zombie is left, and
// no other code's children are ever reaped. Without pidfd it falls back to a
// SIGCHLD handler on the loop (add_signal_handler: one loop per process may
// handle signals, and this takes SIGCHLD) that, too, waits only for its own pids.
//
// close() closes the pipes and, if the child is still running, kills it
// (SIGKILL), as asyncio does; process_exited and connection_lost still
// follow. Closing the loop kills and reaps every child still running
// (connection_lost(ECONNABORTED) to protocols that had connection_made).
// send_signal / terminate / kill after the child has been reaped do nothing:
// its pid may belong to another process by then.
//
// A protocol callback that throws is reported to the loop's exception
// handler and closes the transport (the child is killed if still running).
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "tulip/detail/inline_function.hpp"
#include "tulip/export.hpp"
#include "tulip/future.hpp"
#include "tulip/protocol.hpp"
#include "tulip/transport.hpp"

namespace tulip {

class EventLoop;
class SubprocessTransport;

/// Where one of a child's standard streams goes (asyncio's PIPE, DEVNULL,
/// STDOUT, None or a file descriptor).
class TULIP_API Stdio {
 public:
  /// What the stream is connected to.
  enum class Kind : std::uint8_t {
    kInherit,  ///< the parent's own stream (asyncio: None)
    kPipe,     ///< a new pipe, read or written through the transport (PIPE)
    kDevNull,  ///< /dev/null (DEVNULL)
    kStdout,   ///< stderr only: wherever stdout goes (STDOUT)
    kFd,       ///< a descriptor of the caller's, duplicated into the child
  };

  /// The parent's own stream.
  static constexpr Stdio inherit() noexcept { return Stdio(Kind::kInherit, -1); }
  /// A pipe to or from the parent.
  static constexpr Stdio pipe() noexcept { return Stdio(Kind::kPipe, -1); }
  /// /dev/null.
  static constexpr Stdio devnull() noexcept { return Stdio(Kind::kDevNull, -1); }
  /// For stderr: the same as stdout (asyncio's STDOUT).
  static constexpr Stdio to_stdout() noexcept { return Stdio(Kind::kStdout, -1); }
  /// `descriptor`, which stays the caller's: the child gets a copy.
  static constexpr Stdio fd(int descriptor) noexcept { return Stdio(Kind::kFd, descriptor); }

  /// An inherited stream.
  constexpr Stdio() noexcept = default;
  /// What this stream is connected to.
  constexpr Kind kind() const noexcept { return kind_; }
  /// The descriptor of Stdio::fd(), else -1.
  constexpr int descriptor() const noexcept { return fd_; }

 private:
  constexpr Stdio(Kind kind, int fd) noexcept : kind_(kind), fd_(fd) {}
  Kind kind_ = Kind::kInherit;
  int fd_ = -1;
};

/// How subprocess_exec / subprocess_shell start the child (asyncio's
/// subprocess keyword arguments).
struct SubprocessOptions {
  Stdio std_in = Stdio::pipe();   ///< The child's stdin (asyncio's stdin=).
  Stdio std_out = Stdio::pipe();  ///< The child's stdout.
  Stdio std_err = Stdio::pipe();  ///< The child's stderr; Stdio::to_stdout() merges it.
  /// The child's working directory; nullopt: the parent's.
  std::optional<std::string> cwd;
  /// The child's whole environment; nullopt: the parent's.
  std::optional<std::map<std::string, std::string>> env;
  /// Descriptors that stay open in the child under their own numbers.
  std::vector<int> pass_fds;
  /// Close every other descriptor above 2 in the child (asyncio's default).
  bool close_fds = true;
  /// setsid() in the child: a new session, no controlling terminal.
  bool start_new_session = false;
  /// setpgid(0, group) in the child; 0 makes a new group led by the child.
  std::optional<pid_t> process_group;
};

/// The application's side of a child process (asyncio.SubprocessProtocol).
/// BaseProtocol's pause_writing / resume_writing follow the stdin pipe's
/// write buffer.
class TULIP_API SubprocessProtocol : public BaseProtocol {
 public:
  /// The child is running and its pipes are connected. `transport` is valid
  /// until connection_lost returns.
  virtual void connection_made(SubprocessTransport& transport) { (void)transport; }
  /// The child wrote `data` to its stdout (fd 1) or stderr (fd 2). Borrowed:
  /// copy what you keep. Never empty.
  virtual void pipe_data_received(int fd, std::string_view data) {
    (void)fd;
    (void)data;
  }
  /// The pipe of `fd` (0, 1 or 2) closed; `error` is empty for a clean end.
  virtual void pipe_connection_lost(int fd, std::error_code error) {
    (void)fd;
    (void)error;
  }
  /// The child has exited and every pipe has closed (see the file comment).
  virtual void process_exited() {}
};

/// A child process and its pipes (asyncio.SubprocessTransport).
class TULIP_API SubprocessTransport : public BaseTransport {
 public:
  /// The child's process id.
  virtual pid_t get_pid() const noexcept = 0;
  /// The exit status, -N if signal N killed it; nullopt while it runs.
  virtual std::optional<int> get_returncode() const noexcept = 0;
  /// The transport of the pipe to the child's `fd` (0: a write pipe, 1 and
  /// 2: read pipes); null if that stream is not a pipe or its pipe has closed.
  virtual Transport* get_pipe_transport(int fd) const noexcept = 0;
  /// Sends `signum` to the child; nothing once it has been reaped. Throws
  /// OSError if the kernel refuses (EPERM), std::invalid_argument for an
  /// invalid signal number.
  virtual void send_signal(int signum) = 0;
  /// send_signal(SIGTERM).
  virtual void terminate() = 0;
  /// send_signal(SIGKILL).
  virtual void kill() = 0;

  /// Replaces the protocol; the new one receives the callbacks from now on.
  virtual void set_protocol(std::shared_ptr<SubprocessProtocol> protocol) = 0;
  /// The current protocol; null once connection_lost has returned.
  virtual SubprocessProtocol* get_subprocess_protocol() const noexcept = 0;

  /// Not for subprocesses: throws std::invalid_argument.
  void set_protocol(std::shared_ptr<StreamProtocol> protocol) final {
    (void)protocol;
    throw std::invalid_argument("a SubprocessTransport takes a SubprocessProtocol");
  }
  /// Always null: a subprocess has no stream protocol (see get_subprocess_protocol()).
  StreamProtocol* get_protocol() const noexcept final { return nullptr; }

  /// Shorthand for this transport's shared_ptr.
  std::shared_ptr<SubprocessTransport> shared() {
    return std::shared_ptr<SubprocessTransport>(shared_from_this(), this);
  }
};

/// A started child's transport and protocol, as asyncio's (transport, protocol).
template <class P = SubprocessProtocol>
struct SubprocessConnection {
  std::shared_ptr<SubprocessTransport> transport;  ///< The child's transport.
  std::shared_ptr<P> protocol;                     ///< The protocol the factory made.
};

namespace detail {

using SubprocessFactory = std::function<std::shared_ptr<SubprocessProtocol>()>;
using SubprocessCallback = InlineFunction<void(
    std::exception_ptr, std::shared_ptr<SubprocessTransport>, std::shared_ptr<SubprocessProtocol>)>;

/// The untyped half of subprocess_exec / subprocess_shell (src/subprocess.cpp).
/// `cancelled` tells whether the caller gave up before the child started.
TULIP_API void open_subprocess(EventLoop& loop, SubprocessFactory factory,
                               std::vector<std::string> argv, SubprocessOptions options,
                               SubprocessCallback done, InlineFunction<bool()> cancelled);

template <class Factory>
using SubprocessFactoryProtocol = typename std::invoke_result_t<Factory&>::element_type;

template <class Factory>
SubprocessFactory erase_subprocess_factory(Factory&& factory) {
  using P = SubprocessFactoryProtocol<Factory>;
  static_assert(std::is_base_of_v<SubprocessProtocol, P>,
                "the factory must return a (shared or unique) pointer to a class derived from "
                "tulip::SubprocessProtocol");
  return
      [factory = std::forward<Factory>(factory)]() mutable -> std::shared_ptr<SubprocessProtocol> {
        std::shared_ptr<P> protocol(factory());
        if (!protocol) throw std::invalid_argument("the protocol factory returned a null pointer");
        return protocol;
      };
}

template <class P>
SubprocessCallback complete_subprocess(Future<SubprocessConnection<P>> result) {
  return [result](std::exception_ptr error, std::shared_ptr<SubprocessTransport> transport,
                  std::shared_ptr<SubprocessProtocol> protocol) mutable {
    if (result.done()) {
      // The caller cancelled meanwhile: as asyncio, the child does not outlive that.
      if (transport) transport->close();
      return;
    }
    if (error) {
      result.set_exception(error);
    } else {
      result.set_result(SubprocessConnection<P>{std::move(transport),
                                                std::static_pointer_cast<P>(std::move(protocol))});
    }
  };
}

}  // namespace detail
}  // namespace tulip
