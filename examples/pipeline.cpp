// A child process through a protocol: runs a shell command, feeds it stdin,
// streams its stdout (and stderr) as it comes, and prints its exit status.
//
//   tulip-example-pipeline                          # tr a-z A-Z, fed two lines
//   tulip-example-pipeline 'sort | uniq -c' < file  # any command; stdin from ours
//   tulip-example-pipeline --input 'b\na\n' sort     # the input given here
//
// The same in asyncio: loop.subprocess_shell(factory, cmd), a
// SubprocessProtocol with pipe_data_received / process_exited, and the stdin
// pipe's transport from get_pipe_transport(0).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "tulip/tulip.hpp"

class PipelineProtocol : public tulip::SubprocessProtocol {
 public:
  PipelineProtocol(std::string input, tulip::Future<int> exited)
      : input_(std::move(input)), exited_(std::move(exited)) {}

  void connection_made(tulip::SubprocessTransport& transport) override {
    transport_ = &transport;
    // Everything goes in at once; the stdin pipe's transport buffers what the
    // child has not read yet, and write_eof() closes stdin after it.
    tulip::Transport* in = transport.get_pipe_transport(0);
    in->write(input_);
    in->write_eof();
  }

  void pipe_data_received(int fd, std::string_view data) override {
    // Streamed as it arrives: stdout to ours, stderr to ours.
    std::FILE* out = fd == 1 ? stdout : stderr;
    std::fwrite(data.data(), 1, data.size(), out);
    std::fflush(out);
  }

  void process_exited() override {
    // Every pipe has closed by now: all of the child's output was printed.
    status_ = *transport_->get_returncode();
  }

  void connection_lost(std::error_code) override {
    // The transport's last word: the program may end now.
    exited_.set_result(status_);
  }

 private:
  std::string input_;
  tulip::Future<int> exited_;
  tulip::SubprocessTransport* transport_ = nullptr;
  int status_ = -1;
};

// "\n" in --input means a newline, so that a shell can pass lines easily.
std::string unescape(const char* text) {
  std::string result;
  for (const char* p = text; *p != '\0'; ++p) {
    if (p[0] == '\\' && p[1] == 'n') {
      result += '\n';
      ++p;
    } else {
      result += *p;
    }
  }
  return result;
}

std::string read_all_of_stdin() {
  std::string all;
  char buffer[65536];
  for (ssize_t n; (n = ::read(0, buffer, sizeof(buffer))) > 0;) {
    all.append(buffer, static_cast<std::size_t>(n));
  }
  return all;
}

int main(int argc, char** argv) {
  std::string command = "tr a-z A-Z";
  std::string input;
  bool input_given = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--input") == 0 && i + 1 < argc) {
      input = unescape(argv[++i]);
      input_given = true;
    } else if (std::strcmp(argv[i], "--help") == 0) {
      std::printf("usage: %s [--input TEXT] [COMMAND]\n", argv[0]);
      return 0;
    } else {
      command = argv[i];
    }
  }
  if (!input_given) {
    // With no command either: a demonstration. Else our own stdin, unless it
    // is a terminal (then there is nothing to wait for).
    input = argc == 1 || ::isatty(0) ? "hello from tulip\nthrough a pipe\n" : read_all_of_stdin();
  }

  tulip::EventLoop loop;
  tulip::Future<int> exited = loop.create_future<int>();
  try {
    loop.run_until_complete(loop.subprocess_shell(
        [&] { return std::make_shared<PipelineProtocol>(input, exited); }, command));
    int status = loop.run_until_complete(exited);
    std::printf("exit status: %d\n", status);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "pipeline: %s\n", error.what());
    return 1;
  }
  return 0;
}
