// TLS between a tulip client and a tulip server over loopback TCP: handshake
// and extra information, protocol versions, ALPN, SNI, client certificates,
// close_notify in both directions, resumption, Unix sockets and streams.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "support/temp_file.hpp"
#include "tls/tls_support.hpp"

namespace tulip::testing {
namespace {

// Connects a RecordingProtocol to `port` with TLS and waits for the handshake.
Connection<RecordingProtocol> connect_tls(EventLoop& loop, std::uint16_t port,
                                          ConnectOptions options = tls_client_options()) {
  auto protocol = std::make_shared<RecordingProtocol>();
  return loop.run_until_complete(
      loop.create_connection([protocol] { return protocol; }, "127.0.0.1", port, options));
}

TEST(TlsConnection, EchoesOverTls13WithTheNegotiatedDetailsInExtraInfo) {
  EventLoop loop;
  TlsEchoServer server(loop);
  auto connection = connect_tls(loop, server.port);
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  // The Future completed after the handshake and after connection_made.
  EXPECT_EQ(client->made, 1);
  ASSERT_EQ(server.protocols.size(), 1u);
  transport->write("hello over TLS");
  ASSERT_TRUE(run_until(loop, [&] { return client->received == "hello over TLS"; }));

  auto cipher = transport->get_extra_info<CipherInfo>("cipher");
  ASSERT_TRUE(cipher);
  EXPECT_EQ(cipher->protocol, "TLSv1.3");
  EXPECT_GE(cipher->secret_bits, 128);
  auto peercert = transport->get_extra_info<PeerCertificate>("peercert");
  ASSERT_TRUE(peercert);
  EXPECT_NE(peercert->subject.find("CN=localhost"), std::string::npos) << peercert->subject;
  EXPECT_NE(peercert->issuer.find("CN=tulip test CA"), std::string::npos) << peercert->issuer;
  EXPECT_EQ(peercert->subject_alt_names.front(), "DNS:localhost");
  EXPECT_FALSE(peercert->der.empty());
  auto ssl = transport->get_extra_info<SSL*>("ssl_object");
  ASSERT_TRUE(ssl);
  EXPECT_NE(*ssl, nullptr);
  EXPECT_FALSE(transport->get_extra_info("compression").has_value());
  EXPECT_FALSE(transport->get_extra_info("selected_alpn_protocol").has_value());
  EXPECT_EQ(transport->get_extra_info<std::string>("server_hostname"), "localhost");
  EXPECT_TRUE(transport->get_extra_info<SslContext>("sslcontext"));
  // The socket transport's names pass through.
  auto peer = transport->get_extra_info<SocketAddress>("peername");
  ASSERT_TRUE(peer);
  EXPECT_EQ(peer->port(), server.port);
  EXPECT_FALSE(transport->can_write_eof());
  EXPECT_THROW(transport->write_eof(), RuntimeError);

  // The server saw no client certificate, and the name the client sent.
  Transport* server_side = server.protocols[0]->transport_;
  EXPECT_FALSE(server_side->get_extra_info("peercert").has_value());
  EXPECT_EQ(server_side->get_extra_info<std::string>("server_hostname"), "localhost");
  transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1 && server.protocols[0]->lost == 1; }));
}

TEST(TlsConnection, NegotiatesTls12WhenOneSideStopsThere) {
  EventLoop loop;
  ServerOptions server_options;
  server_options.ssl = server_context();
  server_options.ssl->set_maximum_version(TlsVersion::kTlsV1_2);
  TlsEchoServer server(loop, server_options);
  auto connection = connect_tls(loop, server.port);
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  EXPECT_EQ(transport->get_extra_info<CipherInfo>("cipher")->protocol, "TLSv1.2");
  transport->write("twelve");
  ASSERT_TRUE(run_until(loop, [&] { return client->received == "twelve"; }));
  transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
  EXPECT_FALSE(client->lost_error) << client->lost_error.message();
}

TEST(TlsConnection, RefusesAVersionBelowTheMinimum) {
  EventLoop loop;
  ServerOptions server_options;
  server_options.ssl = server_context();
  server_options.ssl->set_maximum_version(TlsVersion::kTlsV1_2);
  TlsEchoServer server(loop, server_options);
  ConnectOptions options = tls_client_options();
  options.ssl->set_minimum_version(TlsVersion::kTlsV1_3);
  auto protocol = std::make_shared<RecordingProtocol>();
  std::string error = failure_of(loop, loop.create_connection([protocol] { return protocol; },
                                                              "127.0.0.1", server.port, options));
  EXPECT_NE(error.find("protocol version"), std::string::npos) << error;
  EXPECT_EQ(protocol->made, 0);
}

