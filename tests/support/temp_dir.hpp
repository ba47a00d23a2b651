// Test support: a private temporary directory for Unix socket files, removed
// with everything in it when the test ends.
#pragma once

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace tulip::testing {

class TempDir {
 public:
  TempDir() {
    // Short, so that socket paths inside stay far from sun_path's 107 bytes.
    char name[] = "/tmp/tulip-XXXXXX";
    if (::mkdtemp(name) != nullptr) path_ = name;
  }
  ~TempDir() {
    if (path_.empty()) return;
    ::chmod(path_.c_str(), 0700);  // a test may have made it unwritable
    std::vector<std::string> names;
    if (DIR* dir = ::opendir(path_.c_str())) {
      while (dirent* entry = ::readdir(dir)) {
        std::string name = entry->d_name;
        if (name != "." && name != "..") names.push_back(path_ + "/" + name);
      }
      ::closedir(dir);
    }
    for (const std::string& name : names) {
      ::chmod(name.c_str(), 0700);
      if (::unlink(name.c_str()) != 0) ::rmdir(name.c_str());
    }
    ::rmdir(path_.c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  /// `name` inside the directory.
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// True if something exists at `path` (not following a final symlink).
inline bool exists(const std::string& path) {
  struct stat status;
  return ::lstat(path.c_str(), &status) == 0;
}

/// A Linux abstract-namespace name unique to this process and `tag`.
inline std::string abstract_name(const std::string& tag) {
  return std::string(1, '\0') + "tulip-test-" + std::to_string(::getpid()) + "-" + tag;
}

}  // namespace tulip::testing
