// loop.sendfile and loop.sock_sendfile under faults: a file truncated while it
// is sent (the kernel's path, the buffered path, sock_sendfile), a transport
// closed, aborted or reset by its peer in the middle, files that are not
// regular files, bad offsets and descriptors, a second sendfile at once, a
// cancelled one, and a loop closed with one in progress. Each ends with one
// clear outcome and leaves the loop and other connections working.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

#include "fault/fault_support.hpp"
#include "loop_access.hpp"
#include "selector/epoll_backend.hpp"
#include "support/temp_file.hpp"
#include "tulip/testing/memory_transport.hpp"

namespace tulip::testing {
namespace {

tulip::detail::EpollBackend& epoll_of(EventLoop& loop) {
  return static_cast<tulip::detail::EpollBackend&>(tulip::detail::LoopAccess::backend(loop));
}

// Shrinks the send buffer of a transport's socket, so that little is in
// flight and the file is sent in many steps.
void small_send_buffer(Transport& transport) {
  int fd = transport.get_extra_info<int>("socket").value();
  int size = 4096;
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)), 0);
}

// Reads on its own thread, counting, until EOF.
struct CountingReader {
  explicit CountingReader(const RawSocket& socket)
      : thread([this, fd = socket.fd()] {
          char buffer[4096];
          for (;;) {
            ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
            if (n <= 0) return;
            data.append(buffer, static_cast<std::size_t>(n));
            count.fetch_add(static_cast<std::size_t>(n));
          }
        }) {}
  ~CountingReader() {
    if (thread.joinable()) thread.join();
  }
  std::string data;  // read only after join()
  std::atomic<std::size_t> count{0};
  std::thread thread;
};

