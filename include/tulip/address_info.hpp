// AddressInfo and NameInfo: what EventLoop::getaddrinfo and getnameinfo
// complete with (asyncio's loop.getaddrinfo / loop.getnameinfo).
//
// asyncio returns 5-tuples (family, type, proto, canonname, sockaddr) and
// (host, port) pairs; here they are named fields.
//
// Thread-safety: plain values.
#pragma once

#include <string>

#include "tulip/socket_address.hpp"

namespace tulip {

/// One answer of getaddrinfo(3): asyncio's (family, type, proto, canonname, sockaddr).
struct AddressInfo {
  int family = 0;    ///< AF_INET, AF_INET6, ...
  int type = 0;      ///< SOCK_STREAM, SOCK_DGRAM, ...
  int protocol = 0;  ///< IPPROTO_TCP, IPPROTO_UDP, ...
  std::string
      canonname;  ///< The canonical name, with AI_CANONNAME on the first answer; else empty.
  SocketAddress address;  ///< The socket address.
};

/// The answer of getnameinfo(3): asyncio's (host, port) pair of strings.
struct NameInfo {
  std::string host;     ///< The host name (or numeric address, with NI_NUMERICHOST).
  std::string service;  ///< The service name (or numeric port, with NI_NUMERICSERV).
};

}  // namespace tulip
