// TLS faults over real loopback sockets: certificates that must not verify,
// peers that speak plain text or garbage, stall, or reset in the middle of a
// handshake, cancellation, a closing loop, and a storm of handshakes. Every
// test also checks that no descriptor was left open (fd_leak_check.cpp).
#include <gtest/gtest.h>
#include <openssl/x509_vfy.h>
#include <sys/resource.h>

#include <memory>
#include <string>
#include <vector>

#include "tls/tls_support.hpp"

namespace tulip::testing {
namespace {

struct CertificateCase {
  const char* server_certificate;
  const char* server_hostname;
  bool trust_test_ca;
  long verify_error;
  const char* message;
};

class TlsCertificateFailure : public ::testing::TestWithParam<CertificateCase> {};

TEST_P(TlsCertificateFailure, FailsTheConnectWithTheReasonAndTheServerGoesOn) {
  const CertificateCase& c = GetParam();
  EventLoop loop;
  ServerOptions server_options;
  server_options.ssl = server_context(c.server_certificate);
  TlsEchoServer server(loop, server_options);

  ConnectOptions options = tls_client_options(
      c.trust_test_ca ? client_context() : SslContext(SslContext::Side::kClient));
  options.server_hostname = c.server_hostname;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto future =
      loop.create_connection([protocol] { return protocol; }, "127.0.0.1", server.port, options);
  try {
    loop.run_until_complete(future);
    ADD_FAILURE() << "the connection succeeded";
  } catch (const SslCertVerificationError& error) {
    EXPECT_EQ(std::string(error.what()), c.message);
    EXPECT_EQ(error.code(), std::error_code(static_cast<int>(c.verify_error), ssl_category()));
    EXPECT_EQ(error.code().message(), c.message);
  }
  EXPECT_EQ(protocol->made, 0);
  // The server's side of the failed handshake went away without a callback.
  ASSERT_TRUE(run_until(loop, [&] { return server.server->connection_count() == 0; }));
  for (const auto& made : server.protocols) EXPECT_EQ(made->made, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Verification, TlsCertificateFailure,
    ::testing::Values(
        CertificateCase{"self-signed", "localhost", true, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
                        "certificate verify failed: self-signed certificate"},
        CertificateCase{"expired", "localhost", true, X509_V_ERR_CERT_HAS_EXPIRED,
                        "certificate verify failed: certificate has expired"},
        CertificateCase{"other-host", "localhost", true, X509_V_ERR_HOSTNAME_MISMATCH,
                        "certificate verify failed: hostname mismatch"},
        CertificateCase{"server", "127.0.0.2", true, X509_V_ERR_IP_ADDRESS_MISMATCH,
                        "certificate verify failed: IP address mismatch"},
        CertificateCase{"server", "localhost", false, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
                        "certificate verify failed: unable to get local issuer certificate"}),
    [](const ::testing::TestParamInfo<CertificateCase>& param_info) {
      std::string name = std::string(param_info.param.server_certificate) + "_" +
                         (param_info.param.trust_test_ca ? "trusted" : "untrusted");
      for (char& c : name) {
        if (c == '-') c = '_';
      }
      return name + "_" + std::to_string(param_info.index);
    });

TEST(TlsFault, VerificationCanBeTurnedOff) {
  EventLoop loop;
  ServerOptions server_options;
  server_options.ssl = server_context("self-signed");
  TlsEchoServer server(loop, server_options);
  SslContext insecure(SslContext::Side::kClient);
  insecure.set_check_hostname(false);
  insecure.set_verify_mode(VerifyMode::kNone);
  auto protocol = std::make_shared<RecordingProtocol>();
  auto connection = loop.run_until_complete(loop.create_connection(
      [protocol] { return protocol; }, "127.0.0.1", server.port, tls_client_options(insecure)));
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  transport->write("unverified");
  ASSERT_TRUE(run_until(loop, [&] { return client->received == "unverified"; }));
  transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
}

// A raw TCP client that sends `bytes` to a TLS server and reads until EOF.
std::string raw_exchange(EventLoop& loop, std::uint16_t port, const std::string& bytes) {
  RawSocket raw = RawSocket::connect_to(*SocketAddress::parse("127.0.0.1", port));
  raw.send_all(bytes);
  ::shutdown(raw.fd(), SHUT_WR);
  // The server runs in this thread: give it turns until the socket is at EOF.
  std::string answer;
  EXPECT_TRUE(run_until(loop, [&] {
    char buffer[4096];
    ssize_t n = ::recv(raw.fd(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n > 0) answer.append(buffer, static_cast<std::size_t>(n));
    return n == 0 || (n < 0 && errno != EAGAIN);
  }));
  return answer;
}

TEST(TlsFault, PlainTextAndGarbageToATlsServerAreRefusedAndTheServerGoesOn) {
  EventLoop loop;
  TlsEchoServer server(loop);
  std::string garbage;
  for (int i = 0; i < 2000; ++i) garbage.push_back(static_cast<char>((i * 7919) & 0xff));
  for (const std::string& bytes :
       {std::string("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"), std::string("hello\n"), garbage,
        std::string("\x16\x03\x01\x00\x05hello", 10)}) {
    std::string answer = raw_exchange(loop, server.port, bytes);
    // At most an alert comes back (record type 21), never data.
    if (!answer.empty()) {
      EXPECT_EQ(answer[0], '\x15');
    }
  }
  ASSERT_TRUE(run_until(loop, [&] { return server.server->connection_count() == 0; }));
  for (const auto& made : server.protocols) EXPECT_EQ(made->made, 0);
  // Still serving.
  auto protocol = std::make_shared<RecordingProtocol>();
  auto connection = loop.run_until_complete(loop.create_connection(
      [protocol] { return protocol; }, "127.0.0.1", server.port, tls_client_options()));
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  transport->write("fine");
  ASSERT_TRUE(run_until(loop, [&] { return client->received == "fine"; }));
  transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
}

TEST(TlsFault, AClientThatNeverSpeaksIsClosedByTheHandshakeTimeout) {
  EventLoop loop;
  ServerOptions server_options;
  server_options.ssl_handshake_timeout = 0.1;
  TlsEchoServer server(loop, server_options);
  RawSocket silent = RawSocket::connect_to(*SocketAddress::parse("127.0.0.1", server.port));
  ASSERT_TRUE(run_until(
      loop, [&] { return silent.at_eof(); }, 10));
  ASSERT_TRUE(run_until(loop, [&] { return server.server->connection_count() == 0; }));
  ASSERT_EQ(server.protocols.size(), 1u);
  EXPECT_EQ(server.protocols[0]->made, 0);
  EXPECT_EQ(server.protocols[0]->lost, 0);
}

TEST(TlsFault, AServerThatNeverAnswersFailsTheConnectAfterTheHandshakeTimeout) {
  EventLoop loop;
  RawSocket listener = RawSocket::listen_on();
  ConnectOptions options = tls_client_options();
  options.ssl_handshake_timeout = 0.1;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto future = loop.create_connection([protocol] { return protocol; }, "127.0.0.1",
                                       listener.address().port(), options);
  try {
    loop.run_until_complete(future);
    ADD_FAILURE() << "the handshake did not time out";
  } catch (const ConnectionError& error) {
    EXPECT_EQ(error.code(), make_error_code(Error::kSslHandshakeTimeout));
    EXPECT_EQ(std::string(error.what()),
              "SSL handshake is taking longer than 0.1 seconds: aborting the connection");
  }
  EXPECT_EQ(protocol->made, 0);
  RawSocket accepted = listener.accept_one();
  ASSERT_TRUE(
      run_until(loop, [&] { return accepted.at_eof() || !accepted.read_to_eof().empty(); }));
}

// Runs the loop until `listener` has a connection to accept, and accepts it.
RawSocket accept_from(EventLoop& loop, const RawSocket& listener) {
  EXPECT_TRUE(run_until(loop, [&] {
    pollfd waiting{listener.fd(), POLLIN, 0};
    return ::poll(&waiting, 1, 0) == 1;
  }));
  return listener.accept_one();
}

TEST(TlsFault, APeerResettingDuringTheHandshake) {
  EventLoop loop;
  TlsEchoServer server(loop);
  // Half a ClientHello, then a reset.
  RawSocket raw = RawSocket::connect_to(*SocketAddress::parse("127.0.0.1", server.port));
  raw.send_all(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
  ASSERT_TRUE(run_until(loop, [&] { return server.server->connection_count() == 1; }));
  raw.reset_connection();
  ASSERT_TRUE(run_until(loop, [&] { return server.server->connection_count() == 0; }));
  EXPECT_EQ(server.protocols.at(0)->made, 0);

  // The client side: the server resets while the client waits for its answer.
  RawSocket listener = RawSocket::listen_on();
  auto protocol = std::make_shared<RecordingProtocol>();
  auto future = loop.create_connection([protocol] { return protocol; }, "127.0.0.1",
                                       listener.address().port(), tls_client_options());
  RawSocket accepted = accept_from(loop, listener);
  ASSERT_TRUE(run_until(loop, [&] {
    char byte;
    return ::recv(accepted.fd(), &byte, 1, MSG_DONTWAIT | MSG_PEEK) == 1;  // the ClientHello
  }));
  accepted.reset_connection();
  try {
    loop.run_until_complete(future);
    ADD_FAILURE() << "the handshake succeeded";
  } catch (const ConnectionError& error) {
    EXPECT_EQ(error.code(), std::make_error_code(std::errc::connection_reset)) << error.what();
  }
  EXPECT_EQ(protocol->made, 0);
}

TEST(TlsFault, CancellingTheConnectDuringTheHandshakeClosesTheConnection) {
  EventLoop loop;
  RawSocket listener = RawSocket::listen_on();
  auto protocol = std::make_shared<RecordingProtocol>();
  auto future = loop.create_connection([protocol] { return protocol; }, "127.0.0.1",
                                       listener.address().port(), tls_client_options());
  RawSocket accepted = accept_from(loop, listener);
  ASSERT_TRUE(run_until(loop, [&] {
    char byte;
    return ::recv(accepted.fd(), &byte, 1, MSG_DONTWAIT | MSG_PEEK) == 1;
  }));
  future.cancel();
  ASSERT_TRUE(run_until(loop, [&] {
    char buffer[4096];
    return ::recv(accepted.fd(), buffer, sizeof(buffer), MSG_DONTWAIT) == 0;
  }));
  EXPECT_EQ(protocol->made, 0);
  EXPECT_EQ(protocol->lost, 0);
}

TEST(TlsFault, ClosingTheLoopDuringHandshakesAndLiveConnectionsLeavesNothingBehind) {
  auto loop = std::make_unique<EventLoop>();
  auto server = std::make_unique<TlsEchoServer>(*loop);
  auto live = std::make_shared<RecordingProtocol>();
  auto connection = loop->run_until_complete(loop->create_connection(
      [live] { return live; }, "127.0.0.1", server->port, tls_client_options()));
  // Handshakes in flight, never finished.
  std::vector<Future<Connection<RecordingProtocol>>> pending;
  for (int i = 0; i < 5; ++i) {
    pending.push_back(loop->create_connection([] { return std::make_shared<RecordingProtocol>(); },
                                              "127.0.0.1", server->port, tls_client_options()));
  }
  for (int i = 0; i < 3; ++i) {
    loop->stop();
    loop->run_forever();
  }
  server->server->close();
  server->server.reset();
  loop->close();
  EXPECT_EQ(live->lost, 1);
  EXPECT_EQ(live->lost_error, std::make_error_code(std::errc::connection_aborted));
  server.reset();
  connection = {};
  loop.reset();
}

// Raises the soft descriptor limit to `wanted` if the hard limit allows;
// returns what is available.
rlim_t descriptors_available(rlim_t wanted) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < wanted) {
    limit.rlim_cur = std::min(wanted, limit.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

TEST(TlsFault, AHandshakeStormCompletesAndLeavesNothingBehind) {
  // 1,000 clients at once (each needs two descriptors here: its own and the
  // server's); bench/soak/tls-handshake-storm.sh runs 10,000.
  std::size_t clients = 1000;
  rlim_t available = descriptors_available(2 * clients + 200);
  if (available < 2 * clients + 200) clients = (available - 200) / 2;
  EventLoop loop;
  ServerOptions server_options;
  server_options.backlog = static_cast<int>(clients);
  TlsEchoServer server(loop, server_options);
  std::vector<Future<Connection<RecordingProtocol>>> connects;
  for (std::size_t i = 0; i < clients; ++i) {
    connects.push_back(loop.create_connection([] { return std::make_shared<RecordingProtocol>(); },
                                              "127.0.0.1", server.port, tls_client_options()));
  }
  std::size_t echoed = 0;
  for (auto& connect : connects) {
    auto [transport, client] = loop.run_until_complete(connect);
    transport->write("storm");
    client->on_data = [&, t = transport.get(), c = client.get()](std::string_view) {
      if (c->received == "storm") {
        ++echoed;
        t->close();
      }
    };
  }
  ASSERT_TRUE(run_until(
      loop, [&] { return echoed == clients; }, 120));
  ASSERT_TRUE(run_until(
      loop, [&] { return server.server->connection_count() == 0; }, 60));
  std::size_t closed_cleanly = 0;
  for (const auto& peer : server.protocols) {
    if (peer->made == 1 && peer->lost == 1 && !peer->lost_error && peer->eof) ++closed_cleanly;
  }
  EXPECT_EQ(closed_cleanly, clients);
}

}  // namespace
}  // namespace tulip::testing