template <class T>
std::string failure_of(EventLoop& loop, Future<T> future) {
  try {
    loop.run_until_complete(future);
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "the operation succeeded";
  return {};
}

TEST(SendfileFault, FileTruncatedWhileTheKernelSendsItEndsWithTheBytesSent) {
  EventLoop loop;
  std::string contents = pattern(8 * 1024 * 1024, 21);
  TempFile file(contents);
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  small_send_buffer(*connection.transport);
  auto future = loop.sendfile(*connection.transport, file.fd());
  CountingReader reader(peer);
  // Once part of it has arrived, the file is cut to 1 MiB under the sender.
  ASSERT_TRUE(run_until(loop, [&] { return reader.count.load() >= 256 * 1024 || future.done(); }));
  ASSERT_FALSE(future.done());
  file.truncate(1024 * 1024);
  EXPECT_EQ(loop.run_until_complete(future), 1024u * 1024);
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  reader.thread.join();
  EXPECT_TRUE(reader.data == contents.substr(0, 1024 * 1024));
  EXPECT_EQ(file.position(), 1024 * 1024);
  EXPECT_FALSE(protocol->lost_error);
}

TEST(SendfileFault, FileTruncatedUnderTheBufferedPathEndsWithTheBytesSent) {
  EventLoop loop;
  std::string contents = pattern(4 * 1024 * 1024, 22);
  TempFile file(contents);
  MemoryTransportOptions options;
  options.peer_window = 64 * 1024;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto peer = MemoryTransport::connect(loop, protocol, options);
  run_until_idle(loop);
  auto future = loop.sendfile(*peer.transport, file.fd());
  run_until_idle(loop);
  std::string received = peer.take_written();
  ASSERT_FALSE(future.done());
  // 300,000 bytes: cut in the middle of a 256 KiB chunk still to be read.
  file.truncate(300000);
  for (int i = 0; i < 1000 && !future.done(); ++i) {
    run_until_idle(loop);
    received += peer.take_written();
  }
  ASSERT_TRUE(future.done());
  run_until_idle(loop);
  received += peer.take_written();
  EXPECT_EQ(future.result(), received.size());
  EXPECT_TRUE(received == contents.substr(0, received.size()));
  EXPECT_GE(received.size(), 300000u);
  EXPECT_LT(received.size(), contents.size());
}

TEST(SendfileFault, FileTruncatedUnderSockSendfileEndsWithTheBytesSent) {
  EventLoop loop;
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
  RawSocket ours(pair[0]);
  RawSocket peer(pair[1]);
  ::fcntl(peer.fd(), F_SETFL, ::fcntl(peer.fd(), F_GETFL) & ~O_NONBLOCK);
  std::string contents = pattern(8 * 1024 * 1024, 23);
  TempFile file(contents);
  auto future = loop.sock_sendfile(ours.fd(), file.fd());
  CountingReader reader(peer);
  ASSERT_TRUE(run_until(loop, [&] { return reader.count.load() >= 256 * 1024 || future.done(); }));
  ASSERT_FALSE(future.done());
  file.truncate(3 * 1024 * 1024);
  std::size_t sent = loop.run_until_complete(future);
  ::shutdown(ours.fd(), SHUT_WR);
  reader.thread.join();
  EXPECT_EQ(sent, reader.data.size());
  EXPECT_GE(sent, 3u * 1024 * 1024);  // what was in flight when it was cut may be more
  EXPECT_TRUE(reader.data == contents.substr(0, sent));
}

TEST(SendfileFault, ClosingOrAbortingTheTransportMidwayFailsWithTheBytesSent) {
  for (bool abort : {false, true}) {
    EventLoop loop;
    if (std::string(loop.backend_name()) == "io_uring") {
      // The kernel path's own rules; io_uring transports take the buffered path.
      GTEST_SKIP() << "loop.sendfile on an io_uring stream transport is the buffered path";
    }
    TempFile file(pattern(16 * 1024 * 1024, 24));
    auto protocol = std::make_shared<RecordingProtocol>();
    // The peer never reads: the file cannot be sent whole.
    auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
    small_send_buffer(*connection.transport);
    auto future = loop.sendfile(*connection.transport, file.fd());
    run_iterations(loop, 5);
    ASSERT_FALSE(future.done());
    if (abort) {
      connection.transport->abort();
    } else {
      connection.transport->close();
    }
    try {
      loop.run_until_complete(future);
      ADD_FAILURE() << "sendfile completed although its transport closed";
    } catch (const ConnectionError& e) {
      EXPECT_EQ(e.code(), std::errc::connection_aborted);
      std::string what = e.what();
      EXPECT_NE(what.find("closed after"), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos);
    }
    ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
    EXPECT_FALSE(protocol->lost_error);
    // The file's position says how far it got; the loop serves on.
    EXPECT_GE(file.position(), 0);
    auto other = std::make_shared<RecordingProtocol>();
    auto [second, second_peer] = connect_to_raw_peer(loop, other);
    second.transport->write("fine");
    EXPECT_EQ(second_peer.read_exactly(4), "fine");
    second.transport->abort();
    ASSERT_TRUE(run_until(loop, [&] { return other->lost == 1; }));
  }
}

TEST(SendfileFault, PeerResetMidwayEndsTheSendfileAndTheConnectionWithTheError) {
  EventLoop loop;
  TempFile file(pattern(16 * 1024 * 1024, 25));
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  small_send_buffer(*connection.transport);
  auto future = loop.sendfile(*connection.transport, file.fd());
  run_iterations(loop, 5);
  ASSERT_FALSE(future.done());
  peer.reset_connection();
  try {
    loop.run_until_complete(future);
    ADD_FAILURE() << "sendfile completed to a peer that reset";
  } catch (const ConnectionError& e) {
    EXPECT_TRUE(is_reset_error(e.code())) << e.what();
  }
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_TRUE(is_reset_error(protocol->lost_error)) << protocol->lost_error.message();
}

// sendfile(2) cannot be told MSG_NOSIGNAL: a peer that has gone raises
// SIGPIPE, whose default action ends the process (this test's included).
TEST(SendfileFault, APeerThatWentAwayNeverRaisesSigpipe) {
  EventLoop loop;
  TempFile file(pattern(16 * 1024 * 1024, 31));
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  peer.reset();  // closed without reading: the file's first bytes bring a RST back
  small_send_buffer(*connection.transport);
  try {
    loop.run_until_complete(loop.sendfile(*connection.transport, file.fd()));
    ADD_FAILURE() << "sendfile completed to a peer that is gone";
  } catch (const ConnectionError& e) {
    EXPECT_TRUE(is_reset_error(e.code())) << e.what();
  }
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  // A socket shut for writing by its owner fails with EPIPE on the first call.
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
  RawSocket ours(pair[0]);
  RawSocket other(pair[1]);
  ::shutdown(ours.fd(), SHUT_WR);
  try {
    loop.run_until_complete(loop.sock_sendfile(ours.fd(), file.fd()));
    ADD_FAILURE() << "sock_sendfile on a socket shut for writing";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), std::errc::broken_pipe) << e.what();
  }
}

