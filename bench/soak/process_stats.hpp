// What the soak program samples about a process: resident memory and open
// descriptors, read from /proc. Plain functions, safe from any thread.
#pragma once

#include <dirent.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace tulip::soak {

/// VmRSS of `pid` (0: this process) in KiB, or -1 if it cannot be read.
inline long resident_kib(pid_t pid = 0) {
  std::string path = pid == 0 ? "/proc/self/status" : "/proc/" + std::to_string(pid) + "/status";
  std::FILE* file = std::fopen(path.c_str(), "re");
  if (file == nullptr) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof(line), file) != nullptr) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) {
      kib = std::strtol(line + 6, nullptr, 10);
      break;
    }
  }
  std::fclose(file);
  return kib;
}

/// Open descriptors of `pid` (0: this process), or -1 if they cannot be listed.
inline long open_fds(pid_t pid = 0) {
  std::string path = pid == 0 ? "/proc/self/fd" : "/proc/" + std::to_string(pid) + "/fd";
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return -1;
  long count = 0;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  // Listing our own descriptors opens one more: the directory stream itself.
  return pid == 0 ? count - 1 : count;
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit
/// (or -1 if it cannot be read).
inline long raise_fd_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur == RLIM_INFINITY ? 1L << 30 : static_cast<long>(limit.rlim_cur);
}

}  // namespace tulip::soak
