// subprocess_exec / subprocess_shell with real children: streams, options,
// exit codes, signals, and the order the protocol hears things in.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "support/loopback.hpp"
#include "support/pipe_pair.hpp"
#include "support/subprocess_support.hpp"
#include "support/temp_dir.hpp"

namespace tulip::testing {
namespace {

using Events = std::vector<std::string>;

// Runs `argv` to the end; the protocol afterwards.
std::shared_ptr<RecordingSubprocessProtocol> run_child(EventLoop& loop,
                                                       std::vector<std::string> argv,
                                                       SubprocessOptions options = {}) {
  auto protocol = std::make_shared<RecordingSubprocessProtocol>();
  loop.run_until_complete(
      loop.subprocess_exec([protocol] { return protocol; }, std::move(argv), std::move(options)));
  EXPECT_TRUE(run_until(loop, [&] { return protocol->done(); }));
  return protocol;
}

// The events, with the three pipe losses in any order reduced to "lost *".
Events with_pipe_losses_merged(const Events& events) {
  Events merged;
  for (const std::string& e : events) {
    if (e.rfind("lost ", 0) == 0) {
      if (merged.empty() || merged.back() != "lost *") merged.push_back("lost *");
    } else {
      merged.push_back(e);
    }
  }
  return merged;
}

TEST(Subprocess, EchoDeliversItsOutputThenEveryPipeLossThenTheExit) {
  EventLoop loop;
  auto child = run_child(loop, {"echo", "hello", "child"});
  EXPECT_EQ(child->output[1], "hello child\n");
  EXPECT_EQ(child->output[2], "");
  EXPECT_EQ(with_pipe_losses_merged(child->events),
            (Events{"made", "data 1", "lost *", "exited", "connection_lost"}));
  EXPECT_EQ(child->count("lost 0") + child->count("lost 1") + child->count("lost 2"), 3);
  EXPECT_EQ(child->returncode_at_exit, 0);
  EXPECT_FALSE(child->lost_error);
}

TEST(Subprocess, ExitStatusesAndDeathBySignal) {
  EventLoop loop;
  EXPECT_EQ(run_child(loop, {"sh", "-c", "exit 3"})->returncode_at_exit, 3);
  EXPECT_EQ(run_child(loop, {"sh", "-c", "kill -TERM $$"})->returncode_at_exit, -SIGTERM);
}

TEST(Subprocess, CatEchoesStdinAndEndsWhenStdinCloses) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingSubprocessProtocol>();
  auto [transport, same] =
      loop.run_until_complete(loop.subprocess_exec([protocol] { return protocol; }, {"cat"}));
  EXPECT_EQ(same, protocol);
  EXPECT_GT(transport->get_pid(), 0);
  EXPECT_EQ(transport->get_returncode(), std::nullopt);
  EXPECT_EQ(transport->get_extra_info<pid_t>("subprocess"), transport->get_pid());
  Transport* in = transport->get_pipe_transport(0);
  ASSERT_NE(in, nullptr);
  ASSERT_NE(transport->get_pipe_transport(1), nullptr);
  EXPECT_EQ(transport->get_pipe_transport(3), nullptr);
  in->write("line one\n");
  in->writelines({"line ", "two\n"});
  ASSERT_TRUE(run_until(loop, [&] { return protocol->output[1] == "line one\nline two\n"; }));
  EXPECT_EQ(transport->get_returncode(), std::nullopt);
  in->write_eof();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->done(); }));
  EXPECT_EQ(protocol->returncode_at_exit, 0);
  EXPECT_EQ(transport->get_returncode(), 0);
  EXPECT_FALSE(protocol->pipe_errors[0]);
}

TEST(Subprocess, StderrApartOrMergedIntoStdout) {
  EventLoop loop;
  auto apart = run_child(loop, {"sh", "-c", "echo out; echo err >&2"});
  EXPECT_EQ(apart->output[1], "out\n");
  EXPECT_EQ(apart->output[2], "err\n");
  SubprocessOptions merged;
  merged.std_err = Stdio::to_stdout();
  auto together = run_child(loop, {"sh", "-c", "echo out; echo err >&2"}, merged);
  EXPECT_EQ(together->output[1], "out\nerr\n");
  EXPECT_EQ(together->count("lost 2"), 0);  // no pipe of its own
}

TEST(Subprocess, DevnullAndInheritedStreamsHaveNoPipe) {
  EventLoop loop;
  SubprocessOptions options;
  options.std_in = Stdio::devnull();
  options.std_err = Stdio::devnull();
  auto protocol = std::make_shared<RecordingSubprocessProtocol>();
  auto child = loop.run_until_complete(
      loop.subprocess_exec([protocol] { return protocol; }, {"cat"}, options));
  EXPECT_EQ(child.transport->get_pipe_transport(0), nullptr);
  EXPECT_EQ(child.transport->get_pipe_transport(2), nullptr);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->done(); }));  // cat reads EOF at once
  EXPECT_EQ(protocol->returncode_at_exit, 0);
  EXPECT_EQ(protocol->count("lost 1"), 1);
}

