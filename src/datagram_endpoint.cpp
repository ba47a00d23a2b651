// EventLoop::create_datagram_endpoint: resolving, opening, binding and
// connecting a UDP socket, then handing it to the backend's datagram transport.
//
// As asyncio: the local address (if any) is resolved for binding and the
// remote one (if any) for connecting; pairs of the same family are tried in
// the resolver's order until one socket binds and connects; if none does, the
// error names each address and cause. A UDP connect() sends nothing, so it
// completes at once and needs no waiting through the backend.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "address_resolution.hpp"
#include "io_backend.hpp"
#include "loop_access.hpp"
#include "socket_ops.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::detail {
namespace {

class EndpointOpener final : public std::enable_shared_from_this<EndpointOpener> {
 public:
  EndpointOpener(EventLoop& loop, DatagramProtocolFactory factory,
                 std::optional<HostPort> local_addr, std::optional<HostPort> remote_addr,
                 DatagramOptions options, DatagramCompletion completion)
      : loop_(loop),
        factory_(std::move(factory)),
        local_addr_(std::move(local_addr)),
        remote_addr_(std::move(remote_addr)),
        options_(std::move(options)),
        completion_(std::move(completion)) {}

  void start() {
    if (local_addr_) {
      resolve(*local_addr_, true, [self = shared_from_this()](std::vector<SocketAddress> found) {
        self->locals_ = std::move(found);
        self->resolve_remote();
      });
    } else {
      // Nothing runs inside the call that asked: the next steps come from the loop.
      loop_.call_soon([self = shared_from_this()] { self->resolve_remote(); });
    }
  }

 private:
  using Found = InlineFunction<void(std::vector<SocketAddress>)>;

  void resolve(const HostPort& address, bool passive, Found next) {
    resolve_address(
        loop_, address.host, address.port, options_.family, passive,
        [self = shared_from_this(), address, next = std::move(next)](ResolveResult result) mutable {
          if (self->stopped()) return;
          if (!result.error.empty()) {
            self->fail(std::make_exception_ptr(
                OSError(make_error_code(Error::kNameResolution),
                        "cannot resolve '" + address.host + "': " + result.error)));
            return;
          }
          next(std::move(result.addresses));
        });
  }

  void resolve_remote() {
    if (stopped()) return;
    if (!remote_addr_) {
      open();
      return;
    }
    resolve(*remote_addr_, false, [self = shared_from_this()](std::vector<SocketAddress> found) {
      self->remotes_ = std::move(found);
      self->open();
    });
  }

  bool stopped() {
    if (completion_.cancelled && completion_.cancelled()) {
      completion_ = {};  // given up: nothing was opened yet, nothing to report
      return true;
    }
    return !completion_.done;
  }

  // The (local, remote) pairs to try, in the resolver's order, of one family each.
  std::vector<std::pair<std::optional<SocketAddress>, std::optional<SocketAddress>>> pairs() {
    std::vector<std::pair<std::optional<SocketAddress>, std::optional<SocketAddress>>> result;
    auto wanted = [this](const SocketAddress& a) {
      return (a.family() == AF_INET || a.family() == AF_INET6) &&
             (options_.family == AF_UNSPEC || a.family() == options_.family);
    };
    if (remote_addr_) {
      for (const SocketAddress& remote : remotes_) {
        if (!wanted(remote)) continue;
        if (!local_addr_) {
          result.push_back({std::nullopt, remote});
          continue;
        }
        for (const SocketAddress& local : locals_) {
          if (local.family() == remote.family()) {
            result.push_back({local, remote});
            break;
          }
        }
      }
    } else if (local_addr_) {
      for (const SocketAddress& local : locals_) {
        if (wanted(local)) result.push_back({local, std::nullopt});
      }
    }
    return result;
  }

