// Connections that cannot be made: refused, unresolvable, never completed, and
// an address list where only some addresses answer.
#include <gtest/gtest.h>

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "connector.hpp"
#include "fault/fault_support.hpp"
#include "loop_access.hpp"
#include "loop_internals.hpp"

namespace tulip::testing {
namespace {

// A socket bound to `host` but not listening: connecting to its address is
// refused for as long as it lives, and nobody else can take the port meanwhile.
RawSocket bound_not_listening(const char* host, std::uint16_t port = 0) {
  auto address = SocketAddress::parse(host, port);
  int fd = ::socket(address->family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && ::bind(fd, address->data(), address->size()) != 0) {
    ::close(fd);
    fd = -1;
  }
  return RawSocket(fd);
}

bool ipv6_loopback_available() { return bound_not_listening("::1").fd() >= 0; }

// The outcome of a connection attempt: the error it failed with, if any.
template <class P>
std::exception_ptr failure_of(EventLoop& loop, Future<Connection<P>> future) {
  try {
    loop.run_until_complete(future);
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

std::string what_of(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  }
}

// ---- Refused ------------------------------------------------------------------------

TEST(ConnectRefused, OverIpv6NamesTheAddressLikePython) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback";
  EventLoop loop;
  RawSocket refusing = bound_not_listening("::1");
  std::uint16_t port = refusing.address().port();
  int calls = 0;
  auto future = loop.create_connection(
      [&] {
        ++calls;
        return std::make_shared<RecordingProtocol>();
      },
      "::1", port);
  std::exception_ptr error = failure_of(loop, future);
  ASSERT_TRUE(error);
  try {
    std::rethrow_exception(error);
  } catch (const ConnectionError& e) {
    EXPECT_EQ(e.code(), std::errc::connection_refused);
    EXPECT_EQ(std::string(e.what()),
              "connect to ('::1', " + std::to_string(port) + ", 0, 0) failed: Connection refused");
  } catch (...) {
    ADD_FAILURE() << "not a ConnectionError: " << what_of(error);
  }
  EXPECT_EQ(calls, 0);
}

TEST(ConnectRefused, ManyConcurrentAttemptsAllFailAndLeaveNothingBehind) {
  EventLoop loop;
  RawSocket refusing = bound_not_listening("127.0.0.1");
  std::uint16_t port = refusing.address().port();
  int calls = 0;
  std::vector<Future<Connection<RecordingProtocol>>> attempts;
  for (int i = 0; i < 100; ++i) {
    attempts.push_back(loop.create_connection(
        [&] {
          ++calls;
          return std::make_shared<RecordingProtocol>();
        },
        "127.0.0.1", port));
  }
  ASSERT_TRUE(run_until(loop, [&] {
    for (auto& attempt : attempts) {
      if (!attempt.done()) return false;
    }
    return true;
  }));
  std::string expected =
      "connect to ('127.0.0.1', " + std::to_string(port) + ") failed: Connection refused";
  for (auto& attempt : attempts) {
    std::exception_ptr error = attempt.exception();
    ASSERT_TRUE(error);
    EXPECT_EQ(what_of(error), expected);
  }
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.connectors.empty());
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.transports.empty());
}

// ---- Names that do not resolve ----------------------------------------------------

TEST(NameResolution, ManyUnresolvableNamesFailWhileANumericConnectSucceeds) {
  EventLoop loop;
  std::vector<Future<Connection<RecordingProtocol>>> lookups;
  // More names than the resolver has worker threads, so some queue up.
  for (int i = 0; i < 10; ++i) {
    ConnectOptions options;
    options.timeout = i % 2 == 0 ? 30.0 : 0.0;  // a pending timeout changes nothing
    lookups.push_back(loop.create_connection([] { return std::make_shared<RecordingProtocol>(); },
                                             "nosuch-" + std::to_string(i) + ".invalid", 80,
                                             options));
  }
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  ASSERT_TRUE(run_until(loop, [&] {
    for (auto& lookup : lookups) {
      if (!lookup.done()) return false;
    }
    return true;
  }));
  for (int i = 0; i < 10; ++i) {
    std::exception_ptr error = lookups[i].exception();
    ASSERT_TRUE(error);
    try {
      std::rethrow_exception(error);
    } catch (const ConnectionError& e) {
      EXPECT_EQ(e.code(), Error::kNameResolution);
      std::string prefix = "cannot resolve 'nosuch-" + std::to_string(i) + ".invalid': ";
      EXPECT_EQ(std::string(e.what()).rfind(prefix, 0), 0u) << e.what();
      EXPECT_GT(std::string(e.what()).size(), prefix.size());  // the resolver's reason
    } catch (...) {
      ADD_FAILURE() << "not a ConnectionError: " << what_of(error);
    }
  }
  // The good connection was never disturbed.
  peer.send_all("fine");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "fine"; }));
  EXPECT_EQ(protocol->lost, 0);
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.connectors.empty());
}