TEST(SendfileFault, BufferedPathEndsWhenThePeerResets) {
  EventLoop loop;
  TempFile file(pattern(2 * 1024 * 1024, 26));
  MemoryTransportOptions options;
  options.peer_window = 1000;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto peer = MemoryTransport::connect(loop, protocol, options);
  run_until_idle(loop);
  auto future = loop.sendfile(*peer.transport, file.fd());
  run_until_idle(loop);
  ASSERT_FALSE(future.done());
  peer.reset();
  run_until_idle(loop);
  ASSERT_TRUE(future.done());
  try {
    future.result();
    ADD_FAILURE() << "the buffered sendfile completed to a peer that reset";
  } catch (const ConnectionError& e) {
    EXPECT_EQ(e.code(), std::errc::connection_reset);
    EXPECT_NE(std::string(e.what()).find("lost after"), std::string::npos) << e.what();
  }
  // The application's protocol hears of the loss once, as without a sendfile.
  EXPECT_EQ(protocol->lost, 1);
  EXPECT_EQ(protocol->lost_error, std::errc::connection_reset);
}

TEST(SendfileFault, AReadErrorOfTheFileFailsTheSendfileAndLeavesTheConnection) {
  // Injects failures into the epoll backend's system calls.
  EventLoop loop(EventLoopOptions{BackendKind::kEpoll});
  TempFile file(pattern(100000, 29));
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  epoll_of(loop).inject_sendfile_failure(EIO);
  try {
    loop.run_until_complete(loop.sendfile(*connection.transport, file.fd()));
    ADD_FAILURE() << "sendfile completed despite the file's error";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), std::errc::io_error);
    EXPECT_NE(std::string(e.what()).find("file_fd " + std::to_string(file.fd())), std::string::npos)
        << e.what();
  }
  // The connection is not the file: it reads and writes on.
  EXPECT_FALSE(connection.transport->is_closing());
  EXPECT_TRUE(connection.transport->is_reading());
  connection.transport->write("next");
  EXPECT_EQ(peer.read_exactly(4), "next");
  connection.transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST(SendfileFault, FilesThatAreNotRegularAndBadArgumentsAreRefusedWithOneLine) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  Transport& transport = *connection.transport;
  int pipe_ends[2];
  ASSERT_EQ(::pipe2(pipe_ends, O_CLOEXEC), 0);
  std::string message = failure_of(loop, loop.sendfile(transport, pipe_ends[0]));
  EXPECT_NE(message.find("is a pipe"), std::string::npos) << message;
  EXPECT_NE(message.find("regular file"), std::string::npos) << message;
  message = failure_of(loop, loop.sock_sendfile(pipe_ends[1], pipe_ends[0]));
  EXPECT_FALSE(message.empty());
  ::close(pipe_ends[0]);
  ::close(pipe_ends[1]);
  int directory = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  message = failure_of(loop, loop.sendfile(transport, directory));
  EXPECT_NE(message.find("is a directory"), std::string::npos) << message;
  ::close(directory);
  int closed = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ::close(closed);
  try {
    loop.run_until_complete(loop.sendfile(transport, closed));
    ADD_FAILURE() << "sent a closed descriptor";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), std::errc::bad_file_descriptor);
  }
  TempFile file(pattern(100));
  message = failure_of(loop, loop.sendfile(transport, file.fd(), -1));
  EXPECT_NE(message.find("non-negative"), std::string::npos) << message;
  for (const std::string& line : {message}) EXPECT_EQ(line.find('\n'), std::string::npos);
  // None of it touched the connection.
  EXPECT_FALSE(transport.is_closing());
  EXPECT_TRUE(transport.is_reading());
  EXPECT_EQ(loop.run_until_complete(loop.sendfile(transport, file.fd())), 100u);
  EXPECT_EQ(peer.read_exactly(100), pattern(100));
  transport.abort();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  // A closed transport refuses at once.
  EXPECT_NE(failure_of(loop, loop.sendfile(transport, file.fd())).find("closing"),
            std::string::npos);
}

