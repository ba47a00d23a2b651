// EventLoop::subprocess_exec / subprocess_shell (subprocess.hpp): the
// child's standard streams, the spawn, and the transport with its pipes.
// Backend-neutral: the pipes are the backend's pipe transports and the
// child's exit is watched through the backend seam.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "child_watcher.hpp"
#include "io_backend.hpp"
#include "loop_access.hpp"
#include "socket_ops.hpp"
#include "spawn.hpp"
#include "subprocess_transport.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/subprocess.hpp"

namespace tulip::detail {
namespace {

// The descriptors made for one child: the parent's ends of its pipes, and
// what the child gets. Whatever nobody took is closed when this goes.
struct ChildStreams {
  ChildStreams() = default;
  ChildStreams(const ChildStreams&) = delete;
  ChildStreams& operator=(const ChildStreams&) = delete;
  ~ChildStreams() {
    for (int fd : parent) close_fd(fd);
  }

  int parent[3] = {-1, -1, -1};     // our ends of the pipes, until a transport takes them
  std::vector<OwnedFd> child_side;  // the child's ends, /dev/null, copies: closed after the spawn
  bool pipes[3] = {false, false, false};
};

int keep_child_side(ChildStreams& streams, int fd) {
  streams.child_side.emplace_back(fd);
  return fd;
}

// Sets up stream `target` (0, 1, 2) of the child as `how` says; fills in the
// descriptor the child gets (or -1: inherited).
void prepare_stream(int target, const Stdio& how, SpawnRequest& request, ChildStreams& streams,
                    const char* operation) {
  switch (how.kind()) {
    case Stdio::Kind::kInherit:
      request.stdio[target] = -1;
      return;
    case Stdio::Kind::kPipe: {
      int ends[2];
      // Blocking for the child, as every program expects its stdio to be;
      // our end is made non-blocking below (each end has its own flags).
      if (::pipe2(ends, O_CLOEXEC) < 0) throw_os_error(errno, std::string(operation) + ": pipe2");
      int ours = target == 0 ? ends[1] : ends[0];
      int theirs = target == 0 ? ends[0] : ends[1];
      streams.parent[target] = ours;
      request.stdio[target] = keep_child_side(streams, theirs);
      int flags = ::fcntl(ours, F_GETFL);
      if (flags < 0 || ::fcntl(ours, F_SETFL, flags | O_NONBLOCK) < 0) {
        throw_os_error(errno, std::string(operation) + ": fcntl");
      }
      streams.pipes[target] = true;
      return;
    }
    case Stdio::Kind::kDevNull: {
      int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
      if (fd < 0) throw_os_error(errno, std::string(operation) + ": open /dev/null");
      request.stdio[target] = keep_child_side(streams, fd);
      return;
    }
    case Stdio::Kind::kStdout:
      if (target != 2) {
        throw std::invalid_argument(std::string(operation) +
                                    "(): Stdio::to_stdout() is for stderr only");
      }
      // Wherever stdout goes; the parent's own stdout if the child inherits it.
      request.stdio[2] = request.stdio[1] >= 0 ? request.stdio[1] : 1;
      return;
    case Stdio::Kind::kFd:
      if (how.descriptor() < 0 || ::fcntl(how.descriptor(), F_GETFD) < 0) {
        throw std::invalid_argument(std::string(operation) + "(): Stdio::fd(" +
                                    std::to_string(how.descriptor()) +
                                    ") is not an open descriptor");
      }
      request.stdio[target] = how.descriptor();
      return;
  }
}

// The C library's dup2 actions run in order 0, 1, 2: a source that is itself
// 0, 1 or 2 (the parent closed its own stdio, so a pipe got that number)
// could be overwritten by an earlier dup2. Such sources move above 2 first.
void move_sources_above_stdio(SpawnRequest& request, ChildStreams& streams, const char* operation) {
  for (int target = 0; target < 3; ++target) {
    int source = request.stdio[target];
    if (source < 0 || source > 2 || source == target) continue;
    int moved = ::fcntl(source, F_DUPFD_CLOEXEC, 3);
    if (moved < 0) throw_os_error(errno, std::string(operation) + ": fcntl(F_DUPFD_CLOEXEC)");
    keep_child_side(streams, moved);
    for (int other = target; other < 3; ++other) {
      if (request.stdio[other] == source) request.stdio[other] = moved;
    }
  }
}

}  // namespace

void open_subprocess(EventLoop& loop, SubprocessFactory factory, std::vector<std::string> argv,
                     SubprocessOptions options, SubprocessCallback done,
                     InlineFunction<bool()> cancelled) {
  LoopAccess::throw_if_closed(loop);
  // As every loop method, this runs nothing it was given before returning:
  // the factory and the spawn run from the ready queue.
  loop.call_soon([&loop, factory = std::move(factory), argv = std::move(argv),
                  options = std::move(options), done = std::move(done),
                  cancelled = std::move(cancelled)]() mutable {
    if (cancelled && cancelled()) return;  // given up before the child started
    const char* operation = "subprocess_exec";
    SpawnRequest request;
    request.argv = std::move(argv);
    request.env = std::move(options.env);
    request.cwd = std::move(options.cwd);
    request.pass_fds = std::move(options.pass_fds);
    request.close_fds = options.close_fds;
    request.start_new_session = options.start_new_session;
    request.process_group = options.process_group;
    ChildStreams streams;
    std::shared_ptr<SubprocessProtocol> protocol;
    pid_t pid = -1;
    try {
      validate_spawn_request(request, operation);
      prepare_stream(0, options.std_in, request, streams, operation);
      prepare_stream(1, options.std_out, request, streams, operation);
      prepare_stream(2, options.std_err, request, streams, operation);
      move_sources_above_stdio(request, streams, operation);
      protocol = factory();
      // With the SIGCHLD fallback, its handler must be there before the child.
      ChildWatch::prepare(loop);
      pid = spawn_process(request);
    } catch (...) {
      done(std::current_exception(), nullptr, nullptr);
      return;
    }
    // The child has its copies now.
    streams.child_side.clear();

    auto transport = std::make_shared<UnixSubprocessTransport>(loop, protocol, streams.pipes);
    try {
      transport->watch(pid);
    } catch (...) {
      done(std::current_exception(), nullptr, nullptr);
      return;
    }
    try {
      IoBackend& backend = LoopAccess::backend(loop);
      for (int fd = 0; fd < 3; ++fd) {
        if (!streams.pipes[fd]) continue;
        PipeEnd pipe;
        pipe.fd = std::exchange(streams.parent[fd], -1);
        pipe.direction = fd == 0 ? PipeEnd::Direction::kWrite : PipeEnd::Direction::kRead;
        pipe.watch_hang_up = true;  // a pipe always tells when its reader goes
        pipe.protocol = std::make_shared<SubprocessPipeProtocol>(transport, fd);
        transport->add_pipe(fd, backend.start_pipe_transport(std::move(pipe), [transport, fd] {
          transport->pipe_connected(fd);
        }));
      }
    } catch (...) {
      // The backend refused a pipe: the child goes, the caller hears why.
      transport->abandon();
      done(std::current_exception(), nullptr, nullptr);
      return;
    }
    auto shared_done = std::make_shared<SubprocessCallback>(std::move(done));
    transport->start([transport, protocol, shared_done]() mutable {
      (*shared_done)(nullptr, std::move(transport), std::move(protocol));
    });
  });
}

}  // namespace tulip::detail
