// Happy Eyeballs (ConnectOptions::happy_eyeballs_delay, RFC 8305): a name
// whose first address is black-holed (a listener whose accept queue is full
// drops every SYN, so connect() neither succeeds nor fails) connects through
// the next address within the delay, not after a connect timeout; the
// losing attempts are closed; interleave alternates the families.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <vector>

#include "fault/fault_support.hpp"
#include "loop_access.hpp"
#include "loop_internals.hpp"

namespace tulip::testing {
namespace {

bool ipv6_loopback() {
  int probe = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto address = SocketAddress::parse("::1", 0);
  bool ok = probe >= 0 && ::bind(probe, address->data(), address->size()) == 0;
  if (probe >= 0) ::close(probe);
  return ok;
}

// A listening socket whose accept queue is full: further SYNs are dropped.
struct BlackHole {
  explicit BlackHole(const char* host) : listener(RawSocket::listen_on(host, 0)) {
    address = listener.address();
    for (int i = 0; i < 4; ++i) {
      RawSocket filler(::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      ::connect(filler.fd(), address.data(), address.size());
      fillers.push_back(std::move(filler));
    }
  }
  RawSocket listener;
  SocketAddress address;
  std::vector<RawSocket> fillers;
};

// Makes every name `loop` resolves answer `addresses`, in that order.
void answer_with(EventLoop& loop, std::vector<SocketAddress> addresses) {
  detail::LoopAccess::internals(loop).resolver.set_lookup_for_testing(
      [addresses](const detail::ResolveQuestion&) {
        detail::ResolveResult result;
        result.addresses = addresses;
        return result;
      });
}

TEST(HappyEyeballsTest, BlackHoledFamilyFallsBackWithinTheDelay) {
  const char* hole_host = ipv6_loopback() ? "::1" : "127.0.0.1";
  BlackHole hole(hole_host);
  RawSocket good = RawSocket::listen_on("127.0.0.1");
  EventLoop loop;
  answer_with(loop, {hole.address, good.address()});
  ConnectOptions options;
  options.happy_eyeballs_delay = 0.05;
  int made = 0;
  auto started = std::chrono::steady_clock::now();
  auto connection = loop.run_until_complete(loop.create_connection(
      [&made] {
        ++made;
        return std::make_shared<RecordingProtocol>();
      },
      "dual.test", 0, options));
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_EQ(made, 1);
  EXPECT_EQ(connection.transport->get_extra_info<SocketAddress>("peername"), good.address());
  // Well within a connect timeout (the kernel's is minutes): a bound, not a sync.
  EXPECT_LT(seconds, 5.0);
  // The black-holed attempt was closed: once its SYN gets through, nothing is made.
  ::fcntl(hole.listener.fd(), F_SETFL, O_NONBLOCK);
  std::vector<RawSocket> drained;
  for (int fd; (fd = ::accept4(hole.listener.fd(), nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
    drained.emplace_back(fd);
  }
  run_iterations(loop, 10);
  EXPECT_EQ(made, 1);
  EXPECT_EQ(detail::LoopAccess::internals(loop).registry.transports.size(), 1u);
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.connectors.empty());
  connection.transport->abort();
  run_iterations(loop, 3);
}

TEST(HappyEyeballsTest, WithoutItTheBlackHoleHoldsTheAttemptUntilTheTimeout) {
  BlackHole hole("127.0.0.1");
  RawSocket good = RawSocket::listen_on("127.0.0.1");
  EventLoop loop;
  answer_with(loop, {hole.address, good.address()});
  ConnectOptions options;
  options.timeout = 0.2;
  EXPECT_THROW(loop.run_until_complete(loop.create_connection(
                   [] { return std::make_shared<RecordingProtocol>(); }, "dual.test", 0, options)),
               TimeoutError);
}

TEST(HappyEyeballsTest, InterleaveAlternatesFamiliesAndFailuresStartTheNextAttempt) {
  if (!ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback";
  // Four ports nobody listens on: every attempt is refused at once.
  std::vector<SocketAddress> refused;
  for (const char* host : {"::1", "::1", "127.0.0.1", "127.0.0.1"}) {
    RawSocket gone = RawSocket::listen_on(host);
    refused.push_back(gone.address());
  }
  EventLoop loop;
  answer_with(loop, refused);
  ConnectOptions options;
  options.happy_eyeballs_delay = 10;  // long: only failures move the attempts on
  try {
    loop.run_until_complete(loop.create_connection(
        [] { return std::make_shared<RecordingProtocol>(); }, "dual.test", 0, options));
    ADD_FAILURE() << "connected to nobody";
  } catch (const ConnectionError& e) {
    std::string expected = "Multiple exceptions: ";
    for (int index : {0, 2, 1, 3}) {
      if (index != 0) expected += "; ";
      expected += "connect to " + refused[static_cast<std::size_t>(index)].to_string() +
                  " failed: Connection refused";
    }
    EXPECT_EQ(std::string(e.what()), expected);
  }
}

}  // namespace
}  // namespace tulip::testing
