// tulip's side of the process benchmarks (bench/run-process-peers.sh): child
// processes spawned and reaped, bytes through `cat`, and run_in_executor round
// trips. Each mode prints one line of key=value pairs.
//
//   tulip-bench-process --mode spawn --count N [--ballast MIB]
//       N children of /bin/true, one after the other, each started with
//       subprocess_exec (no pipes: every stream inherited) and waited for:
//       processes per second.
//   tulip-bench-process --mode spawn-raw --count N --ballast MIB --how posix_spawn|fork
//       The spawn primitive alone from a process with MIB mebibytes of touched
//       memory: posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK)) against
//       fork+exec, each child reaped with a blocking waitpid. Microseconds per child.
//   tulip-bench-process --mode cat --bytes B
//       B bytes through `cat` (written to its stdin, read back from its
//       stdout): GB/s, and this process's plus the child's CPU per MiB.
//   tulip-bench-process --mode executor --count N
//       N run_in_executor round trips of a no-op job, one at a time, on the
//       default pool: round trips per second.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "spawn.hpp"
#include "tulip/tulip.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double cpu_seconds(int who) {
  rusage usage{};
  ::getrusage(who, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

// Memory the process has touched, so that fork has page tables to copy.
std::vector<char> ballast(long mebibytes) {
  std::vector<char> memory(static_cast<std::size_t>(mebibytes) << 20);
  for (std::size_t i = 0; i < memory.size(); i += 4096) memory[i] = 1;
  return memory;
}

class Waiter : public tulip::SubprocessProtocol {
 public:
  explicit Waiter(tulip::Future<void> done) : done_(std::move(done)) {}
  void connection_lost(std::error_code) override { done_.set_result(); }

 private:
  tulip::Future<void> done_;
};

int spawn(long count) {
  tulip::EventLoop loop;
  tulip::SubprocessOptions options;
  options.std_in = options.std_out = options.std_err = tulip::Stdio::inherit();
  auto start = Clock::now();
  for (long i = 0; i < count; ++i) {
    tulip::Future<void> done = loop.create_future<void>();
    loop.run_until_complete(loop.subprocess_exec([done] { return std::make_shared<Waiter>(done); },
                                                 {"/bin/true"}, options));
    loop.run_until_complete(done);
  }
  double elapsed = seconds_since(start);
  std::printf("procs_per_s=%.0f us_per_proc=%.1f\n", count / elapsed, elapsed / count * 1e6);
  return 0;
}

int spawn_raw(long count, const std::string& how) {
  tulip::detail::SpawnRequest request;
  request.argv = {"/bin/true"};
  request.close_fds = false;
  auto start = Clock::now();
  for (long i = 0; i < count; ++i) {
    pid_t pid = how == "fork" ? tulip::detail::fork_and_exec_for_comparison(request)
                              : tulip::detail::spawn_process(request);
    int status;
    ::waitpid(pid, &status, 0);
  }
  double elapsed = seconds_since(start);
  std::printf("us_per_proc=%.1f procs_per_s=%.0f\n", elapsed / count * 1e6, count / elapsed);
  return 0;
}

class CatPump : public tulip::SubprocessProtocol {
 public:
  CatPump(std::size_t total, tulip::Future<void> done)
      : total_(total), chunk_(1 << 18, 'x'), done_(std::move(done)) {}

  void connection_made(tulip::SubprocessTransport& transport) override {
    in_ = transport.get_pipe_transport(0);
    pump();
  }
  void pipe_data_received(int, std::string_view data) override { received_ += data.size(); }
  void pause_writing() override { paused_ = true; }
  void resume_writing() override {
    paused_ = false;
    pump();
  }
  void connection_lost(std::error_code) override { done_.set_result(); }
  std::size_t received() const { return received_; }

 private:
  // Writes until the pipe's buffer is over its high mark or everything went.
  void pump() {
    while (!paused_ && sent_ < total_) {
      std::size_t n = std::min(chunk_.size(), total_ - sent_);
      sent_ += n;
      in_->write(std::string_view(chunk_.data(), n));
    }
    if (sent_ == total_) in_->write_eof();
  }

  std::size_t total_;
  std::size_t sent_ = 0;
  std::size_t received_ = 0;
  bool paused_ = false;
  std::string chunk_;
  tulip::Transport* in_ = nullptr;
  tulip::Future<void> done_;
};

int cat(std::size_t bytes) {
  tulip::EventLoop loop;
  tulip::SubprocessOptions options;
  options.std_err = tulip::Stdio::inherit();
  tulip::Future<void> done = loop.create_future<void>();
  std::shared_ptr<CatPump> pump;
  double cpu_before = cpu_seconds(RUSAGE_SELF) + cpu_seconds(RUSAGE_CHILDREN);
  auto start = Clock::now();
  loop.run_until_complete(loop.subprocess_exec(
      [&] { return pump = std::make_shared<CatPump>(bytes, done); }, {"cat"}, options));
  loop.run_until_complete(done);
  double elapsed = seconds_since(start);
  double cpu = cpu_seconds(RUSAGE_SELF) + cpu_seconds(RUSAGE_CHILDREN) - cpu_before;
  if (pump->received() != bytes) {
    std::fprintf(stderr, "cat: %zu bytes came back of %zu\n", pump->received(), bytes);
    return 1;
  }
  std::printf("gb_per_s=%.3f cpu_us_per_mib=%.1f\n", bytes / elapsed / 1e9,
              cpu / (static_cast<double>(bytes) / (1 << 20)) * 1e6);
  return 0;
}

int executor(long count) {
  tulip::EventLoop loop;
  loop.run_until_complete(loop.run_in_executor(nullptr, [] {}));  // the pool's first thread
  auto start = Clock::now();
  for (long i = 0; i < count; ++i) loop.run_until_complete(loop.run_in_executor(nullptr, [] {}));
  double elapsed = seconds_since(start);
  std::printf("round_trips_per_s=%.0f us_per_round_trip=%.2f\n", count / elapsed,
              elapsed / count * 1e6);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode;
  std::string how = "posix_spawn";
  long count = 1000;
  long ballast_mib = 0;
  std::size_t bytes = std::size_t{1} << 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string option = argv[i];
    if (option == "--mode")
      mode = argv[i + 1];
    else if (option == "--count")
      count = std::atol(argv[i + 1]);
    else if (option == "--ballast")
      ballast_mib = std::atol(argv[i + 1]);
    else if (option == "--bytes")
      bytes = std::strtoull(argv[i + 1], nullptr, 10);
    else if (option == "--how")
      how = argv[i + 1];
  }
  std::vector<char> memory = ballast(ballast_mib);
  try {
    if (mode == "spawn") return spawn(count);
    if (mode == "spawn-raw") return spawn_raw(count, how);
    if (mode == "cat") return cat(bytes);
    if (mode == "executor") return executor(count);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "tulip-bench-process: %s\n", error.what());
    return 1;
  }
  std::fprintf(stderr, "usage: %s --mode spawn|spawn-raw|cat|executor [options]\n", argv[0]);
  return 2;
}
