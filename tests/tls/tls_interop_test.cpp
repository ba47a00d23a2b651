// Interoperability with TLS stacks written elsewhere: tulip's client against
// `openssl s_server` and Python's asyncio TLS server, tulip's server against
// `openssl s_client` and Python's ssl and asyncio clients. TLS 1.3 and 1.2,
// ALPN, SNI, client certificates, session resumption and close_notify in
// both directions. A test skips, saying why, only where its peer program is
// missing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "support/subprocess.hpp"
#include "tls/tls_support.hpp"

#ifndef TULIP_TLS_PYTHON_PEER
#error "TULIP_TLS_PYTHON_PEER must name tests/tls/python_peer.py"
#endif

namespace tulip::testing {
namespace {

#define REQUIRE_OPENSSL(variable)                                                    \
  const std::string variable = find_program("openssl");                              \
  if (variable.empty()) {                                                            \
    GTEST_SKIP() << "the openssl program is not installed (Debian: apt-get install " \
                    "openssl); the interoperability tests need it as their peer";    \
  }

// Debian's own Python: the one whose ssl module is built on the system's OpenSSL.
#define REQUIRE_PYTHON(variable)                                                  \
  const std::string variable = find_program("/usr/bin/python3");                  \
  if (variable.empty()) {                                                         \
    GTEST_SKIP() << "/usr/bin/python3 is not installed (Debian: apt-get install " \
                    "python3); the Python interoperability tests need it";        \
  }

// Runs `loop` until the program's output contains `text` (or it exits).
bool await_output(EventLoop& loop, Subprocess& peer, const std::string& text, double limit = 30) {
  return run_until(
             loop,
             [&] { return peer.read_output().find(text) != std::string::npos || peer.exited(); },
             limit) &&
         peer.output().find(text) != std::string::npos;
}

// Runs `loop` until the program exits; its exit code.
int await_exit(EventLoop& loop, Subprocess& peer, double limit = 60) {
  run_until(
      loop, [&] { return peer.exited(); }, limit);
  peer.read_output();
  return peer.exit_code();
}

// The port a peer prints on a line of its own: s_server's "ACCEPT
// 127.0.0.1:40123", python_peer.py's "PORT 40123". Waits for the whole line:
// an unbuffered writer (PYTHONUNBUFFERED) emits "PORT", the number and the
// newline in separate writes, and reading between them would give port 0.
std::uint16_t await_port(EventLoop& loop, Subprocess& peer, const std::string& marker) {
  auto complete_line = [&]() -> std::size_t {
    const std::string& output = peer.output();
    std::size_t at = output.find(marker);
    if (at == std::string::npos || output.find('\n', at) == std::string::npos) {
      return std::string::npos;
    }
    return at + marker.size();
  };
  run_until(
      loop,
      [&] {
        peer.read_output();
        return complete_line() != std::string::npos || peer.exited();
      },
      30);
  peer.read_output();
  std::size_t digits = complete_line();
  if (digits == std::string::npos) {
    return 0;
  }
  return static_cast<std::uint16_t>(std::atoi(peer.output().c_str() + digits));
}

// ---- tulip's client against openssl s_server ------------------------------------------

struct SServer {
  SServer(EventLoop& loop, const std::string& openssl, std::vector<std::string> extra,
          const std::string& cert = "server")
      : process([&] {
          const TestPki& pki = TestPki::get();
          // -rev: echo every line reversed; a line "CLOSE" makes it send
          // close_notify and close.
          std::vector<std::string> argv{openssl, "s_server",     "-accept", "127.0.0.1:0", "-rev",
                                        "-cert", pki.cert(cert), "-key",    pki.key(cert)};
          argv.insert(argv.end(), extra.begin(), extra.end());
          return argv;
        }()) {
    port = await_port(loop, process, "ACCEPT 127.0.0.1:");
    EXPECT_NE(port, 0) << process.output();
  }
  Subprocess process;
  std::uint16_t port = 0;
};

Connection<RecordingProtocol> connect_to(EventLoop& loop, std::uint16_t port,
                                         ConnectOptions options = tls_client_options()) {
  auto protocol = std::make_shared<RecordingProtocol>();
  return loop.run_until_complete(
      loop.create_connection([protocol] { return protocol; }, "127.0.0.1", port, options));
}

class AgainstOpenSslServer : public ::testing::TestWithParam<const char*> {};

TEST_P(AgainstOpenSslServer, EchoesAndTheServersCloseNotifyEndsTheConnection) {
  REQUIRE_OPENSSL(openssl);
  EventLoop loop;
  SServer server(loop, openssl, {GetParam(), "-naccept", "1"});
  auto connection = connect_to(loop, server.port);
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  EXPECT_EQ(transport->get_extra_info<CipherInfo>("cipher")->protocol,
            std::string(GetParam()) == "-tls1_2" ? "TLSv1.2" : "TLSv1.3");
  transport->write("hello openssl\n");
  ASSERT_TRUE(run_until(loop, [&] { return client->received == "lssnepo olleh\n"; }))
      << client->received;
  transport->write("CLOSE\n");
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
  EXPECT_TRUE(client->eof);
  EXPECT_FALSE(client->lost_error) << client->lost_error.message();
  EXPECT_EQ(transport->get_extra_info<bool>("close_notify_received"), true);
  EXPECT_EQ(await_exit(loop, server.process), 0) << server.process.output();
}

TEST_P(AgainstOpenSslServer, TulipsCloseNotifyEndsTheServersConnection) {
  REQUIRE_OPENSSL(openssl);
  EventLoop loop;
  SServer server(loop, openssl, {GetParam(), "-naccept", "1"});
  auto connection = connect_to(loop, server.port);
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  transport->write("bye\n");
  ASSERT_TRUE(run_until(loop, [&] { return client->received == "eyb\n"; }));
  transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
  EXPECT_FALSE(client->lost_error) << client->lost_error.message();
  // s_server saw the close_notify as the end of the connection, and exited.
  EXPECT_EQ(await_exit(loop, server.process), 0) << server.process.output();
  EXPECT_NE(server.process.output().find("CONNECTION CLOSED"), std::string::npos)
      << server.process.output();
}

INSTANTIATE_TEST_SUITE_P(Versions, AgainstOpenSslServer, ::testing::Values("-tls1_3", "-tls1_2"),
                         [](const ::testing::TestParamInfo<const char*>& param_info) {
                           return std::string(param_info.param + 1);
                         });

TEST(TlsInterop, OpenSslServerAlpn) {
  REQUIRE_OPENSSL(openssl);
  EventLoop loop;
  SServer server(loop, openssl, {"-naccept", "1", "-alpn", "h2,http/1.1"});
  ConnectOptions options = tls_client_options();
  options.ssl->set_alpn_protocols({"http/1.1"});
  auto connection = connect_to(loop, server.port, options);
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  EXPECT_EQ(transport->get_extra_info<std::string>("selected_alpn_protocol"), "http/1.1");
  transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
  EXPECT_EQ(await_exit(loop, server.process), 0);
  EXPECT_NE(server.process.output().find("ALPN protocols advertised by the client: http/1.1"),
            std::string::npos)
      << server.process.output();
}

TEST(TlsInterop, OpenSslServerSniAndClientCertificate) {
  REQUIRE_OPENSSL(openssl);
  EventLoop loop;
  const TestPki& pki = TestPki::get();
  // Its default certificate is for other.example: only the SNI name
  // "localhost" gets the certificate tulip's client accepts.
  SServer server(loop, openssl,
                 {"-naccept", "1", "-servername", "localhost", "-cert2", pki.cert("server"),
                  "-key2", pki.key("server"), "-Verify", "1", "-CAfile", pki.ca()},
                 "other-host");
  ConnectOptions options = tls_client_options();
  options.ssl->load_cert_chain(pki.cert("client"), pki.key("client"));
  auto connection = connect_to(loop, server.port, options);
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  transport->write("abc\n");
  ASSERT_TRUE(run_until(loop, [&] { return client->received == "cba\n"; }));
  transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
  EXPECT_EQ(await_exit(loop, server.process), 0);
  EXPECT_NE(server.process.output().find("CN = tulip-client"), std::string::npos)
      << server.process.output();
}

TEST(TlsInterop, OpenSslServerResumesTulipsSession) {
  REQUIRE_OPENSSL(openssl);
  EventLoop loop;
  for (const char* version : {"-tls1_3", "-tls1_2"}) {
    SCOPED_TRACE(version);
    SServer server(loop, openssl, {version, "-naccept", "2"});
    SslContext context = client_context();
    auto first = connect_to(loop, server.port, tls_client_options(context));
    first.transport->write("one\n");
    ASSERT_TRUE(run_until(loop, [&] { return first.protocol->received == "eno\n"; }));
    auto session = first.transport->get_extra_info<SslSession>("ssl_session");
    ASSERT_TRUE(session && session->valid());
    EXPECT_EQ(first.transport->get_extra_info<bool>("session_reused"), false);
    first.transport->close();
    ASSERT_TRUE(run_until(loop, [&] { return first.protocol->lost == 1; }));

    ConnectOptions options = tls_client_options(context);
    options.ssl_session = *session;
    auto second = connect_to(loop, server.port, options);
    EXPECT_EQ(second.transport->get_extra_info<bool>("session_reused"), true);
    second.transport->write("two\n");
    ASSERT_TRUE(run_until(loop, [&] { return second.protocol->received == "owt\n"; }));
    second.transport->close();
    ASSERT_TRUE(run_until(loop, [&] { return second.protocol->lost == 1; }));
    EXPECT_EQ(await_exit(loop, server.process), 0);
  }
}

// ---- tulip's server against openssl s_client --------------------------------------------

struct SClient {
  SClient(const std::string& openssl, std::uint16_t port, std::vector<std::string> extra)
      : process([&] {
          std::vector<std::string> argv{openssl,
                                        "s_client",
                                        "-connect",
                                        "127.0.0.1:" + std::to_string(port),
                                        "-CAfile",
                                        TestPki::get().ca(),
                                        "-verify_return_error",
                                        "-servername",
                                        "localhost",
                                        "-no_ign_eof"};
          argv.insert(argv.end(), extra.begin(), extra.end());
          return argv;
        }()) {}
  Subprocess process;
};

class AgainstOpenSslClient : public ::testing::TestWithParam<const char*> {};

TEST_P(AgainstOpenSslClient, EchoesAndTheClientsCloseNotifyIsTheServersEof) {
  REQUIRE_OPENSSL(openssl);
  EventLoop loop;
  ServerOptions server_options;
  server_options.ssl = server_context();
  server_options.ssl->set_alpn_protocols({"h2", "http/1.1"});
  TlsEchoServer server(loop, server_options);
  SClient client(openssl, server.port, {GetParam(), "-alpn", "http/1.1"});
  ASSERT_TRUE(await_output(loop, client.process, "ALPN protocol: http/1.1"))
      << client.process.output();
  client.process.write_stdin("hello tulip\n");
  ASSERT_TRUE(await_output(loop, client.process, "hello tulip\n")) << client.process.output();
  // End of input: s_client sends close_notify and exits.
  client.process.close_stdin();
  EXPECT_EQ(await_exit(loop, client.process), 0) << client.process.output();
  EchoProtocol& peer = server.made(loop);
  ASSERT_TRUE(run_until(loop, [&] { return peer.lost == 1; }));
  EXPECT_TRUE(peer.eof);
  EXPECT_FALSE(peer.lost_error) << peer.lost_error.message();
  std::string version = std::string(GetParam()) == "-tls1_2" ? "TLSv1.2" : "TLSv1.3";
  EXPECT_NE(client.process.output().find("New, " + version), std::string::npos)
      << client.process.output();
}

TEST_P(AgainstOpenSslClient, TheServersCloseSendsCloseNotifyToTheClient) {
  REQUIRE_OPENSSL(openssl);
  EventLoop loop;
  TlsEchoServer server(loop);
  SClient client(openssl, server.port, {GetParam()});
  client.process.write_stdin("ping\n");
  ASSERT_TRUE(await_output(loop, client.process, "ping\n"));
  server.made(loop).transport_->close();
  // s_client reports the server's close_notify and exits on it.
  EXPECT_EQ(await_exit(loop, client.process), 0) << client.process.output();
  EXPECT_NE(client.process.output().find("closed"), std::string::npos) << client.process.output();
  ASSERT_TRUE(run_until(loop, [&] { return server.protocols[0]->lost == 1; }));
  EXPECT_FALSE(server.protocols[0]->lost_error) << server.protocols[0]->lost_error.message();
}

INSTANTIATE_TEST_SUITE_P(Versions, AgainstOpenSslClient, ::testing::Values("-tls1_3", "-tls1_2"),
                         [](const ::testing::TestParamInfo<const char*>& param_info) {
                           return std::string(param_info.param + 1);
                         });

TEST(TlsInterop, OpenSslClientCertificateAndResumptionAgainstTulipsServer) {
  REQUIRE_OPENSSL(openssl);
  EventLoop loop;
  const TestPki& pki = TestPki::get();
  ServerOptions server_options;
  server_options.ssl = server_context();
  server_options.ssl->set_verify_mode(VerifyMode::kRequired);
  server_options.ssl->load_verify_locations(pki.ca());
  TlsEchoServer server(loop, server_options);
  std::string session_file = pki.path("s_client.session");
  for (const char* session_option : {"-sess_out", "-sess_in"}) {
    SCOPED_TRACE(session_option);
    SClient client(
        openssl, server.port,
        {"-cert", pki.cert("client"), "-key", pki.key("client"), session_option, session_file});
    client.process.write_stdin("resume?\n");
    ASSERT_TRUE(await_output(loop, client.process, "resume?\n")) << client.process.output();
    client.process.close_stdin();
    EXPECT_EQ(await_exit(loop, client.process), 0) << client.process.output();
    std::string expected =
        std::string(session_option) == "-sess_in" ? "Reused, TLSv1.3" : "New, TLSv1.3";
    EXPECT_NE(client.process.output().find(expected), std::string::npos) << client.process.output();
  }
  // Both connections passed the server's certificate check and ended cleanly.
  ASSERT_EQ(server.protocols.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EchoProtocol& peer = server.made(loop, i);
    ASSERT_TRUE(run_until(loop, [&] { return peer.lost == 1; }));
    EXPECT_FALSE(peer.lost_error) << peer.lost_error.message();
  }
}

TEST(TlsInterop, OpenSslClientWithoutTheRequiredCertificateIsRefused) {
  REQUIRE_OPENSSL(openssl);
  EventLoop loop;
  ServerOptions server_options;
  server_options.ssl = server_context();
  server_options.ssl->set_verify_mode(VerifyMode::kRequired);
  server_options.ssl->load_verify_locations(TestPki::get().ca());
  TlsEchoServer server(loop, server_options);
  SClient client(openssl, server.port, {});
  client.process.write_stdin("let me in\n");
  EXPECT_NE(await_exit(loop, client.process), 0) << client.process.output();
  EXPECT_NE(client.process.output().find("certificate required"), std::string::npos)
      << client.process.output();
  ASSERT_TRUE(run_until(loop, [&] { return server.server->connection_count() == 0; }));
  EXPECT_EQ(server.protocols.at(0)->made, 0);
}

// ---- Python's asyncio and ssl ----------------------------------------------------------------

std::vector<std::string> python_peer(const std::string& python, std::vector<std::string> args) {
  std::vector<std::string> argv{python, TULIP_TLS_PYTHON_PEER};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

class AgainstPython : public ::testing::TestWithParam<const char*> {};

TEST_P(AgainstPython, TulipsClientAgainstAnAsyncioServer) {
  REQUIRE_PYTHON(python);
  EventLoop loop;
  const TestPki& pki = TestPki::get();
  Subprocess server(
      python_peer(python, {"server", "--cert", pki.cert("server"), "--key", pki.key("server"),
                           "--max-version", GetParam(), "--alpn", "h2", "http/1.1"}));
  const std::uint16_t port = await_port(loop, server, "PORT ");
  ASSERT_NE(port, 0) << server.output();
  ConnectOptions options = tls_client_options();
  options.ssl->set_alpn_protocols({"http/1.1"});
  const std::string data = pattern(1 << 20, 3);
  auto connection = connect_to(loop, port, options);
  auto& transport = connection.transport;
  auto& client = connection.protocol;
  EXPECT_EQ(transport->get_extra_info<std::string>("selected_alpn_protocol"), "http/1.1");
  transport->write(data);
  ASSERT_TRUE(run_until(loop, [&] { return client->received.size() >= data.size(); }));
  EXPECT_TRUE(client->received == data);
  transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
  EXPECT_FALSE(client->lost_error) << client->lost_error.message();
  EXPECT_EQ(await_exit(loop, server), 0) << server.output();
  std::string version = std::string(GetParam()) == "1.2" ? "TLSv1.2" : "TLSv1.3";
  EXPECT_NE(server.output().find("\"version\": \"" + version + "\""), std::string::npos)
      << server.output();
  EXPECT_NE(server.output().find("\"sni\": \"localhost\""), std::string::npos) << server.output();
  EXPECT_NE(server.output().find("\"bytes\": 1048576"), std::string::npos) << server.output();
  EXPECT_EQ(server.output().find("close_error"), std::string::npos) << server.output();
}

TEST_P(AgainstPython, AnAsyncioClientAgainstTulipsServer) {
  REQUIRE_PYTHON(python);
  EventLoop loop;
  TlsEchoServer server(loop);
  Subprocess client(
      python_peer(python, {"client", "--asyncio", "--port", std::to_string(server.port), "--cafile",
                           TestPki::get().ca(), "--max-version", GetParam()}));
  EXPECT_EQ(await_exit(loop, client), 0) << client.output();
  EXPECT_NE(client.output().find("\"ok\": true"), std::string::npos) << client.output();
  EchoProtocol& peer = server.made(loop);
  ASSERT_TRUE(run_until(loop, [&] { return peer.lost == 1; }));
  EXPECT_EQ(peer.received, 1u << 20);
  EXPECT_TRUE(peer.eof) << "asyncio's close() sends close_notify";
  EXPECT_FALSE(peer.lost_error) << peer.lost_error.message();
}

TEST_P(AgainstPython, AnSslSocketClientAgainstTulipsServer) {
  REQUIRE_PYTHON(python);
  EventLoop loop;
  TlsEchoServer server(loop);
  Subprocess client(
      python_peer(python, {"client", "--blocking", "--port", std::to_string(server.port),
                           "--cafile", TestPki::get().ca(), "--max-version", GetParam()}));
  // unwrap() waits for tulip's answering close_notify: its success is the check.
  EXPECT_EQ(await_exit(loop, client), 0) << client.output();
  EXPECT_NE(client.output().find("\"ok\": true"), std::string::npos) << client.output();
  ASSERT_TRUE(run_until(loop, [&] { return server.made(loop).lost == 1; }));
  EXPECT_FALSE(server.protocols[0]->lost_error);
}

INSTANTIATE_TEST_SUITE_P(Versions, AgainstPython, ::testing::Values("1.3", "1.2"),
                         [](const ::testing::TestParamInfo<const char*>& param_info) {
                           return std::string("tls") + (param_info.param[2] == '3' ? "13" : "12");
                         });

}  // namespace
}  // namespace tulip::testing
