// Process, SubprocessStreamProtocol and create_subprocess_* (process.hpp),
// after asyncio's subprocess.py (3.12).
#include "tulip/process.hpp"

#include <signal.h>

#include <utility>

#include "tulip/tasks.hpp"

namespace tulip {
namespace detail {
namespace {

std::exception_ptr pipe_error(std::error_code error) {
  return std::make_exception_ptr(ConnectionError(error, "Connection lost: " + error.message()));
}

}  // namespace

SubprocessStreamProtocol::SubprocessStreamProtocol(EventLoop& loop, std::size_t limit)
    : finished(loop.create_future<void>()),
      limit_(limit),
      // The partner of stdin's StreamWriter needs a reader of its own; nobody reads it.
      stdin_flow_(
          std::make_shared<StreamReaderProtocol>(loop, std::make_shared<StreamReader>(limit))) {}

void SubprocessStreamProtocol::connection_made(SubprocessTransport& transport) {
  transport_ = transport.shared();
  if (Transport* out = transport.get_pipe_transport(1)) {
    std_out = std::make_shared<StreamReader>(limit_);
    std_out->set_transport(out);
    pipe_open_[1] = true;
  }
  if (Transport* err = transport.get_pipe_transport(2)) {
    std_err = std::make_shared<StreamReader>(limit_);
    std_err->set_transport(err);
    pipe_open_[2] = true;
  }
  if (Transport* in = transport.get_pipe_transport(0)) {
    std_in = std::make_shared<StreamWriter>(in->shared(), stdin_flow_, nullptr);
    pipe_open_[0] = true;
  }
}

void SubprocessStreamProtocol::pipe_data_received(int fd, std::string_view data) {
  if (fd == 1 && std_out) std_out->feed_data(data);
  if (fd == 2 && std_err) std_err->feed_data(data);
}

void SubprocessStreamProtocol::pipe_connection_lost(int fd, std::error_code error) {
  if (fd == 0) {
    // Wakes drain() and wait_closed() of stdin's writer, with the error if any.
    stdin_flow_->connection_lost(error);
  } else {
    const std::shared_ptr<StreamReader>& reader = fd == 1 ? std_out : std_err;
    if (reader) {
      reader->set_transport(nullptr);
      if (error) {
        reader->set_exception(pipe_error(error));
      } else {
        reader->feed_eof();
      }
    }
  }
  if (fd >= 0 && fd < 3) pipe_open_[fd] = false;
  maybe_close_transport();
}

void SubprocessStreamProtocol::process_exited() {
  exited_ = true;
  maybe_close_transport();
}

void SubprocessStreamProtocol::maybe_close_transport() {
  if (exited_ && !pipe_open_[0] && !pipe_open_[1] && !pipe_open_[2] && transport_) {
    transport_->close();
  }
}

void SubprocessStreamProtocol::connection_lost(std::error_code error) {
  (void)error;
  // The transport is going: drop the cycle it may have made with us.
  transport_.reset();
  if (!finished.done()) finished.set_result();
}

void SubprocessStreamProtocol::pause_writing() { stdin_flow_->pause_writing(); }

void SubprocessStreamProtocol::resume_writing() { stdin_flow_->resume_writing(); }

}  // namespace detail

// ---- Process ----------------------------------------------------------------------------

Process::Process(std::shared_ptr<SubprocessTransport> transport,
                 std::shared_ptr<detail::SubprocessStreamProtocol> protocol)
    : transport_(std::move(transport)),
      protocol_(std::move(protocol)),
      pid_(transport_->get_pid()) {}

std::optional<int> Process::returncode() const noexcept { return transport_->get_returncode(); }

Task<int> Process::wait() {
  Future<void> finished = protocol_->finished;
  co_await finished;
  // Set by now: the exit was reaped before connection_lost, also when the
  // loop closed under the child (it was killed and reaped then).
  co_return transport_->get_returncode().value_or(-SIGKILL);
}

namespace {

Task<void> feed_stdin(std::shared_ptr<StreamWriter> writer, std::optional<std::string> input) {
  if (!writer) co_return;
  try {
    if (input && !input->empty()) {
      writer->write(std::move(*input));
      co_await writer->drain();
    }
  } catch (const ConnectionError&) {
    // The child stopped reading (EPIPE) or closed stdin: asyncio ignores that too.
  }
  writer->close();
}

Task<std::optional<std::string>> read_all(std::shared_ptr<StreamReader> reader) {
  if (!reader) co_return std::nullopt;
  co_return co_await reader->read(-1);
}

}  // namespace

Task<ProcessOutput> Process::communicate(std::optional<std::string> input) {
  auto [fed, out, err] = co_await gather(feed_stdin(std_in(), std::move(input)),
                                         read_all(std_out()), read_all(std_err()));
  (void)fed;
  co_await wait();
  co_return ProcessOutput{std::move(out), std::move(err)};
}

// ---- create_subprocess_* -----------------------------------------------------------------

Task<std::shared_ptr<Process>> create_subprocess_exec(EventLoop& loop,
                                                      std::vector<std::string> argv,
                                                      ProcessOptions options) {
  std::size_t limit = options.limit;
  // Not written inline in the co_await expression: g++ 12 destroys a lambda
  // temporary with non-trivial captures twice there (see docs/coroutines.md).
  auto factory = [&loop, limit] {
    return std::make_shared<detail::SubprocessStreamProtocol>(loop, limit);
  };
  auto starting = loop.subprocess_exec(std::move(factory), std::move(argv),
                                       static_cast<SubprocessOptions>(std::move(options)));
  auto child = co_await starting;
  co_return std::make_shared<Process>(std::move(child.transport), std::move(child.protocol));
}

Task<std::shared_ptr<Process>> create_subprocess_shell(EventLoop& loop, std::string command,
                                                       ProcessOptions options) {
  // Named, not braced inside the co_await: g++ 12 cannot build an
  // initializer list in a coroutine's await expression.
  std::vector<std::string> argv{"/bin/sh", "-c", std::move(command)};
  co_return co_await create_subprocess_exec(loop, std::move(argv), std::move(options));
}

}  // namespace tulip
