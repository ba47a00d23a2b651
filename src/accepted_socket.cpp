// EventLoop::connect_accepted_socket: a transport for a socket someone else connected.
#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <utility>

#include "io_backend.hpp"
#include "loop_access.hpp"
#include "socket_ops.hpp"
#include "socket_options.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/socket_address.hpp"

namespace tulip::detail {
namespace {

// Owns the descriptor until a transport takes it, so that every path that does
// not get that far (an error, a cancellation, or a loop closed before the
// adoption ran) closes it.
class OwnedFd {
 public:
  explicit OwnedFd(int fd) noexcept : fd_(fd) {}
  OwnedFd(OwnedFd&& other) noexcept : fd_(other.release()) {}
  OwnedFd& operator=(OwnedFd&&) = delete;
  ~OwnedFd() { close_fd(fd_); }

  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

std::exception_ptr os_error(int error, int fd, const char* what) {
  return std::make_exception_ptr(
      OSError(errno_code(error), "connect_accepted_socket(fd " + std::to_string(fd) + "): " + what +
                                     ": " + errno_code(error).message()));
}

// Checks that `fd` is a connected TCP socket and readies it for a transport;
// returns the error that says why not. `peer` gets the peer's address, which
// the check has to ask for anyway and the transport then need not.
std::exception_ptr prepare(int fd, SocketAddress& peer) {
  int type = get_int_option(fd, SOL_SOCKET, SO_TYPE);
  if (type < 0) return os_error(errno, fd, "not a socket");
  int family = SocketAddress::local_of(fd).family();
  if (type != SOCK_STREAM || (family != AF_INET && family != AF_INET6)) {
    return std::make_exception_ptr(std::invalid_argument(
        "connect_accepted_socket(fd " + std::to_string(fd) + "): a TCP socket was expected"));
  }
  peer = SocketAddress::peer_of(fd);
  if (peer.empty()) return os_error(ENOTCONN, fd, "not connected");
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return os_error(errno, fd, "cannot make it non-blocking");
  }
  apply_stream_options(fd, /*nodelay=*/true, std::nullopt);
  return nullptr;
}

}  // namespace

void adopt_connection(EventLoop& loop, ProtocolFactory factory, int fd,
                      ConnectCompletion completion) {
  // As every loop method, this runs nothing it was given before returning: the
  // factory is called from the ready queue.
  loop.call_soon([&loop, factory = std::move(factory), owned = OwnedFd(fd),
                  completion = std::move(completion)]() mutable {
    // Cancelled before the adoption ran: the descriptor is closed, no protocol made.
    if (completion.cancelled && completion.cancelled()) return;
    if (owned.get() < 0) {
      completion.done(os_error(EBADF, -1, "invalid descriptor"), nullptr, nullptr);
      return;
    }
    SocketAddress peer;
    if (std::exception_ptr error = prepare(owned.get(), peer)) {
      completion.done(std::move(error), nullptr, nullptr);
      return;
    }
    std::shared_ptr<StreamProtocol> protocol;
    try {
      protocol = factory();
    } catch (...) {
      completion.done(std::current_exception(), nullptr, nullptr);
      return;
    }
    // Shared: the transport's on_made completes the Future, unless starting it fails.
    auto done = std::make_shared<decltype(completion.done)>(std::move(completion.done));
    auto made = std::make_shared<std::shared_ptr<Transport>>();
    try {
      // The Future completes after connection_made has run, as for create_connection.
      *made = LoopAccess::backend(loop).start_stream_transport(
          StreamSocket{owned.release(), protocol, nullptr, peer}, [made, protocol, done]() mutable {
            (*done)(nullptr, std::move(*made), std::move(protocol));
          });
    } catch (...) {
      (*done)(std::current_exception(), nullptr, nullptr);
    }
  });
}

}  // namespace tulip::detail
