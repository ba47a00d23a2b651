// loop.sendfile and loop.sock_sendfile: the kernel's path on TCP and Unix
// stream transports, the buffered path (forced by the backend's test hook, and
// on an in-memory transport with a scripted peer window), offsets and counts,
// the file's position afterwards, and what the transport does meanwhile.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "loop_access.hpp"
#include "selector/epoll_backend.hpp"
#include "support/loopback.hpp"
#include "support/temp_file.hpp"
#include "tulip/testing/memory_transport.hpp"

namespace tulip::testing {
namespace {

tulip::detail::EpollBackend& epoll_of(EventLoop& loop) {
  return static_cast<tulip::detail::EpollBackend&>(tulip::detail::LoopAccess::backend(loop));
}

// Sends `file` over a fresh TCP connection with `send`; returns what the peer
// read to EOF (the transport is closed once `send`'s Future is done).
template <class Send>
std::string send_over_tcp(EventLoop& loop, std::shared_ptr<RecordingProtocol> protocol, Send send) {
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  std::string received;
  std::thread reader([&peer = peer, &received] { received = peer.read_to_eof(); });
  send(*connection.transport);
  connection.transport->close();
  EXPECT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  reader.join();
  return received;
}

TEST(SendfileTest, KernelPathSendsTheWholeFileAndMovesItsPosition) {
  EventLoop loop;
  std::string contents = pattern(5 * 1024 * 1024 + 123);
  TempFile file(contents);
  auto protocol = std::make_shared<RecordingProtocol>();
  std::size_t sent = 0;
  std::string received = send_over_tcp(loop, protocol, [&](Transport& transport) {
    sent = loop.run_until_complete(loop.sendfile(transport, file.fd()));
  });
  EXPECT_EQ(sent, contents.size());
  EXPECT_EQ(received.size(), contents.size());
  EXPECT_TRUE(received == contents);
  EXPECT_EQ(file.position(), static_cast<off_t>(contents.size()));
  EXPECT_FALSE(protocol->lost_error);
}

TEST(SendfileTest, OffsetAndCountSendThatSliceAndPositionAfterIt) {
  EventLoop loop;
  std::string contents = pattern(100000);
  TempFile file(contents);
  auto protocol = std::make_shared<RecordingProtocol>();
  std::size_t sent = 0;
  std::string received = send_over_tcp(loop, protocol, [&](Transport& transport) {
    sent = loop.run_until_complete(loop.sendfile(transport, file.fd(), 1000, 5000));
  });
  EXPECT_EQ(sent, 5000u);
  EXPECT_EQ(received, contents.substr(1000, 5000));
  EXPECT_EQ(file.position(), 6000);
}

TEST(SendfileTest, CountZeroSendsToTheEndAndAnOffsetPastTheEndSendsNothing) {
  EventLoop loop;
  std::string contents = pattern(70000);
  TempFile file(contents);
  auto protocol = std::make_shared<RecordingProtocol>();
  std::size_t rest = 0, none = 0, longer = 0;
  std::string received = send_over_tcp(loop, protocol, [&](Transport& transport) {
    rest = loop.run_until_complete(loop.sendfile(transport, file.fd(), 60000, 0));
    none = loop.run_until_complete(loop.sendfile(transport, file.fd(), 90000));
    // A count beyond the end: the bytes that exist.
    longer = loop.run_until_complete(loop.sendfile(transport, file.fd(), 69990, 1000));
  });
  EXPECT_EQ(rest, 10000u);
  EXPECT_EQ(none, 0u);
  EXPECT_EQ(longer, 10u);
  EXPECT_EQ(received, contents.substr(60000) + contents.substr(69990));
  EXPECT_EQ(file.position(), 70000);
}

TEST(SendfileTest, BufferedBytesGoFirstWritesAreRefusedAndReadingPausesMeanwhile) {
  EventLoop loop;
  if (std::string(loop.backend_name()) == "io_uring") {
    // The kernel path's own rules; io_uring transports take the buffered path.
    GTEST_SKIP() << "loop.sendfile on an io_uring stream transport is the buffered path";
  }
  std::string contents = pattern(3 * 1024 * 1024, 7);
  TempFile file(contents);
  auto protocol = std::make_shared<RecordingProtocol>();
  // A peer that reads slowly keeps the header buffered when sendfile starts.
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  Transport& transport = *connection.transport;
  int fd = transport.get_extra_info<int>("socket").value();
  int small = 4096;
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  std::string header(2 * 1024 * 1024, 'h');
  transport.write(header);
  ASSERT_GT(transport.get_write_buffer_size(), 0u);
  auto future = loop.sendfile(transport, file.fd());
  EXPECT_FALSE(transport.is_reading());
  EXPECT_THROW(transport.write("in the middle"), RuntimeError);
  EXPECT_THROW(transport.writelines({"a", "b"}), RuntimeError);
  // The peer's bytes wait in the kernel while the file is sent.
  peer.send_all("ping");
  std::string received;
  std::thread reader([&peer = peer, &received, &header, &contents] {
    received = peer.read_exactly(header.size() + contents.size());
  });
  EXPECT_EQ(loop.run_until_complete(future), contents.size());
  reader.join();
  EXPECT_TRUE(received == header + contents);
  EXPECT_TRUE(transport.is_reading());  // resumed: it was reading before
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "ping"; }));
  transport.write("after");
  EXPECT_EQ(peer.read_exactly(5), "after");
  transport.close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

