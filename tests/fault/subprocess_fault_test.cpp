// Children that misbehave or go away: missing programs, early closes, exits
// with output still in the pipe, readers that leave, a thousand children in a
// row, protocols that throw, and the SIGCHLD fallback. Every test also checks
// that no descriptor is left open (fd_leak_check.cpp) and no zombie remains.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "child_watcher.hpp"
#include "fault/fault_support.hpp"
#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "support/subprocess_support.hpp"

namespace tulip::testing {
namespace {

class SubprocessFault : public ::testing::Test {
 protected:
  // Where the kernel (or valgrind, which does not know pidfd_open) has no
  // pidfd, children are watched through SIGCHLD, and the loop's signal
  // handling opens a process-wide self-pipe on first use and keeps it: it is
  // opened here, before any test counts its descriptors.
  static void SetUpTestSuite() {
    EventLoop loop;
    loop.add_signal_handler(SIGUSR2, [] {});
    loop.remove_signal_handler(SIGUSR2);
  }

  void TearDown() override { EXPECT_EQ(zombie_children(), 0) << "a child was left unreaped"; }
};

std::shared_ptr<RecordingSubprocessProtocol> start(EventLoop& loop, std::vector<std::string> argv,
                                                   SubprocessOptions options = {}) {
  auto protocol = std::make_shared<RecordingSubprocessProtocol>();
  loop.run_until_complete(
      loop.subprocess_exec([protocol] { return protocol; }, std::move(argv), std::move(options)));
  return protocol;
}

TEST_F(SubprocessFault, AMissingProgramFailsTheSpawnWithItsErrnoAndLeavesNothing) {
  EventLoop loop;
  int calls = 0;
  try {
    loop.run_until_complete(loop.subprocess_exec(
        [&] {
          ++calls;
          return std::make_shared<RecordingSubprocessProtocol>();
        },
        {"/nonexistent/program", "--flag"}));
    ADD_FAILURE() << "a missing program started";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
    EXPECT_STREQ(e.what(), "cannot start '/nonexistent/program': No such file or directory");
  }
  // asyncio makes the protocol before the transport; nothing else is left of it.
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.transports.empty());
  EXPECT_TRUE(children_of_this_process().empty());
}

TEST_F(SubprocessFault, AChildThatClosesStdoutEarlyIsStillWatchedUntilItExits) {
  EventLoop loop;
  auto child = start(loop, {"sh", "-c", "exec 1>&-; read line; exit 4"});
  std::optional<int> returncode_when_stdout_closed = -1;
  child->on_pipe_lost = [&](int fd, std::error_code) {
    if (fd == 1) returncode_when_stdout_closed = child->transport->get_returncode();
  };
  ASSERT_TRUE(run_until(loop, [&] { return child->count("lost 1") == 1; }));
  EXPECT_EQ(returncode_when_stdout_closed, std::nullopt);  // still running
  EXPECT_EQ(child->count("exited"), 0);
  child->transport->get_pipe_transport(0)->write("go\n");
  ASSERT_TRUE(run_until(loop, [&] { return child->done(); }));
  EXPECT_EQ(child->returncode_at_exit, 4);
}

TEST_F(SubprocessFault, AChildThatExitsWithOutputStillInThePipeLosesNoByte) {
  EventLoop loop;
  // 64 KiB fits in the pipe: the child has exited (and may be reaped) long
  // before the loop reads the first byte.
  for (std::size_t size : {std::size_t{65536}, std::size_t{3'000'000}}) {
    auto child = start(loop, {"head", "-c", std::to_string(size), "/dev/zero"});
    ASSERT_TRUE(run_until(loop, [&] { return child->done(); }));
    EXPECT_EQ(child->output[1].size(), size);
    EXPECT_EQ(child->output[1].find_first_not_of('\0'), std::string::npos);
    // Every pipe was lost before process_exited, and the return code was known then.
    auto exited = std::find(child->events.begin(), child->events.end(), "exited");
    ASSERT_NE(exited, child->events.end());
    EXPECT_EQ(std::count_if(child->events.begin(), exited,
                            [](const std::string& e) { return e.rfind("lost ", 0) == 0; }),
              3);
    EXPECT_EQ(child->returncode_at_exit, 0);
  }
}

TEST_F(SubprocessFault, WritingToAChildThatStoppedReadingEndsWithEpipeNotSigpipe) {
  struct sigaction previous {};
  struct sigaction fatal {};
  fatal.sa_handler = SIG_DFL;  // a SIGPIPE would end this test binary
  sigemptyset(&fatal.sa_mask);
  sigaction(SIGPIPE, &fatal, &previous);
  {
    EventLoop loop;
    auto child = start(loop, {"sh", "-c", "read line; exit 0"});
    Transport* in = child->transport->get_pipe_transport(0);
    in->write("first line\n");
    // Far more than the pipe holds: the child has gone before it drains.
    in->write(pattern(4 * 1024 * 1024, 2));
    ASSERT_TRUE(run_until(loop, [&] { return child->done(); }));
    EXPECT_EQ(child->pipe_errors[0], std::errc::broken_pipe);
    EXPECT_EQ(child->returncode_at_exit, 0);
  }
  sigaction(SIGPIPE, &previous, nullptr);
}

TEST_F(SubprocessFault, AThousandChildrenAreSpawnedAndReapedWithNothingLeft) {
  EventLoop loop;
  int before = open_fd_count();
  constexpr int kChildren = 1000;
  constexpr int kAtOnce = 50;
  int finished = 0;
  int nonzero = 0;
  for (int round = 0; round < kChildren / kAtOnce; ++round) {
    std::vector<std::shared_ptr<RecordingSubprocessProtocol>> batch;
    for (int i = 0; i < kAtOnce; ++i) {
      auto protocol = std::make_shared<RecordingSubprocessProtocol>();
      SubprocessOptions options;
      options.std_in = Stdio::devnull();
      loop.subprocess_exec([protocol] { return protocol; }, {"true"}, options);
      batch.push_back(protocol);
    }
    ASSERT_TRUE(run_until(loop, [&] {
      return std::all_of(batch.begin(), batch.end(), [](auto& p) { return p->done(); });
    }));
    for (auto& protocol : batch) {
      ++finished;
      nonzero += protocol->returncode_at_exit != 0 ? 1 : 0;
    }
  }
  EXPECT_EQ(finished, kChildren);
  EXPECT_EQ(nonzero, 0);
  EXPECT_EQ(open_fd_count(), before);
  EXPECT_TRUE(children_of_this_process().empty());
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.transports.empty());
}

