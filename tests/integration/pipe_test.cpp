// connect_read_pipe and connect_write_pipe on real pipes, FIFOs, sockets and a pty.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "support/loopback.hpp"
#include "support/pipe_pair.hpp"
#include "support/temp_dir.hpp"

namespace tulip::testing {
namespace {

// Reads the read end of `pipe` from the loop with add_reader.
struct PipeReader {
  PipeReader(EventLoop& loop, PipePair& pipe) : loop_(loop), pipe_(pipe) {
    ::fcntl(pipe.fds[0], F_SETFL, O_NONBLOCK);
    loop.add_reader(pipe.fds[0], [this] {
      if (!pipe_.drain_into(received)) {
        eof = true;
        loop_.remove_reader(pipe_.fds[0]);
      }
    });
  }
  ~PipeReader() {
    if (!eof && pipe_.fds[0] >= 0) loop_.remove_reader(pipe_.fds[0]);
  }
  EventLoop& loop_;
  PipePair& pipe_;
  std::string received;
  bool eof = false;
};

TEST(ReadPipe, DeliversTheBytesThenEofThenCloses) {
  EventLoop loop;
  PipePair pipe;
  auto protocol = std::make_shared<RecordingProtocol>();
  int fd = pipe.fds[0];
  auto [transport, same] = loop.run_until_complete(
      loop.connect_read_pipe([protocol] { return protocol; }, pipe.take_read()));
  EXPECT_EQ(same, protocol);
  EXPECT_EQ(protocol->made, 1);
  EXPECT_EQ(transport->get_extra_info<int>("pipe"), fd);
  EXPECT_FALSE(transport->get_extra_info<SocketAddress>("peername"));
  EXPECT_TRUE(transport->is_reading());
  EXPECT_EQ(::fcntl(fd, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
  pipe.write_all("hello ");
  pipe.write_all("pipe");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "hello pipe"; }));
  pipe.close_write();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_TRUE(protocol->eof);
  EXPECT_FALSE(protocol->lost_error);
  EXPECT_TRUE(transport->is_closing());
  // The transport closed the descriptor it owned.
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
}

TEST(ReadPipe, ClosesAtEofEvenIfEofReceivedAsksToStayOpen) {
  EventLoop loop;
  PipePair pipe;
  auto protocol = std::make_shared<RecordingProtocol>();
  protocol->on_eof = [] { return true; };  // a socket would stay half open
  loop.run_until_complete(
      loop.connect_read_pipe([protocol] { return protocol; }, pipe.take_read()));
  pipe.close_write();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_TRUE(protocol->eof);
}

TEST(ReadPipe, PausedInConnectionMadeReadsNothingUntilResumed) {
  EventLoop loop;
  PipePair pipe;
  auto protocol = std::make_shared<RecordingProtocol>();
  protocol->on_made = [](Transport& t) { t.pause_reading(); };
  auto opened = loop.run_until_complete(
      loop.connect_read_pipe([protocol] { return protocol; }, pipe.take_read()));
  EXPECT_FALSE(opened.transport->is_reading());
  pipe.write_all("waiting");
  run_iterations(loop, 5);
  EXPECT_EQ(protocol->received, "");
  opened.transport->resume_reading();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "waiting"; }));
}

TEST(ReadPipe, HasNoWritingHalf) {
  EventLoop loop;
  PipePair pipe;
  auto protocol = std::make_shared<RecordingProtocol>();
  loop.run_until_complete(
      loop.connect_read_pipe([protocol] { return protocol; }, pipe.take_read()));
  ASSERT_NE(protocol->transport, nullptr);
  EXPECT_THROW(protocol->transport->write("no"), RuntimeError);
  EXPECT_THROW(protocol->transport->write_eof(), RuntimeError);
  EXPECT_FALSE(protocol->transport->can_write_eof());
  protocol->transport->write("");  // empty data is a no-op everywhere
}

TEST(ReadPipe, FeedsABufferedProtocol) {
  struct Collect final : BufferedProtocol {
    std::span<std::byte> get_buffer(std::size_t) override { return std::span(memory, 7); }
    void buffer_updated(std::size_t n) override {
      text.append(reinterpret_cast<const char*>(memory), n);
    }
    void connection_lost(std::error_code) override { lost = true; }
    std::byte memory[7];
    std::string text;
    bool lost = false;
  };
  EventLoop loop;
  PipePair pipe;
  auto protocol = std::make_shared<Collect>();
  loop.run_until_complete(
      loop.connect_read_pipe([protocol] { return protocol; }, pipe.take_read()));
  pipe.write_all("more than seven bytes");
  pipe.close_write();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost; }));
  EXPECT_EQ(protocol->text, "more than seven bytes");
}

