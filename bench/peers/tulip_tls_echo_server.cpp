// tulip's TLS echo server for the benchmarks: the plain echo server's shape
// (echo every chunk, pause reading while writes wait) with ssl= on
// create_server. No logging, as the other peers log nothing.
//
// Usage: tulip-bench-tls-echo-server --cert FILE --key FILE [--host H] [--port P] [--backlog N]
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "tulip/tulip.hpp"

namespace {

class Echo : public tulip::Protocol {
 public:
  void connection_made(tulip::Transport& transport) override { transport_ = &transport; }
  void data_received(std::string_view data) override { transport_->write(data); }
  void pause_writing() override { transport_->pause_reading(); }
  void resume_writing() override { transport_->resume_reading(); }

 private:
  tulip::Transport* transport_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  const char* cert = nullptr;
  const char* key = nullptr;
  int port = 8888;
  int backlog = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--host") == 0) {
      host = argv[i + 1];
    } else if (std::strcmp(argv[i], "--port") == 0) {
      port = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--backlog") == 0) {
      backlog = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--cert") == 0) {
      cert = argv[i + 1];
    } else if (std::strcmp(argv[i], "--key") == 0) {
      key = argv[i + 1];
    }
  }
  if (cert == nullptr || key == nullptr) {
    std::fprintf(stderr,
                 "usage: tulip-bench-tls-echo-server --cert FILE --key FILE [--host H] [--port P] "
                 "[--backlog N]\n");
    return 2;
  }
  try {
    tulip::EventLoop loop;
    tulip::ServerOptions options;
    options.backlog = backlog;
    options.ssl = tulip::SslContext(tulip::SslContext::Side::kServer);
    options.ssl->load_cert_chain(cert, key);
    auto server = loop.run_until_complete(loop.create_server(
        [] { return std::make_shared<Echo>(); }, host, static_cast<std::uint16_t>(port), options));
    for (int signum : {SIGINT, SIGTERM}) loop.add_signal_handler(signum, [&] { loop.stop(); });
    loop.run_forever();
    server->close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tulip-bench-tls-echo-server: %s\n", e.what());
    return 1;
  }
  return 0;
}
