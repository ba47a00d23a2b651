// Pipe transports with their requests in flight: what a completion backend
// has outstanding between loop iterations (a read waiting for bytes, a write
// waiting for room, a poll waiting for the reader to go) must not lose,
// reorder or hold anything, nor raise SIGPIPE. Readiness backends pass the
// same tests with nothing in flight.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "support/loopback.hpp"
#include "support/pipe_pair.hpp"
#include "support/sigpipe.hpp"

namespace tulip::testing {
namespace {

// Writes as much of `data` as the pipe takes now; returns how much.
std::size_t write_some(int fd, std::string_view data) {
  ssize_t n = ::write(fd, data.data(), data.size());
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

TEST(PipeInFlight, AWriterFasterThanOneReadDeliversEveryByteInOrderAcrossIterations) {
  EventLoop loop;
  PipePair pipe;
  int writer = pipe.fds[1];
  ASSERT_EQ(::fcntl(writer, F_SETFL, O_NONBLOCK), 0);
  auto protocol = std::make_shared<RecordingProtocol>();
  loop.run_until_complete(
      loop.connect_read_pipe([protocol] { return protocol; }, pipe.take_read()));
  // 1 MiB, far more than one read (or the pipe) holds, written between
  // iterations as the pipe makes room, so reads complete while more arrive.
  std::string data = pattern(1 << 20, 7);
  std::size_t written = 0;
  for (int round = 0; written < data.size() && round < 100000; ++round) {
    written += write_some(writer, std::string_view(data).substr(written));
    run_iterations(loop, 1);
  }
  ASSERT_EQ(written, data.size());
  pipe.close_write();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(protocol->received, data);
  EXPECT_GT(protocol->chunks, 1u);
  EXPECT_TRUE(protocol->eof);
  EXPECT_FALSE(protocol->lost_error);
}

TEST(PipeInFlight, MorePipesEndingThanReceiveBuffersLeaveTheLoopReading) {
  // A read that meets EOF may take a provided buffer with it: each must come
  // back, or the loop stops reading after as many EOFs as there are buffers.
  EventLoop loop;
  for (int i = 0; i < 600; ++i) {
    PipePair pipe;
    auto protocol = std::make_shared<RecordingProtocol>();
    loop.run_until_complete(
        loop.connect_read_pipe([protocol] { return protocol; }, pipe.take_read()));
    if (i % 2 == 0) pipe.write_all("some bytes");
    pipe.close_write();
    ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; })) << "pipe " << i;
    EXPECT_EQ(protocol->received, i % 2 == 0 ? "some bytes" : "");
  }
}

TEST(PipeInFlight, PausingWithAReadInFlightKeepsTheBytesForTheResume) {
  EventLoop loop;
  PipePair pipe;
  auto protocol = std::make_shared<RecordingProtocol>();
  loop.run_until_complete(
      loop.connect_read_pipe([protocol] { return protocol; }, pipe.take_read()));
  run_iterations(loop, 2);  // the read waits for bytes
  protocol->transport->pause_reading();
  pipe.write_all("while paused");
  run_iterations(loop, 5);
  EXPECT_EQ(protocol->received, "");
  protocol->transport->resume_reading();
  pipe.write_all(", then resumed");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "while paused, then resumed"; }));
  pipe.close_write();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(protocol->received, "while paused, then resumed");
}

TEST(PipeInFlight, ClosingWithAReadInFlightLetsThePipeGoAtOnce) {
  EventLoop loop;
  PipePair pipe;
  auto protocol = std::make_shared<RecordingProtocol>();
  loop.run_until_complete(
      loop.connect_read_pipe([protocol] { return protocol; }, pipe.take_read()));
  run_iterations(loop, 2);  // the read waits for bytes
  protocol->transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_FALSE(protocol->lost_error);
  EXPECT_EQ(protocol->received, "");
  // No request holds the read end open: the writer finds no reader.
  pollfd writer{pipe.fds[1], POLLOUT, 0};
  ASSERT_EQ(::poll(&writer, 1, 0), 1);
  EXPECT_NE(writer.revents & POLLERR, 0);
  run_iterations(loop, 2);
  EXPECT_EQ(protocol->lost, 1);
}

