#include "tulip/socket_address.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <new>

namespace tulip {

struct SocketAddress::UnixStorage {
  sockaddr_un address;
};

namespace {

// Where sun_path starts: a Unix address's length counts the bytes up to here
// plus the path's (with the terminating NUL for a pathname, without for an
// abstract name, whose every byte up to the length is significant).
constexpr socklen_t kPathOffset = offsetof(sockaddr_un, sun_path);

}  // namespace

SocketAddress::SocketAddress() noexcept : storage_{}, length_(0) {
  storage_.any.sa_family = AF_UNSPEC;
}

SocketAddress::SocketAddress(const sockaddr* address, socklen_t length) noexcept : SocketAddress() {
  if (address == nullptr || length < sizeof(sa_family_t)) return;
  if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    length_ = sizeof(sockaddr_in);
  } else if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    length_ = sizeof(sockaddr_in6);
  } else if (address->sa_family == AF_UNIX && length <= sizeof(sockaddr_un)) {
    storage_.any.sa_family = AF_UNIX;
    try {
      auto copy = std::make_shared<UnixStorage>();
      std::memcpy(&copy->address, address, length);
      unix_ = std::move(copy);
      length_ = length;
    } catch (const std::bad_alloc&) {
      length_ = sizeof(sa_family_t);  // out of memory: the family alone, as documented
    }
    return;
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

std::optional<SocketAddress> SocketAddress::from_path(std::string_view path) {
  if (path.empty()) return std::nullopt;
  bool abstract = path.front() == '\0';
  // A pathname needs its terminating NUL inside sun_path; an abstract name does not.
  std::size_t room = sizeof(sockaddr_un::sun_path) - (abstract ? 0 : 1);
  if (path.size() > room) return std::nullopt;
  if (path.find('\0', abstract ? 1 : 0) != std::string_view::npos) return std::nullopt;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  auto length = static_cast<socklen_t>(kPathOffset + path.size() + (abstract ? 0 : 1));
  return SocketAddress(reinterpret_cast<const sockaddr*>(&address), length);
}

const sockaddr* SocketAddress::data() const noexcept {
  if (unix_) return reinterpret_cast<const sockaddr*>(&unix_->address);
  return &storage_.any;
}

std::string SocketAddress::path() const {
  if (!unix_ || length_ <= kPathOffset) return {};
  const char* text = unix_->address.sun_path;
  std::size_t size = length_ - kPathOffset;
  // A pathname's length may include its NUL terminator (and the kernel may
  // report more); an abstract name's bytes are all significant.
  if (text[0] != '\0') size = strnlen(text, size);
  return std::string(text, size);
}

bool SocketAddress::is_abstract() const noexcept {
  return unix_ && length_ > kPathOffset && unix_->address.sun_path[0] == '\0';
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
  if (family() == AF_UNIX) {
    std::string name = path();
    if (name.empty() || name.front() != '\0') return name;  // Python: the str path
    // Python returns an abstract name as bytes; str() of those is their repr.
    static const char kHex[] = "0123456789abcdef";
    std::string out = "b'";
    for (char c : name) {
      auto byte = static_cast<unsigned char>(c);
      if (c == '\'' || c == '\\') {
        out += '\\';
        out += c;
      } else if (byte < 0x20 || byte >= 0x7f) {
        out += "\\x";
        out += kHex[byte >> 4];
        out += kHex[byte & 0xf];
      } else {
        out += c;
      }
    }
    return out + "'";
  }
  return "None";
}

bool SocketAddress::operator==(const SocketAddress& other) const noexcept {
  if (length_ != other.length_ || family() != other.family()) return false;
  return std::memcmp(data(), other.data(), length_) == 0;
}

}  // namespace tulip
