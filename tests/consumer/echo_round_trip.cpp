// A program that uses an installed tulip the way an adopter would: one echo
// round trip over loopback through a real event loop. It is built by the
// consumer projects next to it (find_package and pkg-config) against a tulip
// installed into a temporary prefix (scripts/check-install.sh).
//
// Exit status 0 when the bytes came back exactly and the library and header
// versions agree; 1 with a one-line reason otherwise.
#include <tulip/tulip.hpp>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace {

// The server side: sends back every chunk it receives.
class Echo : public tulip::Protocol {
 public:
  void connection_made(tulip::Transport& transport) override { transport_ = &transport; }
  void data_received(std::string_view data) override { transport_->write(data); }

 private:
  tulip::Transport* transport_ = nullptr;
};

// The client side: writes a message, half-closes, collects the echo and
// completes `done` with it when the server closes.
class Client : public tulip::Protocol {
 public:
  Client(std::string message, tulip::Future<std::string> done)
      : message_(std::move(message)), done_(std::move(done)) {}

  void connection_made(tulip::Transport& transport) override {
    transport.write(message_);
    transport.write_eof();
  }
  void data_received(std::string_view data) override { received_.append(data); }
  void connection_lost(std::error_code error) override {
    if (error) {
      done_.set_exception(std::make_exception_ptr(std::system_error(error)));
    } else {
      done_.set_result(received_);
    }
  }

 private:
  std::string message_;
  std::string received_;
  tulip::Future<std::string> done_;
};

}  // namespace

int main() {
  if (std::strcmp(tulip::version(), TULIP_VERSION_STRING) != 0) {
    std::fprintf(stderr, "consumer: library version %s, headers %s\n", tulip::version(),
                 TULIP_VERSION_STRING);
    return 1;
  }
  const std::string message = "tulip consumer round trip";
  try {
    tulip::EventLoop loop;
    auto server = loop.run_until_complete(
        loop.create_server([] { return std::make_shared<Echo>(); }, "127.0.0.1", 0));
    std::uint16_t port = server->sockets().at(0).sockname.port();

    auto done = loop.create_future<std::string>();
    loop.run_until_complete(loop.create_connection(
        [&] { return std::make_shared<Client>(message, done); }, "127.0.0.1", port));
    std::string echoed = loop.run_until_complete(done);
    server->close();
    loop.run_until_complete(server->wait_closed());

    if (echoed != message) {
      std::fprintf(stderr, "consumer: sent '%s', got back '%s'\n", message.c_str(), echoed.c_str());
      return 1;
    }
#if TULIP_HAS_TLS
    // A tulip with TLS brings OpenSSL into the program's link: a default
    // client context (the system's CA store, hostname checks) must work.
    tulip::SslContext tls = tulip::SslContext::create_default_context();
    tls.set_alpn_protocols({"http/1.1"});
    if (!tls.check_hostname() || tls.native_handle() == nullptr) {
      std::fprintf(stderr, "consumer: the default TLS client context is not as documented\n");
      return 1;
    }
#endif
  } catch (const std::exception& error) {
    std::fprintf(stderr, "consumer: %s\n", error.what());
    return 1;
  }
  std::printf("consumer: tulip %s echoed %zu bytes%s\n", tulip::version(), message.size(),
              TULIP_HAS_TLS ? " (built with TLS)" : "");
  return 0;
}
