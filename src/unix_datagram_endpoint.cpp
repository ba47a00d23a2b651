// EventLoop::create_unix_datagram_endpoint: a datagram endpoint on a Unix
// socket path (asyncio's create_datagram_endpoint with family=AF_UNIX).
//
// The socket file follows create_unix_server's rules (unix_socket_file.cpp):
// a file nobody is bound to any more is replaced, a live one is never taken,
// and the file is removed when the endpoint's socket closes, if it is still
// the one bound. asyncio removes any socket file at the path unconditionally,
// which leaves a live endpoint there bound but unreachable.
#include <sys/socket.h>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "io_backend.hpp"
#include "loop_access.hpp"
#include "socket_ops.hpp"
#include "tulip/event_loop.hpp"
#include "unix_socket_file.hpp"

namespace tulip::detail {
namespace {

// Binds `fd` to `path`; returns what removes the socket file on release (empty
// when there is nothing to remove).
InlineFunction<void()> bind_local(int fd, const std::string& path, bool cleanup) {
  if (path.empty()) {
    // Autobind: the kernel picks a unique abstract name (Python's bind('') on Linux).
    sockaddr unnamed{};
    unnamed.sa_family = AF_UNIX;
    if (::bind(fd, &unnamed, sizeof(sa_family_t)) < 0) {
      std::error_code error = errno_code(errno);
      throw OSError(error,
                    "cannot bind a Unix datagram socket to an abstract name of the "
                    "kernel's choice: " +
                        error.message());
    }
    return nullptr;
  }
  SocketAddress local = unix_address_or_throw(path, "cannot bind");
  if (local.is_abstract()) {
    bind_unix_socket(fd, local);
    return nullptr;
  }
  remove_stale_socket_file(local, SOCK_DGRAM);
  bind_unix_socket(fd, local);
  if (!cleanup) return nullptr;
  std::optional<SocketFileIdentity> identity = identify_socket_file(path);
  if (!identity) return nullptr;
  return [path, identity = *identity] { remove_socket_file_if_unchanged(path, identity); };
}

SocketAddress connect_remote(int fd, const std::string& path) {
  SocketAddress remote = unix_address_or_throw(path, "cannot connect to");
  if (::connect(fd, remote.data(), remote.size()) < 0) {
    std::error_code error = errno_code(errno);
    std::string hint;
    if (error == std::errc::connection_refused) hint = " (nobody is bound there)";
    if (error == std::errc::wrong_protocol_type) hint = " (not a datagram socket)";
    throw OSError(error,
                  "connect to " + describe_unix_path(path) + " failed: " + error.message() + hint);
  }
  return remote;
}

}  // namespace

void open_unix_datagram_endpoint(EventLoop& loop, DatagramProtocolFactory factory,
                                 std::optional<std::string> local_path,
                                 std::optional<std::string> remote_path,
                                 UnixDatagramOptions options, DatagramCompletion completion) {
  if (loop.is_closed()) throw RuntimeError("Event loop is closed");
  // As every loop method, this opens nothing before returning: the steps run
  // from the ready queue, and the Future learns the outcome.
  loop.call_soon([&loop, factory = std::move(factory), local_path = std::move(local_path),
                  remote_path = std::move(remote_path), options,
                  completion = std::move(completion)]() mutable {
    if (completion.cancelled && completion.cancelled()) return;  // nothing was opened
    std::error_code error;
    int fd = open_socket(AF_UNIX, SOCK_DGRAM, 0, error);
    if (fd < 0) {
      completion.done(
          std::make_exception_ptr(
              OSError(error, "socket() for a Unix datagram endpoint failed: " + error.message())),
          nullptr, nullptr);
      return;
    }
    OwnedFd owned(fd);
    InlineFunction<void()> remove_file;
    std::optional<SocketAddress> remote;
    std::shared_ptr<DatagramProtocol> protocol;
    try {
      if (local_path) remove_file = bind_local(fd, *local_path, options.cleanup_socket);
      if (remote_path) remote = connect_remote(fd, *remote_path);
      protocol = factory();
    } catch (...) {
      // The file this call bound is not left behind.
      close_fd(owned.release());
      if (remove_file) remove_file();
      completion.done(std::current_exception(), nullptr, nullptr);
      return;
    }
    auto done = std::make_shared<decltype(completion.done)>(std::move(completion.done));
    auto made = std::make_shared<std::shared_ptr<DatagramTransport>>();
    try {
      // The Future completes after connection_made has run, as for UDP.
      *made = LoopAccess::backend(loop).start_datagram_transport(
          DatagramSocket{owned.release(), protocol, remote, options.max_datagram_size,
                         std::move(remove_file)},
          [made, protocol, done]() mutable {
            (*done)(nullptr, std::move(*made), std::move(protocol));
          });
    } catch (...) {
      (*done)(std::current_exception(), nullptr, nullptr);
    }
  });
}

}  // namespace tulip::detail