TEST(Subprocess, AGivenDescriptorStaysTheCallersAndReceivesTheOutput) {
  EventLoop loop;
  PipePair pipe;
  SubprocessOptions options;
  options.std_out = Stdio::fd(pipe.fds[1]);
  auto child = run_child(loop, {"echo", "to the caller"}, options);
  EXPECT_EQ(child->output[1], "");
  EXPECT_EQ(::fcntl(pipe.fds[1], F_GETFD), FD_CLOEXEC);  // still open, still ours
  pipe.close_write();
  std::string got;
  char buffer[64];
  for (ssize_t n; (n = ::read(pipe.fds[0], buffer, sizeof(buffer))) > 0;) got.append(buffer, n);
  EXPECT_EQ(got, "to the caller\n");
}

TEST(Subprocess, CwdAndEnvironment) {
  EventLoop loop;
  TempDir dir;
  SubprocessOptions in_dir;
  in_dir.cwd = dir.path();
  EXPECT_EQ(run_child(loop, {"pwd"}, in_dir)->output[1], dir.path() + "\n");

  SubprocessOptions with_env;
  with_env.env = std::map<std::string, std::string>{{"GREETING", "bonjour"}, {"PATH", "/bin"}};
  EXPECT_EQ(run_child(loop, {"sh", "-c", "echo $GREETING; echo $HOME"}, with_env)->output[1],
            "bonjour\n\n");
}

TEST(Subprocess, AProgramIsSearchedInThePathOfTheGivenEnvironment) {
  EventLoop loop;
  TempDir dir;
  std::string script = dir.file("only-here");
  {
    std::ofstream out(script);
    out << "#!/bin/sh\necho found\n";
  }
  ::chmod(script.c_str(), 0755);
  SubprocessOptions options;
  options.env = std::map<std::string, std::string>{{"PATH", "/nonexistent:" + dir.path()}};
  EXPECT_EQ(run_child(loop, {"only-here"}, options)->output[1], "found\n");
  // Not in this process's own PATH.
  try {
    loop.run_until_complete(loop.subprocess_exec(
        [] { return std::make_shared<RecordingSubprocessProtocol>(); }, {"only-here"}));
    ADD_FAILURE() << "found in the wrong PATH";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
  }
}

TEST(Subprocess, PassFdsKeepsADescriptorOpenAndCloseFdsClosesTheOthers) {
  EventLoop loop;
  PipePair passed;
  PipePair withheld;
  // Not close-on-exec: only close_fds stands between the child and these.
  ::fcntl(passed.fds[1], F_SETFD, 0);
  ::fcntl(withheld.fds[1], F_SETFD, 0);
  SubprocessOptions options;
  options.pass_fds = {passed.fds[1]};
  std::string script = "echo kept >&" + std::to_string(passed.fds[1]) + " && echo leaked >&" +
                       std::to_string(withheld.fds[1]);
  // bash, not sh: dash redirects single-digit descriptors only, and these may
  // be 10 or more (an io_uring loop holds more descriptors, a sanitizer more still).
  auto child = run_child(loop, {"bash", "-c", script}, options);
  EXPECT_NE(child->returncode_at_exit, 0);  // the withheld descriptor is closed
  passed.close_write();
  std::string got;
  char buffer[64];
  for (ssize_t n; (n = ::read(passed.fds[0], buffer, sizeof(buffer))) > 0;) got.append(buffer, n);
  EXPECT_EQ(got, "kept\n");
}

TEST(Subprocess, NewSessionAndProcessGroup) {
  EventLoop loop;
  for (int variant = 0; variant < 2; ++variant) {
    SubprocessOptions options;
    if (variant == 0) options.start_new_session = true;
    if (variant == 1) options.process_group = 0;
    auto protocol = std::make_shared<RecordingSubprocessProtocol>();
    auto child = loop.run_until_complete(
        loop.subprocess_exec([protocol] { return protocol; }, {"cat"}, options));
    pid_t pid = child.transport->get_pid();
    if (variant == 0) {
      EXPECT_EQ(::getsid(pid), pid);
    } else {
      EXPECT_EQ(::getpgid(pid), pid);
      EXPECT_EQ(::getsid(pid), ::getsid(0));
    }
    child.transport->get_pipe_transport(0)->close();
    ASSERT_TRUE(run_until(loop, [&] { return protocol->done(); }));
  }
}

TEST(Subprocess, TerminateKillAndSignalsAfterTheEnd) {
  EventLoop loop;
  for (int signum : {SIGTERM, SIGKILL, SIGUSR1}) {
    auto protocol = std::make_shared<RecordingSubprocessProtocol>();
    auto child =
        loop.run_until_complete(loop.subprocess_exec([protocol] { return protocol; }, {"cat"}));
    if (signum == SIGTERM) {
      child.transport->terminate();
    } else if (signum == SIGKILL) {
      child.transport->kill();
    } else {
      child.transport->send_signal(signum);
    }
    ASSERT_TRUE(run_until(loop, [&] { return protocol->done(); }));
    EXPECT_EQ(protocol->returncode_at_exit, -signum);
    // Reaped: its pid may be another process's now, so nothing is sent.
    child.transport->kill();
    child.transport->send_signal(SIGTERM);
    EXPECT_THROW(child.transport->send_signal(0), std::invalid_argument);
  }
}

