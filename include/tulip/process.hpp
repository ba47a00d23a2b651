// Process: a child process for coroutines (asyncio.subprocess: Process,
// create_subprocess_exec, create_subprocess_shell).
//
//   tulip::ProcessOptions options;
//   options.std_out = tulip::Stdio::pipe();
//   auto process = co_await tulip::create_subprocess_exec(loop, {"ls", "-l"}, options);
//   std::string listing = co_await process->std_out()->read();
//   int status = co_await process->wait();
//
//   auto [out, err] = co_await process->communicate("input for the child");
//
// It sits on subprocess_exec as asyncio's does on loop.subprocess_exec: a
// SubprocessStreamProtocol feeds a StreamReader per output pipe and gives
// stdin a StreamWriter (streams.hpp), whose drain() follows the stdin pipe's
// flow control. Each stream is there only if ProcessOptions made it a pipe
// (the default, as asyncio's, is inherited: set std_in / std_out / std_err).
//
// wait() completes once the child has exited and every pipe has closed, as
// asyncio's (3.12 on): its output has all been delivered to the readers by
// then. communicate(input) writes `input` to stdin and closes it, reads
// stdout and stderr to their ends, all at once (so a child that fills its
// output pipe before reading all its input cannot deadlock), then waits.
//
// Names: asyncio's proc.stdin/stdout/stderr are std_in() / std_out() /
// std_err() here (stdin, stdout and stderr are C macros). Differences: the
// loop is passed explicitly, as for open_connection; communicate() returns
// ProcessOutput, whose fields are nullopt for streams that are not pipes.
//
// Ownership: create_subprocess_* give a shared_ptr<Process>; member
// coroutines (wait, communicate) use `this`: keep the Process alive while
// awaiting them. The loop keeps the child's transport until the child is
// done; a Process dropped early does not kill the child (asyncio's neither);
// closing the loop does.
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "tulip/event_loop.hpp"
#include "tulip/export.hpp"
#include "tulip/future.hpp"
#include "tulip/streams.hpp"
#include "tulip/subprocess.hpp"
#include "tulip/task.hpp"

namespace tulip {

/// How create_subprocess_exec / create_subprocess_shell start the child: as
/// SubprocessOptions, but every stream inherited unless set (asyncio's
/// create_subprocess_* defaults), and the readers' limit.
struct ProcessOptions : SubprocessOptions {
  ProcessOptions() {
    std_in = Stdio::inherit();
    std_out = Stdio::inherit();
    std_err = Stdio::inherit();
  }
  /// The StreamReaders' limit (asyncio's limit=).
  std::size_t limit = kDefaultStreamLimit;
};

/// What communicate() read: nullopt for a stream that is not a pipe.
struct ProcessOutput {
  std::optional<std::string> out;  ///< Everything the child wrote to stdout.
  std::optional<std::string> err;  ///< Everything the child wrote to stderr.
};

namespace detail {

/// Connects a child's pipes to stream readers and a writer
/// (asyncio.subprocess.SubprocessStreamProtocol).
class TULIP_API SubprocessStreamProtocol final
    : public SubprocessProtocol,
      public std::enable_shared_from_this<SubprocessStreamProtocol> {
 public:
  SubprocessStreamProtocol(EventLoop& loop, std::size_t limit);

  void connection_made(SubprocessTransport& transport) override;
  void pipe_data_received(int fd, std::string_view data) override;
  void pipe_connection_lost(int fd, std::error_code error) override;
  void process_exited() override;
  void connection_lost(std::error_code error) override;
  void pause_writing() override;
  void resume_writing() override;

  /// The streams made in connection_made (null where there is no pipe).
  std::shared_ptr<StreamWriter> std_in;
  std::shared_ptr<StreamReader> std_out;
  std::shared_ptr<StreamReader> std_err;
  /// Done once connection_lost has run: the child has exited, its pipes are closed.
  Future<void> finished;

 private:
  void maybe_close_transport();

  std::size_t limit_;
  std::shared_ptr<SubprocessTransport> transport_;
  // stdin's flow control and drain(): a StreamWriter's partner, fed by the
  // stdin pipe's pause/resume and loss (asyncio's FlowControlMixin).
  std::shared_ptr<StreamReaderProtocol> stdin_flow_;
  bool pipe_open_[3] = {false, false, false};
  bool exited_ = false;
};

}  // namespace detail

/// A running child with streams (asyncio.subprocess.Process).
class TULIP_API Process {
 public:
  /// Made by create_subprocess_exec / create_subprocess_shell.
  Process(std::shared_ptr<SubprocessTransport> transport,
          std::shared_ptr<detail::SubprocessStreamProtocol> protocol);

  /// The child's process id.
  pid_t pid() const noexcept { return pid_; }
  /// The exit status (-N if signal N killed it); nullopt while it runs.
  std::optional<int> returncode() const noexcept;

  /// The child's stdin, if it is a pipe; else null.
  const std::shared_ptr<StreamWriter>& std_in() const noexcept { return protocol_->std_in; }
  /// The child's stdout, if it is a pipe; else null.
  const std::shared_ptr<StreamReader>& std_out() const noexcept { return protocol_->std_out; }
  /// The child's stderr, if it is a pipe; else null.
  const std::shared_ptr<StreamReader>& std_err() const noexcept { return protocol_->std_err; }

  /// Waits until the child has exited and its pipes have closed; its return code.
  Task<int> wait();
  /// Feeds `input` (if any) to stdin and closes it, reads stdout and stderr
  /// to their ends, then waits for the child (see the file comment). A child
  /// that stops reading stdin early is not an error.
  Task<ProcessOutput> communicate(std::optional<std::string> input = std::nullopt);

  /// SubprocessTransport::send_signal.
  void send_signal(int signum) { transport_->send_signal(signum); }
  /// SIGTERM.
  void terminate() { transport_->terminate(); }
  /// SIGKILL.
  void kill() { transport_->kill(); }

 private:
  std::shared_ptr<SubprocessTransport> transport_;
  std::shared_ptr<detail::SubprocessStreamProtocol> protocol_;
  pid_t pid_;
};

/// Starts argv[0] with arguments argv[1...] (asyncio's create_subprocess_exec).
/// Fails as loop.subprocess_exec does (OSError for a program that cannot start).
TULIP_API Task<std::shared_ptr<Process>> create_subprocess_exec(EventLoop& loop,
                                                                std::vector<std::string> argv,
                                                                ProcessOptions options = {});

/// Runs `command` with /bin/sh -c (asyncio's create_subprocess_shell).
TULIP_API Task<std::shared_ptr<Process>> create_subprocess_shell(EventLoop& loop,
                                                                 std::string command,
                                                                 ProcessOptions options = {});

}  // namespace tulip
