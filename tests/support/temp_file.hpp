// Test support: a temporary regular file with known contents, opened for
// reading, for the sendfile tests; removed when the test ends.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <string_view>

namespace tulip::testing {

class TempFile {
 public:
  explicit TempFile(std::string_view contents) {
    char name[] = "/tmp/tulip-file-XXXXXX";
    int fd = ::mkstemp(name);
    EXPECT_GE(fd, 0);
    path_ = name;
    std::size_t written = 0;
    while (written < contents.size()) {
      ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
      if (n <= 0) break;
      written += static_cast<std::size_t>(n);
    }
    EXPECT_EQ(written, contents.size());
    ::close(fd);
    fd_ = ::open(name, O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd_, 0);
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  /// The file opened read-only (the file's own position starts at 0).
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  /// The position of fd() (where sendfile leaves it).
  off_t position() const { return ::lseek(fd_, 0, SEEK_CUR); }
  /// Cuts the file to `size` bytes, as another process might while it is sent.
  void truncate(off_t size) const { EXPECT_EQ(::truncate(path_.c_str(), size), 0); }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace tulip::testing
