// A pipe whose two ends a test holds until a transport takes one.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <string_view>
#include <utility>

namespace tulip::testing {

/// pipe2(O_CLOEXEC); each end closed when the object dies unless taken.
struct PipePair {
  PipePair() { EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0); }
  ~PipePair() {
    close_read();
    close_write();
  }
  PipePair(const PipePair&) = delete;
  PipePair& operator=(const PipePair&) = delete;

  int take_read() { return std::exchange(fds[0], -1); }
  int take_write() { return std::exchange(fds[1], -1); }
  void close_read() {
    if (fds[0] >= 0) ::close(std::exchange(fds[0], -1));
  }
  void close_write() {
    if (fds[1] >= 0) ::close(std::exchange(fds[1], -1));
  }

  /// Writes everything to the write end (blocking).
  void write_all(std::string_view data) const {
    while (!data.empty()) {
      ssize_t n = ::write(fds[1], data.data(), data.size());
      ASSERT_GT(n, 0) << "write: " << errno;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  /// Reads what the read end has now, without blocking; appends it to `into`.
  /// Returns false at EOF.
  bool drain_into(std::string& into) const {
    char buffer[65536];
    for (;;) {
      ssize_t n = ::read(fds[0], buffer, sizeof(buffer));
      if (n == 0) return false;
      if (n < 0) return true;  // EAGAIN: nothing more for now
      into.append(buffer, static_cast<std::size_t>(n));
    }
  }

  int fds[2] = {-1, -1};
};

}  // namespace tulip::testing
