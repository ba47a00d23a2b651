// Pipes whose other end goes away: EPIPE reaches the protocol, SIGPIPE never
// reaches the process, and no byte accepted is silently lost.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <string>

#include "fault/fault_support.hpp"
#include "support/pipe_pair.hpp"
#include "support/sigpipe.hpp"

namespace tulip::testing {
namespace {

TEST(PipeFault, AWriteAfterTheReaderExitedEndsWithEpipeAndNoSignal) {
  DefaultSigpipe default_action;
  EventLoop loop;
  PipePair pipe;
  auto protocol = std::make_shared<RecordingProtocol>();
  loop.run_until_complete(
      loop.connect_write_pipe([protocol] { return protocol; }, pipe.take_write()));
  pipe.close_read();
  // Before the loop has seen the hang-up: the write itself meets it.
  protocol->transport->write("into nothing");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(protocol->lost_error, std::errc::broken_pipe);
  EXPECT_FALSE(sigpipe_pending());
  EXPECT_FALSE(sigpipe_blocked());  // the thread's mask is as it was
}

TEST(PipeFault, TheReaderExitingWithBytesStillBufferedIsABrokenPipe) {
  DefaultSigpipe default_action;
  EventLoop loop;
  PipePair pipe;
  auto protocol = std::make_shared<RecordingProtocol>();
  loop.run_until_complete(
      loop.connect_write_pipe([protocol] { return protocol; }, pipe.take_write()));
  // More than the pipe holds: some of it waits in the transport's buffer.
  protocol->transport->write(pattern(256 * 1024, 5));
  ASSERT_GT(protocol->transport->get_write_buffer_size(), 0u);
  pipe.close_read();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  // The protocol learns that its bytes did not all arrive.
  EXPECT_EQ(protocol->lost_error, std::errc::broken_pipe);
  EXPECT_FALSE(sigpipe_pending());
}

TEST(PipeFault, AThreadThatBlocksSigpipeItselfKeepsItsPendingSignal) {
  // The thread owns its blocked signals: the transport must not take a
  // SIGPIPE it did not hold back itself.
  sigset_t sigpipe;
  sigemptyset(&sigpipe);
  sigaddset(&sigpipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr);
  {
    EventLoop loop;
    PipePair pipe;
    auto protocol = std::make_shared<RecordingProtocol>();
    loop.run_until_complete(
        loop.connect_write_pipe([protocol] { return protocol; }, pipe.take_write()));
    pipe.close_read();
    protocol->transport->write("x");
    ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
    EXPECT_EQ(protocol->lost_error, std::errc::broken_pipe);
    EXPECT_TRUE(sigpipe_pending());
  }
  timespec no_wait{};
  EXPECT_EQ(sigtimedwait(&sigpipe, nullptr, &no_wait), SIGPIPE);
  pthread_sigmask(SIG_UNBLOCK, &sigpipe, nullptr);
}

TEST(PipeFault, AWriterThatExitsMidStreamLeavesNoByteUndelivered) {
  EventLoop loop;
  PipePair pipe;
  auto protocol = std::make_shared<RecordingProtocol>();
  loop.run_until_complete(
      loop.connect_read_pipe([protocol] { return protocol; }, pipe.take_read()));
  // The writer fills the pipe, then exits: every byte in the pipe still arrives
  // before the EOF.
  std::string sent = pattern(60 * 1024, 9);
  pipe.write_all(sent);
  pipe.close_write();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(protocol->received, sent);
  EXPECT_TRUE(protocol->eof);
}

TEST(PipeFault, CallbacksThatCloseFromInsideAreSafe) {
  EventLoop loop;
  PipePair pipe;
  auto protocol = std::make_shared<RecordingProtocol>();
  protocol->on_data = [&](std::string_view) {
    protocol->transport->close();
    protocol->transport->close();
  };
  loop.run_until_complete(
      loop.connect_read_pipe([protocol] { return protocol; }, pipe.take_read()));
  pipe.write_all("first");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(protocol->received, "first");
  EXPECT_FALSE(protocol->eof);  // closed before its writer finished: no EOF was read
}

TEST(PipeFault, AProtocolThatThrowsClosesOnlyItsPipe) {
  EventLoop loop;
  ExceptionLog exceptions(loop);
  PipePair first;
  PipePair second;
  auto throwing = std::make_shared<RecordingProtocol>();
  throwing->on_data = [](std::string_view) { throw std::runtime_error("bad data"); };
  auto fine = std::make_shared<RecordingProtocol>();
  loop.run_until_complete(
      loop.connect_read_pipe([throwing] { return throwing; }, first.take_read()));
  loop.run_until_complete(loop.connect_read_pipe([fine] { return fine; }, second.take_read()));
  first.write_all("boom");
  second.write_all("ok");
  ASSERT_TRUE(run_until(loop, [&] { return throwing->lost == 1 && fine->received == "ok"; }));
  EXPECT_EQ(throwing->lost_error, Error::kCallbackRaised);
  EXPECT_EQ(fine->lost, 0);
  ASSERT_EQ(exceptions.reports.size(), 1u);
  EXPECT_EQ(exceptions.reports[0].message, "Fatal error: protocol.data_received() call failed.");
}

}  // namespace
}  // namespace tulip::testing