TEST(WritePipe, WritesWithFlowControlAndDeliversEveryByteInOrder) {
  EventLoop loop;
  PipePair pipe;
  PipeReader reader(loop, pipe);
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [transport, same] = loop.run_until_complete(
      loop.connect_write_pipe([protocol] { return protocol; }, pipe.take_write()));
  EXPECT_TRUE(transport->can_write_eof());
  // A pipe holds 64 KiB: the rest of 1 MiB is buffered, over the high mark.
  std::string data = pattern(1 << 20, 3);
  transport->write(std::string_view(data));
  EXPECT_GT(transport->get_write_buffer_size(), 0u);
  EXPECT_EQ(protocol->pauses, 1);
  ASSERT_TRUE(run_until(loop, [&] { return reader.received.size() == data.size(); }));
  EXPECT_EQ(reader.received, data);
  EXPECT_EQ(protocol->resumes, 1);
  EXPECT_EQ(transport->get_write_buffer_size(), 0u);
  // write_eof is close for a pipe: the reader sees EOF once the buffer has gone.
  transport->writelines({"tail-", "end"});
  transport->write_eof();
  EXPECT_TRUE(transport->is_closing());
  ASSERT_TRUE(run_until(loop, [&] { return reader.eof && protocol->lost == 1; }));
  EXPECT_EQ(reader.received, data + "tail-end");
  EXPECT_FALSE(protocol->lost_error);
}

TEST(WritePipe, TheReaderGoingAwayWithNothingBufferedIsACleanEnd) {
  EventLoop loop;
  PipePair pipe;
  auto protocol = std::make_shared<RecordingProtocol>();
  loop.run_until_complete(
      loop.connect_write_pipe([protocol] { return protocol; }, pipe.take_write()));
  pipe.close_read();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_FALSE(protocol->lost_error);
}

TEST(WritePipe, ASocketEndIsWatchedForItsPeerGoingAway) {
  EventLoop loop;
  int ends[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends), 0);
  auto protocol = std::make_shared<RecordingProtocol>();
  loop.run_until_complete(loop.connect_write_pipe([protocol] { return protocol; }, ends[0]));
  protocol->transport->write("to the peer");
  char buffer[32];
  EXPECT_EQ(::read(ends[1], buffer, sizeof(buffer)), 11);
  ::close(ends[1]);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_FALSE(protocol->lost_error);
}

TEST(WritePipe, AFifoWorksAsAPipe) {
  TempDir dir;
  std::string path = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  int read_end = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  int write_end = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(read_end, 0);
  ASSERT_GE(write_end, 0);
  EventLoop loop;
  auto reading = std::make_shared<RecordingProtocol>();
  auto writing = std::make_shared<RecordingProtocol>();
  loop.run_until_complete(loop.connect_read_pipe([reading] { return reading; }, read_end));
  loop.run_until_complete(loop.connect_write_pipe([writing] { return writing; }, write_end));
  writing->transport->write("through the fifo");
  writing->transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return reading->lost == 1 && writing->lost == 1; }));
  EXPECT_EQ(reading->received, "through the fifo");
}

TEST(ReadPipe, ACharacterDeviceWorksAsAPipe) {
  int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  int terminal = ::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(terminal, 0);
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  loop.run_until_complete(loop.connect_read_pipe([protocol] { return protocol; }, master));
  ASSERT_EQ(::write(terminal, "typed\n", 6), 6);
  ASSERT_TRUE(
      run_until(loop, [&] { return protocol->received.find("typed") != std::string::npos; }));
  protocol->transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  ::close(terminal);
}

TEST(Pipes, ARegularFileIsRefusedWithAClearErrorAndClosed) {
  TempDir dir;
  std::string path = dir.path() + "/file";
  int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  EventLoop loop;
  int calls = 0;
  auto refused = loop.connect_read_pipe(
      [&] {
        ++calls;
        return std::make_shared<RecordingProtocol>();
      },
      fd);
  try {
    loop.run_until_complete(refused);
    ADD_FAILURE() << "a regular file was taken as a pipe";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()),
              "connect_read_pipe(" + std::to_string(fd) +
                  "): pipe transports are for pipes, sockets and character devices only, not "
                  "regular files or directories");
  }
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // closed: the call owned it
}

TEST(Pipes, ADescriptorEpollCannotWatchFailsWithTheReason) {
  int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EventLoop loop;
  auto refused = loop.connect_read_pipe([] { return std::make_shared<RecordingProtocol>(); }, fd);
  try {
    loop.run_until_complete(refused);
    ADD_FAILURE() << "/dev/null was watched";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), std::errc::operation_not_permitted);
    EXPECT_EQ(std::string(e.what()),
              "connect_read_pipe(" + std::to_string(fd) +
                  "): the loop cannot watch this descriptor: " + e.code().message());
  }
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
  EXPECT_THROW(loop.run_until_complete(loop.connect_write_pipe(
                   [] { return std::make_shared<RecordingProtocol>(); }, -1)),
               OSError);
}

TEST(Pipes, CancellingBeforeItRunsClosesTheDescriptorAndMakesNoProtocol) {
  EventLoop loop;
  PipePair pipe;
  int fd = pipe.fds[1];
  int calls = 0;
  auto opening = loop.connect_write_pipe(
      [&] {
        ++calls;
        return std::make_shared<RecordingProtocol>();
      },
      pipe.take_write());
  opening.cancel();
  run_iterations(loop, 3);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
}

TEST(Pipes, ClosingTheLoopEndsLivePipes) {
  PipePair pipe;
  auto protocol = std::make_shared<RecordingProtocol>();
  {
    EventLoop loop;
    loop.run_until_complete(
        loop.connect_read_pipe([protocol] { return protocol; }, pipe.take_read()));
  }
  EXPECT_EQ(protocol->lost, 1);
  EXPECT_EQ(protocol->lost_error, std::errc::connection_aborted);
}

}  // namespace
}  // namespace tulip::testing
