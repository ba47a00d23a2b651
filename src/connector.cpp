#include "connector.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <utility>

#include "address_resolution.hpp"
#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "socket_ops.hpp"
#include "socket_options.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::detail {

std::weak_ptr<CancellableOperation> open_connection(EventLoop& loop, ProtocolFactory factory,
                                                    std::string host, std::uint16_t port,
                                                    ConnectOptions options,
                                                    ConnectCompletion completion) {
  if (loop.is_closed()) throw RuntimeError("Event loop is closed");
  auto connector = std::make_shared<Connector>(loop, std::move(factory), std::move(host), port,
                                               std::move(options), std::move(completion));
  LoopAccess::internals(loop).registry.connectors.emplace(connector.get(), connector);
  connector->start();
  return connector;
}

Connector::Connector(EventLoop& loop, ProtocolFactory factory, std::string host, std::uint16_t port,
                     ConnectOptions options, ConnectCompletion completion)
    : loop_(loop),
      backend_(LoopAccess::backend(loop)),
      factory_(std::move(factory)),
      host_(std::move(host)),
      port_(port),
      options_(std::move(options)),
      completion_(std::move(completion)) {}

void Connector::start() {
  if (options_.timeout > 0) {
    timeout_ =
        loop_.call_later(options_.timeout, [self = shared_from_this()] { self->on_timeout(); });
  }
  resolve_address(
      loop_, host_, port_, options_.family, false,
      [self = shared_from_this()](ResolveResult result) { self->on_resolved(std::move(result)); });
}

void Connector::on_timeout() {
  if (finished_) return;
  close_socket();
  std::string target =
      current_.empty() ? "'" + host_ + "' port " + std::to_string(port_) : current_.to_string();
  char seconds[32];
  std::snprintf(seconds, sizeof(seconds), "%g", options_.timeout);
  std::string what = "connect to " + target + " timed out after " + seconds + " s";
  fail(std::make_exception_ptr(TimeoutError(what)));
}

void Connector::on_resolved(ResolveResult result) {
  if (finished_) return;
  if (completion_.cancelled && completion_.cancelled()) {
    cancel();  // given up before any socket was made
    return;
  }
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
    try {
      pending_ = backend_.start_connect(fd_, current_, [this](std::error_code outcome) {
        // The backend calls this from the loop; the registry keeps `this` alive.
        on_connect_done(outcome);
      });
      return;
    } catch (const std::system_error& e) {
      // The kernel refused to watch the socket (ENOMEM, ENOSPC): next address.
      close_socket();
      record_failure(current_, e.code());
    }
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

void Connector::on_connect_done(std::error_code error) {
  // Hold this attempt: the steps below may finish it (and drop the registry's reference).
  std::shared_ptr<Connector> self = shared_from_this();
  pending_.reset();
  if (error) {
    close_socket();
    record_failure(current_, error);
    try_next_address();
    return;
  }
  on_connected();
}

void Connector::on_connected() {
  // The caller may have cancelled while the connect was in flight: then no
  // protocol is ever made (the cancellation's own callback may not have run yet).
  if (completion_.cancelled && completion_.cancelled()) {
    cancel();
    return;
  }
  std::shared_ptr<StreamProtocol> protocol;
  try {
    protocol = factory_();
  } catch (...) {
    fail(std::current_exception());  // closes the socket
    return;
  }
  int fd = std::exchange(fd_, -1);  // the transport owns it from here
  finished_ = true;
  timeout_.cancel();
  auto on_made = [self = shared_from_this(), protocol]() mutable {
    ConnectCompletion completion = std::move(self->completion_);
    std::shared_ptr<Transport> made = std::move(self->made_);
    self->finish();
    if (completion.done) completion.done(nullptr, std::move(made), std::move(protocol));
  };
  try {
    // The peer is the address connected to: the transport need not ask.
    made_ = backend_.start_stream_transport(StreamSocket{fd, protocol, nullptr, current_},
                                            std::move(on_made));
  } catch (...) {
    // The backend closed the socket; the attempt fails with the kernel's error.
    finished_ = false;
    fail(std::current_exception());
  }
}

void Connector::fail(std::exception_ptr error) {
  if (finished_) return;
  finished_ = true;
  timeout_.cancel();
  ConnectCompletion completion = std::move(completion_);
  finish();
  if (completion.done) completion.done(std::move(error), nullptr, nullptr);
}

void Connector::finish() {
  close_socket();
  // Last: this may drop the registry's reference; callers hold shared_from_this().
  LoopAccess::internals(loop_).registry.connectors.erase(this);
}

void Connector::close_socket() noexcept {
  pending_.reset();
  if (fd_ < 0) return;
  backend_.close_socket(std::exchange(fd_, -1));
}

void Connector::cancel() noexcept {
  if (finished_) return;
  finished_ = true;
  timeout_.cancel();
  completion_ = {};
  std::shared_ptr<Connector> self = shared_from_this();
  finish();
}

}  // namespace tulip::detail
