#include "connector.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <utility>

#include "loop_internals.hpp"
#include "selector/selector_socket_transport.hpp"
#include "socket_ops.hpp"
#include "socket_options.hpp"

namespace tulip::detail {

void open_connection(EventLoop& loop, ProtocolFactory factory, std::string host, std::uint16_t port,
                     ConnectOptions options, ConnectCallback done) {
  if (loop.is_closed()) throw RuntimeError("Event loop is closed");
  auto connector = std::make_shared<Connector>(loop, std::move(factory), std::move(host), port,
                                               std::move(options), std::move(done));
  loop.internals().connectors.emplace(connector.get(), connector);
  connector->start();
}

Connector::Connector(EventLoop& loop, ProtocolFactory factory, std::string host, std::uint16_t port,
                     ConnectOptions options, ConnectCallback done)
    : loop_(loop),
      factory_(std::move(factory)),
      host_(std::move(host)),
      port_(port),
      options_(std::move(options)),
      done_(std::move(done)) {}

void Connector::start() {
  if (options_.timeout > 0) {
    timeout_ = loop_.call_later(options_.timeout, [self = shared_from_this()] {
      if (self->finished_) return;
      self->close_socket();
      std::string target = self->current_.empty()
                               ? "'" + self->host_ + "' port " + std::to_string(self->port_)
                               : self->current_.to_string();
      char seconds[32];
      std::snprintf(seconds, sizeof(seconds), "%g", self->options_.timeout);
      std::string what = "connect to " + target + " timed out after " + seconds + " s";
      self->fail(std::make_exception_ptr(TimeoutError(what)));
    });
  }
  if (auto numeric = SocketAddress::parse(host_, port_)) {
    // Numeric hosts skip the resolver, as in asyncio; the result still arrives
    // through the ready queue, never inside create_connection.
    ResolveResult result;
    result.addresses.push_back(*numeric);
    loop_.call_soon([self = shared_from_this(), result = std::move(result)]() mutable {
      self->on_resolved(std::move(result));
    });
    return;
  }
  loop_.internals().resolver.resolve(
      host_, port_, options_.family, false,
      [self = shared_from_this()](ResolveResult result) { self->on_resolved(std::move(result)); });
}

void Connector::on_resolved(ResolveResult result) {
  if (finished_) return;
  if (!result.error.empty()) {
    fail(std::make_exception_ptr(
        ConnectionError(make_error_code(Error::kNameResolution),
                        "cannot resolve '" + host_ + "': " + result.error)));
    return;
  }
  for (const SocketAddress& address : result.addresses) {
    if (options_.family == AF_UNSPEC || address.family() == options_.family) {
      addresses_.push_back(address);
    }
  }
  if (addresses_.empty()) {
    fail(std::make_exception_ptr(
        ConnectionError(std::make_error_code(std::errc::address_family_not_supported),
                        "cannot connect to '" + host_ + "': no address of the requested family")));
    return;
  }
  try_next_address();
}

void Connector::record_failure(const SocketAddress& address, std::error_code error) {
  last_error_ = error;
  failures_.push_back("connect to " + address.to_string() + " failed: " + error.message());
}

void Connector::try_next_address() {
  while (!finished_ && next_ < addresses_.size()) {
    current_ = addresses_[next_++];
    std::error_code error;
    fd_ = open_socket(current_.family(), SOCK_STREAM, IPPROTO_TCP, error);
    if (fd_ < 0) {
      record_failure(current_, error);
      continue;
    }
    apply_stream_options(fd_, options_.nodelay, options_.keepalive);
    if (options_.local_host) {
      auto local = SocketAddress::parse(*options_.local_host, options_.local_port);
      if (!local || local->family() != current_.family()) {
        // asyncio binds only addresses of the same family: skip this one.
        close_socket();
        record_failure(current_, std::make_error_code(std::errc::address_family_not_supported));
        continue;
      }
      if (::bind(fd_, local->data(), local->size()) < 0) {
        error = errno_code(errno);
        close_socket();
        failures_.push_back("bind to " + local->to_string() + " failed: " + error.message());
        last_error_ = error;
        continue;
      }
    }
    int status;
    do {
      status = ::connect(fd_, current_.data(), current_.size());
    } while (status < 0 && errno == EINTR);
    if (status == 0) {
      on_connected();
      return;
    }
    if (errno == EINPROGRESS) {
      loop_.internals().backend.set_interest(fd_, this, kWritable);
      return;
    }
    error = errno_code(errno);
    close_socket();
    record_failure(current_, error);
  }
  if (finished_) return;
  std::string message;
  if (failures_.size() == 1) {
    message = failures_.front();
  } else {
    message = "Multiple exceptions: ";
    for (std::size_t i = 0; i < failures_.size(); ++i) {
      if (i > 0) message += "; ";
      message += failures_[i];
    }
  }
  fail(std::make_exception_ptr(ConnectionError(last_error_, message)));
}

void Connector::on_io_event(std::uint32_t) {
  std::error_code error = socket_error(fd_);
  if (error) {
    close_socket();
    record_failure(current_, error);
    try_next_address();
    return;
  }
  on_connected();
}

void Connector::on_connected() {
  std::shared_ptr<StreamProtocol> protocol;
  try {
    protocol = factory_();
  } catch (...) {
    fail(std::current_exception());  // closes (and unwatches) the socket
    return;
  }
  int fd = std::exchange(fd_, -1);  // the transport owns it from here
  // The transport takes the descriptor's registration over from this connector
  // (it replaces the watcher in start()), and the peer is the address connected to.
  auto transport =
      std::make_shared<SelectorSocketTransport>(loop_, fd, protocol, nullptr, current_);
  finished_ = true;
  timeout_.cancel();
  // The Future completes after connection_made has run (asyncio's waiter).
  transport->start([self = shared_from_this(), transport, protocol]() mutable {
    ConnectCallback done = std::move(self->done_);
    self->finish();
    done(nullptr, std::move(transport), std::move(protocol));
  });
}

void Connector::fail(std::exception_ptr error) {
  if (finished_) return;
  finished_ = true;
  timeout_.cancel();
  ConnectCallback done = std::move(done_);
  finish();
  done(std::move(error), nullptr, nullptr);
}

void Connector::finish() {
  close_socket();
  // Last: this may drop the registry's reference; callers hold shared_from_this().
  loop_.internals().connectors.erase(this);
}

void Connector::close_socket() {
  if (fd_ < 0) return;
  loop_.internals().backend.set_interest(fd_, this, 0);
  close_fd(fd_);
  fd_ = -1;
}

void Connector::abandon() {
  finished_ = true;
  timeout_.cancel();
  close_socket();
  done_ = nullptr;
}

}  // namespace tulip::detail
