// A tiny HTTP/1.1 server on tulip: every request gets the same small
// response, connections are kept alive, and malformed requests get 400 and a
// close instead of a crash. The request parser is in http/http_parser.hpp.
//
//   http_server [--host H] [--port P]      (port 0: any free port)
//
// Prints "listening on <host>:<port>" once it accepts; stops on SIGINT/SIGTERM.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "http/http_parser.hpp"
#include "tulip/tulip.hpp"

namespace {

constexpr std::string_view kBody = "Hello from tulip!\n";

class HttpServerProtocol : public tulip::Protocol {
 public:
  void connection_made(tulip::Transport& transport) override { transport_ = &transport; }

  void data_received(std::string_view data) override {
    parser_.feed(data);
    try {
      // A client may send several requests in one packet (pipelining): answer
      // each, in order.
      while (std::optional<http::Request> request = parser_.next()) {
        respond(*request);
        if (!request->keep_alive) {
          transport_->close();  // sends what is buffered, then closes
          return;
        }
      }
    } catch (const http::ParseError& error) {
      std::string body = std::string(error.what()) + "\n";
      transport_->write("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body);
      transport_->close();
    }
  }

  // Backpressure: a client that sends requests but does not read responses
  // makes our buffer grow; stop reading its requests until it catches up.
  void pause_writing() override { transport_->pause_reading(); }
  void resume_writing() override { transport_->resume_reading(); }

  void connection_lost(std::error_code) override { transport_ = nullptr; }

 private:
  void respond(const http::Request& request) {
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                       std::to_string(kBody.size()) + "\r\n";
    if (!request.keep_alive) head += "Connection: close\r\n";
    head += "\r\n";
    // writelines: head and body in one system call, no concatenation.
    if (request.method == "HEAD") {
      transport_->write(head);
    } else {
      transport_->writelines({head, kBody});
    }
  }

  tulip::Transport* transport_ = nullptr;  // valid from connection_made to connection_lost
  http::RequestParser parser_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string name = argv[i];
    if (name == "--host") {
      host = argv[i + 1];
    } else if (name == "--port") {
      port = static_cast<std::uint16_t>(std::atoi(argv[i + 1]));
    } else {
      std::fprintf(stderr, "http_server: unknown option %s\n", name.c_str());
      return 2;
    }
  }
  std::signal(SIGPIPE, SIG_IGN);
  try {
    tulip::EventLoop loop;
    auto server = loop.run_until_complete(
        loop.create_server([] { return std::make_shared<HttpServerProtocol>(); }, host, port));
    std::printf("listening on %s:%u\n", host.c_str(), server->sockets().at(0).sockname.port());
    std::fflush(stdout);
    // Stop on a signal: close the listener and the connections, then return.
    auto stop = [&] {
      server->close();
      server->close_clients();
    };
    loop.add_signal_handler(SIGINT, stop);
    loop.add_signal_handler(SIGTERM, stop);
    try {
      loop.run_until_complete(server->serve_forever());
    } catch (const tulip::CancelledError&) {
      // serve_forever ends this way when the server is closed.
    }
    loop.run_until_complete(server->wait_closed());
  } catch (const std::exception& error) {
    std::fprintf(stderr, "http_server: %s\n", error.what());
    return 1;
  }
  return 0;
}