TEST(TlsConnection, AlpnPicksTheServersFirstChoiceTheClientOffers) {
  EventLoop loop;
  ServerOptions server_options;
  server_options.ssl = server_context();
  server_options.ssl->set_alpn_protocols({"http/1.1", "h2"});
  TlsEchoServer server(loop, server_options);
  ConnectOptions options = tls_client_options();
  options.ssl->set_alpn_protocols({"h2", "http/1.1"});
  auto connection = connect_tls(loop, server.port, options);
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  EXPECT_EQ(transport->get_extra_info<std::string>("selected_alpn_protocol"), "http/1.1");
  EXPECT_EQ(server.made(loop).transport_->get_extra_info<std::string>("selected_alpn_protocol"),
            "http/1.1");
  transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
}

TEST(TlsConnection, AlpnWithoutACommonProtocolGoesOnWithout) {
  EventLoop loop;
  ServerOptions server_options;
  server_options.ssl = server_context();
  server_options.ssl->set_alpn_protocols({"h2"});
  TlsEchoServer server(loop, server_options);
  ConnectOptions options = tls_client_options();
  options.ssl->set_alpn_protocols({"spdy/3"});
  auto connection = connect_tls(loop, server.port, options);
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  EXPECT_FALSE(transport->get_extra_info("selected_alpn_protocol").has_value());
  transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
}

TEST(TlsConnection, SniCallbackServesTheCertificateForTheRequestedName) {
  EventLoop loop;
  // The default certificate is for other.example; the callback switches to
  // the localhost one when the client asks for localhost.
  ServerOptions server_options;
  server_options.ssl = server_context("other-host");
  SslContext localhost = server_context("server");
  std::vector<std::string> names;
  server_options.ssl->set_sni_callback([&](const std::string& name) -> std::optional<SslContext> {
    names.push_back(name);
    if (name == "localhost") return localhost;
    return std::nullopt;
  });
  TlsEchoServer server(loop, server_options);
  auto connection = connect_tls(loop, server.port);
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  EXPECT_EQ(names, std::vector<std::string>{"localhost"});
  EXPECT_NE(transport->get_extra_info<PeerCertificate>("peercert")->subject.find("CN=localhost"),
            std::string::npos);
  transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));

  // Without the switch the other certificate does not match the name.
  ConnectOptions options = tls_client_options();
  options.server_hostname = "other.example";
  auto other_connection = connect_tls(loop, server.port, options);
  auto& other_transport = other_connection.transport;
  auto& other_client = other_connection.protocol;
  EXPECT_NE(other_transport->get_extra_info<PeerCertificate>("peercert")
                ->subject.find("CN=other.example"),
            std::string::npos);
  other_transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return other_client->lost == 1; }));
}

TEST(TlsConnection, AnAddressAsServerHostnameIsCheckedAgainstTheIpEntriesAndNotSent) {
  EventLoop loop;
  TlsEchoServer server(loop);
  ConnectOptions options = tls_client_options();
  options.server_hostname.reset();  // asyncio's default: the host, here an address
  auto connection = connect_tls(loop, server.port, options);
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  EXPECT_FALSE(server.made(loop).transport_->get_extra_info("server_hostname").has_value());
  transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
}

TEST(TlsConnection, ClientCertificatesAreVerifiedByTheServer) {
  EventLoop loop;
  ServerOptions server_options;
  server_options.ssl = server_context();
  server_options.ssl->set_verify_mode(VerifyMode::kRequired);
  server_options.ssl->load_verify_locations(TestPki::get().ca());
  TlsEchoServer server(loop, server_options);

  ConnectOptions options = tls_client_options();
  options.ssl->load_cert_chain(TestPki::get().cert("client"), TestPki::get().key("client"));
  auto connection = connect_tls(loop, server.port, options);
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  transport->write("with a certificate");
  ASSERT_TRUE(run_until(loop, [&] { return client->received == "with a certificate"; }));
  auto seen = server.protocols[0]->transport_->get_extra_info<PeerCertificate>("peercert");
  ASSERT_TRUE(seen);
  EXPECT_NE(seen->subject.find("CN=tulip-client"), std::string::npos) << seen->subject;
  transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
}