TEST(PipeInFlight, ClosingAWatchedWritePipeShowsTheReaderEofAtOnce) {
  EventLoop loop;
  PipePair pipe;
  auto protocol = std::make_shared<RecordingProtocol>();
  loop.run_until_complete(
      loop.connect_write_pipe([protocol] { return protocol; }, pipe.take_write()));
  run_iterations(loop, 2);  // watching for the reader to go
  protocol->transport->write("last words");
  protocol->transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_FALSE(protocol->lost_error);
  std::string received;
  ASSERT_TRUE(::fcntl(pipe.fds[0], F_SETFL, O_NONBLOCK) == 0);
  EXPECT_FALSE(pipe.drain_into(received));  // EOF, not "nothing yet"
  EXPECT_EQ(received, "last words");
}

TEST(PipeInFlight, TheReaderGoingWithAWriteInFlightIsABrokenPipeWithoutSignal) {
  DefaultSigpipe default_action;
  EventLoop loop;
  PipePair pipe;
  auto protocol = std::make_shared<RecordingProtocol>();
  loop.run_until_complete(
      loop.connect_write_pipe([protocol] { return protocol; }, pipe.take_write()));
  // The pipe fills; the rest waits (in a write request, on io_uring) for room.
  protocol->transport->write(pattern(512 * 1024, 9));
  run_iterations(loop, 3);
  ASSERT_EQ(protocol->lost, 0);
  ASSERT_GT(protocol->transport->get_write_buffer_size(), 0u);
  pipe.close_read();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(protocol->lost_error, std::errc::broken_pipe);
  EXPECT_FALSE(sigpipe_pending());
  EXPECT_FALSE(sigpipe_blocked());  // the thread's mask is as it was
  run_iterations(loop, 2);
  EXPECT_EQ(protocol->lost, 1);
}

TEST(PipeInFlight, AbortingWithAWriteInFlightEndsAtOnceAndTheReaderSeesAPrefix) {
  DefaultSigpipe default_action;
  EventLoop loop;
  PipePair pipe;
  auto protocol = std::make_shared<RecordingProtocol>();
  loop.run_until_complete(
      loop.connect_write_pipe([protocol] { return protocol; }, pipe.take_write()));
  std::string data = pattern(512 * 1024, 11);
  protocol->transport->write(std::string_view(data));
  run_iterations(loop, 3);
  protocol->transport->abort();
  EXPECT_EQ(protocol->transport->get_write_buffer_size(), 0u);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_FALSE(protocol->lost_error);
  // The reader gets what the kernel took, then EOF (nothing holds the pipe).
  std::string received;
  ASSERT_TRUE(::fcntl(pipe.fds[0], F_SETFL, O_NONBLOCK) == 0);
  EXPECT_FALSE(pipe.drain_into(received));
  EXPECT_LT(received.size(), data.size());
  EXPECT_EQ(received, data.substr(0, received.size()));
  EXPECT_FALSE(sigpipe_blocked());
}

TEST(PipeInFlight, ClosingTheLoopWithRequestsInFlightEndsBothEnds) {
  DefaultSigpipe default_action;
  PipePair to_loop;
  PipePair from_loop;
  auto reading = std::make_shared<RecordingProtocol>();
  auto writing = std::make_shared<RecordingProtocol>();
  {
    EventLoop loop;
    loop.run_until_complete(
        loop.connect_read_pipe([reading] { return reading; }, to_loop.take_read()));
    loop.run_until_complete(
        loop.connect_write_pipe([writing] { return writing; }, from_loop.take_write()));
    writing->transport->write(pattern(256 * 1024, 13));
    run_iterations(loop, 3);
    ASSERT_EQ(writing->lost, 0);
  }
  EXPECT_EQ(reading->lost, 1);
  EXPECT_EQ(reading->lost_error, std::errc::connection_aborted);
  EXPECT_EQ(writing->lost, 1);
  EXPECT_EQ(writing->lost_error, std::errc::connection_aborted);
  // Both descriptors are closed: the other ends see it.
  pollfd writer{to_loop.fds[1], POLLOUT, 0};
  ASSERT_EQ(::poll(&writer, 1, 0), 1);
  EXPECT_NE(writer.revents & POLLERR, 0);
  std::string received;
  ASSERT_TRUE(::fcntl(from_loop.fds[0], F_SETFL, O_NONBLOCK) == 0);
  EXPECT_FALSE(from_loop.drain_into(received));
  EXPECT_FALSE(sigpipe_blocked());
}

}  // namespace
}  // namespace tulip::testing
