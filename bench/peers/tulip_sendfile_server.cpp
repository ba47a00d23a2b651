// tulip's side of the sendfile benchmark: a server that sends one file to each
// client with loop.sendfile, then closes the connection.
//
// --buffered takes the buffered path instead of the kernel's sendfile(2): the
// backend's test hook makes the kernel's path report itself unavailable for
// each connection, exactly as a file system without splice support would, and
// loop.sendfile falls back to reading the file and writing it through the
// transport with flow control.
//
// Usage: tulip-bench-sendfile-server --file PATH [--host H] [--port P] [--buffered]
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "loop_access.hpp"
#include "selector/epoll_backend.hpp"
#include "tulip/tulip.hpp"

namespace {

class FileSender final : public tulip::Protocol {
 public:
  FileSender(int file_fd, bool buffered) : file_fd_(file_fd), buffered_(buffered) {}

  void connection_made(tulip::Transport& transport) override {
    tulip::EventLoop& loop = transport.get_loop();
    if (buffered_) {
      static_cast<tulip::detail::EpollBackend&>(tulip::detail::LoopAccess::backend(loop))
          .inject_sendfile_failure(EINVAL);
    }
    auto sent = loop.sendfile(transport, file_fd_);
    sent.add_done_callback([transport = transport.shared()](tulip::Future<std::size_t>& done) {
      try {
        done.result();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "tulip-bench-sendfile-server: %s\n", e.what());
      }
      transport->close();
    });
  }

 private:
  int file_fd_;
  bool buffered_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 8888;
  const char* path = nullptr;
  bool buffered = false;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && std::strcmp(argv[i], "--host") == 0) {
      host = argv[++i];
    } else if (i + 1 < argc && std::strcmp(argv[i], "--port") == 0) {
      port = std::atoi(argv[++i]);
    } else if (i + 1 < argc && std::strcmp(argv[i], "--file") == 0) {
      path = argv[++i];
    } else if (std::strcmp(argv[i], "--buffered") == 0) {
      buffered = true;
    } else {
      path = nullptr;
      break;
    }
  }
  if (path == nullptr) {
    std::fprintf(stderr,
                 "usage: tulip-bench-sendfile-server --file PATH [--host H] [--port P] "
                 "[--buffered]\n");
    return 2;
  }
  int file_fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (file_fd < 0) {
    std::perror("tulip-bench-sendfile-server: open");
    return 1;
  }
  // The buffered mode injects a failure into the epoll backend's sendfile(2).
  tulip::EventLoop loop(tulip::EventLoopOptions{tulip::BackendKind::kEpoll});
  try {
    auto server = loop.run_until_complete(loop.create_server(
        [file_fd, buffered] { return std::make_shared<FileSender>(file_fd, buffered); }, host,
        static_cast<std::uint16_t>(port)));
    tulip::Future<void> stop = loop.create_future();
    auto finish = [&stop] {
      if (!stop.done()) stop.set_result();
    };
    loop.add_signal_handler(SIGINT, finish);
    loop.add_signal_handler(SIGTERM, finish);
    loop.run_until_complete(stop);
    server->close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tulip-bench-sendfile-server: %s\n", e.what());
    return 1;
  }
  ::close(file_fd);
  return 0;
}
