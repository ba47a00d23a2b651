// tulip-soak: holds many concurrent connections on one event loop for a set
// time, echoes traffic on every one of them, verifies every byte, and checks
// that nothing grows: resident memory, descriptors, timers. Not a unit test: it
// runs for minutes and reports figures. See docs/soak.md.
//
// The clients (N connections, one loop) live in this process. The echo server
// is, by default, tulip-echo-server --keep-open started as a child process, so
// that this process needs N descriptors rather than 2N and each side's memory
// is measured on its own; --in-process puts an echo server on the same loop
// instead (2N descriptors in one process). --tls makes every connection TLS,
// and --churn adds a steady stream of short connections (with TLS, a full
// handshake and close_notify each) beside the long-lived ones.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "churn.hpp"
#include "process_stats.hpp"
#include "soak_options.hpp"
#include "soak_protocols.hpp"
#include "soak_samples.hpp"
#include "soak_tls.hpp"
#include "tulip/tulip.hpp"

extern char** environ;

namespace {

using namespace tulip;
using namespace tulip::soak;

constexpr double kTickSeconds = 0.01;           // how often messages are sent
constexpr double kDrainLimitSeconds = 30.0;     // for the last echoes and the closes
constexpr std::size_t kMaxReportedErrors = 10;  // the rest are only counted

class Soak final : public SoakEvents {
 public:
  Soak(EventLoop& loop, Options options) : loop_(loop), o_(std::move(options)) {}

  int run();

  void error(const std::string& message) override {
    if (errors_++ < kMaxReportedErrors)
      std::fprintf(stderr, "tulip-soak: error: %s\n", message.c_str());
  }
  void on_echoed(std::size_t bytes) override { verified_bytes_ += bytes; }
  void on_lost(std::error_code cause) override {
    --alive_;
    if (!closing_) {
      error("a connection was lost before the end" + describe_error(cause));
    } else if (cause) {
      error("a connection closed with an error" + describe_error(cause));
    }
  }

 private:
  static std::string describe_error(std::error_code cause) {
    return cause ? ": " + cause.message() : "";
  }
  bool start_server();
  void stop_server();
  void forward_server_output();
  void connect_more();
  void tick();
  void take_sample();
  bool run_until(const std::function<bool()>& done, double limit_seconds);
  bool judge_growth() const;
  void report() const;
  void report_slopes() const;

