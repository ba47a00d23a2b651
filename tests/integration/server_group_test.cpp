// ServerGroup: loops on their own threads sharing one port through
// SO_REUSEPORT. The clients here are blocking raw sockets on the test's
// thread; the group's loops serve them on theirs.
#include "tulip/server_group.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/loopback.hpp"

namespace tulip::testing {
namespace {

// What the group's connections did, written from every loop thread.
struct Record {
  std::mutex mutex;
  std::vector<std::thread::id> factory_threads;
  std::vector<std::thread::id> made_threads;
  std::vector<int> factory_cpus;
  int eofs = 0;
  int losses = 0;
};

// Echoes every chunk; closes when the peer half-closes.
class GroupEcho final : public Protocol {
 public:
  explicit GroupEcho(std::shared_ptr<Record> record) : record_(std::move(record)) {}

  void connection_made(Transport& transport) override {
    transport_ = &transport;
    std::lock_guard lock(record_->mutex);
    record_->made_threads.push_back(std::this_thread::get_id());
  }
  void data_received(std::string_view data) override { transport_->write(data); }
  bool eof_received() override {
    std::lock_guard lock(record_->mutex);
    ++record_->eofs;
    return false;
  }
  void connection_lost(std::error_code) override {
    std::lock_guard lock(record_->mutex);
    ++record_->losses;
  }