TEST(TlsConnection, AClientWithoutTheRequiredCertificateNeverReachesTheServersProtocol) {
  EventLoop loop;
  ServerOptions server_options;
  server_options.ssl = server_context();
  server_options.ssl->set_verify_mode(VerifyMode::kRequired);
  server_options.ssl->load_verify_locations(TestPki::get().ca());
  TlsEchoServer server(loop, server_options);

  for (const char* certificate : {"", "untrusted-client"}) {
    SCOPED_TRACE(certificate);
    ConnectOptions options = tls_client_options();
    if (*certificate != '\0') {
      options.ssl->load_cert_chain(TestPki::get().cert(certificate),
                                   TestPki::get().key(certificate));
    }
    auto protocol = std::make_shared<RecordingProtocol>();
    auto future =
        loop.create_connection([protocol] { return protocol; }, "127.0.0.1", server.port, options);
    // In TLS 1.3 the client finishes its side first; the server's refusal
    // then arrives as an alert that ends the connection with its reason.
    std::string error = failure_of(loop, future);
    if (error.empty()) {
      ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
      error = protocol->lost_error.message();
    }
    EXPECT_NE(error.find("alert"), std::string::npos) << error;
    ASSERT_TRUE(run_until(loop, [&] { return server.server->connection_count() == 0; }));
  }
  for (const auto& made : server.protocols) EXPECT_EQ(made->made, 0);
}

TEST(TlsConnection, CloseSendsCloseNotifyWhichThePeerSeesAsEof) {
  EventLoop loop;
  TlsEchoServer server(loop);
  auto connection = connect_tls(loop, server.port);
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  transport->write("last words");
  transport->close();
  EXPECT_TRUE(transport->is_closing());
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1 && server.protocols[0]->lost == 1; }));
  // The server got the data, then close_notify as eof_received, and closed cleanly.
  EchoProtocol& peer = *server.protocols[0];
  EXPECT_EQ(peer.received, 10u);
  EXPECT_TRUE(peer.eof);
  EXPECT_FALSE(peer.lost_error) << peer.lost_error.message();
  EXPECT_FALSE(client->lost_error) << client->lost_error.message();
  // After close() the client hears no more data, even the echo in flight.
  EXPECT_EQ(client->received, "");
}

TEST(TlsConnection, TheServerClosingIsTheClientsEofThenAnOrderlyClose) {
  EventLoop loop;
  TlsEchoServer server(loop);
  auto connection = connect_tls(loop, server.port);
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  transport->write("ping");
  ASSERT_TRUE(run_until(loop, [&] { return client->received == "ping"; }));
  server.protocols[0]->transport_->close();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1 && server.protocols[0]->lost == 1; }));
  EXPECT_TRUE(client->eof);
  EXPECT_FALSE(client->lost_error) << client->lost_error.message();
  EXPECT_EQ(transport->get_extra_info<bool>("close_notify_received"), true);
  // After the loss the transport is safe to use and still names its peer.
  EXPECT_TRUE(transport->is_closing());
  transport->write("dropped");
  transport->close();
  transport->abort();
  EXPECT_TRUE(transport->get_extra_info<SocketAddress>("peername"));
}

TEST(TlsConnection, AbortClosesAtOnceWithoutCloseNotify) {
  EventLoop loop;
  TlsEchoServer server(loop);
  auto connection = connect_tls(loop, server.port);
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  transport->write("x");
  ASSERT_TRUE(run_until(loop, [&] { return client->received == "x"; }));
  transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1 && server.protocols[0]->lost == 1; }));
  EXPECT_FALSE(client->lost_error);
  // The server saw a TCP EOF without close_notify: asyncio's ordinary EOF.
  EXPECT_TRUE(server.protocols[0]->eof);
  EXPECT_FALSE(server.protocols[0]->lost_error) << server.protocols[0]->lost_error.message();
}

TEST(TlsConnection, ResumesASessionFromAnEarlierConnection) {
  EventLoop loop;
  TlsEchoServer server(loop);
  SslContext client = client_context();
  auto first = connect_tls(loop, server.port, tls_client_options(client));
  EXPECT_EQ(first.transport->get_extra_info<bool>("session_reused"), false);
  // TLS 1.3 tickets come after the handshake: a round trip reads them.
  first.transport->write("ticket please");
  ASSERT_TRUE(run_until(loop, [&] { return first.protocol->received == "ticket please"; }));
  auto session = first.transport->get_extra_info<SslSession>("ssl_session");
  ASSERT_TRUE(session && session->valid());
  first.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return first.protocol->lost == 1; }));

  ConnectOptions options = tls_client_options(client);
  options.ssl_session = *session;
  auto second = connect_tls(loop, server.port, options);
  EXPECT_EQ(second.transport->get_extra_info<bool>("session_reused"), true);
  second.transport->write("again");
  ASSERT_TRUE(run_until(loop, [&] { return second.protocol->received == "again"; }));
  second.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return second.protocol->lost == 1; }));
}

