// SocketAddress: an IPv4 or IPv6 socket address (host and port).
//
// What get_extra_info("peername") / ("sockname") return. to_string() prints it
// the way Python prints a socket address tuple, so logs read like asyncio's:
// ('127.0.0.1', 8888) for IPv4, ('::1', 8888, 0, 0) for IPv6.
//
// It is 32 bytes, not a 128-byte sockaddr_storage: every transport keeps two,
// and with tens of thousands of connections that is memory worth having. An
// address of another family keeps only its family (to_string() says None).
//
// Thread-safety: a plain value.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tulip/export.hpp"

namespace tulip {

/// An IPv4 or IPv6 socket address: host and port (see the file comment).
class TULIP_API SocketAddress {
 public:
  /// An empty address (family AF_UNSPEC).
  SocketAddress() noexcept;
  /// Copies a kernel socket address (IPv4 or IPv6; any other family is kept as
  /// its family alone).
  SocketAddress(const sockaddr* address, socklen_t length) noexcept;

  /// A numeric IPv4 or IPv6 host ("127.0.0.1", "::1", "fe80::1%lo") and a port;
  /// nullopt if `host` is not a numeric address. Never blocks.
  static std::optional<SocketAddress> parse(std::string_view host, std::uint16_t port);

  /// The local (sockname) or remote (peername) address of a socket; empty on error.
  static SocketAddress local_of(int fd) noexcept;
  /// See local_of.
  static SocketAddress peer_of(int fd) noexcept;

  /// AF_INET, AF_INET6, AF_UNSPEC (empty) or the other family it was given.
  int family() const noexcept { return storage_.any.sa_family; }
  /// True for an empty address (family AF_UNSPEC).
  bool empty() const noexcept { return family() == AF_UNSPEC; }
  /// The numeric host, without brackets.
  std::string host() const;
  /// The port, in host byte order.
  std::uint16_t port() const noexcept;

  /// Python's repr of the address tuple, e.g. ('127.0.0.1', 8888).
  std::string to_string() const;

  /// The kernel form, for bind() / connect().
  const sockaddr* data() const noexcept { return &storage_.any; }
  /// The length of data().
  socklen_t size() const noexcept { return length_; }

  /// The same bytes in the kernel form (family, host, port and, for IPv6, flow and scope).
  bool operator==(const SocketAddress& other) const noexcept;

 private:
  union Storage {
    sockaddr any;
    sockaddr_in v4;
    sockaddr_in6 v6;
  };
  Storage storage_;
  socklen_t length_;
};

}  // namespace tulip