// The direct write path learns of a sendfile from the registration (the
// transport watches for writability while a file is being sent), not from a
// check of its own: a file that starts with nothing buffered must hold writes
// back as well as one that queues behind buffered bytes.
TEST(SendfileTest, WritesAreRefusedDuringASendfileThatStartedWithNothingBuffered) {
  EventLoop loop;
  if (std::string(loop.backend_name()) == "io_uring") {
    GTEST_SKIP() << "loop.sendfile on an io_uring stream transport is the buffered path";
  }
  std::string contents = pattern(4 * 1024 * 1024, 5);
  TempFile file(contents);
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  Transport& transport = *connection.transport;
  int fd = transport.get_extra_info<int>("socket").value();
  int small = 4096;
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  ASSERT_EQ(transport.get_write_buffer_size(), 0u);
  auto future = loop.sendfile(transport, file.fd());
  // The peer reads nothing yet: most of the file is still to go.
  ASSERT_FALSE(future.done());
  EXPECT_THROW(transport.write("in the middle"), RuntimeError);
  EXPECT_EQ(transport.get_write_buffer_size(), 0u);
  std::string received;
  std::thread reader(
      [&peer = peer, &received, &contents] { received = peer.read_exactly(contents.size()); });
  EXPECT_EQ(loop.run_until_complete(future), contents.size());
  reader.join();
  EXPECT_TRUE(received == contents);  // nothing of the refused write among the file's bytes
  transport.write("after");
  EXPECT_EQ(peer.read_exactly(5), "after");
  transport.close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST(SendfileTest, WriteEofDuringASendfileFollowsTheFile) {
  EventLoop loop;
  if (std::string(loop.backend_name()) == "io_uring") {
    // The kernel path's own rules; io_uring transports take the buffered path.
    GTEST_SKIP() << "loop.sendfile on an io_uring stream transport is the buffered path";
  }
  std::string contents = pattern(4 * 1024 * 1024, 3);
  TempFile file(contents);
  auto protocol = std::make_shared<RecordingProtocol>();
  protocol->on_eof = [] { return true; };
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  auto future = loop.sendfile(*connection.transport, file.fd());
  connection.transport->write_eof();
  std::string received;
  std::thread reader([&peer = peer, &received] { received = peer.read_to_eof(); });
  EXPECT_EQ(loop.run_until_complete(future), contents.size());
  reader.join();  // EOF came, after the whole file
  EXPECT_TRUE(received == contents);
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST(SendfileTest, UnixStreamTransportsSendFilesToo) {
  EventLoop loop;
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  RawSocket peer(pair[1]);
  auto protocol = std::make_shared<RecordingProtocol>();
  auto connection = loop.run_until_complete(
      loop.connect_accepted_socket([protocol] { return protocol; }, pair[0]));
  std::string contents = pattern(1024 * 1024 + 1, 5);
  TempFile file(contents);
  std::string received;
  std::atomic<bool> read_all{false};
  std::thread reader([&] {
    received = peer.read_exactly(contents.size());
    read_all = true;
  });
  EXPECT_EQ(loop.run_until_complete(loop.sendfile(*connection.transport, file.fd())),
            contents.size());
  // The future says every byte was handed to the transport, not that the peer
  // has them: as in asyncio, the last chunk may still be on its way (on
  // io_uring a send request on a full socket moves on when the loop waits), so
  // the loop runs until the reader is done.
  EXPECT_TRUE(run_until(loop, [&] { return read_all.load(); }));
  reader.join();
  EXPECT_TRUE(received == contents);
  connection.transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST(SendfileTest, WhenTheKernelRefusesTheBufferedPathTakesOver) {
  // Injects failures into the epoll backend's system calls.
  EventLoop loop(EventLoopOptions{BackendKind::kEpoll});
  std::string contents = pattern(3 * 1024 * 1024 + 17, 9);
  TempFile file(contents);
  auto protocol = std::make_shared<RecordingProtocol>();
  std::size_t sent = 0;
  std::string received = send_over_tcp(loop, protocol, [&](Transport& transport) {
    epoll_of(loop).inject_sendfile_failure(EINVAL);
    auto future = loop.sendfile(transport, file.fd(), 17);
    sent = loop.run_until_complete(future);
    EXPECT_EQ(transport.get_protocol(), protocol.get());  // put back
  });
  EXPECT_EQ(sent, contents.size() - 17);
  EXPECT_TRUE(received == contents.substr(17));
  EXPECT_EQ(file.position(), static_cast<off_t>(contents.size()));
  // The stand-in took the flow-control calls, not the application's protocol.
  EXPECT_EQ(protocol->pauses, 0);
  EXPECT_EQ(protocol->resumes, 0);
}

TEST(SendfileTest, WithoutFallbackTheKernelsRefusalIsSendfileNotAvailable) {
  // Injects failures into the epoll backend's system calls.
  EventLoop loop(EventLoopOptions{BackendKind::kEpoll});
  TempFile file(pattern(1000));
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  epoll_of(loop).inject_sendfile_failure(ENOSYS);
  auto future = loop.sendfile(*connection.transport, file.fd(), 0, 0, false);
  EXPECT_THROW(loop.run_until_complete(future), SendfileNotAvailableError);
  EXPECT_EQ(file.position(), 0);
  EXPECT_FALSE(connection.transport->is_closing());  // the transport goes on
  connection.transport->write("still usable");
  EXPECT_EQ(peer.read_exactly(12), "still usable");
  connection.transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST(SendfileTest, BufferedPathOnAMemoryTransportFollowsThePeersWindow) {
  EventLoop loop;
  std::string contents = pattern(1024 * 1024 + 5, 11);
  TempFile file(contents);
  MemoryTransportOptions options;
  options.peer_window = 100000;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto peer = MemoryTransport::connect(loop, protocol, options);
  run_until_idle(loop);
  // Without the kernel's help there is no native path: the buffered one runs.
  auto future = loop.sendfile(*peer.transport, file.fd(), 0, 0, true);
  run_until_idle(loop);
  EXPECT_FALSE(future.done());  // the window is full: the stand-in waits for resume_writing
  EXPECT_NE(peer.transport->get_protocol(), protocol.get());
  EXPECT_LE(peer.transport->get_write_buffer_size(), 64 * 1024 + 256 * 1024u);
  std::string received;
  while (!future.done()) {
    received += peer.take_written();
    run_until_idle(loop);
  }
  while (peer.transport->get_write_buffer_size() > 0 || !peer.written().empty()) {
    received += peer.take_written();
    run_until_idle(loop);
  }
  EXPECT_EQ(future.result(), contents.size());
  EXPECT_TRUE(received == contents);
  EXPECT_EQ(peer.transport->get_protocol(), protocol.get());
  EXPECT_EQ(protocol->pauses, 0);
  EXPECT_EQ(protocol->resumes, 0);
  // Without fallback, a transport with no native path is refused.
  auto refused = loop.sendfile(*peer.transport, file.fd(), 0, 0, false);
  EXPECT_THROW(refused.result(), RuntimeError);
}

TEST(SendfileTest, BufferedPathResumesAProtocolThatWasPausedBefore) {
  EventLoop loop;
  std::string contents = pattern(300000, 13);
  TempFile file(contents);
  MemoryTransportOptions options;
  options.peer_window = 1000;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto peer = MemoryTransport::connect(loop, protocol, options);
  run_until_idle(loop);
  peer.transport->write(std::string(100000, 'w'));  // over the high-water mark
  ASSERT_EQ(protocol->pauses, 1);
  auto future = loop.sendfile(*peer.transport, file.fd());
  std::string received;
  for (int i = 0; i < 10000 && !future.done(); ++i) {
    received += peer.take_written();
    run_until_idle(loop);
  }
  ASSERT_TRUE(future.done());
  // Done once the transport is no longer paused: at most its high-water mark is left.
  EXPECT_LE(peer.transport->get_write_buffer_size(), 64 * 1024u);
  while (peer.transport->get_write_buffer_size() > 0 || !peer.written().empty()) {
    received += peer.take_written();
    run_until_idle(loop);
  }
  EXPECT_EQ(future.result(), contents.size());
  EXPECT_TRUE(received == std::string(100000, 'w') + contents);
  // The resume that ended the application's pause went to the stand-in; it
  // is passed on once the application's protocol is back.
  EXPECT_EQ(protocol->resumes, 1);
  EXPECT_EQ(peer.transport->get_protocol(), protocol.get());
}

TEST(SendfileTest, SockSendfileSendsOverACallerOwnedSocket) {
  EventLoop loop;
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
  RawSocket ours(pair[0]);
  RawSocket peer(pair[1]);
  std::string contents = pattern(2 * 1024 * 1024 + 3, 17);
  TempFile file(contents);
  std::string received;
  std::thread reader([&] {
    int flags = ::fcntl(peer.fd(), F_GETFL);
    ::fcntl(peer.fd(), F_SETFL, flags & ~O_NONBLOCK);
    received = peer.read_exactly(contents.size() - 3);
  });
  EXPECT_EQ(loop.run_until_complete(loop.sock_sendfile(ours.fd(), file.fd(), 3)),
            contents.size() - 3);
  reader.join();
  EXPECT_TRUE(received == contents.substr(3));
  EXPECT_EQ(file.position(), static_cast<off_t>(contents.size()));
  // A datagram socket is refused, as asyncio refuses it.
  int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  try {
    loop.run_until_complete(loop.sock_sendfile(udp, file.fd()));
    ADD_FAILURE() << "sock_sendfile on a datagram socket";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("SOCK_STREAM"), std::string::npos) << e.what();
  }
  ::close(udp);
}

}  // namespace
}  // namespace tulip::testing