// Records the thread its last copy dies on: the loop's objects must die on the loop's thread.
struct ThreadRecordingFactory {
  std::shared_ptr<std::thread::id> died_on;
  int* calls;
  ThreadRecordingFactory(int* call_count, std::shared_ptr<std::thread::id> record)
      : died_on(std::move(record)), calls(call_count) {}
  ThreadRecordingFactory(const ThreadRecordingFactory&) = default;
  ~ThreadRecordingFactory() {
    if (died_on.use_count() == 2) *died_on = std::this_thread::get_id();
  }
  std::shared_ptr<RecordingProtocol> operator()() {
    ++*calls;
    return std::make_shared<RecordingProtocol>();
  }
};

TEST(NameResolution, ClosingTheLoopWithLookupsThatNeverAnswerReturnsAtOnce) {
  auto stuck = std::make_shared<StuckLookup>();
  int calls = 0;
  auto died_on = std::make_shared<std::thread::id>();
  std::vector<Future<Connection<RecordingProtocol>>> lookups;
  {
    EventLoop loop;
    detail::LoopAccess::internals(loop).resolver.set_lookup_for_testing(stuck->lookup());
    for (int i = 0; i < 8; ++i) {
      lookups.push_back(loop.create_connection(ThreadRecordingFactory(&calls, died_on),
                                               "nosuch-" + std::to_string(i) + ".test", 80));
    }
    stuck->wait_until_asked(4);  // every worker is stuck in a lookup
    // close() must not wait for them: this test would hang here if it did.
    loop.close();
    // What the attempts held (the factory among it) was released by close(),
    // on this thread, not by a worker whenever its lookup returns.
    EXPECT_EQ(*died_on, std::this_thread::get_id());
  }
  stuck->release();  // the late answers find the resolver gone and are dropped
  EXPECT_EQ(calls, 0);
  for (auto& lookup : lookups) EXPECT_FALSE(lookup.done());
}

// A listener whose accept queue is full: it drops further SYNs, so a connect()
// to it hangs until the queue is emptied.
struct HangingListener {
  HangingListener() {
    SocketAddress address = listener.address();
    for (int i = 0; i < 4; ++i) {
      RawSocket filler(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      ::connect(filler.fd(), address.data(), address.size());
      fillers.push_back(std::move(filler));
    }
  }
  RawSocket listener = RawSocket::listen_on("127.0.0.1", 0);
  std::vector<RawSocket> fillers;
};

// ---- A handshake that never completes ------------------------------------------------

// A signal sent to the process must reach the loop's thread, never a lookup
// worker: under ThreadSanitizer a worker asleep on its condition variable held
// a SIGINT forever and the echo server never stopped.
TEST(NameResolution, LookupWorkersRunWithEverySignalBlocked) {
  EventLoop loop;
  std::atomic<int> worker_blocks_all{-1};
  detail::LoopAccess::internals(loop).resolver.set_lookup_for_testing(
      [&](const detail::ResolveQuestion&) {
        sigset_t mask;
        pthread_sigmask(SIG_BLOCK, nullptr, &mask);
        worker_blocks_all = sigismember(&mask, SIGINT) == 1 && sigismember(&mask, SIGTERM) == 1 &&
                            sigismember(&mask, SIGUSR1) == 1 && sigismember(&mask, SIGCHLD) == 1;
        detail::ResolveResult result;
        result.error = "answered by the test";
        return result;
      });
  EXPECT_THROW(loop.run_until_complete(loop.getaddrinfo("example.invalid", "80")), std::exception);
  EXPECT_EQ(worker_blocks_all.load(), 1);
  // The loop's own thread keeps its mask: the signals are still its to take.
  sigset_t mine;
  pthread_sigmask(SIG_BLOCK, nullptr, &mine);
  EXPECT_EQ(sigismember(&mine, SIGINT), 0);
}

TEST(ConnectTimeout, FullBacklogTimesOutAndNothingIsCreatedAfterwards) {
  EventLoop loop;
  HangingListener hanging;
  RawSocket& listener = hanging.listener;
  SocketAddress address = listener.address();
  int calls = 0;
  ConnectOptions options;
  options.timeout = 0.2;
  auto future = loop.create_connection(
      [&] {
        ++calls;
        return std::make_shared<RecordingProtocol>();
      },
      "127.0.0.1", address.port(), options);
  std::exception_ptr error = failure_of(loop, future);
  ASSERT_TRUE(error);
  try {
    std::rethrow_exception(error);
  } catch (const TimeoutError& e) {
    EXPECT_EQ(std::string(e.what()),
              "connect to " + address.to_string() + " timed out after 0.2 s");
  } catch (...) {
    ADD_FAILURE() << "not a TimeoutError: " << what_of(error);
  }
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.connectors.empty());
  // Empty the accept queue: a late handshake of the abandoned attempt must not
  // produce a connection (its socket is closed).
  ::fcntl(listener.fd(), F_SETFL, O_NONBLOCK);
  std::vector<RawSocket> accepted;
  for (int fd; (fd = ::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
    accepted.emplace_back(fd);
  }
  run_iterations(loop, 20);
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.transports.empty());
  EXPECT_EQ(loop.ready_count(), 0u);
}

