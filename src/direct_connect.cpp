#include "direct_connect.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <exception>
#include <string>
#include <system_error>
#include <utility>

#include "connector.hpp"
#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "socket_ops.hpp"
#include "socket_options.hpp"
#include "tulip/errors.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::detail {
namespace {

class DirectConnect final : public ConnectAttempt {
 public:
  DirectConnect(EventLoop& loop, ProtocolFactory&& factory, const SocketAddress& address,
                const ConnectOptions& options, ConnectCompletion&& completion)
      : ConnectAttempt(loop, std::move(factory), std::move(completion)),
        address_(address),
        nodelay_(options.nodelay),
        keepalive_(options.keepalive) {}

  // The socket is made from the loop, never inside create_connection: a
  // caller that gives up at once (asyncio: the task awaiting create_connection
  // was cancelled before it ran) makes no connection at all.
  void start_soon() {
    loop_.call_soon(
        [self = std::static_pointer_cast<DirectConnect>(shared_from_this())] { self->start(); });
  }

 private:
  void start() {
    if (finished_) return;
    if (caller_gave_up()) {
      cancel();  // given up before any socket was made
      return;
    }
    std::error_code error;
    fd_ = open_socket(address_.family(), SOCK_STREAM, IPPROTO_TCP, error);
    if (fd_ < 0) {
      fail_with(error);
      return;
    }
    apply_stream_options(fd_, nodelay_, keepalive_);
    try {
      // The backend reports from the loop; the registry keeps `this` alive
      // until then, and a cancel destroys the pending connect first.
      pending_ = backend_.start_connect(
          fd_, address_, [this](std::error_code outcome) { on_connect_done(outcome); });
    } catch (const std::system_error& e) {
      // The kernel refused to watch the socket (ENOMEM, ENOSPC).
      close_socket();
      fail_with(e.code());
    }
  }

  void on_connect_done(std::error_code error) {
    // The steps below may finish this attempt (and drop the registry's reference).
    std::shared_ptr<ConnectAttempt> self = shared_from_this();
    // The operation calling us touches nothing of itself after this callback
    // (its contract), so it may go now.
    pending_.reset();
    if (error) {
      fail_with(error);
      return;
    }
    // The peer is the address connected to: the transport need not ask.
    connected(address_);
  }

  void fail_with(std::error_code error) {
    fail(std::make_exception_ptr(ConnectionError(
        error, "connect to " + address_.to_string() + " failed: " + error.message())));
  }

  // ConnectAttempt
  void close_socket() noexcept override {
    // The pending connect stops watching first; then the socket goes.
    pending_.reset();
    if (fd_ >= 0) backend_.close_socket(std::exchange(fd_, -1));
  }

  SocketAddress address_;
  bool nodelay_;
  std::optional<KeepAliveOptions> keepalive_;
  std::unique_ptr<PendingConnect> pending_;
};

// Dotted-quad IPv4 ("127.0.0.1") parsed by hand: inet_pton and the general
// parser cost about 270 instructions, a tenth of a connection's budget. Only
// the plain form is taken (four decimal parts of 0 to 255, no leading zeros),
// which inet_pton reads the same way; anything else returns nullopt and goes
// to SocketAddress::parse.
std::optional<SocketAddress> parse_plain_ipv4(const std::string& host, std::uint16_t port) {
  std::uint32_t address = 0;
  std::size_t i = 0;
  const std::size_t size = host.size();
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (i >= size || host[i] != '.') return std::nullopt;
      ++i;
    }
    std::size_t start = i;
    unsigned value = 0;
    while (i < size && i - start < 3 && host[i] >= '0' && host[i] <= '9') {
      value = value * 10 + static_cast<unsigned>(host[i] - '0');
      ++i;
    }
    std::size_t digits = i - start;
    if (digits == 0 || value > 255 || (digits > 1 && host[start] == '0')) return std::nullopt;
    address = (address << 8) | value;
  }
  if (i != size) return std::nullopt;
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  v4.sin_port = htons(port);
  v4.sin_addr.s_addr = htonl(address);
  return SocketAddress(reinterpret_cast<const sockaddr*>(&v4), sizeof(v4));
}

}  // namespace

std::optional<SocketAddress> direct_connect_address(const std::string& host, std::uint16_t port,
                                                    const ConnectOptions& options) {
  // Each of these needs the Connector: TLS wraps the attempt, a local address
  // is bound per family, a timeout races the attempt.
  if (options.ssl || options.local_host || options.timeout > 0) return std::nullopt;
  std::optional<SocketAddress> address = parse_plain_ipv4(host, port);
  if (!address) address = SocketAddress::parse(host, port);
  // A family that does not match is the Connector's error to report.
  if (address && options.family != AF_UNSPEC && address->family() != options.family) {
    return std::nullopt;
  }
  return address;
}

std::weak_ptr<CancellableOperation> start_direct_connect(EventLoop& loop, ProtocolFactory&& factory,
                                                         const SocketAddress& address,
                                                         const ConnectOptions& options,
                                                         ConnectCompletion&& completion) {
  auto attempt = std::make_shared<DirectConnect>(loop, std::move(factory), address, options,
                                                 std::move(completion));
  LoopAccess::internals(loop).registry.connectors.emplace(attempt.get(), attempt);
  attempt->start_soon();
  return attempt;
}

}  // namespace tulip::detail