TEST(Subprocess, CloseKillsAChildStillRunningAndTheEndStillComes) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingSubprocessProtocol>();
  auto child = loop.run_until_complete(
      loop.subprocess_exec([protocol] { return protocol; }, {"sleep", "60"}));
  child.transport->close();
  EXPECT_TRUE(child.transport->is_closing());
  ASSERT_TRUE(run_until(loop, [&] { return protocol->done(); }));
  EXPECT_EQ(protocol->returncode_at_exit, -SIGKILL);
  EXPECT_EQ(with_pipe_losses_merged(protocol->events),
            (Events{"made", "lost *", "exited", "connection_lost"}));
}

TEST(Subprocess, ShellCommands) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingSubprocessProtocol>();
  loop.run_until_complete(loop.subprocess_shell([protocol] { return protocol; },
                                                "printf '%s' \"$((6 * 7))\" | tr 4 X"));
  ASSERT_TRUE(run_until(loop, [&] { return protocol->done(); }));
  EXPECT_EQ(protocol->output[1], "X2");
}

TEST(Subprocess, BadArgumentsAreRefusedBeforeAnythingStarts) {
  EventLoop loop;
  int calls = 0;
  auto factory = [&] {
    ++calls;
    return std::make_shared<RecordingSubprocessProtocol>();
  };
  EXPECT_THROW(loop.run_until_complete(loop.subprocess_exec(factory, {})), std::invalid_argument);
  EXPECT_THROW(loop.run_until_complete(loop.subprocess_exec(factory, {std::string("a\0b", 3)})),
               std::invalid_argument);
  SubprocessOptions bad_env;
  bad_env.env = std::map<std::string, std::string>{{"A=B", "1"}};
  EXPECT_THROW(loop.run_until_complete(loop.subprocess_exec(factory, {"true"}, bad_env)),
               std::invalid_argument);
  SubprocessOptions bad_stdout;
  bad_stdout.std_out = Stdio::to_stdout();
  EXPECT_THROW(loop.run_until_complete(loop.subprocess_exec(factory, {"true"}, bad_stdout)),
               std::invalid_argument);
  SubprocessOptions bad_fd;
  bad_fd.std_in = Stdio::fd(-5);
  EXPECT_THROW(loop.run_until_complete(loop.subprocess_exec(factory, {"true"}, bad_fd)),
               std::invalid_argument);
  EXPECT_EQ(calls, 0);
}

TEST(Subprocess, SpawnErrorsCarryTheErrnoAndNameTheProgram) {
  EventLoop loop;
  TempDir dir;
  std::string not_executable = dir.file("plain");
  std::ofstream(not_executable) << "data\n";
  struct Case {
    std::vector<std::string> argv;
    std::optional<std::string> cwd;
    std::errc expected;
  };
  std::vector<Case> cases = {
      {{"tulip-no-such-program"}, std::nullopt, std::errc::no_such_file_or_directory},
      {{dir.file("missing")}, std::nullopt, std::errc::no_such_file_or_directory},
      {{not_executable}, std::nullopt, std::errc::permission_denied},
      {{"true"}, dir.file("no-such-dir"), std::errc::no_such_file_or_directory},
  };
  for (const Case& c : cases) {
    SubprocessOptions options;
    options.cwd = c.cwd;
    try {
      loop.run_until_complete(loop.subprocess_exec(
          [] { return std::make_shared<RecordingSubprocessProtocol>(); }, c.argv, options));
      ADD_FAILURE() << c.argv[0] << " started";
    } catch (const OSError& e) {
      EXPECT_EQ(e.code(), c.expected) << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("cannot start '" + c.argv[0] + "': ", 0), 0u)
          << e.what();
    }
  }
  EXPECT_EQ(zombie_children(), 0);
}

TEST(Subprocess, ClosingTheLoopKillsAndReapsRunningChildren) {
  auto protocol = std::make_shared<RecordingSubprocessProtocol>();
  pid_t pid = -1;
  {
    EventLoop loop;
    auto child = loop.run_until_complete(
        loop.subprocess_exec([protocol] { return protocol; }, {"sleep", "60"}));
    pid = child.transport->get_pid();
  }
  EXPECT_EQ(protocol->events.back(), "connection_lost");
  EXPECT_EQ(protocol->lost_error, std::errc::connection_aborted);
  // Reaped already: it is nobody's child any more.
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  EXPECT_EQ(zombie_children(), 0);
}

TEST(Subprocess, CancellingBeforeTheSpawnStartsNothing) {
  EventLoop loop;
  int calls = 0;
  auto starting = loop.subprocess_exec(
      [&] {
        ++calls;
        return std::make_shared<RecordingSubprocessProtocol>();
      },
      {"sleep", "60"});
  starting.cancel();
  run_until(loop, [&] { return starting.done(); });
  loop.call_soon([] {});
  loop.stop();
  loop.run_forever();
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(children_of_this_process().empty());
}

}  // namespace
}  // namespace tulip::testing
