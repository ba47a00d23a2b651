// EventLoop::connect_read_pipe / connect_write_pipe (pipes.hpp): a transport
// for one end of a pipe someone else opened. Backend-neutral: the backend
// makes the transport (IoBackend::start_pipe_transport).
#include "tulip/pipes.hpp"

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

#include "io_backend.hpp"
#include "loop_access.hpp"
#include "pipe_ops.hpp"
#include "socket_ops.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::detail {

void open_pipe(EventLoop& loop, ProtocolFactory factory, int fd, bool write_end,
               ConnectCompletion completion) {
  const char* operation = write_end ? "connect_write_pipe" : "connect_read_pipe";
  // As every loop method, this runs nothing it was given before returning: the
  // factory is called from the ready queue. The descriptor is ours from here.
  loop.call_soon([&loop, operation, write_end, factory = std::move(factory), owned = OwnedFd(fd),
                  completion = std::move(completion)]() mutable {
    // Cancelled before it ran: the descriptor is closed, no protocol made.
    if (completion.cancelled && completion.cancelled()) return;
    PipeEnd pipe;
    pipe.direction = write_end ? PipeEnd::Direction::kWrite : PipeEnd::Direction::kRead;
    try {
      if (owned.get() < 0) {
        throw_os_error(EBADF, std::string(operation) + "(" + std::to_string(owned.get()) + ")");
      }
      pipe.watch_hang_up = prepare_pipe_descriptor(owned.get(), operation);
      pipe.protocol = factory();
    } catch (...) {
      completion.done(std::current_exception(), nullptr, nullptr);
      return;
    }
    // Shared: the transport's on_made completes the Future, unless starting it fails.
    auto done = std::make_shared<decltype(completion.done)>(std::move(completion.done));
    auto made = std::make_shared<std::shared_ptr<Transport>>();
    std::shared_ptr<StreamProtocol> protocol = pipe.protocol;
    int fd_number = owned.get();
    pipe.fd = owned.release();
    try {
      *made = LoopAccess::backend(loop).start_pipe_transport(
          std::move(pipe), [made, protocol, done]() mutable {
            (*done)(nullptr, std::move(*made), std::move(protocol));
          });
    } catch (const std::system_error& e) {
      // epoll refuses descriptors it cannot poll (EPERM: /dev/null, for one).
      (*done)(std::make_exception_ptr(OSError(
                  e.code(), std::string(operation) + "(" + std::to_string(fd_number) +
                                "): the loop cannot watch this descriptor: " + e.code().message())),
              nullptr, nullptr);
    } catch (...) {
      (*done)(std::current_exception(), nullptr, nullptr);
    }
  });
}

}  // namespace tulip::detail
