// UnixSubprocessTransport: a running child, its pipes, and the order in which
// its protocol hears of them (asyncio's BaseSubprocessTransport and
// _UnixSubprocessTransport). Not API.
//
// The child's pipes are ordinary pipe transports (IoBackend::start_pipe_transport)
// whose protocols (SubprocessPipeProtocol) forward to this transport with the
// pipe's number. The child's exit comes from a ChildWatch. From those three
// sources the protocol gets asyncio's order:
//
//   connection_made -> (pipe_data_received | pipe_connection_lost)*
//                   -> process_exited -> connection_lost
//
// connection_made is scheduled once every pipe is connected; anything that
// happens before it runs is queued (bytes copied) and delivered right after
// it, in order. process_exited waits until the child has been reaped AND
// every pipe has been lost, so it always follows the last byte;
// connection_lost follows it on a fresh stack, and then the transport lets go
// of its protocol, its pipes and its registry entry.
//
// Ownership: the loop's registry keeps the transport from start until
// connection_lost has returned. Each pipe's protocol keeps the transport
// alive too (a cycle broken when the pipe's connection_lost has run, since
// the pipe transport then drops its protocol); the transport keeps its pipes
// until it is released.
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/types.h>

#include <any>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "child_watcher.hpp"
#include "io_backend.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/exception_context.hpp"
#include "tulip/subprocess.hpp"

namespace tulip::detail {

class UnixSubprocessTransport final : public SubprocessTransport, public LoopMember {
 public:
  /// `pipes[fd]` says which of the child's streams are pipes to connect.
  UnixSubprocessTransport(EventLoop& loop, std::shared_ptr<SubprocessProtocol> protocol,
                          const bool (&pipes)[3]);
  ~UnixSubprocessTransport() override;

  /// Watches the child `pid` and joins the loop's registry. Throws if the
  /// kernel refuses to watch it; then the child is killed and reaped.
  void watch(pid_t pid);
  /// The pipe transport of `fd` has been made (its connection_made is still
  /// to come). `on_connected` runs once connection_made has run.
  void add_pipe(int fd, std::shared_ptr<Transport> pipe);
  /// Once every pipe is added: schedules connection_made after the pipes'
  /// own, then `on_connected` (which completes subprocess_exec's Future).
  void start(Callback on_connected);
  /// Starting failed after the child was spawned: close everything, kill
  /// the child; its protocol hears nothing.
  void abandon() noexcept;

  // BaseTransport
  void close() override;
  bool is_closing() const noexcept override { return closing_; }
  std::any get_extra_info(std::string_view name) const override;
  EventLoop& get_loop() const noexcept override { return loop_; }

  // SubprocessTransport
  pid_t get_pid() const noexcept override { return pid_; }
  std::optional<int> get_returncode() const noexcept override { return returncode_; }
  Transport* get_pipe_transport(int fd) const noexcept override;
  void send_signal(int signum) override;
  void terminate() override;
  void kill() override;
  void set_protocol(std::shared_ptr<SubprocessProtocol> protocol) override;
  SubprocessProtocol* get_subprocess_protocol() const noexcept override { return protocol_.get(); }

  // LoopMember: the loop closes; the child is killed and reaped.
  void shutdown_with_loop() noexcept override;

  // ---- From the pipes' protocols -----------------------------------------------------
  void pipe_connected(int fd);
  void pipe_data_received(int fd, std::string_view data);
  void pipe_connection_lost(int fd, std::error_code error);
  void pipe_pause_writing();
  void pipe_resume_writing();

 private:
  struct Pipe {
    bool wanted = false;     // the child's stream is a pipe
    bool connected = false;  // its transport's connection_made has run
    bool lost = false;       // its transport's connection_lost has run
    std::shared_ptr<Transport> transport;
  };

  void on_exited(int returncode);
  // Calls `call` now, or after connection_made if that has not run yet.
  void deliver(Callback call);
  // Calls into the protocol, catching what it throws (reported; closes us).
  template <class F>
  void call_protocol(const char* what, F&& call);
  void maybe_connected();
  void try_finish();
  void call_connection_lost();
  void release() noexcept;
  ExceptionContext context(const char* message) const;

  EventLoop& loop_;
  std::shared_ptr<SubprocessProtocol> protocol_;
  pid_t pid_ = -1;
  std::optional<int> returncode_;
  std::unique_ptr<ChildWatch> watch_;
  Pipe pipes_[3];
  std::vector<Callback> pending_;  // what happened before connection_made
  Callback on_connected_;

  bool started_ = false;    // start() was called
  bool connected_ = false;  // connection_made has run (pending_ delivered)
  bool closing_ = false;    // close() or a failed callback
  bool finished_ = false;   // process_exited queued
  bool abandoned_ = false;  // starting failed: the protocol hears nothing
  bool released_ = false;
};

/// The protocol of one of a child's pipes: forwards to the child's transport.
class SubprocessPipeProtocol final : public Protocol {
 public:
  SubprocessPipeProtocol(std::shared_ptr<UnixSubprocessTransport> owner, int fd)
      : owner_(std::move(owner)), fd_(fd) {}

  void data_received(std::string_view data) override { owner_->pipe_data_received(fd_, data); }
  void connection_lost(std::error_code error) override;
  void pause_writing() override { owner_->pipe_pause_writing(); }
  void resume_writing() override { owner_->pipe_resume_writing(); }

 private:
  std::shared_ptr<UnixSubprocessTransport> owner_;
  int fd_;
};

}  // namespace tulip::detail
