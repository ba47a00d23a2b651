// The loop's socket operations given bad descriptors, refused and reset
// connections, competing waiters and cancellation.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

#include "fault/fault_support.hpp"
#include "loop_access.hpp"
#include "loop_internals.hpp"

namespace tulip::testing {
namespace {

template <class T>
std::string failure(EventLoop& loop, Future<T> future) {
  try {
    loop.run_until_complete(future);
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "the operation succeeded";
  return {};
}

struct Pair {
  Pair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    a = fds[0];
    b = fds[1];
  }
  ~Pair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
  int a, b;
};

TEST(SocketOperationsFaultTest, BadDescriptorsFailAtOnceWithOneLine) {
  EventLoop loop;
  EXPECT_THROW(loop.run_until_complete(loop.sock_recv(-1, 10)), std::invalid_argument);
  int closed = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ::close(closed);
  try {
    loop.run_until_complete(loop.sock_recv(closed, 10));
    ADD_FAILURE() << "sock_recv on a closed descriptor";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), std::errc::bad_file_descriptor);
    EXPECT_NE(std::string(e.what()).find("sock_recv(fd " + std::to_string(closed) + ")"),
              std::string::npos);
  }
  int blocking = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_NE(failure(loop, loop.sock_sendall(blocking, "x")).find("non-blocking"),
            std::string::npos);
  ::close(blocking);
}

TEST(SocketOperationsFaultTest, TransportSocketsAreRefused) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  int fd = connection.transport->get_extra_info<int>("socket").value();
  EXPECT_THROW(loop.run_until_complete(loop.sock_recv(fd, 10)), RuntimeError);
  connection.transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST(SocketOperationsFaultTest, RefusedConnectAndResetRecvFailWithTheirCause) {
  EventLoop loop;
  SocketAddress nobody;
  {
    RawSocket gone = RawSocket::listen_on();
    nobody = gone.address();
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  try {
    loop.run_until_complete(loop.sock_connect(fd, nobody));
    ADD_FAILURE() << "connected to nobody";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), std::errc::connection_refused);
  }
  ::close(fd);

  RawSocket listener = RawSocket::listen_on();
  int client = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  loop.run_until_complete(loop.sock_connect(client, listener.address()));
  RawSocket server = listener.accept_one();
  auto pending = loop.sock_recv(client, 100);
  server.reset_connection();
  try {
    loop.run_until_complete(pending);
    ADD_FAILURE() << "no error after a reset";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), std::errc::connection_reset);
  }
  ::close(client);
}

TEST(SocketOperationsFaultTest, SecondWaiterIsRefusedAndCancellingFreesTheDescriptor) {
  EventLoop loop;
  Pair pair;
  auto first = loop.sock_recv(pair.a, 10);
  auto second = loop.sock_recv(pair.a, 10);
  EXPECT_NE(failure(loop, second).find("already waits"), std::string::npos);
  EXPECT_FALSE(first.done());
  first.cancel();
  run_iterations(loop, 2);
  // Nothing was read by the cancelled operation; the next one gets the bytes.
  ASSERT_EQ(::send(pair.b, "kept", 4, 0), 4);
  EXPECT_EQ(loop.run_until_complete(loop.sock_recv(pair.a, 10)), "kept");
  // A reader installed after a cancellation is not removed by the old operation.
  auto cancelled = loop.sock_recv(pair.a, 10);
  cancelled.cancel();
  bool fired = false;
  run_iterations(loop, 2);
  loop.add_reader(pair.a, [&] { fired = true; });
  ASSERT_EQ(::send(pair.b, "x", 1, 0), 1);
  ASSERT_TRUE(run_until(loop, [&] { return fired; }));
  EXPECT_TRUE(loop.remove_reader(pair.a));
}

// The kernel tells nobody when a descriptor is closed: the loop learns it when
// it next meets the number. Whatever meets it first (another operation,
// add_reader, a transport taking the number), the operation that waited on
// the closed file fails with EBADF instead of waiting forever or reading from
// the new file.
TEST(SocketOperationsFaultTest, ADescriptorClosedWhileAnOperationWaitsFailsItWhenTheNumberReturns) {
  for (int next_user = 0; next_user < 3; ++next_user) {
    EventLoop loop;
    Pair old_pair;
    int number = old_pair.a;
    auto waiting = loop.sock_recv(number, 10);
    run_iterations(loop, 2);
    ASSERT_FALSE(waiting.done());
    ::close(old_pair.a);  // behind the loop's back
    old_pair.a = -1;
    // The number comes back for another socket.
    Pair new_pair;
    if (new_pair.a != number) {  // the kernel may have handed it out already
      ASSERT_EQ(::dup2(new_pair.a, number), number);
      ::close(new_pair.a);
      new_pair.a = number;
    }
    ASSERT_EQ(::send(new_pair.b, "new", 3, MSG_NOSIGNAL), 3);
    if (next_user == 0) {
      // Another operation on the number gets the new socket's bytes.
      EXPECT_EQ(loop.run_until_complete(loop.sock_recv(number, 10)), "new");
    } else if (next_user == 1) {
      bool fired = false;
      loop.add_reader(number, [&] { fired = true; });
      ASSERT_TRUE(run_until(loop, [&] { return fired; }));
      EXPECT_TRUE(loop.remove_reader(number));
    } else {
      auto protocol = std::make_shared<RecordingProtocol>();
      auto connection = loop.run_until_complete(
          loop.connect_accepted_socket([protocol] { return protocol; }, number));
      new_pair.a = -1;  // the transport owns it now
      ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "new"; }));
      connection.transport->abort();
      ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
    }
    ASSERT_TRUE(run_until(loop, [&] { return waiting.done(); }));
    try {
      waiting.result();
      ADD_FAILURE() << "the operation on the closed descriptor completed";
    } catch (const OSError& e) {
      EXPECT_EQ(e.code(), std::errc::bad_file_descriptor);
      std::string what = e.what();
      EXPECT_NE(what.find("sock_recv(fd " + std::to_string(number) + ")"), std::string::npos);
      EXPECT_NE(what.find("closed while the operation waited"), std::string::npos) << what;
    }
  }
}

TEST(SocketOperationsFaultTest, ClosingTheLoopDropsPendingOperations) {
  Pair pair;
  Future<std::string> pending;
  {
    EventLoop loop;
    pending = loop.sock_recv(pair.a, 10);
  }
  EXPECT_FALSE(pending.done());  // never completed, and nothing dangles (ASan checks)
}

}  // namespace
}  // namespace tulip::testing

namespace tulip::testing {
namespace {

TEST(NameLookupFaultTest, ClosingTheLoopWithALookupStuckLeavesTheFuturePending) {
  StuckLookup stuck;
  Future<std::vector<AddressInfo>> pending;
  {
    EventLoop loop;
    detail::LoopAccess::internals(loop).resolver.set_lookup_for_testing(stuck.lookup());
    pending = loop.getaddrinfo("example.invalid", "80");
    stuck.wait_until_asked(1);
  }
  stuck.release();
  EXPECT_FALSE(pending.done());
}

}  // namespace
}  // namespace tulip::testing
