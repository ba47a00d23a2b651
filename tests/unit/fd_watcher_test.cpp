// add_reader / add_writer on raw descriptors (a pipe).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "tulip/event_loop.hpp"

namespace tulip {
namespace {

struct Pipe {
  int read_end = -1;
  int write_end = -1;
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    read_end = fds[0];
    write_end = fds[1];
  }
  ~Pipe() {
    ::close(read_end);
    ::close(write_end);
  }
};

TEST(FdWatcher, ReaderSeesData) {
  EventLoop loop;
  Pipe pipe;
  std::string received;
  loop.add_reader(pipe.read_end, [&] {
    char buffer[16];
    ssize_t n = ::read(pipe.read_end, buffer, sizeof(buffer));
    if (n > 0) received.append(buffer, static_cast<std::size_t>(n));
    if (received == "ping") loop.stop();
  });
  loop.call_soon([&] { ASSERT_EQ(::write(pipe.write_end, "ping", 4), 4); });
  loop.run_forever();
  EXPECT_EQ(received, "ping");
  EXPECT_TRUE(loop.remove_reader(pipe.read_end));
  EXPECT_FALSE(loop.remove_reader(pipe.read_end));
}

TEST(FdWatcher, WriterFiresWhenWritable) {
  EventLoop loop;
  Pipe pipe;
  int calls = 0;
  loop.add_writer(pipe.write_end, [&] {
    ++calls;
    loop.remove_writer(pipe.write_end);
    loop.stop();
  });
  loop.run_forever();
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(loop.remove_writer(pipe.write_end));
}

// One iteration in which the poll sees the pipe readable: the batch is
// [callback scheduled before, reader call queued by the poll].
int reader_calls_in_one_iteration(bool remove_first) {
  EventLoop loop;
  Pipe pipe;
  int reader_calls = 0;
  EXPECT_EQ(::write(pipe.write_end, "x", 1), 1);
  loop.add_reader(pipe.read_end, [&] { ++reader_calls; });
  loop.call_soon([&] {
    if (remove_first) loop.remove_reader(pipe.read_end);
  });
  loop.stop();  // a stopping loop always polls (without blocking) before its batch
  loop.run_forever();
  return reader_calls;
}

TEST(FdWatcher, RemoveReaderCancelsAQueuedCall) {
  EXPECT_EQ(reader_calls_in_one_iteration(false), 1);
  EXPECT_EQ(reader_calls_in_one_iteration(true), 0);
}

TEST(FdWatcher, ReaderAndWriterOnTheSameDescriptorAreIndependent) {
  EventLoop loop;
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  int reads = 0;
  int writes = 0;
  loop.add_reader(fds[0], [&] {
    char c;
    if (::read(fds[0], &c, 1) == 1) ++reads;
    loop.stop();
  });
  loop.add_writer(fds[0], [&] {
    ++writes;
    loop.remove_writer(fds[0]);
    ASSERT_EQ(::write(fds[1], "y", 1), 1);
  });
  loop.run_forever();
  EXPECT_EQ(writes, 1);
  EXPECT_EQ(reads, 1);
  EXPECT_TRUE(loop.remove_reader(fds[0]));
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace tulip