TEST(SendfileFault, ASecondSendfileAtOnceIsRefusedAndACancelledOneStops) {
  EventLoop loop;
  TempFile file(pattern(16 * 1024 * 1024, 27));
  auto protocol = std::make_shared<RecordingProtocol>();
  auto raw_connection = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  auto& connection = raw_connection.first;
  auto& peer = raw_connection.second;
  small_send_buffer(*connection.transport);
  auto first = loop.sendfile(*connection.transport, file.fd());
  auto second = loop.sendfile(*connection.transport, file.fd());
  EXPECT_NE(failure_of(loop, second).find("already in progress"), std::string::npos);
  EXPECT_FALSE(first.done());
  first.cancel();
  // The peer reads what is in flight; the transport then leaves sendfile mode
  // and writes again.
  CountingReader reader(peer);
  ASSERT_TRUE(run_until(loop, [&] { return connection.transport->is_reading(); }));
  connection.transport->write("done");
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  reader.thread.join();
  ASSERT_GE(reader.data.size(), 4u);
  EXPECT_EQ(reader.data.substr(reader.data.size() - 4), "done");
  EXPECT_LT(reader.data.size(), 16u * 1024 * 1024);
}

TEST(SendfileFault, ASecondSendfileDuringTheBufferedPathIsRefused) {
  // Injects failures into the epoll backend's system calls.
  EventLoop loop(EventLoopOptions{BackendKind::kEpoll});
  TempFile file(pattern(16 * 1024 * 1024, 30));
  auto protocol = std::make_shared<RecordingProtocol>();
  auto raw_connection = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  auto& connection = raw_connection.first;  // (its .second, the peer, stays open)
  small_send_buffer(*connection.transport);
  epoll_of(loop).inject_sendfile_failure(EINVAL);
  auto first = loop.sendfile(*connection.transport, file.fd());
  // The buffered path takes over from the ready queue; then the stand-in is installed.
  ASSERT_TRUE(run_until(loop, [&] {
    return connection.transport->get_protocol() != protocol.get() || first.done();
  }));
  ASSERT_FALSE(first.done());
  EXPECT_NE(failure_of(loop, loop.sendfile(*connection.transport, file.fd())).find("already"),
            std::string::npos);
  connection.transport->abort();
  EXPECT_THROW(loop.run_until_complete(first), ConnectionError);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST(SendfileFault, ClosingTheLoopWithASendfileInProgressLeavesNothingBehind) {
  TempFile file(pattern(16 * 1024 * 1024, 28));
  Future<std::size_t> pending;
  auto protocol = std::make_shared<RecordingProtocol>();
  RawSocket peer;
  {
    EventLoop loop;
    if (std::string(loop.backend_name()) == "io_uring") {
      // The kernel path's own rules; io_uring transports take the buffered path.
      GTEST_SKIP() << "loop.sendfile on an io_uring stream transport is the buffered path";
    }
    auto [connection, raw] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
    peer = std::move(raw);
    small_send_buffer(*connection.transport);
    pending = loop.sendfile(*connection.transport, file.fd());
    run_iterations(loop, 3);
    ASSERT_FALSE(pending.done());
  }
  EXPECT_FALSE(pending.done());  // never completed, and nothing dangles (ASan checks)
  EXPECT_EQ(protocol->lost, 1);
  EXPECT_EQ(protocol->lost_error, std::errc::connection_aborted);
}

}  // namespace
}  // namespace tulip::testing
