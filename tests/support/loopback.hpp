// Test support: protocols that record what happens to them, raw-socket peers,
// and a bounded way to run a loop until something is true.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dirent.h>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tulip/tulip.hpp"

namespace tulip::testing {

/// Runs `loop` until `done()` is true. A safety timer bounds the wait so that
/// a broken implementation fails the test instead of hanging it; the test does
/// not depend on the time, only on the condition.
inline bool run_until(EventLoop& loop, const std::function<bool()>& done,
                      double limit_seconds = 20.0) {
  bool expired = false;
  TimerHandle guard = loop.call_later(limit_seconds, [&] { expired = true; });
  while (!done() && !expired) {
    loop.stop();
    loop.run_forever();
  }
  guard.cancel();
  return done();
}

/// Runs exactly `count` iterations, each polling with a zero timeout: a fixed
/// amount of loop work that does not depend on the clock.
inline void run_iterations(EventLoop& loop, int count) {
  for (int i = 0; i < count; ++i) {
    loop.stop();
    loop.run_forever();
  }
}

/// Echoes everything back, with backpressure (reading pauses while the
/// peer does not take the echo); closes when the peer half-closes.
class BackpressuredEcho final : public Protocol {
 public:
  void connection_made(Transport& t) override { transport_ = &t; }
  void data_received(std::string_view data) override { transport_->write(data); }
  void pause_writing() override { transport_->pause_reading(); }
  void resume_writing() override { transport_->resume_reading(); }

 private:
  Transport* transport_ = nullptr;
};

/// Records every callback, checks the call order, and runs optional hooks.
class RecordingProtocol : public Protocol {
 public:
  std::function<void(Transport&)> on_made;
  std::function<void(std::string_view)> on_data;
  std::function<bool()> on_eof;
  std::function<void(std::error_code)> on_lost;
  std::function<void()> on_pause;
  std::function<void()> on_resume;

  void connection_made(Transport& t) override {
    EXPECT_EQ(made, 0) << "connection_made twice";
    ++made;
    transport = &t;
    if (on_made) on_made(t);
  }
  void data_received(std::string_view data) override {
    EXPECT_EQ(made, 1) << "data before connection_made";
    EXPECT_FALSE(eof) << "data after eof_received";
    EXPECT_EQ(lost, 0) << "data after connection_lost";
    EXPECT_FALSE(data.empty());
    received.append(data);
    ++chunks;
    largest_chunk = std::max(largest_chunk, data.size());
    if (on_data) on_data(data);
  }
  bool eof_received() override {
    EXPECT_FALSE(eof) << "eof_received twice";
    EXPECT_EQ(lost, 0);
    eof = true;
    return on_eof ? on_eof() : false;
  }
  void connection_lost(std::error_code error) override {
    EXPECT_EQ(lost, 0) << "connection_lost twice";
    ++lost;
    lost_error = error;
    if (on_lost) on_lost(error);
    transport = nullptr;
  }
  void pause_writing() override {
    ++pauses;
    if (on_pause) on_pause();
  }
  void resume_writing() override {
    ++resumes;
    if (on_resume) on_resume();
  }

  Transport* transport = nullptr;
  int made = 0;
  int lost = 0;
  bool eof = false;
  std::error_code lost_error;
  std::string received;
  std::size_t chunks = 0;
  std::size_t largest_chunk = 0;
  int pauses = 0;
  int resumes = 0;
};

/// A blocking raw TCP socket, the "other side" in transport tests.
class RawSocket {
 public:
  explicit RawSocket(int fd = -1) : fd_(fd) {}
  RawSocket(RawSocket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  RawSocket& operator=(RawSocket&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~RawSocket() { reset(); }

  static RawSocket connect_to(const SocketAddress& address) {
    int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::connect(fd, address.data(), address.size()), 0) << "connect: " << errno;
    return RawSocket(fd);
  }

  /// A listening socket on 127.0.0.1 (or ::1) with a kernel-chosen port.
  /// `receive_buffer` (bytes, 0: the kernel's default) is set before listen()
  /// so that accepted sockets inherit it and advertise a matching window;
  /// shrinking the buffer of an established connection with data in flight
  /// can stall loopback TCP for seconds.
  static RawSocket listen_on(const char* host = "127.0.0.1", int backlog = 16,
                             int receive_buffer = 0) {
    auto address = SocketAddress::parse(host, 0);
    int fd = ::socket(address->family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (receive_buffer > 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
    }
    EXPECT_EQ(::bind(fd, address->data(), address->size()), 0);
    EXPECT_EQ(::listen(fd, backlog), 0);
    return RawSocket(fd);
  }

  RawSocket accept_one() const {
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    EXPECT_GE(fd, 0);
    return RawSocket(fd);
  }

  int fd() const { return fd_; }
  /// Gives the descriptor up (to a transport that takes it over).
  int release() { return std::exchange(fd_, -1); }
  SocketAddress address() const { return SocketAddress::local_of(fd_); }

  void send_all(std::string_view data) const {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      ASSERT_GT(n, 0) << "send: " << errno;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  /// Reads until EOF (or an error); what arrived.
  std::string read_to_eof() const {
    std::string all;
    char buffer[65536];
    for (;;) {
      ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) return all;
      all.append(buffer, static_cast<std::size_t>(n));
    }
  }

  /// Reads exactly `count` bytes unless EOF comes first.
  std::string read_exactly(std::size_t count) const {
    std::string all;
    char buffer[65536];
    while (all.size() < count) {
      ssize_t n = ::recv(fd_, buffer, std::min(sizeof(buffer), count - all.size()), 0);
      if (n <= 0) break;
      all.append(buffer, static_cast<std::size_t>(n));
    }
    return all;
  }

  /// True if the peer has closed (recv would return 0 now, without blocking).
  bool at_eof() const {
    char c;
    return ::recv(fd_, &c, 1, MSG_DONTWAIT | MSG_PEEK) == 0;
  }

  void shutdown_write() const { ::shutdown(fd_, SHUT_WR); }

  /// Closes with RST instead of FIN (SO_LINGER 0).
  void reset_connection() {
    linger option{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &option, sizeof(option));
    reset();
  }

  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

/// Bytes that differ at every offset, so reordering or loss shows.
inline std::string pattern(std::size_t size, unsigned seed = 0) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    data[i] = static_cast<char>((i * 131 + (i >> 8) * 7 + seed) & 0xff);
  }
  return data;
}

/// A peer receive buffer small enough that the kernel cannot absorb a few MiB.
inline constexpr int kSmallReceiveBuffer = 4096;

/// Opens a transport connected to a raw socket: returns {connection, peer}.
/// `peer_receive_buffer` (0: default) bounds what the peer's kernel absorbs.
template <class P>
std::pair<Connection<P>, RawSocket> connect_to_raw_peer(EventLoop& loop,
                                                        std::shared_ptr<P> protocol,
                                                        const char* host = "127.0.0.1",
                                                        int peer_receive_buffer = 0) {
  RawSocket listener = RawSocket::listen_on(host, 16, peer_receive_buffer);
  SocketAddress address = listener.address();
  auto future =
      loop.create_connection([protocol] { return protocol; }, address.host(), address.port());
  Connection<P> connection = loop.run_until_complete(future);
  RawSocket peer = listener.accept_one();
  return {connection, std::move(peer)};
}

/// How many descriptors this process has open (for leak checks).
inline int open_fd_count() {
  int count = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // the directory stream itself
}

}  // namespace tulip::testing