// ---- Giving up on a connection attempt ----------------------------------------------------

TEST(ConnectCancelled, GivingUpBeforeTheAttemptStartsMakesNoSocketAndNoProtocol) {
  EventLoop loop;
  RawSocket listener = RawSocket::listen_on("127.0.0.1");
  int calls = 0;
  auto future = loop.create_connection(
      [&calls] {
        ++calls;
        return std::make_shared<RecordingProtocol>();
      },
      "127.0.0.1", listener.address().port());
  // The caller gives up before the attempt has even started (asyncio: the
  // task awaiting create_connection was cancelled).
  EXPECT_TRUE(future.cancel());
  run_iterations(loop, 5);
  EXPECT_EQ(calls, 0) << "the factory ran for a cancelled attempt";
  EXPECT_TRUE(future.cancelled());
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.connectors.empty());
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.transports.empty());
  // No connection ever reached the listener.
  ::fcntl(listener.fd(), F_SETFL, O_NONBLOCK);
  EXPECT_LT(::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC), 0);
  EXPECT_EQ(errno, EAGAIN);
}

TEST(ConnectCancelled, GivingUpWhileTheHandshakeHangsClosesTheSocketAtOnce) {
  EventLoop loop;
  HangingListener hanging;
  RawSocket& listener = hanging.listener;
  SocketAddress address = listener.address();
  int calls = 0;
  auto future = loop.create_connection(
      [&calls] {
        ++calls;
        return std::make_shared<RecordingProtocol>();
      },
      "127.0.0.1", address.port());
  run_iterations(loop, 3);  // the connect is in flight
  ASSERT_FALSE(future.done());
  ASSERT_FALSE(detail::LoopAccess::internals(loop).registry.connectors.empty());
  EXPECT_TRUE(future.cancel());
  run_iterations(loop, 2);
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.connectors.empty())
      << "the attempt outlived its cancellation";
  // Free the backlog: a late handshake of the abandoned socket must not make a protocol.
  ::fcntl(listener.fd(), F_SETFL, O_NONBLOCK);
  std::vector<RawSocket> accepted;
  for (int fd; (fd = ::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
    accepted.emplace_back(fd);
  }
  run_iterations(loop, 10);
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.transports.empty());
}

TEST(ConnectCancelled, GivingUpOnAnUnresolvableNameLeavesNothingBehind) {
  StuckLookup stuck;
  EventLoop loop;
  detail::LoopAccess::internals(loop).resolver.set_lookup_for_testing(stuck.lookup());
  auto future = loop.create_connection([] { return std::make_shared<RecordingProtocol>(); },
                                       "nosuch.invalid", 80);
  EXPECT_TRUE(future.cancel());
  ASSERT_TRUE(run_until(
      loop, [&] { return detail::LoopAccess::internals(loop).registry.connectors.empty(); }));
  EXPECT_TRUE(future.cancelled());
}

// ---- Trying every address in turn --------------------------------------------------------
//
// Where "localhost" resolves to ::1 first and only 127.0.0.1 listens, the first
// attempt fails and the second must follow. This machine's resolver may give
// only 127.0.0.1 for localhost, so these tests hand the connector the address
// list a dual-stack resolver would return.

struct Outcome {
  bool done = false;
  std::exception_ptr error;
  std::shared_ptr<Transport> transport;
  std::shared_ptr<StreamProtocol> protocol;
};