TEST_F(SubprocessFault, AProtocolThatThrowsIsReportedAndItsChildKilled) {
  EventLoop loop;
  ExceptionLog exceptions(loop);
  auto child = start(loop, {"sh", "-c", "echo ready; exec sleep 60"});
  child->on_data = [](int, std::string_view) { throw std::runtime_error("cannot parse"); };
  ASSERT_TRUE(run_until(loop, [&] { return child->done(); }));
  EXPECT_EQ(child->returncode_at_exit, -SIGKILL);
  ASSERT_EQ(exceptions.reports.size(), 1u);
  EXPECT_EQ(exceptions.reports[0].message, "Exception in protocol.pipe_data_received()");
  EXPECT_EQ(exceptions.reports[0].protocol, child.get());
}

TEST_F(SubprocessFault, ClosingTheLoopWithManyChildrenRunningReapsThemAll) {
  std::vector<std::shared_ptr<RecordingSubprocessProtocol>> protocols;
  {
    EventLoop loop;
    for (int i = 0; i < 20; ++i) protocols.push_back(start(loop, {"sleep", "60"}));
  }
  for (auto& protocol : protocols) {
    EXPECT_EQ(protocol->events.back(), "connection_lost");
    EXPECT_EQ(protocol->lost_error, std::errc::connection_aborted);
  }
  EXPECT_TRUE(children_of_this_process().empty());
}

// ---- Without pidfd: the SIGCHLD fallback --------------------------------------------

class SigchldFallback : public SubprocessFault {
 protected:
  void SetUp() override { detail::set_pidfd_disabled_for_testing(true); }
  void TearDown() override {
    detail::set_pidfd_disabled_for_testing(false);
    SubprocessFault::TearDown();
  }
};

TEST_F(SigchldFallback, ChildrenAreReapedThroughTheLoopsSigchldHandler) {
  EventLoop loop;
  std::vector<std::shared_ptr<RecordingSubprocessProtocol>> children;
  for (int i = 0; i < 20; ++i)
    children.push_back(start(loop, {"sh", "-c", "exit " + std::to_string(i)}));
  EXPECT_EQ(detail::LoopAccess::internals(loop).signal_handlers.count(SIGCHLD), 1u);
  ASSERT_TRUE(run_until(loop, [&] {
    return std::all_of(children.begin(), children.end(), [](auto& c) { return c->done(); });
  }));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(children[i]->returncode_at_exit, i);
  auto sleeper = start(loop, {"sleep", "60"});
  sleeper->transport->terminate();
  ASSERT_TRUE(run_until(loop, [&] { return sleeper->done(); }));
  EXPECT_EQ(sleeper->returncode_at_exit, -SIGTERM);
}

// A child the test makes itself, behind tulip's back, must still be there for
// its own waitpid after tulip has reaped one of its own.
void other_code_keeps_its_children() {
  pid_t theirs = ::fork();
  ASSERT_GE(theirs, 0);
  if (theirs == 0) ::_exit(7);
  EventLoop loop;
  auto ours = start(loop, {"true"});
  ASSERT_TRUE(run_until(loop, [&] { return ours->done(); }));
  int status = 0;
  ASSERT_EQ(::waitpid(theirs, &status, 0), theirs);
  EXPECT_EQ(WEXITSTATUS(status), 7);
}

TEST_F(SubprocessFault, ChildrenOfOtherCodeAreNeverReaped) { other_code_keeps_its_children(); }

TEST_F(SigchldFallback, ChildrenOfOtherCodeAreNeverReaped) { other_code_keeps_its_children(); }

TEST_F(SigchldFallback, ClosingTheLoopReapsAChildStillRunning) {
  auto protocol = std::make_shared<RecordingSubprocessProtocol>();
  {
    EventLoop loop;
    loop.run_until_complete(loop.subprocess_exec([protocol] { return protocol; }, {"sleep", "60"}));
  }
  EXPECT_EQ(protocol->lost_error, std::errc::connection_aborted);
  EXPECT_TRUE(children_of_this_process().empty());
}

TEST_F(SigchldFallback, ALoopThatCannotTakeSigchldRefusesToSpawn) {
  EventLoop owner;
  owner.add_signal_handler(SIGUSR2, [] {});  // this loop handles the process's signals
  {
    EventLoop other;
    EXPECT_THROW(other.run_until_complete(other.subprocess_exec(
                     [] { return std::make_shared<RecordingSubprocessProtocol>(); }, {"true"})),
                 RuntimeError);
  }
  owner.remove_signal_handler(SIGUSR2);
  EXPECT_TRUE(children_of_this_process().empty());
}

}  // namespace
}  // namespace tulip::testing