TEST(TlsConnection, WorksOverUnixSockets) {
  EventLoop loop;
  TempDir dir;
  std::string path = dir.file("tls.sock");
  UnixServerOptions server_options;
  server_options.ssl = server_context();
  std::vector<std::shared_ptr<EchoProtocol>> made;
  auto server = loop.run_until_complete(loop.create_unix_server(
      [&] {
        made.push_back(std::make_shared<EchoProtocol>());
        return made.back();
      },
      path, server_options));
  UnixConnectOptions options;
  options.ssl = client_context();
  // A path names no host: without server_hostname the context's check fails.
  auto nameless = std::make_shared<RecordingProtocol>();
  std::string error =
      failure_of(loop, loop.create_unix_connection([nameless] { return nameless; }, path, options));
  EXPECT_EQ(error, "check_hostname requires server_hostname");
  options.server_hostname = "localhost";
  auto protocol = std::make_shared<RecordingProtocol>();
  auto connection = loop.run_until_complete(
      loop.create_unix_connection([protocol] { return protocol; }, path, options));
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  transport->write("over a Unix socket");
  ASSERT_TRUE(run_until(loop, [&] { return client->received == "over a Unix socket"; }));
  EXPECT_EQ(transport->get_extra_info<CipherInfo>("cipher")->protocol, "TLSv1.3");
  transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
  server->close();
}

Task<std::string> stream_round_trip(EventLoop& loop, std::uint16_t port) {
  ConnectOptions options = tls_client_options();
  auto [reader, writer] = co_await open_connection(loop, "127.0.0.1", port, options);
  writer->write("line over TLS\n");
  co_await writer->drain();
  std::string line = co_await reader->readline();
  writer->close();
  co_await writer->wait_closed();
  co_return line;
}

TEST(TlsConnection, StreamsTakeTheSslOptions) {
  EventLoop loop;
  ServerOptions server_options;
  server_options.ssl = server_context();
  auto handler = [](std::shared_ptr<StreamReader> reader,
                    std::shared_ptr<StreamWriter> writer) -> Task<void> {
    std::string line = co_await reader->readline();
    writer->write("echo: " + line);
    co_await writer->drain();
    writer->close();
    co_await writer->wait_closed();
  };
  auto server =
      run_until_complete(loop, start_server(loop, handler, "127.0.0.1", 0, server_options));
  std::uint16_t port = server->sockets().front().sockname.port();
  EXPECT_EQ(run_until_complete(loop, stream_round_trip(loop, port)), "echo: line over TLS\n");
  server->close();
  loop.run_until_complete(server->wait_closed());
}

// Echoes, with flow control: stops reading while its writes wait.
class FlowControlledEcho : public Protocol {
 public:
  void connection_made(Transport& transport) override { transport_ = &transport; }
  void data_received(std::string_view data) override { transport_->write(data); }
  void pause_writing() override {
    ++pauses;
    transport_->pause_reading();
  }
  void resume_writing() override { transport_->resume_reading(); }
  Transport* transport_ = nullptr;
  int pauses = 0;
};

// Writes `data` with flow control and checks that exactly it comes back.
class BulkClient : public Protocol {
 public:
  explicit BulkClient(const std::string& data) : data_(data) {}
  void connection_made(Transport& transport) override {
    transport_ = &transport;
    pump();
  }
  void pause_writing() override {
    paused_ = true;
    ++pauses;
  }
  void resume_writing() override {
    paused_ = false;
    pump();
  }
  void data_received(std::string_view chunk) override {
    if (received + chunk.size() > data_.size() ||
        data_.compare(received, chunk.size(), chunk) != 0) {
      mismatch = true;
    }
    received += chunk.size();
    if (received == data_.size()) transport_->close();
  }
  void connection_lost(std::error_code error) override {
    lost = true;
    lost_error = error;
  }

  std::size_t received = 0;
  int pauses = 0;
  bool mismatch = false;
  bool lost = false;
  std::error_code lost_error;

