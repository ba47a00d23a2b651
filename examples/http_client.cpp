// An HTTP/1.1 client on tulip: several GETs over one kept-alive connection.
// The protocol is in http/http_client_protocol.hpp, the parser in
// http/http_parser.hpp; this file shows how a program uses them.
//
//   http_client [--host H] [--port P] [--timeout S] PATH...
//
// Prints one line per response (status, body size, how the body was framed)
// and, for a single path, nothing else. Exit status 0 when every response
// arrived, 1 with a one-line reason otherwise.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "http/http_client_protocol.hpp"
#include "tulip/tulip.hpp"

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  std::uint16_t port = 80;
  double timeout = 5.0;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    std::string argument = argv[i];
    if (argument.starts_with("--") && i + 1 >= argc) {
      std::fprintf(stderr, "http_client: %s needs a value\n", argument.c_str());
      return 2;
    }
    if (argument == "--host") {
      host = argv[++i];
    } else if (argument == "--port") {
      port = static_cast<std::uint16_t>(std::atoi(argv[++i]));
    } else if (argument == "--timeout") {
      timeout = std::atof(argv[++i]);
    } else {
      paths.push_back(argument);
    }
  }
  if (paths.empty()) paths.push_back("/");

  try {
    tulip::EventLoop loop;
    auto [transport, client] = loop.run_until_complete(loop.create_connection(
        [&] { return std::make_shared<HttpClientProtocol>(loop, host, timeout); }, host, port));
    // Every request goes out now; the responses come back in order on the
    // same connection (keep-alive), each completing its own Future.
    std::vector<tulip::Future<http::Response>> responses;
    for (const std::string& path : paths) responses.push_back(client->get(path));
    for (std::size_t i = 0; i < paths.size(); ++i) {
      http::Response response = loop.run_until_complete(responses[i]);
      std::printf("%s %d %zu bytes%s\n", paths[i].c_str(), response.status, response.body.size(),
                  response.headers.get("Transfer-Encoding") ? " (chunked)" : "");
    }
    transport->close();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "http_client: %s\n", error.what());
    return 1;
  }
  return 0;
}