 private:
  std::shared_ptr<Record> record_;
  Transport* transport_ = nullptr;
};

ServerGroup::ServerOpener echo_opener(const std::shared_ptr<Record>& record) {
  return tcp_server_opener(
      [record] {
        {
          std::lock_guard lock(record->mutex);
          record->factory_threads.push_back(std::this_thread::get_id());
          record->factory_cpus.push_back(sched_getcpu());
        }
        return std::make_shared<GroupEcho>(record);
      },
      "127.0.0.1");
}

ServerGroupOptions with_threads(unsigned threads) {
  ServerGroupOptions options;
  options.threads = threads;
  return options;
}

// A connection that has made one round trip: the server has accepted it.
RawSocket echoed_connection(const ServerGroup& group, const std::string& message = "ping") {
  RawSocket socket = RawSocket::connect_to(group.addresses().front());
  socket.send_all(message);
  EXPECT_EQ(socket.read_exactly(message.size()), message);
  return socket;
}

LoopStatistics total(const std::vector<LoopStatistics>& per_loop) {
  LoopStatistics sum;
  for (const LoopStatistics& figures : per_loop) {
    sum.accepted += figures.accepted;
    sum.open += figures.open;
  }
  return sum;
}

TEST(ServerGroupTest, ConnectionsSpreadOverTheLoopsAndTheFiguresAddUp) {
  auto record = std::make_shared<Record>();
  ServerGroup group(echo_opener(record), 0, with_threads(2));
  group.start();
  ASSERT_TRUE(group.is_running());
  ASSERT_EQ(group.size(), 2u);
  ASSERT_NE(group.port(), 0);
  // The kernel picks a socket by a hash of the 4-tuple: with 64 connections
  // from distinct ports, one loop missing out has odds of 2^-63.
  constexpr int kConnections = 64;
  std::vector<RawSocket> clients;
  for (int i = 0; i < kConnections; ++i) clients.push_back(echoed_connection(group));

  std::vector<LoopStatistics> figures = group.statistics();
  ASSERT_EQ(figures.size(), 2u);
  for (const LoopStatistics& loop : figures) {
    EXPECT_GT(loop.accepted, 0u);
    EXPECT_EQ(loop.open, loop.accepted);
  }
  EXPECT_EQ(total(figures).accepted, static_cast<std::uint64_t>(kConnections));
  EXPECT_EQ(total(figures).open, static_cast<std::size_t>(kConnections));

  for (RawSocket& client : clients) {
    client.shutdown_write();
    EXPECT_EQ(client.read_to_eof(), "");
  }
  group.stop(30);
  figures = group.statistics();
  EXPECT_EQ(total(figures).accepted, static_cast<std::uint64_t>(kConnections));
  EXPECT_EQ(total(figures).open, 0u);
  std::lock_guard lock(record->mutex);
  EXPECT_EQ(record->eofs, kConnections);
  EXPECT_EQ(record->losses, kConnections);
}

TEST(ServerGroupTest, TheFactoryRunsOnTheThreadOfTheLoopThatAccepted) {
  auto record = std::make_shared<Record>();
  ServerGroup group(echo_opener(record), 0, with_threads(2));
  group.start();
  std::vector<RawSocket> clients;
  for (int i = 0; i < 32; ++i) clients.push_back(echoed_connection(group));
  group.stop(0);

  std::lock_guard lock(record->mutex);
  ASSERT_EQ(record->factory_threads.size(), 32u);
  ASSERT_EQ(record->made_threads.size(), 32u);
  std::set<std::thread::id> threads;
  for (std::size_t i = 0; i < record->factory_threads.size(); ++i) {
    // Both sides of one connection ran on the same loop thread, not the caller's.
    EXPECT_EQ(record->factory_threads[i], record->made_threads[i]);
    EXPECT_NE(record->factory_threads[i], std::this_thread::get_id());
    threads.insert(record->factory_threads[i]);
  }
  EXPECT_EQ(threads.size(), 2u);
}

TEST(ServerGroupTest, GracefulStopLetsAnOpenConnectionFinish) {
  auto record = std::make_shared<Record>();
  ServerGroup group(echo_opener(record), 0, with_threads(2));
  group.start();
  RawSocket client = echoed_connection(group, "first");
  SocketAddress address = group.addresses().front();

  std::thread stopper([&group] { group.stop(60, ShutdownMode::kLetFinish); });
  // Wait until the group has stopped listening: a probe that still gets in
  // half-closes at once, so it ends by itself as well.
  bool refused = false;
  for (int attempt = 0; attempt < 100000 && !refused; ++attempt) {
    int probe = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    refused = ::connect(probe, address.data(), address.size()) != 0 && errno == ECONNREFUSED;
    ::shutdown(probe, SHUT_WR);
    ::close(probe);
    if (!refused) std::this_thread::yield();
  }
  ASSERT_TRUE(refused);
  // The connection is still served while the group stops...
  client.send_all("second");
  EXPECT_EQ(client.read_exactly(6), "second");
  // ...and ends by the client's own half-close, well before the timeout.
  client.shutdown_write();
  EXPECT_EQ(client.read_to_eof(), "");
  stopper.join();

  EXPECT_FALSE(group.is_running());
  std::vector<LoopStatistics> figures = group.statistics();
  EXPECT_GE(total(figures).accepted, 1u);
  EXPECT_EQ(total(figures).open, 0u);
  std::lock_guard lock(record->mutex);
  // Every connection, the client's and any probe's, ended by its peer's EOF:
  // none was aborted.
  EXPECT_EQ(static_cast<std::uint64_t>(record->eofs), total(figures).accepted);
  EXPECT_EQ(record->losses, record->eofs);
}

TEST(ServerGroupTest, TheStopTimeoutAbortsAConnectionThatDoesNotEnd) {
  auto record = std::make_shared<Record>();
  ServerGroup group(echo_opener(record), 0, with_threads(2));
  group.start();
  RawSocket client = echoed_connection(group);
  // The client never half-closes: only the timeout can end the connection.
  group.stop(0.05, ShutdownMode::kLetFinish);
  EXPECT_EQ(client.read_to_eof(), "");
  {
    std::lock_guard lock(record->mutex);
    EXPECT_EQ(record->eofs, 0);
    EXPECT_EQ(record->losses, 1);
  }
  EXPECT_EQ(total(group.statistics()).open, 0u);
}

TEST(ServerGroupTest, CloseClientsModeClosesIdleConnectionsCleanly) {
  auto record = std::make_shared<Record>();
  ServerGroup group(echo_opener(record), 0, with_threads(2));
  group.start();
  RawSocket client = echoed_connection(group);
  group.stop(60, ShutdownMode::kCloseClients);
  // A FIN, not a reset: recv sees end of file.
  char byte;
  EXPECT_EQ(::recv(client.fd(), &byte, 1, 0), 0);
  std::lock_guard lock(record->mutex);
  EXPECT_EQ(record->losses, 1);
}

TEST(ServerGroupTest, ALoopStoppedByItsOwnCallbacksServesOn) {
  auto record = std::make_shared<Record>();
  ServerOptions options;
  options.reuse_port = true;
  // Every accepted connection stops its loop: only stop() ends the group.
  ServerGroup group(
      [record, options](EventLoop& loop, std::uint16_t port) {
        auto factory = [record, &loop] {
          loop.stop();
          return std::make_shared<GroupEcho>(record);
        };
        return loop.run_until_complete(loop.create_server(factory, "127.0.0.1", port, options));
      },
      0, with_threads(2));
  group.start();
  for (int i = 0; i < 16; ++i) {
    RawSocket client = echoed_connection(group, "again " + std::to_string(i));
    client.shutdown_write();
    EXPECT_EQ(client.read_to_eof(), "");
  }
  group.stop(30);
  EXPECT_EQ(total(group.statistics()).accepted, 16u);
  std::lock_guard lock(record->mutex);
  EXPECT_EQ(record->eofs, 16);
}

TEST(ServerGroupTest, ABindErrorIsReportedByStart) {
  // A listener without SO_REUSEPORT holds the port: no loop can share it.
  RawSocket taken = RawSocket::listen_on("127.0.0.1");
  std::uint16_t port = taken.address().port();
  auto record = std::make_shared<Record>();
  ServerGroup group(echo_opener(record), port, with_threads(2));
  try {
    group.start();
    FAIL() << "start() should have failed";
  } catch (const OSError& e) {
    EXPECT_TRUE(e.code() == std::errc::address_in_use) << e.code().message();
    EXPECT_NE(std::string(e.what()).find(std::to_string(port)), std::string::npos) << e.what();
  }
  EXPECT_FALSE(group.is_running());
  group.stop(0);  // nothing to stop: does nothing
}

TEST(ServerGroupTest, AnErrorInALaterLoopStopsTheLoopsAlreadyServing) {
  auto record = std::make_shared<Record>();
  ServerGroupOptions options = with_threads(3);
  std::atomic<int> opened{0};
  ServerGroup::ServerOpener inner = echo_opener(record);
  ServerGroup group(
      [&opened, inner](EventLoop& loop, std::uint16_t port) {
        if (opened.fetch_add(1) == 2) throw RuntimeError("the third loop refuses");
        return inner(loop, port);
      },
      0, options);
  EXPECT_THROW(group.start(), RuntimeError);
  EXPECT_FALSE(group.is_running());
  EXPECT_EQ(opened.load(), 3);
}

TEST(ServerGroupTest, StartsAndStopsRepeatedly) {
  auto record = std::make_shared<Record>();
  ServerGroup group(echo_opener(record), 0, with_threads(2));
  for (int round = 0; round < 3; ++round) {
    group.start();
    EXPECT_THROW(group.start(), RuntimeError);
    RawSocket client = echoed_connection(group, "round " + std::to_string(round));
    client.shutdown_write();
    EXPECT_EQ(client.read_to_eof(), "");
    group.stop(30);
    EXPECT_FALSE(group.is_running());
    // Each start counts afresh.
    EXPECT_EQ(total(group.statistics()).accepted, 1u);
  }
  std::lock_guard lock(record->mutex);
  EXPECT_EQ(record->losses, 3);
}

TEST(ServerGroupTest, LoopsRunWithEverySignalBlockedAndOnTheirCpu) {
  auto record = std::make_shared<Record>();
  ServerGroupOptions options = with_threads(2);
  // The first CPU this process may use (a container may not offer CPU 0).
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  int first_cpu = 0;
  while (!CPU_ISSET(first_cpu, &allowed)) ++first_cpu;
  options.cpus = {first_cpu};
  std::mutex mutex;
  std::vector<bool> sigint_blocked;
  options.on_loop_start = [&](EventLoop&) {
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, nullptr, &mask);
    std::lock_guard lock(mutex);
    sigint_blocked.push_back(sigismember(&mask, SIGINT) == 1 && sigismember(&mask, SIGTERM) == 1);
  };
  ServerGroup group(echo_opener(record), 0, options);
  group.start();
  std::vector<RawSocket> clients;
  for (int i = 0; i < 8; ++i) clients.push_back(echoed_connection(group));
  group.stop(0);
  EXPECT_EQ(sigint_blocked, std::vector<bool>({true, true}));
  std::lock_guard lock(record->mutex);
  EXPECT_EQ(record->factory_cpus.size(), 8u);
  for (int cpu : record->factory_cpus) EXPECT_EQ(cpu, first_cpu);
}

TEST(ServerGroupTest, AnImpossibleCpuFailsStart) {
  auto record = std::make_shared<Record>();
  ServerGroupOptions options = with_threads(1);
  options.cpus = {CPU_SETSIZE + 5};
  ServerGroup group(echo_opener(record), 0, options);
  EXPECT_THROW(group.start(), std::invalid_argument);
  EXPECT_FALSE(group.is_running());
}

TEST(ServerGroupTest, StatisticsFromALoopOfTheGroupAreRefused) {
  auto record = std::make_shared<Record>();
  ServerGroup* self = nullptr;
  std::atomic<bool> refused{false};
  ServerGroup group(
      [&](EventLoop& loop, std::uint16_t port) {
        try {
          self->statistics();
        } catch (const RuntimeError&) {
          refused = true;
        }
        return echo_opener(record)(loop, port);
      },
      0, with_threads(1));
  self = &group;
  group.start();
  group.stop(0);
  EXPECT_TRUE(refused.load());
}

}  // namespace
}  // namespace tulip::testing
