// The I/O backends: how one is chosen, and the behaviours where a completion
// backend could differ from a readiness one (requests in flight when a
// transport closes or its peer resets, descriptors owned by the loop, many
// short connections). These run in both passes of the suite (TULIP_BACKEND=
// epoll and io_uring), so each backend is held to the same expectations.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "support/loopback.hpp"
#include "tulip/tulip.hpp"

namespace tulip::testing {
namespace {

// Sets an environment variable for one test and puts the old value back.
class ScopedEnvironment {
 public:
  ScopedEnvironment(const char* name, const char* value) : name_(name) {
    if (const char* old = ::getenv(name)) old_ = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnvironment() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(BackendSelection, AnUnknownEnvironmentValueIsAClearError) {
  ScopedEnvironment backend("TULIP_BACKEND", "kqueue");
  try {
    EventLoop loop;
    FAIL() << "a loop was made on backend " << loop.backend_name();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("TULIP_BACKEND"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("kqueue"), std::string::npos) << e.what();
  }
}

TEST(BackendSelection, ExplicitChoicesRunTheBackendTheyName) {
  // An explicit option wins over the environment.
  ScopedEnvironment backend("TULIP_BACKEND", "io_uring");
  EventLoop epoll(EventLoopOptions{BackendKind::kEpoll});
  EXPECT_STREQ(epoll.backend_name(), "epoll");
  if (io_uring_available()) {
    EventLoop uring(EventLoopOptions{BackendKind::kIoUring});
    EXPECT_STREQ(uring.backend_name(), "io_uring");
  } else {
    EXPECT_THROW(EventLoop(EventLoopOptions{BackendKind::kIoUring}), RuntimeError);
  }
}

TEST(BackendSelection, AutoTakesIoUringWhenAvailable) {
  ScopedEnvironment backend("TULIP_BACKEND", "auto");
  EventLoop loop;
  EXPECT_STREQ(loop.backend_name(), io_uring_available() ? "io_uring" : "epoll");
}

TEST(BackendSelection, BackendNamesParse) {
  EXPECT_EQ(parse_backend_kind("auto"), BackendKind::kAuto);
  EXPECT_EQ(parse_backend_kind("epoll"), BackendKind::kEpoll);
  EXPECT_EQ(parse_backend_kind("io_uring"), BackendKind::kIoUring);
  EXPECT_THROW(parse_backend_kind("uring"), std::invalid_argument);
  EXPECT_THROW(parse_backend_kind(""), std::invalid_argument);
}

// ---- Behaviours with requests in flight ---------------------------------------------

TEST(BackendBehaviour, CloseWithAReceiveInFlightEndsCleanly) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  // Let reading start (a receive is then in flight on a completion backend).
  ASSERT_TRUE(run_until(loop, [&] { return protocol->made == 1; }));
  loop.stop();
  loop.run_forever();
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_FALSE(protocol->lost_error);
  EXPECT_EQ(peer.read_to_eof(), "");
  // Bytes the peer sends now reach nobody, and nothing breaks.
  peer.send_all("late");
  loop.stop();
  loop.run_forever();
  EXPECT_EQ(protocol->received, "");
}

TEST(BackendBehaviour, AbortWithAReceiveInFlightAndTheLoopClosedAtOnce) {
  auto protocol = std::make_shared<RecordingProtocol>();
  RawSocket peer;
  {
    EventLoop loop;
    auto [connection, accepted] = connect_to_raw_peer(loop, protocol);
    peer = std::move(accepted);
    ASSERT_TRUE(run_until(loop, [&] { return protocol->made == 1; }));
    loop.stop();
    loop.run_forever();
    connection.transport->write("bytes in flight");
    connection.transport->abort();
    // The loop goes without running again: whatever was in flight is
    // cancelled and completed before it has gone (ASan checks the memory).
  }
  EXPECT_EQ(protocol->lost, 1);
  EXPECT_TRUE(peer.read_to_eof().size() <= std::string("bytes in flight").size());
}

TEST(BackendBehaviour, APeerResetWithSendsQueuedEndsTheConnectionWithTheError) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->made == 1; }));
  // More than the kernel takes: the rest waits in the transport.
  connection.transport->write(pattern(8 * 1024 * 1024));
  ASSERT_GT(connection.transport->get_write_buffer_size(), 0u);
  peer.reset_connection();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_TRUE(protocol->lost_error == std::errc::connection_reset ||
              protocol->lost_error == std::errc::broken_pipe)
      << protocol->lost_error.message();
  EXPECT_EQ(connection.transport->get_write_buffer_size(), 0u);
}

TEST(BackendBehaviour, AddReaderOnADescriptorATransportOwnsIsRefused) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  int fd = std::any_cast<int>(connection.transport->get_extra_info("socket"));
  EXPECT_THROW(loop.add_reader(fd, [] {}), RuntimeError);
  EXPECT_THROW(loop.add_writer(fd, [] {}), RuntimeError);
  // The transport is untouched: it still reads.
  peer.send_all("still here");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "still here"; }));
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

// Echoes what arrives, then closes (the server side of a short connection).
class EchoOnceProtocol final : public Protocol {
 public:
  void connection_made(Transport& transport) override { transport_ = &transport; }
  void data_received(std::string_view data) override {
    transport_->write(data);
    transport_->close();
  }

 private:
  Transport* transport_ = nullptr;
};

TEST(BackendBehaviour, TenThousandShortConnectionsLeaveNoDescriptorBehind) {
  EventLoop loop;
  auto server = loop.run_until_complete(
      loop.create_server([] { return std::make_shared<EchoOnceProtocol>(); }, "127.0.0.1", 0));
  SocketAddress address = server->sockets().at(0).sockname;
  int baseline = open_fd_count();
  constexpr int kBatch = 50;
  constexpr int kTotal = 10'000;
  for (int done = 0; done < kTotal; done += kBatch) {
    std::vector<RawSocket> clients;
    std::vector<std::string> echoed(kBatch);
    std::vector<bool> ended(kBatch, false);
    for (int i = 0; i < kBatch; ++i) {
      clients.push_back(RawSocket::connect_to(address));
      clients.back().send_all("x");
    }
    // Each client gets its byte back, then EOF (read without blocking, so
    // that the loop runs in between).
    ASSERT_TRUE(run_until(loop, [&] {
      bool all = true;
      for (int i = 0; i < kBatch; ++i) {
        char buffer[16];
        ssize_t n;
        while (!ended[i] &&
               (n = ::recv(clients[i].fd(), buffer, sizeof(buffer), MSG_DONTWAIT)) >= 0) {
          if (n == 0) ended[i] = true;
          echoed[i].append(buffer, static_cast<std::size_t>(n));
        }
        all = all && ended[i];
      }
      return all;
    }));
    for (const std::string& echo : echoed) ASSERT_EQ(echo, "x");
  }
  ASSERT_TRUE(run_until(loop, [&] { return server->connection_count() == 0; }));
  EXPECT_EQ(open_fd_count(), baseline);
  server->close();
}

}  // namespace
}  // namespace tulip::testing
