#include "tulip/socket_address.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cstring>

namespace tulip {

SocketAddress::SocketAddress() noexcept : storage_{}, length_(0) {
  storage_.any.sa_family = AF_UNSPEC;
}

SocketAddress::SocketAddress(const sockaddr* address, socklen_t length) noexcept : SocketAddress() {
  if (address == nullptr || length < sizeof(sa_family_t)) return;
  if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    length_ = sizeof(sockaddr_in);
  } else if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    length_ = sizeof(sockaddr_in6);
  } else {
    storage_.any.sa_family = address->sa_family;
    length_ = sizeof(sa_family_t);
    return;
  }
  std::memcpy(&storage_, address, length_);
}

std::optional<SocketAddress> SocketAddress::parse(std::string_view host, std::uint16_t port) {
  std::string text(host);
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  sockaddr_in v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    return SocketAddress(reinterpret_cast<const sockaddr*>(&v4), sizeof(v4));
  }
  sockaddr_in6 v6{};
  std::string address = text;
  std::string zone;
  if (auto percent = text.find('%'); percent != std::string::npos) {
    address = text.substr(0, percent);
    zone = text.substr(percent + 1);
  }
  if (::inet_pton(AF_INET6, address.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    if (!zone.empty()) {
      unsigned index = ::if_nametoindex(zone.c_str());
      if (index == 0) return std::nullopt;
      v6.sin6_scope_id = index;
    }
    return SocketAddress(reinterpret_cast<const sockaddr*>(&v6), sizeof(v6));
  }
  return std::nullopt;
}

SocketAddress SocketAddress::local_of(int fd) noexcept {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) < 0) return {};
  return SocketAddress(reinterpret_cast<const sockaddr*>(&storage), length);
}

SocketAddress SocketAddress::peer_of(int fd) noexcept {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &length) < 0) return {};
  return SocketAddress(reinterpret_cast<const sockaddr*>(&storage), length);
}

std::string SocketAddress::host() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    const sockaddr_in* v4 = &storage_.v4;
    ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
  } else if (family() == AF_INET6) {
    const sockaddr_in6* v6 = &storage_.v6;
    ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
  }
  return text;
}

std::uint16_t SocketAddress::port() const noexcept {
  if (family() == AF_INET) return ntohs(storage_.v4.sin_port);
  if (family() == AF_INET6) {
    return ntohs(storage_.v6.sin6_port);
  }
  return 0;
}

std::string SocketAddress::to_string() const {
  if (family() == AF_INET) return "('" + host() + "', " + std::to_string(port()) + ")";
  if (family() == AF_INET6) {
    const sockaddr_in6* v6 = &storage_.v6;
    return "('" + host() + "', " + std::to_string(port()) + ", " +
           std::to_string(ntohl(v6->sin6_flowinfo)) + ", " + std::to_string(v6->sin6_scope_id) +
           ")";
  }
  return "None";
}

bool SocketAddress::operator==(const SocketAddress& other) const noexcept {
  return length_ == other.length_ && std::memcmp(&storage_, &other.storage_, length_) == 0;
}

}  // namespace tulip