  EventLoop& loop_;
  Options o_;
  std::optional<SoakTls> tls_;  // --tls
  ConnectOptions connect_;      // of every client connection: TLS or not
  std::uint16_t port_ = 0;
  std::shared_ptr<Server> server_;  // --in-process only
  pid_t child_ = -1;
  int child_output_ = -1;
  std::string child_line_;
  std::vector<std::shared_ptr<SoakClient>> clients_;
  std::unique_ptr<Churn> churn_;
  int launched_ = 0;
  int settled_ = 0;  // connection attempts that succeeded or failed
  int alive_ = 0;
  bool closing_ = false;
  bool sending_ = false;
  std::size_t cursor_ = 0;
  double credit_ = 0;
  double last_tick_ = 0;
  std::uint64_t errors_ = 0;
  std::uint64_t verified_bytes_ = 0;
  std::uint64_t skipped_ = 0;  // ticks that found a connection still waiting for its echo
  double steady_start_ = 0;
  long base_rss_kib_ = 0, base_fds_ = 0, base_server_rss_kib_ = 0, base_server_fds_ = 0;
  long end_fds_ = 0, end_server_fds_ = 0;
  std::vector<Sample> samples_;
};

// ---- The echo server ---------------------------------------------------------------

bool Soak::start_server() {
  if (o_.in_process) {
    ServerOptions options;
    options.backlog = 4096;
    if (tls_) options.ssl = tls_->server_context;
    server_ = loop_.run_until_complete(loop_.create_server(
        [] { return std::make_shared<EchoServer>(); }, "127.0.0.1", 0, options));
    port_ = server_->sockets().at(0).sockname.port();
    return true;
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return false;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  std::vector<std::string> args = {o_.server_path, "--port",    "0",   "--keep-open",
                                   "--quiet",      "--backlog", "4096"};
  if (tls_) args.insert(args.end(), tls_->server_arguments.begin(), tls_->server_arguments.end());
  args.insert(args.end(), o_.server_arguments.begin(), o_.server_arguments.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int status =
      ::posix_spawn(&child_, o_.server_path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  child_output_ = pipe_fds[0];
  if (status != 0) {
    std::fprintf(stderr, "tulip-soak: cannot start %s: %s\n", o_.server_path.c_str(),
                 std::strerror(status));
    child_ = -1;
    return false;
  }
  // The server's first line names its port: "Serving on ('127.0.0.1', P)".
  std::string first;
  char c;
  while (::read(child_output_, &c, 1) == 1 && c != '\n') first += c;
  auto at = first.find("', ");
  if (first.find("Serving on") == std::string::npos || at == std::string::npos) {
    std::fprintf(stderr, "tulip-soak: unexpected first line from the server: %s\n", first.c_str());
    return false;
  }
  port_ = static_cast<std::uint16_t>(std::atoi(first.c_str() + at + 3));
  // Anything it says later (with --quiet, only errors) is forwarded and counted.
  ::fcntl(child_output_, F_SETFL, O_NONBLOCK);
  loop_.add_reader(child_output_, [this] { forward_server_output(); });
  return port_ != 0;
}
void Soak::forward_server_output() {
  char buffer[4096];
  ssize_t n = ::read(child_output_, buffer, sizeof(buffer));
  if (n <= 0) {
    if (n == 0 || errno != EAGAIN) loop_.remove_reader(child_output_);
    return;
  }
  child_line_.append(buffer, static_cast<std::size_t>(n));
  for (std::size_t end; (end = child_line_.find('\n')) != std::string::npos;) {
    error("server: " + child_line_.substr(0, end));
    child_line_.erase(0, end + 1);
  }
}

void Soak::stop_server() {
  if (server_) {
    server_->close();
    loop_.run_until_complete(server_->wait_closed());
    return;
  }
  if (child_ < 0) return;
  ::kill(child_, SIGTERM);
  int status = 0;
  pid_t done = 0;
  for (int waited = 0; waited < 1000 && (done = ::waitpid(child_, &status, WNOHANG)) == 0;
       ++waited) {
    ::usleep(10'000);
  }
  if (done == 0) {
    error("the echo server did not exit within 10 s of SIGTERM");
    ::kill(child_, SIGKILL);
    ::waitpid(child_, &status, 0);
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    error("the echo server ended with status " + std::to_string(status));
  }
  loop_.remove_reader(child_output_);
  ::close(child_output_);
  child_ = -1;
}

// ---- Connections and traffic ----------------------------------------------------------

void Soak::connect_more() {
  while (launched_ < o_.connections && launched_ - settled_ < o_.connect_concurrency) {
    auto id = static_cast<std::uint32_t>(launched_++);
    auto future =
        loop_.create_connection([this, id] { return std::make_shared<SoakClient>(*this, id); },
                                "127.0.0.1", port_, connect_);
    future.add_done_callback([this, id](Future<Connection<SoakClient>>& done) {
      ++settled_;
      try {
        clients_[id] = done.result().protocol;
        ++alive_;
      } catch (const std::exception& e) {
        error("connection " + std::to_string(id) + " failed: " + e.what());
      }
      connect_more();
    });
  }
}

// Every tick, the next slice of connections (round robin) sends a message, so
// that each sends once per interval; one still waiting for its echo skips.
// The churn starts its short connections on the same tick.
void Soak::tick() {
  if (!sending_) return;
  // Credit by the time that really passed, so that late ticks do not lower the rate.
  double now = loop_.time();
  if (last_tick_ > 0)
    credit_ += static_cast<double>(clients_.size()) * (now - last_tick_) / o_.interval;
  last_tick_ = now;
  while (credit_ >= 1) {
    credit_ -= 1;
    SoakClient* client = clients_[cursor_].get();
    cursor_ = (cursor_ + 1) % clients_.size();
    if (client == nullptr || !client->alive()) continue;
    if (client->busy()) {
      ++skipped_;
      continue;
    }
    std::uint64_t n = client->messages() + cursor_;
    client->send(o_.message_size / 2 + (n * 7919) % o_.message_size);
  }
  churn_->tick(now);
  loop_.call_later(kTickSeconds, [this] { tick(); });
}

void Soak::take_sample() {
  Sample s{};
  s.at = loop_.time() - steady_start_;
  s.rss_kib = resident_kib();
  s.fds = open_fds();
  s.server_rss_kib = child_ > 0 ? resident_kib(child_) : 0;
  s.server_fds = child_ > 0 ? open_fds(child_) : 0;
  s.timers = loop_.scheduled_timer_count();
  std::uint64_t messages = 0;
  for (auto& client : clients_) {
    if (client) messages += client->messages();
  }
  s.messages = messages;
  s.churned = churn_->completed();
  if (child_ > 0) {
    int status;
    if (::waitpid(child_, &status, WNOHANG) == child_) {
      error("the echo server exited during the run (status " + std::to_string(status) + ")");
      child_ = -1;
    }
  }
  std::printf(
      "%7.1f s  rss %7.1f MiB  fds %6ld  server rss %7.1f MiB  server fds %6ld  "
      "timers %3zu  messages %10llu  churned %8llu  errors %llu\n",
      s.at, s.rss_kib / 1024.0, s.fds, s.server_rss_kib / 1024.0, s.server_fds, s.timers,
      static_cast<unsigned long long>(s.messages), static_cast<unsigned long long>(s.churned),
      static_cast<unsigned long long>(errors_));
  std::fflush(stdout);
  samples_.push_back(s);
}

bool Soak::run_until(const std::function<bool()>& done, double limit_seconds) {
  bool expired = false;
  TimerHandle guard = loop_.call_later(limit_seconds, [&] { expired = true; });
  while (!done() && !expired) {
    TimerHandle wake = loop_.call_later(0.05, [this] { loop_.stop(); });
    loop_.run_forever();
    wake.cancel();
  }
  guard.cancel();
  return done();
}

// ---- Judging and reporting ------------------------------------------------------------------

bool Soak::judge_growth() const {
  if (samples_.size() < 6) {
    std::printf("growth: too few samples (%zu) to compare thirds; run longer\n", samples_.size());
    return true;
  }
  bool grew = false;
  // Memory may settle a little (allocator pools warming up): allow 5% plus 1 MiB
  // between the means of the first and the last third. Descriptors must not
  // change at all, but for the churn's connections in flight at a sample (one
  // descriptor each on each side).
  auto judge = [&](const char* what, Thirds t, double relative, double absolute, const char* unit,
                   double scale) {
    bool bad = t.last > t.first * (1 + relative) + absolute;
    std::printf("  %-18s first third %10.1f %s, last third %10.1f %s  %s\n", what, t.first / scale,
                unit, t.last / scale, unit, bad ? "GREW" : "ok");
    grew = grew || bad;
  };
  double churn_fds =
      o_.churn_per_second > 0 ? o_.churn_concurrency * (o_.in_process ? 2.0 : 1.0) : 0;
  // The program's own timers (tick, sample, wake-ups) come and go: 3 to 5. A
  // churned connection in flight adds its handshake or shutdown timeout, and
  // the cancelled ones stay in the heap until the loop compacts it (once they
  // are half of more than 100 entries).
  double churn_timers = o_.churn_per_second > 0 ? 4.0 * o_.churn_concurrency + 100 : 0;
  std::printf("growth (mean of the first third -> mean of the last third of %zu samples):\n",
              samples_.size());
  judge("client RSS", thirds(samples_, [](const Sample& s) { return s.rss_kib; }), 0.05, 1024,
        "MiB", 1024);
  judge("client fds", thirds(samples_, [](const Sample& s) { return s.fds; }), 0, churn_fds, "", 1);
  judge("loop timers", thirds(samples_, [](const Sample& s) { return s.timers; }), 0,
        2 + churn_timers, "", 1);
  if (!o_.in_process) {
    judge("server RSS", thirds(samples_, [](const Sample& s) { return s.server_rss_kib; }), 0.05,
          1024, "MiB", 1024);
    judge("server fds", thirds(samples_, [](const Sample& s) { return s.server_fds; }), 0,
          churn_fds, "", 1);
  }
  return !grew;
}

// How fast resident memory moved: least-squares slopes over the whole steady
// phase and over its last two thirds (after the allocator has warmed up), in
// bytes per minute, per message and per churned connection.
void Soak::report_slopes() const {
  if (samples_.size() < 6) return;
  const Sample& last = samples_.back();
  double messages_per_second = last.at > 0 ? last.messages / last.at : 0;
  double churned_per_second = last.at > 0 ? last.churned / last.at : 0;
  auto line = [&](const char* what, auto field) {
    for (std::size_t from : {std::size_t{0}, samples_.size() / 3}) {
      double bytes_per_second = slope(samples_, field, from) * 1024;
      std::printf("%-11s %-13s %+10.0f bytes/min", what,
                  from == 0 ? "(whole run):" : "(last 2/3):", bytes_per_second * 60);
      if (messages_per_second > 0)
        std::printf("  %+8.3f bytes/message", bytes_per_second / messages_per_second);
      if (churned_per_second > 0)
        std::printf("  %+8.2f bytes/churned connection", bytes_per_second / churned_per_second);
      std::printf("\n");
    }
  };
  std::printf("RSS slope (least squares over the samples):\n");
  line("  client", [](const Sample& s) { return s.rss_kib; });
  if (!o_.in_process) line("  server", [](const Sample& s) { return s.server_rss_kib; });
}

void Soak::report() const {
  const Sample& last = samples_.empty() ? Sample{} : samples_.back();
  double n = o_.connections;
  Thirds rss =
      samples_.size() >= 3 ? thirds(samples_, [](const Sample& s) { return s.rss_kib; }) : Thirds{};
  std::printf("connections:          %d%s (server: %s)\n", o_.connections, o_.tls ? " TLS" : "",
              o_.in_process ? "in this process, on the same loop" : o_.server_path.c_str());
  std::printf("steady phase:         %.1f s, %llu messages, %.1f MiB echoed and verified\n",
              last.at, static_cast<unsigned long long>(last.messages), verified_bytes_ / 1048576.0);
  if (o_.churn_per_second > 0) {
    std::printf(
        "churn:                %llu short connections completed (%.1f/s asked, %.1f/s done), "
        "%llu failed, %llu not started (%d already in flight)\n",
        static_cast<unsigned long long>(churn_->completed()), o_.churn_per_second,
        last.at > 0 ? last.churned / last.at : 0.0,
        static_cast<unsigned long long>(churn_->failed()),
        static_cast<unsigned long long>(churn_->skipped()), o_.churn_concurrency);
  }
  std::printf(
      "client RSS:           %.1f MiB before connecting, %.1f MiB loaded (last third)"
      " -> %.2f KiB per connection%s\n",
      base_rss_kib_ / 1024.0, rss.last / 1024.0, (rss.last - base_rss_kib_) / n,
      o_.in_process ? " (both ends)" : "");
  if (!o_.in_process) {
    Thirds server = samples_.size() >= 3
                        ? thirds(samples_, [](const Sample& s) { return s.server_rss_kib; })
                        : Thirds{};
    std::printf(
        "server RSS:           %.1f MiB before connections, %.1f MiB loaded"
        " -> %.2f KiB per connection\n",
        base_server_rss_kib_ / 1024.0, server.last / 1024.0,
        (server.last - base_server_rss_kib_) / n);
  }
  report_slopes();
  std::printf("fds:                  %ld before, %ld loaded, %ld at the end", base_fds_, last.fds,
              end_fds_);
  if (!o_.in_process) {
    std::printf("; server: %ld before, %ld loaded, %ld at the end", base_server_fds_,
                last.server_fds, end_server_fds_);
  }
  std::printf("\n");
  std::printf("skipped sends:        %llu (a connection still waiting for its echo at its turn)\n",
              static_cast<unsigned long long>(skipped_));
  std::printf("errors:               %llu\n", static_cast<unsigned long long>(errors_));
}

int Soak::run() {
  long limit = raise_fd_limit();
  long per_end =
      static_cast<long>(o_.connections) + (o_.churn_per_second > 0 ? o_.churn_concurrency : 0);
  long needed = per_end * (o_.in_process ? 2 : 1) + 64;
  if (limit < needed) {
    std::fprintf(stderr,
                 "tulip-soak: RLIMIT_NOFILE hard limit is %ld, below the %ld descriptors %d "
                 "connections need%s; raise the hard limit (as root: ulimit -Hn %ld) or use "
                 "fewer --connections\n",
                 limit, needed, o_.connections, o_.in_process ? " with --in-process" : "", needed);
    return 2;
  }
  if (o_.tls) {
    try {
      tls_ = make_soak_tls();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tulip-soak: %s\n", e.what());
      return 2;
    }
    connect_ = tls_->connect;
  }
  loop_.set_exception_handler(
      [this](EventLoop&, const ExceptionContext& context) { error(describe(context)); });
  base_rss_kib_ = resident_kib();
  base_fds_ = open_fds();
  if (!start_server()) return 1;
  // Let the child finish starting before its baseline is taken.
  run_until([] { return false; }, 0.2);
  base_server_rss_kib_ = child_ > 0 ? resident_kib(child_) : 0;
  base_server_fds_ = child_ > 0 ? open_fds(child_) : 0;
  churn_ = std::make_unique<Churn>(loop_, *this, connect_, port_, o_.churn_per_second,
                                   o_.churn_concurrency, o_.message_size,
                                   static_cast<std::uint32_t>(o_.connections));
  std::printf(
      "tulip-soak: %d %sconnections to 127.0.0.1:%u for %.0f s, a message of ~%zu bytes "
      "per connection every %.2f s, %.1f short connections per second (fd limit %ld)\n",
      o_.connections, o_.tls ? "TLS " : "", port_, o_.seconds, o_.message_size, o_.interval,
      o_.churn_per_second, limit);

  double started = loop_.time();
  clients_.resize(static_cast<std::size_t>(o_.connections));
  connect_more();
  if (!run_until([this] { return settled_ == o_.connections; }, 300)) {
    error("connecting did not finish within 300 s");
  }
  std::printf("connected %d of %d in %.1f s\n", alive_, o_.connections, loop_.time() - started);

  // The steady phase: traffic on every connection, sampled at fixed intervals.
  steady_start_ = loop_.time();
  sending_ = true;
  tick();
  bool ended = false;
  std::function<void()> sample = [&] {
    if (ended) return;
    take_sample();
    loop_.call_later(o_.sample_interval, sample);
  };
  loop_.call_later(o_.sample_interval, sample);
  run_until([&] { return loop_.time() - steady_start_ >= o_.seconds; }, o_.seconds + 1);
  ended = true;
  sending_ = false;
  take_sample();

  // The end: the last echoes and short connections, then every connection
  // closed, then nothing left open on either side.
  if (!run_until(
          [this] {
            return churn_->idle() && std::none_of(clients_.begin(), clients_.end(), [](auto& c) {
                     return c && c->alive() && c->busy();
                   });
          },
          kDrainLimitSeconds)) {
    error("some echoes never came back");
  }
  closing_ = true;
  for (auto& client : clients_) {
    if (client) client->close();
  }
  if (!run_until([this] { return alive_ == 0; }, kDrainLimitSeconds)) {
    error(std::to_string(alive_) + " connections did not close");
  }
  if (child_ > 0) {
    // The server closes its side of each connection a moment after the client.
    run_until([this] { return open_fds(child_) == base_server_fds_; }, kDrainLimitSeconds);
    end_server_fds_ = open_fds(child_);
    if (end_server_fds_ != base_server_fds_) {
      error("server descriptors: " + std::to_string(base_server_fds_) + " before the run, " +
            std::to_string(end_server_fds_) + " after every connection closed");
    }
  }
  stop_server();
  // Every connection, the server and its pipe are gone: back to the baseline.
  end_fds_ = open_fds();
  if (end_fds_ != base_fds_) {
    error("descriptors: " + std::to_string(base_fds_) + " before the run, " +
          std::to_string(end_fds_) + " after every connection and the server closed");
  }

  bool steady = judge_growth();
  report();
  bool ok = errors_ == 0 && steady;
  std::printf("result:               %s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse_options(argc, argv, TULIP_SOAK_ECHO_SERVER);
  std::signal(SIGPIPE, SIG_IGN);
  EventLoop loop;
  Soak soak(loop, options);
  return soak.run();
}