  // Opens the socket and returns it, or -1 after recording why not.
  int open_one(int family, const std::optional<SocketAddress>& local,
               const std::optional<SocketAddress>& remote) {
    std::error_code error;
    int fd = open_socket(family, SOCK_DGRAM, IPPROTO_UDP, error);
    auto give_up = [&](const std::string& what) {
      failures_.push_back(what + ": " + error.message());
      last_error_ = error;
      close_fd(fd);
      return -1;
    };
    if (fd < 0) return give_up("socket()");
    if (options_.reuse_port) {
      if ((error = set_int_option(fd, SOL_SOCKET, SO_REUSEPORT, 1))) return give_up("SO_REUSEPORT");
    }
    if (options_.allow_broadcast) {
      if ((error = set_int_option(fd, SOL_SOCKET, SO_BROADCAST, 1))) return give_up("SO_BROADCAST");
    }
    if (local && ::bind(fd, local->data(), local->size()) < 0) {
      error = errno_code(errno);
      return give_up("error while attempting to bind on address " + local->to_string());
    }
    if (remote && ::connect(fd, remote->data(), remote->size()) < 0) {
      error = errno_code(errno);
      return give_up("connect to " + remote->to_string() + " failed");
    }
    return fd;
  }

  void open() {
    if (stopped()) return;
    int fd = -1;
    std::optional<SocketAddress> connected;
    if (!local_addr_ && !remote_addr_) {
      if (options_.family != AF_INET && options_.family != AF_INET6) {
        fail(std::make_exception_ptr(std::invalid_argument(
            "create_datagram_endpoint: without local_addr or remote_addr, options.family must be "
            "AF_INET or AF_INET6")));
        return;
      }
      fd = open_one(options_.family, std::nullopt, std::nullopt);
    } else {
      for (const auto& [local, remote] : pairs()) {
        fd = open_one(remote ? remote->family() : local->family(), local, remote);
        if (fd >= 0) {
          connected = remote;
          break;
        }
      }
      if (fd < 0 && failures_.empty()) {
        last_error_ = std::make_error_code(std::errc::address_family_not_supported);
        failures_.push_back(
            "no address of the requested family" +
            std::string(local_addr_ && remote_addr_ ? " for both local_addr and remote_addr" : ""));
      }
    }
    if (fd < 0) {
      std::string message = "create_datagram_endpoint: ";
      for (std::size_t i = 0; i < failures_.size(); ++i) message += (i ? "; " : "") + failures_[i];
      fail(std::make_exception_ptr(OSError(last_error_, message)));
      return;
    }
    OwnedFd owned(fd);
    std::shared_ptr<DatagramProtocol> protocol;
    try {
      protocol = factory_();
    } catch (...) {
      fail(std::current_exception());
      return;
    }
    DatagramCompletion completion = std::move(completion_);
    auto done = std::make_shared<decltype(completion.done)>(std::move(completion.done));
    auto made = std::make_shared<std::shared_ptr<DatagramTransport>>();
    try {
      // The Future completes after connection_made has run, as for connections.
      *made = LoopAccess::backend(loop_).start_datagram_transport(
          DatagramSocket{owned.release(), protocol, connected, options_.max_datagram_size, nullptr},
          [made, protocol, done]() mutable {
            (*done)(nullptr, std::move(*made), std::move(protocol));
          });
    } catch (...) {
      (*done)(std::current_exception(), nullptr, nullptr);
    }
  }

  void fail(std::exception_ptr error) {
    DatagramCompletion completion = std::move(completion_);
    completion_ = {};
    if (completion.done) completion.done(std::move(error), nullptr, nullptr);
  }

  EventLoop& loop_;
  DatagramProtocolFactory factory_;
  std::optional<HostPort> local_addr_;
  std::optional<HostPort> remote_addr_;
  DatagramOptions options_;
  DatagramCompletion completion_;
  std::vector<SocketAddress> locals_;
  std::vector<SocketAddress> remotes_;
  std::vector<std::string> failures_;
  std::error_code last_error_;
};

}  // namespace

void open_datagram_endpoint(EventLoop& loop, DatagramProtocolFactory factory,
                            std::optional<HostPort> local_addr, std::optional<HostPort> remote_addr,
                            DatagramOptions options, DatagramCompletion completion) {
  if (loop.is_closed()) throw RuntimeError("Event loop is closed");
  // The resolver's callbacks and the ready queue keep the opener alive until it
  // has finished; a loop that closes first drops them, and it with them.
  std::make_shared<EndpointOpener>(loop, std::move(factory), std::move(local_addr),
                                   std::move(remote_addr), std::move(options),
                                   std::move(completion))
      ->start();
}

}  // namespace tulip::detail
