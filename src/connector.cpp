#include "connector.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>

#include "address_resolution.hpp"
#include "direct_connect.hpp"
#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "socket_ops.hpp"
#include "socket_options.hpp"
#include "tls/tls_wiring.hpp"
#include "tulip/event_loop.hpp"
#include "unix_socket_file.hpp"

namespace tulip::detail {
namespace {

// asyncio's _interleave_addrinfos: the first `first_count` addresses of the
// first family, then one address of each family in turn (families in the
// order they first appear), so that a family that does not work is not tried
// over and over before the other gets its chance.
std::vector<SocketAddress> interleave_families(std::vector<SocketAddress> addresses,
                                               int first_count) {
  std::vector<std::vector<SocketAddress>> by_family;
  for (SocketAddress& address : addresses) {
    auto same = std::find_if(by_family.begin(), by_family.end(), [&](const auto& group) {
      return group.front().family() == address.family();
    });
    if (same == by_family.end()) {
      by_family.push_back({std::move(address)});
    } else {
      same->push_back(std::move(address));
    }
  }
  std::vector<SocketAddress> reordered;
  std::vector<std::size_t> next(by_family.size(), 0);
  auto first_extra = static_cast<std::size_t>(first_count - 1);
  for (; next[0] < first_extra && next[0] < by_family[0].size(); ++next[0]) {
    reordered.push_back(by_family[0][next[0]]);
  }
  for (bool more = true; more;) {
    more = false;
    for (std::size_t family = 0; family < by_family.size(); ++family) {
      if (next[family] < by_family[family].size()) {
        reordered.push_back(by_family[family][next[family]++]);
        more = true;
      }
    }
  }
  return reordered;
}

// With `options.ssl`, makes `factory` and `completion` those of a TLS client
// (tls_wiring.hpp) and returns what cancellation must stop instead of the
// connector; null without TLS. Options TLS would need without `options.ssl`
// fail the Future, as asyncio raises ValueError for them. Returns false if
// the Future was failed (nothing to start).
template <class Options>
bool prepare_tls_client(EventLoop& loop, const Options& options, const std::string& host,
                        ProtocolFactory& factory, ConnectCompletion& completion,
                        std::shared_ptr<CancellableOperation>& tls) {
  try {
    if (!options.ssl) {
      if (options.server_hostname) {
        throw std::invalid_argument("server_hostname is only meaningful with ssl");
      }
      if (options.ssl_session)
        throw std::invalid_argument("ssl_session is only meaningful with ssl");
      return true;
    }
    tls = wrap_tls_client(loop, factory, completion, client_tls_settings(options, host));
    return true;
  } catch (...) {
    completion.done(std::current_exception(), nullptr, nullptr);
    return false;
  }
}

// The operation cancelling the caller's Future stops: the TLS attempt (which
// stops the connector) or the connector itself.
std::weak_ptr<CancellableOperation> cancellation_target(
    const std::shared_ptr<Connector>& connector, const std::shared_ptr<CancellableOperation>& tls) {
  if (!tls) return connector;
  set_connect_operation(*tls, connector);
  return tls;
}

}  // namespace

std::weak_ptr<CancellableOperation> open_connection(EventLoop& loop, ProtocolFactory factory,
                                                    const std::string& host, std::uint16_t port,
                                                    const ConnectOptions& options,
                                                    ConnectCompletion completion) {
  LoopAccess::throw_if_closed(loop);
  std::shared_ptr<CancellableOperation> tls;
  if (!prepare_tls_client(loop, options, host, factory, completion, tls)) return {};
  // A numeric host with nothing else asked for: one address, no lookup.
  if (auto address = direct_connect_address(host, port, options)) {
    return start_direct_connect(loop, std::move(factory), *address, options, std::move(completion));
  }
  auto connector = std::make_shared<Connector>(loop, std::move(factory), host, port, options,
                                               std::move(completion));
  LoopAccess::internals(loop).registry.connectors.emplace(connector.get(), connector);
  connector->start();
  return cancellation_target(connector, tls);
}

std::weak_ptr<CancellableOperation> open_unix_connection(EventLoop& loop, ProtocolFactory factory,
                                                         std::string path,
                                                         UnixConnectOptions options,
                                                         ConnectCompletion completion) {
  if (loop.is_closed()) throw RuntimeError("Event loop is closed");
  SocketAddress address;
  try {
    address = unix_address_or_throw(path, "cannot connect to");
  } catch (...) {
    // A bad path fails the Future, as asyncio's coroutine raises; nothing was opened.
    completion.done(std::current_exception(), nullptr, nullptr);
    return {};
  }
  // A path names no host: the server's name must be given (asyncio requires
  // server_hostname here too, unless the context does not check names).
  std::shared_ptr<CancellableOperation> tls;
  if (!prepare_tls_client(loop, options, std::string(), factory, completion, tls)) return {};
  ConnectOptions connect;
  connect.timeout = options.timeout;
  auto connector =
      std::make_shared<Connector>(loop, std::move(factory), std::move(address),
                                  describe_unix_path(path), connect, std::move(completion));
  LoopAccess::internals(loop).registry.connectors.emplace(connector.get(), connector);
  connector->start();
  return cancellation_target(connector, tls);
}

// ---- ConnectAttempt: the end every attempt shares --------------------------------------

ConnectAttempt::ConnectAttempt(EventLoop& loop, ProtocolFactory&& factory,
                               ConnectCompletion&& completion)
    : loop_(loop),
      backend_(LoopAccess::backend(loop)),
      factory_(std::move(factory)),
      completion_(std::move(completion)) {}

void ConnectAttempt::connected(const SocketAddress& peer) {
  // The caller may have cancelled while the connect was in flight: then no
  // protocol is ever made (the cancellation's own callback may not have run yet).
  if (caller_gave_up()) {
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
  on_finished();
  // Completes the caller's Future right after connection_made; the attempt
  // leaves the registry only then.
  auto on_made = [self = shared_from_this(), protocol]() mutable {
    ConnectCompletion completion = std::move(self->completion_);
    std::shared_ptr<Transport> made = std::move(self->made_);
    self->finish();
    if (completion.done) completion.done(nullptr, std::move(made), std::move(protocol));
  };
  try {
    made_ = backend_.start_stream_transport(StreamSocket{fd, protocol, nullptr, peer},
                                            std::move(on_made));
  } catch (...) {
    // The backend closed the socket; the attempt fails with the kernel's error.
    finished_ = false;
    fail(std::current_exception());
  }
}

void ConnectAttempt::fail(std::exception_ptr error) {
  if (finished_) return;
  finished_ = true;
  on_finished();
  ConnectCompletion completion = std::move(completion_);
  std::shared_ptr<ConnectAttempt> self = shared_from_this();
  finish();
  if (completion.done) completion.done(std::move(error), nullptr, nullptr);
}

void ConnectAttempt::finish() {
  close_socket();
  // Last: this may drop the registry's reference; callers hold shared_from_this().
  LoopAccess::internals(loop_).registry.connectors.erase(this);
}

void ConnectAttempt::cancel() noexcept {
  if (finished_) return;
  finished_ = true;
  on_finished();
  completion_ = {};
  std::shared_ptr<ConnectAttempt> self = shared_from_this();
  finish();
}

// ---- Connector ---------------------------------------------------------------------------

Connector::Connector(EventLoop& loop, ProtocolFactory factory, SocketAddress address,
                     std::string target, ConnectOptions options, ConnectCompletion completion)
    : Connector(loop, std::move(factory), std::move(target), 0, std::move(options),
                std::move(completion)) {
  known_ = std::move(address);
}

Connector::Connector(EventLoop& loop, ProtocolFactory factory, std::string host, std::uint16_t port,
                     ConnectOptions options, ConnectCompletion completion)
    : ConnectAttempt(loop, std::move(factory), std::move(completion)),
      host_(std::move(host)),
      port_(port),
      options_(std::move(options)) {}

void Connector::start() {
  if (options_.timeout > 0) {
    timeout_ = loop_.call_later(options_.timeout, [self = shared_self()] { self->on_timeout(); });
  }
  if (known_) {
    // Nothing to look up; the attempt still starts from the loop, never inside
    // the call that asked for it.
    loop_.call_soon([self = shared_self()] {
      ResolveResult known;
      known.addresses.push_back(*self->known_);
      self->on_resolved(std::move(known));
    });
    return;
  }
  resolve_address(
      loop_, host_, port_, options_.family, false,
      [self = shared_self()](ResolveResult result) { self->on_resolved(std::move(result)); });
}

void Connector::on_timeout() {
  if (finished_) return;
  close_socket();
  std::string target = known_             ? host_
                       : current_.empty() ? "'" + host_ + "' port " + std::to_string(port_)
                                          : current_.to_string();
  char seconds[32];
  std::snprintf(seconds, sizeof(seconds), "%g", options_.timeout);
  std::string what = "connect to " + target + " timed out after " + seconds + " s";
  fail(std::make_exception_ptr(TimeoutError(what)));
}

void Connector::on_resolved(ResolveResult result) {
  if (finished_) return;
  if (caller_gave_up()) {
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
  int interleave = options_.interleave.value_or(options_.happy_eyeballs_delay ? 1 : 0);
  if (interleave > 0) addresses_ = interleave_families(std::move(addresses_), interleave);
  try_next_address();
}

void Connector::record_failure(const SocketAddress& address, std::error_code error) {
  last_error_ = error;
  std::string target = known_ ? host_ : address.to_string();
  failures_.push_back("connect to " + target + " failed: " + error.message());
}

void Connector::try_next_address() {
  while (!finished_ && next_ < addresses_.size()) {
    current_ = addresses_[next_++];
    std::error_code error;
    bool tcp = current_.family() != AF_UNIX;
    int fd = open_socket(current_.family(), SOCK_STREAM, tcp ? IPPROTO_TCP : 0, error);
    if (fd < 0) {
      record_failure(current_, error);
      continue;
    }
    // TCP_NODELAY and keep-alive are TCP's; a Unix socket has neither.
    if (tcp) apply_stream_options(fd, options_.nodelay, options_.keepalive);
    if (options_.local_host) {
      auto local = SocketAddress::parse(*options_.local_host, options_.local_port);
      if (!local || local->family() != current_.family()) {
        // asyncio binds only addresses of the same family: skip this one.
        backend_.close_socket(fd);
        record_failure(current_, std::make_error_code(std::errc::address_family_not_supported));
        continue;
      }
      if (::bind(fd, local->data(), local->size()) < 0) {
        error = errno_code(errno);
        backend_.close_socket(fd);
        failures_.push_back("bind to " + local->to_string() + " failed: " + error.message());
        last_error_ = error;
        continue;
      }
    }
    auto attempt = std::make_unique<Attempt>();
    attempt->address = current_;
    attempt->fd = fd;
    Attempt* raw = attempt.get();
    try {
      attempt->pending = backend_.start_connect(fd, current_, [this, raw](std::error_code outcome) {
        // The backend calls this from the loop; the registry keeps `this`
        // alive, and `raw` stays in attempts_ until this call or close_attempt.
        on_connect_done(raw, outcome);
      });
    } catch (const std::system_error& e) {
      // The kernel refused to watch the socket (ENOMEM, ENOSPC): next address.
      backend_.close_socket(fd);
      record_failure(current_, e.code());
      continue;
    }
    attempts_.push_back(std::move(attempt));
    if (options_.happy_eyeballs_delay && next_ < addresses_.size()) {
      // RFC 8305: give this attempt a head start, then race the next one.
      stagger_.cancel();
      stagger_ = loop_.call_later(*options_.happy_eyeballs_delay,
                                  [self = shared_self()] { self->try_next_address(); });
    }
    return;
  }
  fail_if_exhausted();
}

void Connector::fail_if_exhausted() {
  if (finished_ || !attempts_.empty() || next_ < addresses_.size()) return;
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

void Connector::close_attempt(Attempt& attempt) noexcept {
  // The pending connect stops watching first; then the socket goes.
  attempt.pending.reset();
  if (attempt.fd >= 0) backend_.close_socket(std::exchange(attempt.fd, -1));
}

void Connector::on_connect_done(Attempt* attempt, std::error_code error) {
  // Hold this attempt: the steps below may finish it (and drop the registry's reference).
  std::shared_ptr<ConnectAttempt> self = shared_from_this();
  auto it = std::find_if(attempts_.begin(), attempts_.end(),
                         [attempt](const auto& a) { return a.get() == attempt; });
  if (it == attempts_.end()) return;  // closed meanwhile
  std::unique_ptr<Attempt> done = std::move(*it);
  attempts_.erase(it);
  // The operation calling us touches nothing of itself after this callback
  // (selector_connect.cpp), so it may go now.
  done->pending.reset();
  if (error) {
    close_attempt(*done);
    record_failure(done->address, error);
    // A failed attempt starts the next one at once, Happy Eyeballs or not.
    if (next_ < addresses_.size()) {
      stagger_.cancel();
      try_next_address();
    } else {
      fail_if_exhausted();
    }
    return;
  }
  // The winner: the others are closed, and no further attempt starts.
  stagger_.cancel();
  for (auto& other : attempts_) close_attempt(*other);
  attempts_.clear();
  fd_ = std::exchange(done->fd, -1);
  current_ = done->address;
  // The peer is the address connected to: the transport need not ask.
  connected(current_);
}

void Connector::close_socket() noexcept {
  stagger_.cancel();
  for (auto& attempt : attempts_) close_attempt(*attempt);
  attempts_.clear();
  if (fd_ < 0) return;
  backend_.close_socket(std::exchange(fd_, -1));
}

}  // namespace tulip::detail