 private:
  void pump() {
    while (!paused_ && sent_ < data_.size()) {
      std::size_t step = std::min<std::size_t>(1 << 20, data_.size() - sent_);
      transport_->write(std::string_view(data_).substr(sent_, step));
      sent_ += step;
    }
  }
  const std::string& data_;
  Transport* transport_ = nullptr;
  std::size_t sent_ = 0;
  bool paused_ = false;
};

TEST(TlsConnection, SixtyFourMebibytesEachWayArriveIntactUnderFlowControl) {
  EventLoop loop;
  ServerOptions server_options;
  server_options.ssl = server_context();
  std::shared_ptr<FlowControlledEcho> echo;
  auto server = loop.run_until_complete(
      loop.create_server([&] { return echo = std::make_shared<FlowControlledEcho>(); }, "127.0.0.1",
                         0, server_options));
  const std::string data = pattern(64 << 20);
  auto client = std::make_shared<BulkClient>(data);
  loop.run_until_complete(loop.create_connection([client] { return client; }, "127.0.0.1",
                                                 server->sockets().front().sockname.port(),
                                                 tls_client_options()));
  ASSERT_TRUE(run_until(
      loop, [&] { return client->lost; }, 300));
  EXPECT_EQ(client->received, data.size());
  EXPECT_FALSE(client->mismatch);
  EXPECT_FALSE(client->lost_error) << client->lost_error.message();
  // The client wrote faster than the records could go: it was throttled at
  // the water marks along the way.
  EXPECT_GT(client->pauses, 0);
  server->close();
}

// Keeps every byte it receives.
class SinkProtocol : public Protocol {
 public:
  void data_received(std::string_view data) override { received.append(data); }
  std::string received;
};

TEST(TlsConnection, SendfileOverTlsTakesTheBufferedPath) {
  EventLoop loop;
  ServerOptions server_options;
  server_options.ssl = server_context();
  std::shared_ptr<SinkProtocol> sink;
  auto server = loop.run_until_complete(loop.create_server(
      [&] { return sink = std::make_shared<SinkProtocol>(); }, "127.0.0.1", 0, server_options));
  const std::string contents = pattern(1 << 20, 5);
  TempFile file(contents);
  auto connection = connect_tls(loop, server->sockets().front().sockname.port());
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  // Not a socket transport: the file is read and written through the TLS
  // transport, which lends its protocol slot to sendfile's stand-in meanwhile.
  std::size_t sent = loop.run_until_complete(loop.sendfile(*transport, file.fd()));
  EXPECT_EQ(sent, contents.size());
  EXPECT_EQ(transport->get_protocol(), client.get());
  ASSERT_TRUE(run_until(loop, [&] { return sink && sink->received.size() == contents.size(); }));
  EXPECT_TRUE(sink->received == contents);
  EXPECT_THROW(loop.run_until_complete(loop.sendfile(*transport, file.fd(), 0, 0, false)),
               std::exception);
  transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
  server->close();
}

TEST(TlsConnection, OptionsThatNeedSslWithoutItFailTheFuture) {
  EventLoop loop;
  ConnectOptions options;
  options.server_hostname = "localhost";
  auto protocol = std::make_shared<RecordingProtocol>();
  EXPECT_EQ(failure_of(loop, loop.create_connection([protocol] { return protocol; }, "127.0.0.1", 1,
                                                    options)),
            "server_hostname is only meaningful with ssl");
  // A server context on a client, and the reverse.
  ConnectOptions wrong_side;
  wrong_side.ssl = server_context();
  EXPECT_NE(failure_of(loop, loop.create_connection([protocol] { return protocol; }, "127.0.0.1", 1,
                                                    wrong_side))
                .find("client-side SslContext"),
            std::string::npos);
  ServerOptions server_options;
  server_options.ssl = client_context();
  EXPECT_NE(failure_of(loop, loop.create_server([] { return std::make_shared<EchoProtocol>(); },
                                                "127.0.0.1", 0, server_options))
                .find("server-side SslContext"),
            std::string::npos);
  ConnectOptions bad_timeout = tls_client_options();
  bad_timeout.ssl_handshake_timeout = 0;
  EXPECT_EQ(failure_of(loop, loop.create_connection([protocol] { return protocol; }, "127.0.0.1", 1,
                                                    bad_timeout)),
            "ssl_handshake_timeout should be a positive number, got 0");
  EXPECT_EQ(protocol->made, 0);
}

}  // namespace
}  // namespace tulip::testing