// Starts a connection to "localhost" as if the resolver had answered `addresses`.
void connect_through(EventLoop& loop, std::vector<SocketAddress> addresses, std::uint16_t port,
                     int& factory_calls, Outcome& outcome) {
  detail::LoopAccess::internals(loop).resolver.set_lookup_for_testing(
      [addresses](const detail::ResolveQuestion&) {
        detail::ResolveResult resolved;
        resolved.addresses = addresses;
        return resolved;
      });
  detail::ConnectCompletion completion;
  completion.done = [&outcome](std::exception_ptr error, std::shared_ptr<Transport> transport,
                               std::shared_ptr<StreamProtocol> protocol) {
    outcome.done = true;
    outcome.error = std::move(error);
    outcome.transport = std::move(transport);
    outcome.protocol = std::move(protocol);
  };
  detail::open_connection(
      loop,
      [&factory_calls]() -> std::shared_ptr<StreamProtocol> {
        ++factory_calls;
        return std::make_shared<RecordingProtocol>();
      },
      "localhost", port, ConnectOptions{}, std::move(completion));
}

// What a plain connect() to `address` fails with right now (for the message).
std::string connect_error_text(const SocketAddress& address) {
  RawSocket probe(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (probe.fd() < 0) return std::generic_category().message(errno);
  if (::connect(probe.fd(), address.data(), address.size()) == 0) return "connected";
  return std::generic_category().message(errno);
}

TEST(AddressList, AFailingIpv6AddressFallsBackToTheListeningIpv4One) {
  EventLoop loop;
  RawSocket listener = RawSocket::listen_on("127.0.0.1");
  std::uint16_t port = listener.address().port();
  // Hold [::1]:port without listening, so the IPv6 attempt is surely refused
  // (where there is no IPv6 at all, it fails anyway).
  RawSocket refusing6 = bound_not_listening("::1", port);
  int calls = 0;
  Outcome outcome;
  connect_through(loop,
                  {*SocketAddress::parse("::1", port), *SocketAddress::parse("127.0.0.1", port)},
                  port, calls, outcome);
  ASSERT_TRUE(run_until(loop, [&] { return outcome.done; }));
  ASSERT_FALSE(outcome.error) << what_of(outcome.error);
  EXPECT_EQ(calls, 1);
  auto peername = outcome.transport->get_extra_info<SocketAddress>("peername");
  ASSERT_TRUE(peername);
  EXPECT_EQ(*peername, *SocketAddress::parse("127.0.0.1", port));
  auto* protocol = static_cast<RecordingProtocol*>(outcome.protocol.get());
  EXPECT_EQ(protocol->made, 1);  // done is called after connection_made
  RawSocket peer = listener.accept_one();
  peer.send_all("over v4");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "over v4"; }));
  outcome.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.connectors.empty());
}

TEST(AddressList, EveryAddressFailingJoinsTheErrorsInOrder) {
  EventLoop loop;
  RawSocket refusing4 = bound_not_listening("127.0.0.1");
  std::uint16_t port = refusing4.address().port();
  RawSocket refusing6 = bound_not_listening("::1", port);
  SocketAddress v6 = *SocketAddress::parse("::1", port);
  SocketAddress v4 = *SocketAddress::parse("127.0.0.1", port);
  std::string v6_error = connect_error_text(v6);
  int calls = 0;
  Outcome outcome;
  connect_through(loop, {v6, v4}, port, calls, outcome);
  ASSERT_TRUE(run_until(loop, [&] { return outcome.done; }));
  ASSERT_TRUE(outcome.error);
  EXPECT_FALSE(outcome.transport);
  EXPECT_EQ(calls, 0);
  try {
    std::rethrow_exception(outcome.error);
  } catch (const ConnectionError& e) {
    EXPECT_EQ(e.code(), std::errc::connection_refused);  // the last attempt's cause
    EXPECT_EQ(std::string(e.what()), "Multiple exceptions: connect to ('::1', " +
                                         std::to_string(port) + ", 0, 0) failed: " + v6_error +
                                         "; connect to ('127.0.0.1', " + std::to_string(port) +
                                         ") failed: Connection refused");
  } catch (...) {
    ADD_FAILURE() << "not a ConnectionError: " << what_of(outcome.error);
  }
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.connectors.empty());
}

// ---- Numeric hosts: the direct path ------------------------------------------------------

