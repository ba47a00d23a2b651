#include "tulip/server.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>

#include "address_resolution.hpp"
#include "io_backend.hpp"
#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "server_access.hpp"
#include "socket_ops.hpp"
#include "socket_options.hpp"
#include "stream_transport_base.hpp"
#include "tls/tls_wiring.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/log.hpp"
#include "unix_socket_file.hpp"

namespace tulip {
namespace {

// asyncio waits one second after an accept() that failed for lack of resources.
constexpr double kAcceptBackoffSeconds = 1.0;

// Opens, configures, binds and listens; returns the fd or throws OSError naming the address.
int open_listening_socket(const SocketAddress& address, const ServerOptions& options) {
  std::error_code error;
  int fd = detail::open_socket(address.family(), SOCK_STREAM, IPPROTO_TCP, error);
  if (fd < 0) {
    throw OSError(error, "socket() for " + address.to_string() + " failed: " + error.message());
  }
  if (options.reuse_address) detail::set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (options.reuse_port) {
    if (auto e = detail::set_int_option(fd, SOL_SOCKET, SO_REUSEPORT, 1)) {
      detail::close_fd(fd);
      throw OSError(e, "SO_REUSEPORT on " + address.to_string() + " failed: " + e.message());
    }
  }
  // As asyncio: an IPv6 socket serves IPv6 only, so binding "" can also bind IPv4.
  if (address.family() == AF_INET6) detail::set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  if (::bind(fd, address.data(), address.size()) < 0) {
    error = detail::errno_code(errno);
    detail::close_fd(fd);
    throw OSError(error, "error while attempting to bind on address " + address.to_string() + ": " +
                             error.message());
  }
  if (::listen(fd, options.backlog) < 0) {
    error = detail::errno_code(errno);
    detail::close_fd(fd);
    throw OSError(error, "listen() on " + address.to_string() + " failed: " + error.message());
  }
  return fd;
}

}  // namespace

Server::Server(EventLoop& loop, ProtocolFactory factory, ServerOptions options)
    : loop_(loop), factory_(std::move(factory)), options_(std::move(options)) {}

Server::~Server() = default;

void Server::add_listener(int fd) {
  listeners_.push_back(
      detail::LoopAccess::backend(loop_).make_listener(*this, fd, options_.backlog));
}

void Server::set_socket_file(std::string path, std::uint64_t device, std::uint64_t inode) {
  socket_file_ = std::move(path);
  socket_file_device_ = device;
  socket_file_inode_ = inode;
}

void Server::start_serving() {
  if (serving_ || closed_) return;
  set_accepting(true);
  serving_ = true;
}

void Server::set_accepting(bool accepting) {
  for (auto& listener : listeners_) listener->set_accepting(accepting);
}

std::vector<ServerSocket> Server::sockets() const {
  std::vector<ServerSocket> result;
  for (const auto& listener : listeners_) result.push_back({listener->fd(), listener->address()});
  return result;
}

void Server::on_accepted(int fd, const SocketAddress& peer) {
  ++accepted_;
  // Unix servers are made with nodelay off and no keep-alive: nothing to set.
  if (options_.nodelay || options_.keepalive) {
    detail::apply_stream_options(fd, options_.nodelay, options_.keepalive);
  }
  std::shared_ptr<StreamProtocol> protocol;
  try {
    protocol = factory_();
  } catch (...) {
    detail::close_fd(fd);
    ExceptionContext context;
    context.message = "Error in the protocol factory of a server; the connection was closed";
    context.exception = std::current_exception();
    context.server = this;
    loop_.call_exception_handler(context);
    return;
  }
  try {
    detail::LoopAccess::backend(loop_).start_stream_transport(
        detail::StreamSocket{fd, std::move(protocol), shared_from_this(), peer}, nullptr);
  } catch (...) {
    // The kernel refused to watch this connection (ENOMEM, ENOSPC): the backend
    // closed it and registered nothing; the server and its other connections go on.
    ExceptionContext context;
    context.message = "Error starting an accepted connection; the connection was closed";
    context.exception = std::current_exception();
    context.server = this;
    loop_.call_exception_handler(context);
  }
}

void Server::pause_accepting(int error) {
  bool out_of_resources = error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
  ExceptionContext context;
  context.message = std::string(out_of_resources ? "socket.accept() out of system resource ("
                                                 : "socket.accept() failed (") +
                    detail::errno_code(error).message() + "); accepting again in " +
                    std::to_string(static_cast<int>(kAcceptBackoffSeconds)) + " s";
  context.server = this;
  loop_.call_exception_handler(context);
  set_accepting(false);
  resume_accepting_.cancel();
  resume_accepting_ = loop_.call_later(kAcceptBackoffSeconds, [self = shared_from_this()] {
    if (self->serving_ && !self->closed_) self->set_accepting(true);
  });
}

void Server::close() {
  if (closed_) return;
  closed_ = true;
  serving_ = false;
  resume_accepting_.cancel();
  listeners_.clear();  // unwatches and closes every listening socket
  if (!socket_file_.empty()) {
    // asyncio 3.13's cleanup_socket: the file goes with the server, unless
    // someone removed it and bound another there meanwhile.
    detail::remove_socket_file_if_unchanged(socket_file_, {static_cast<dev_t>(socket_file_device_),
                                                           static_cast<ino_t>(socket_file_inode_)});
    socket_file_.clear();
  }
  // asyncio cancels the serve_forever() task when the server closes.
  Future<void> serving = std::move(serve_forever_waiter_);
  serve_forever_waiter_ = Future<void>();
  if (serving.valid() && !serving.done()) serving.cancel("the server was closed");
  maybe_wake_closed_waiters();
  // The loop keeps an open server alive; a closed one lives on while the
  // application holds it or connections it accepted remain (they know it by
  // a plain pointer, so it holds itself for them until the last is released).
  if (clients_ != 0) kept_for_clients_ = shared_from_this();
  detail::LoopAccess::internals(loop_).registry.servers.erase(shared_from_this());
}

namespace {

// The live stream transports of `loop` that `server` accepted, held: closing
// one must not end another's life in the middle of the walk.
std::vector<std::shared_ptr<Transport>> clients_of(EventLoop& loop, const Server& server) {
  std::vector<std::shared_ptr<Transport>> clients;
  detail::LoopAccess::internals(loop).registry.transports.for_each([&](detail::LoopMember& member) {
    auto* transport = dynamic_cast<detail::StreamTransportBase*>(&member);
    if (transport != nullptr && transport->accepted_by() == &server) {
      clients.push_back(transport->shared());
    }
  });
  return clients;
}

}  // namespace

void Server::close_clients() {
  for (const std::shared_ptr<Transport>& client : clients_of(loop_, *this)) client->close();
}

void Server::abort_clients() {
  for (const std::shared_ptr<Transport>& client : clients_of(loop_, *this)) client->abort();
}

void Server::attach(Transport*) {
  ++clients_;
  // A server closed before this connection was attached (its factory may
  // close it) holds itself for it as for those it had when it closed.
  if (closed_ && !kept_for_clients_) kept_for_clients_ = shared_from_this();
}

void Server::detach(Transport*) {
  --clients_;
  maybe_wake_closed_waiters();
  // The last client of a closed server is gone: the server's own reference
  // goes too, last (it may be the only one left).
  if (clients_ == 0 && kept_for_clients_)
    std::shared_ptr<Server> last = std::move(kept_for_clients_);
}

void Server::maybe_wake_closed_waiters() {
  if (!closed_ || clients_ != 0) return;
  std::vector<Future<void>> waiters = std::move(closed_waiters_);
  closed_waiters_.clear();
  for (Future<void>& waiter : waiters) {
    if (!waiter.done()) waiter.set_result();
  }
}

Future<void> Server::wait_closed() {
  Future<void> waiter = loop_.create_future();
  if (closed_ && clients_ == 0) {
    waiter.set_result();
  } else {
    closed_waiters_.push_back(waiter);
  }
  return waiter;
}

Future<void> Server::serve_forever() {
  if (closed_) throw RuntimeError("server is closed");
  if (serve_forever_waiter_.valid() && !serve_forever_waiter_.done()) {
    throw RuntimeError("server is already being awaited on serve_forever()");
  }
  start_serving();
  Future<void> waiter = loop_.create_future();
  serve_forever_waiter_ = waiter;
  // Cancelling serve_forever() closes the server, as in asyncio.
  waiter.add_done_callback([weak = weak_from_this()](Future<void>& done) {
    if (!done.cancelled()) return;
    if (auto server = weak.lock()) server->close();
  });
  return waiter;
}

namespace detail {

void close_server(Server& server) { server.close(); }

void open_server(EventLoop& loop, ProtocolFactory factory, std::string host, std::uint16_t port,
                 ServerOptions options, ServerCallback done) {
  LoopAccess::throw_if_closed(loop);
  if (options.backlog <= 0) options.backlog = 100;
  if (options.ssl) {
    try {
      factory = wrap_tls_server(loop, std::move(factory), server_tls_settings(options));
    } catch (...) {
      done(std::current_exception(), nullptr);  // bad TLS options: nothing was opened
      return;
    }
  }
  auto on_resolved = [&loop, factory = std::move(factory), options, host,
                      done = std::move(done)](ResolveResult resolved) mutable {
    if (!resolved.error.empty()) {
      done(std::make_exception_ptr(OSError(make_error_code(Error::kNameResolution),
                                           "cannot resolve '" + host + "': " + resolved.error)),
           nullptr);
      return;
    }
    auto server = ServerAccess::create(loop, std::move(factory), options);
    try {
      for (const SocketAddress& address : resolved.addresses) {
        if (options.family != AF_UNSPEC && address.family() != options.family) continue;
        ServerAccess::add_listener(*server, open_listening_socket(address, options));
      }
      if (server->sockets().empty()) {
        throw OSError(std::make_error_code(std::errc::address_family_not_supported),
                      "no address of the requested family for '" + host + "'");
      }
      LoopAccess::internals(loop).registry.servers.insert(server);
      if (options.start_serving) server->start_serving();
    } catch (...) {
      server->close();  // closes whatever was already bound
      done(std::current_exception(), nullptr);
      return;
    }
    done(nullptr, std::move(server));
  };
  resolve_address(loop, host, port, options.family, true, std::move(on_resolved));
}

}  // namespace detail
}  // namespace tulip
