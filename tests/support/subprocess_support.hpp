// What the subprocess tests share: a protocol that records every callback in
// order, and a look at this process's children in /proc.
#pragma once

#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "tulip/tulip.hpp"

namespace tulip::testing {

/// Records each callback as a line ("made", "data 1", "lost 0", "exited",
/// "connection_lost") and what each pipe carried; checks the call order.
class RecordingSubprocessProtocol : public SubprocessProtocol {
 public:
  void connection_made(SubprocessTransport& t) override {
    EXPECT_TRUE(events.empty()) << "connection_made after " << events.back();
    events.push_back("made");
    transport = &t;
    if (on_made) on_made(t);
  }
  void pipe_data_received(int fd, std::string_view data) override {
    EXPECT_EQ(count("made"), 1) << "data before connection_made";
    EXPECT_EQ(count("exited"), 0) << "data after process_exited";
    EXPECT_EQ(count("lost " + std::to_string(fd)), 0) << "data after its pipe was lost";
    EXPECT_FALSE(data.empty());
    output[fd].append(data);
    if (events.empty() || events.back() != "data " + std::to_string(fd)) {
      events.push_back("data " + std::to_string(fd));
    }
    if (on_data) on_data(fd, data);
  }
  void pipe_connection_lost(int fd, std::error_code error) override {
    EXPECT_EQ(count("made"), 1);
    EXPECT_EQ(count("exited"), 0) << "pipe_connection_lost after process_exited";
    EXPECT_EQ(count("lost " + std::to_string(fd)), 0) << "pipe " << fd << " lost twice";
    events.push_back("lost " + std::to_string(fd));
    pipe_errors[fd] = error;
    if (on_pipe_lost) on_pipe_lost(fd, error);
  }
  void process_exited() override {
    EXPECT_EQ(count("made"), 1);
    EXPECT_EQ(count("exited"), 0) << "process_exited twice";
    events.push_back("exited");
    ASSERT_NE(transport, nullptr);
    returncode_at_exit = transport->get_returncode();
    if (on_exited) on_exited();
  }
  void connection_lost(std::error_code error) override {
    EXPECT_EQ(count("connection_lost"), 0) << "connection_lost twice";
    events.push_back("connection_lost");
    lost_error = error;
    transport = nullptr;
  }
  void pause_writing() override { ++pauses; }
  void resume_writing() override { ++resumes; }

  int count(const std::string& event) const {
    int n = 0;
    for (const std::string& e : events) n += e == event ? 1 : 0;
    return n;
  }
  bool done() const { return count("connection_lost") == 1; }

  std::function<void(SubprocessTransport&)> on_made;
  std::function<void(int, std::string_view)> on_data;
  std::function<void(int, std::error_code)> on_pipe_lost;
  std::function<void()> on_exited;

  SubprocessTransport* transport = nullptr;
  std::vector<std::string> events;
  std::string output[3];
  std::error_code pipe_errors[3];
  std::optional<int> returncode_at_exit;
  std::error_code lost_error;
  int pauses = 0;
  int resumes = 0;
};

/// The processes whose parent is this process, as (pid, state) from /proc.
inline std::vector<std::pair<int, char>> children_of_this_process() {
  std::vector<std::pair<int, char>> children;
  int me = static_cast<int>(::getpid());
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return children;
  while (dirent* entry = ::readdir(proc)) {
    std::string name = entry->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat("/proc/" + name + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    std::size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    char state = 0;
    int ppid = 0;
    rest >> state >> ppid;
    if (ppid == me) children.emplace_back(std::stoi(name), state);
  }
  ::closedir(proc);
  return children;
}

/// How many of this process's children are zombies.
inline int zombie_children() {
  int zombies = 0;
  for (auto [pid, state] : children_of_this_process()) zombies += state == 'Z' ? 1 : 0;
  return zombies;
}

}  // namespace tulip::testing
