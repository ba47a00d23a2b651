// create_subprocess_exec / create_subprocess_shell and Process: streams,
// wait() and communicate() from coroutines, with real children.
#include <gtest/gtest.h>
#include <signal.h>

#include <string>

#include "support/loopback.hpp"
#include "support/subprocess_support.hpp"

namespace tulip::testing {
namespace {

ProcessOptions piped(bool in, bool out, bool err) {
  ProcessOptions options;
  if (in) options.std_in = Stdio::pipe();
  if (out) options.std_out = Stdio::pipe();
  if (err) options.std_err = Stdio::pipe();
  return options;
}

Task<std::pair<std::string, int>> read_then_wait(EventLoop& loop, std::vector<std::string> argv) {
  auto process = co_await create_subprocess_exec(loop, std::move(argv), piped(false, true, false));
  EXPECT_EQ(process->std_in(), nullptr);
  EXPECT_EQ(process->std_err(), nullptr);
  EXPECT_GT(process->pid(), 0);
  std::string output = co_await process->std_out()->read();
  int status = co_await process->wait();
  EXPECT_EQ(process->returncode(), status);
  co_return std::make_pair(output, status);
}

TEST(Process, ReadsStdoutAndWaits) {
  EventLoop loop;
  auto [output, status] =
      run_until_complete(loop, loop.create_task(read_then_wait(loop, {"echo", "from a child"})));
  EXPECT_EQ(output, "from a child\n");
  EXPECT_EQ(status, 0);
}

Task<ProcessOutput> communicate_with(EventLoop& loop, std::vector<std::string> argv,
                                     ProcessOptions options, std::optional<std::string> input) {
  auto process = co_await create_subprocess_exec(loop, std::move(argv), std::move(options));
  ProcessOutput output = co_await process->communicate(std::move(input));
  EXPECT_TRUE(process->returncode().has_value());
  co_return output;
}

TEST(Process, CommunicateFeedsStdinAndCollectsBothOutputs) {
  EventLoop loop;
  auto output = run_until_complete(
      loop, loop.create_task(communicate_with(loop, {"sh", "-c", "cat; echo done >&2"},
                                              piped(true, true, true), "through cat\n")));
  ASSERT_TRUE(output.out && output.err);
  EXPECT_EQ(*output.out, "through cat\n");
  EXPECT_EQ(*output.err, "done\n");
}

TEST(Process, CommunicateMovesMoreThanThePipesHoldBothWaysAtOnce) {
  // cat writes while we still write: done one after the other, both would
  // block on a full pipe.
  EventLoop loop;
  std::string input = pattern(8 * 1024 * 1024, 4);
  auto output = run_until_complete(
      loop, loop.create_task(communicate_with(loop, {"cat"}, piped(true, true, false), input)));
  ASSERT_TRUE(output.out);
  EXPECT_EQ(output.out->size(), input.size());
  EXPECT_TRUE(*output.out == input);
  EXPECT_FALSE(output.err);
}

TEST(Process, CommunicateWithAChildThatReadsNothingIsNotAnError) {
  EventLoop loop;
  auto output = run_until_complete(
      loop,
      loop.create_task(communicate_with(loop, {"sh", "-c", "exec 0<&-; echo ignored the input"},
                                        piped(true, true, false), pattern(1 << 20, 1))));
  EXPECT_EQ(output.out, "ignored the input\n");
}

Task<int> shell_status(EventLoop& loop, std::string command, std::string* out) {
  auto process =
      co_await create_subprocess_shell(loop, std::move(command), piped(false, true, false));
  *out = co_await process->std_out()->read();
  co_return co_await process->wait();
}

TEST(Process, ShellCommandsAndTheirStatus) {
  EventLoop loop;
  std::string out;
  EXPECT_EQ(run_until_complete(
                loop, loop.create_task(shell_status(loop, "echo $((1 + 2)); exit 5", &out))),
            5);
  EXPECT_EQ(out, "3\n");
}

Task<std::string> talk_line_by_line(EventLoop& loop) {
  std::vector<std::string> argv{"cat"};
  auto process = co_await create_subprocess_exec(loop, std::move(argv), piped(true, true, false));
  std::string transcript;
  std::vector<std::string> lines{"one\n", "two\n", "three\n"};
  for (const std::string& line : lines) {
    process->std_in()->write(line);
    co_await process->std_in()->drain();
    transcript += co_await process->std_out()->readline();
  }
  process->std_in()->close();
  co_await process->std_in()->wait_closed();
  EXPECT_EQ(co_await process->std_out()->read(), "");  // EOF after stdin closed
  EXPECT_EQ(co_await process->wait(), 0);
  co_return transcript;
}

TEST(Process, AnInteractiveChildLineByLine) {
  EventLoop loop;
  EXPECT_EQ(run_until_complete(loop, loop.create_task(talk_line_by_line(loop))),
            "one\ntwo\nthree\n");
}

Task<int> kill_a_sleeper(EventLoop& loop) {
  std::vector<std::string> argv{"sleep", "60"};
  auto process = co_await create_subprocess_exec(loop, std::move(argv));
  EXPECT_EQ(process->returncode(), std::nullopt);
  process->kill();
  int status = co_await process->wait();
  process->terminate();  // after the reap: nothing happens
  co_return status;
}

TEST(Process, KillAndWait) {
  EventLoop loop;
  EXPECT_EQ(run_until_complete(loop, loop.create_task(kill_a_sleeper(loop))), -SIGKILL);
}

Task<void> drain_into_a_gone_child(EventLoop& loop) {
  std::vector<std::string> argv{"true"};
  auto process = co_await create_subprocess_exec(loop, std::move(argv), piped(true, false, false));
  co_await process->wait();
  process->std_in()->write(pattern(1 << 20, 6));
  co_await process->std_in()->drain();
}

TEST(Process, DrainingStdinOfAChildThatHasGoneThrows) {
  EventLoop loop;
  EXPECT_THROW(run_until_complete(loop, loop.create_task(drain_into_a_gone_child(loop))),
               ConnectionError);
}

Task<void> start_missing(EventLoop& loop) {
  std::vector<std::string> argv{"tulip-no-such-program-either"};
  co_await create_subprocess_exec(loop, std::move(argv));
}

TEST(Process, AMissingProgramThrowsFromCreate) {
  EventLoop loop;
  try {
    run_until_complete(loop, loop.create_task(start_missing(loop)));
    ADD_FAILURE() << "a missing program started";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
  }
  EXPECT_EQ(zombie_children(), 0);
}

}  // namespace
}  // namespace tulip::testing