// create_connection takes a shorter path for a numeric host with no other
// option (no resolution, no address list); one with a timeout goes through
// the general Connector. What the caller sees must not differ.
TEST(DirectConnect, ARefusalReadsTheSameOnTheDirectAndTheGeneralPath) {
  EventLoop loop;
  RawSocket refusing = bound_not_listening("127.0.0.1");
  std::uint16_t port = refusing.address().port();
  int calls = 0;
  auto factory = [&] {
    ++calls;
    return std::make_shared<RecordingProtocol>();
  };
  ConnectOptions general;
  general.timeout = 60;
  std::exception_ptr direct_error =
      failure_of(loop, loop.create_connection(factory, "127.0.0.1", port));
  std::exception_ptr general_error =
      failure_of(loop, loop.create_connection(factory, "127.0.0.1", port, general));
  ASSERT_TRUE(direct_error);
  ASSERT_TRUE(general_error);
  EXPECT_EQ(what_of(direct_error), what_of(general_error));
  EXPECT_EQ(what_of(direct_error),
            "connect to ('127.0.0.1', " + std::to_string(port) + ") failed: Connection refused");
  try {
    std::rethrow_exception(direct_error);
  } catch (const ConnectionError& e) {
    EXPECT_EQ(e.code(), std::errc::connection_refused);
  } catch (...) {
    ADD_FAILURE() << "not a ConnectionError: " << what_of(direct_error);
  }
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.connectors.empty());
}

TEST(DirectConnect, NoSocketIsMadeInsideTheCallThatAsksForIt) {
  EventLoop loop;
  RawSocket listener = RawSocket::listen_on("127.0.0.1");
  auto future = loop.create_connection([] { return std::make_shared<RecordingProtocol>(); },
                                       "127.0.0.1", listener.address().port());
  // Nothing has reached the listener yet: the attempt starts from the loop.
  ::fcntl(listener.fd(), F_SETFL, O_NONBLOCK);
  EXPECT_LT(::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC), 0);
  EXPECT_EQ(errno, EAGAIN);
  auto connection = loop.run_until_complete(future);
  auto peername = connection.transport->get_extra_info<SocketAddress>("peername");
  ASSERT_TRUE(peername);
  EXPECT_EQ(*peername, listener.address());
  EXPECT_EQ(connection.protocol->made, 1);
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return connection.protocol->lost == 1; }));
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.connectors.empty());
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.transports.empty());
}

TEST(DirectConnect, OtherSpellingsOfAnAddressStillConnect) {
  // "127.1" is not the plain dotted form the direct path reads itself; the
  // general path resolves it (getaddrinfo reads it as 127.0.0.1).
  EventLoop loop;
  RawSocket listener = RawSocket::listen_on("127.0.0.1");
  std::uint16_t port = listener.address().port();
  auto connection = loop.run_until_complete(
      loop.create_connection([] { return std::make_shared<RecordingProtocol>(); }, "127.1", port));
  auto peername = connection.transport->get_extra_info<SocketAddress>("peername");
  ASSERT_TRUE(peername);
  EXPECT_EQ(*peername, *SocketAddress::parse("127.0.0.1", port));
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return connection.protocol->lost == 1; }));
}

TEST(DirectConnect, AFamilyTheAddressIsNotOfFailsAsBefore) {
  EventLoop loop;
  RawSocket listener = RawSocket::listen_on("127.0.0.1");
  ConnectOptions options;
  options.family = AF_INET6;
  int calls = 0;
  std::exception_ptr error = failure_of(loop, loop.create_connection(
                                                  [&] {
                                                    ++calls;
                                                    return std::make_shared<RecordingProtocol>();
                                                  },
                                                  "127.0.0.1", listener.address().port(), options));
  ASSERT_TRUE(error);
  EXPECT_EQ(what_of(error), "cannot connect to '127.0.0.1': no address of the requested family");
  EXPECT_EQ(calls, 0);
}

TEST(DirectConnect, ClosingTheLoopMidConnectLeavesNothingBehind) {
  auto loop = std::make_unique<EventLoop>();
  HangingListener hanging;
  int calls = 0;
  auto future = loop->create_connection(
      [&calls] {
        ++calls;
        return std::make_shared<RecordingProtocol>();
      },
      "127.0.0.1", hanging.listener.address().port());
  run_iterations(*loop, 3);  // the connect is in flight
  ASSERT_FALSE(future.done());
  ASSERT_FALSE(detail::LoopAccess::internals(*loop).registry.connectors.empty());
  loop->close();
  EXPECT_TRUE(detail::LoopAccess::internals(*loop).registry.connectors.empty());
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(future.done()) << "as every operation's, its Future stays pending";
}

}  // namespace
}  // namespace tulip::testing
