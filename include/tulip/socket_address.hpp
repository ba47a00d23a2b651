// SocketAddress: an IPv4 or IPv6 socket address (host and port), or a Unix
// domain socket address (a path).
//
// What get_extra_info("peername") / ("sockname") return. to_string() prints it
// the way Python prints the address, so logs read like asyncio's:
// ('127.0.0.1', 8888) for IPv4, ('::1', 8888, 0, 0) for IPv6, and for a Unix
// socket the path itself (/run/app.sock; empty for an unnamed socket, such as
// the client end of a connection) or, for a Linux abstract-namespace address,
// the bytes Python returns for it (b'\x00name').
//
// An IP address is stored inline (the object is 48 bytes, not a 128-byte
// sockaddr_storage): every transport keeps two, and with tens of thousands of
// connections that is memory worth having. A Unix address (up to 110 bytes) is
// kept in a shared, immutable block instead, so IP addresses do not pay for it
// and copies of a Unix address share one block. An address of
// another family keeps only its family (to_string() says None).
//
// Thread-safety: a plain value.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tulip/export.hpp"

namespace tulip {

/// An IPv4 or IPv6 address (host and port) or a Unix socket path (see the file comment).
class TULIP_API SocketAddress {
 public:
  /// The longest Unix socket path, in bytes (sun_path less its terminating NUL;
  /// an abstract name, which needs no terminator, may use one byte more).
  static constexpr std::size_t kMaxUnixPath = 107;

  /// An empty address (family AF_UNSPEC).
  SocketAddress() noexcept;
  /// Copies a kernel socket address (IPv4, IPv6 or Unix; any other family is
  /// kept as its family alone, as is a Unix address if memory runs out).
  SocketAddress(const sockaddr* address, socklen_t length) noexcept;

  /// A numeric IPv4 or IPv6 host ("127.0.0.1", "::1", "fe80::1%lo") and a port;
  /// nullopt if `host` is not a numeric address. Never blocks.
  static std::optional<SocketAddress> parse(std::string_view host, std::uint16_t port);

  /// A Unix domain socket address for `path`. A path starting with a NUL byte
  /// is a Linux abstract-namespace name (no file). nullopt if `path` is empty,
  /// too long for sun_path (see kMaxUnixPath), or holds a NUL byte anywhere but first.
  static std::optional<SocketAddress> from_path(std::string_view path);

  /// The local (sockname) or remote (peername) address of a socket; empty on error.
  static SocketAddress local_of(int fd) noexcept;
  /// See local_of.
  static SocketAddress peer_of(int fd) noexcept;

  /// AF_INET, AF_INET6, AF_UNIX, AF_UNSPEC (empty) or the other family it was given.
  int family() const noexcept { return storage_.any.sa_family; }
  /// True for an empty address (family AF_UNSPEC).
  bool empty() const noexcept { return family() == AF_UNSPEC; }
  /// The numeric host, without brackets.
  std::string host() const;
  /// The port, in host byte order.
  std::uint16_t port() const noexcept;
  /// A Unix address's path: empty for an unnamed socket, starting with a NUL
  /// byte for an abstract name. Empty for other families.
  std::string path() const;
  /// True for a Linux abstract-namespace Unix address.
  bool is_abstract() const noexcept;

  /// What Python prints for the address: the tuple's repr, e.g.
  /// ('127.0.0.1', 8888), or a Unix socket's path (see the file comment).
  std::string to_string() const;

  /// The kernel form, for bind() / connect().
  const sockaddr* data() const noexcept;
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
  struct UnixStorage;
  Storage storage_;
  socklen_t length_;
  // AF_UNIX only: the kernel form, shared by copies (immutable once made).
  std::shared_ptr<const UnixStorage> unix_;
};

}  // namespace tulip
