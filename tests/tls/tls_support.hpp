// Test support for the TLS suites: contexts on the test PKI, an echo protocol,
// and a TLS server on a free loopback port.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

#include "support/loopback.hpp"
#include "support/tls_pki.hpp"
#include "tulip/tulip.hpp"

namespace tulip::testing {

/// A server context with the certificate `name` of the test PKI.
inline SslContext server_context(const std::string& name = "server") {
  SslContext context(SslContext::Side::kServer);
  const TestPki& pki = TestPki::get();
  context.load_cert_chain(pki.cert(name), pki.key(name));
  return context;
}

/// A client context that trusts the test CA (and nothing else).
inline SslContext client_context() {
  SslContext context(SslContext::Side::kClient);
  context.load_verify_locations(TestPki::get().ca());
  return context;
}

/// Sends back every byte it receives; counts what it saw.
class EchoProtocol : public Protocol {
 public:
  void connection_made(Transport& transport) override {
    transport_ = &transport;
    ++made;
  }
  void data_received(std::string_view data) override {
    received += data.size();
    transport_->write(data);
  }
  bool eof_received() override {
    eof = true;
    return false;
  }
  void connection_lost(std::error_code error) override {
    ++lost;
    lost_error = error;
  }

  Transport* transport_ = nullptr;
  int made = 0;
  int lost = 0;
  bool eof = false;
  std::size_t received = 0;
  std::error_code lost_error;
};

/// A TLS echo server on 127.0.0.1 with a kernel-chosen port; keeps every
/// protocol it made, in order.
struct TlsEchoServer {
  TlsEchoServer(EventLoop& loop, ServerOptions options = {}) {
    if (!options.ssl) options.ssl = server_context();
    server = loop.run_until_complete(loop.create_server(
        [this] {
          auto protocol = std::make_shared<EchoProtocol>();
          protocols.push_back(protocol);
          return protocol;
        },
        "127.0.0.1", 0, std::move(options)));
    port = server->sockets().front().sockname.port();
  }
  ~TlsEchoServer() {
    if (server) server->close();
  }

  /// The `index`th protocol once its connection_made has run (a TLS 1.3
  /// client finishes its handshake before the server does).
  EchoProtocol& made(EventLoop& loop, std::size_t index = 0) {
    EXPECT_TRUE(run_until(loop, [&] {
      return protocols.size() > index && protocols[index]->made == 1;
    })) << "the server's protocol was never connected";
    return *protocols.at(index);
  }

  std::shared_ptr<Server> server;
  std::uint16_t port = 0;
  std::vector<std::shared_ptr<EchoProtocol>> protocols;
};

/// Client options for a TLS connection to the test PKI's "localhost".
inline ConnectOptions tls_client_options(std::optional<SslContext> context = std::nullopt) {
  ConnectOptions options;
  options.ssl = context ? *context : client_context();
  options.server_hostname = "localhost";
  return options;
}

/// The message of the exception `future` failed with ("" if it did not).
template <class T>
std::string failure_of(EventLoop& loop, Future<T> future) {
  try {
    loop.run_until_complete(future);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace tulip::testing
