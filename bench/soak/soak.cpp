// tulip-soak: holds many concurrent TCP connections on one event loop for a set
// time, echoes traffic on every one of them, verifies every byte, and checks
// that nothing grows: resident memory, descriptors, timers. Not a unit test: it
// runs for minutes and reports figures. See docs/soak.md.
//
// The clients (N connections, one loop) live in this process. The echo server
// is, by default, tulip-echo-server --keep-open started as a child process, so
// that this process needs N descriptors rather than 2N and each side's memory
// is measured on its own; --in-process puts an echo server on the same loop
// instead (2N descriptors in one process).
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
#include <memory>
#include <string>
#include <vector>

#include "process_stats.hpp"
#include "tulip/tulip.hpp"

extern char** environ;

namespace {

using namespace tulip;
using namespace tulip::soak;

constexpr double kTickSeconds = 0.01;           // how often messages are sent
constexpr double kDrainLimitSeconds = 30.0;     // for the last echoes and the closes
constexpr std::size_t kMaxReportedErrors = 10;  // the rest are only counted

struct Options {
  int connections = 10000;
  double seconds = 60;
  std::size_t message_size = 128;  // average; sizes vary from half to one and a half times
  double interval = 1.0;           // seconds between messages on one connection
  double sample_interval = 2.0;
  int connect_concurrency = 256;
  bool in_process = false;
  std::string server_path = TULIP_SOAK_ECHO_SERVER;
};

[[noreturn]] void usage(const std::string& message) {
  std::fprintf(stderr,
               "tulip-soak: %s\n"
               "usage: tulip-soak [--connections N] [--seconds S] [--message-size B]\n"
               "                  [--interval S] [--sample-interval S] [--connect-concurrency K]\n"
               "                  [--in-process | --server PATH]\n",
               message.c_str());
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string name = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(name + " needs a value");
      return argv[++i];
    };
    auto number = [&](double minimum) {
      std::string text = value();
      char* end = nullptr;
      double parsed = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !(parsed >= minimum)) {
        usage(name + " must be a number >= " + std::to_string(minimum) + ", not '" + text + "'");
      }
      return parsed;
    };
    if (name == "--connections") {
      o.connections = static_cast<int>(number(1));
    } else if (name == "--seconds") {
      o.seconds = number(1);
    } else if (name == "--message-size") {
      o.message_size = static_cast<std::size_t>(number(2));
    } else if (name == "--interval") {
      o.interval = number(0.01);
    } else if (name == "--sample-interval") {
      o.sample_interval = number(0.1);
    } else if (name == "--connect-concurrency") {
      o.connect_concurrency = static_cast<int>(number(1));
    } else if (name == "--in-process") {
      o.in_process = true;
    } else if (name == "--server") {
      o.server_path = value();
    } else if (name == "--help" || name == "-h") {
      usage("holds N echo connections on one loop for S seconds");
    } else {
      usage("unknown option '" + name + "'");
    }
  }
  return o;
}

// The byte at `offset` of connection `id`'s stream: differs between
// connections and along the stream, so crossed or shifted bytes show.
char stream_byte(std::uint32_t id, std::uint64_t offset) {
  return static_cast<char>((offset * 31 + (offset >> 9) + id * 17) & 0xff);
}

class Soak;

// One client connection: sends a message, verifies its echo, waits for the next tick.
class SoakClient final : public Protocol {
 public:
  SoakClient(Soak& soak, std::uint32_t id) : soak_(soak), id_(id) {}

  void connection_made(Transport& transport) override { transport_ = &transport; }
  void data_received(std::string_view data) override;
  void connection_lost(std::error_code error) override;

  bool alive() const { return transport_ != nullptr; }
  bool busy() const { return received_ < sent_; }
  void send(std::size_t size) {
    std::string data(size, '\0');
    for (std::size_t i = 0; i < size; ++i) data[i] = stream_byte(id_, sent_ + i);
    sent_ += size;
    ++messages_;
    transport_->write(std::move(data));
  }
  void close() {
    if (transport_ != nullptr) transport_->close();
  }
  std::uint64_t messages() const { return messages_; }

 private:
  Soak& soak_;
  std::uint32_t id_;
  Transport* transport_ = nullptr;  // valid from connection_made until connection_lost
  std::uint64_t sent_ = 0;
  std::uint64_t received_ = 0;
  std::uint64_t messages_ = 0;
  bool corrupted_ = false;
};

// The in-process echo server's protocol: echoes everything, with backpressure.
class EchoServer final : public Protocol {
 public:
  void connection_made(Transport& transport) override { transport_ = &transport; }
  void data_received(std::string_view data) override { transport_->write(data); }
  void pause_writing() override { transport_->pause_reading(); }
  void resume_writing() override { transport_->resume_reading(); }
  void connection_lost(std::error_code) override { transport_ = nullptr; }

 private:
  Transport* transport_ = nullptr;
};

struct Sample {
  double at;  // seconds since the steady phase began
  long rss_kib;
  long fds;
  long server_rss_kib;
  long server_fds;
  std::size_t timers;
  std::uint64_t messages;
};

class Soak {
 public:
  Soak(EventLoop& loop, Options options) : loop_(loop), o_(std::move(options)) {}

  int run();

  void error(const std::string& message) {
    if (errors_++ < kMaxReportedErrors)
      std::fprintf(stderr, "tulip-soak: error: %s\n", message.c_str());
  }
  void on_echoed(std::size_t bytes) { verified_bytes_ += bytes; }
  void on_lost(std::error_code cause) {
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

  EventLoop& loop_;
  Options o_;
  std::uint16_t port_ = 0;
  std::shared_ptr<Server> server_;  // --in-process only
  pid_t child_ = -1;
  int child_output_ = -1;
  std::string child_line_;
  std::vector<std::shared_ptr<SoakClient>> clients_;
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
  long base_rss_kib_ = 0, base_fds_ = 0, base_server_rss_kib_ = 0;
  long end_fds_ = 0;
  std::vector<Sample> samples_;
};

void SoakClient::data_received(std::string_view data) {
  if (corrupted_) return;
  if (received_ + data.size() > sent_) {
    corrupted_ = true;
    soak_.error("connection " + std::to_string(id_) + " received more bytes than it sent");
    return;
  }
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (data[i] != stream_byte(id_, received_ + i)) {
      corrupted_ = true;
      soak_.error("connection " + std::to_string(id_) + ": echoed byte " +
                  std::to_string(received_ + i) + " differs from the byte sent");
      return;
    }
  }
  received_ += data.size();
  soak_.on_echoed(data.size());
}

void SoakClient::connection_lost(std::error_code error) {
  transport_ = nullptr;
  soak_.on_lost(error);
}

// ---- The echo server ---------------------------------------------------------------

bool Soak::start_server() {
  if (o_.in_process) {
    ServerOptions options;
    options.backlog = 4096;
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
    auto future = loop_.create_connection(
        [this, id] { return std::make_shared<SoakClient>(*this, id); }, "127.0.0.1", port_);
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
  if (child_ > 0) {
    int status;
    if (::waitpid(child_, &status, WNOHANG) == child_) {
      error("the echo server exited during the run (status " + std::to_string(status) + ")");
      child_ = -1;
    }
  }
  std::printf(
      "%7.1f s  rss %7.1f MiB  fds %6ld  server rss %7.1f MiB  server fds %6ld  "
      "timers %3zu  messages %10llu  errors %llu\n",
      s.at, s.rss_kib / 1024.0, s.fds, s.server_rss_kib / 1024.0, s.server_fds, s.timers,
      static_cast<unsigned long long>(s.messages), static_cast<unsigned long long>(errors_));
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

struct Thirds {
  double first = 0;
  double last = 0;
};

template <class Field>
Thirds thirds(const std::vector<Sample>& samples, Field field) {
  std::size_t third = samples.size() / 3;
  Thirds t;
  for (std::size_t i = 0; i < third; ++i) t.first += static_cast<double>(field(samples[i]));
  for (std::size_t i = samples.size() - third; i < samples.size(); ++i) {
    t.last += static_cast<double>(field(samples[i]));
  }
  t.first /= static_cast<double>(third);
  t.last /= static_cast<double>(third);
  return t;
}

bool Soak::judge_growth() const {
  if (samples_.size() < 6) {
    std::printf("growth: too few samples (%zu) to compare thirds; run longer\n", samples_.size());
    return true;
  }
  bool grew = false;
  // Memory may settle a little (allocator pools warming up): allow 5% plus 1 MiB
  // between the means of the first and the last third. Descriptors must not
  // change at all.
  auto judge = [&](const char* what, Thirds t, double relative, double absolute, const char* unit,
                   double scale) {
    bool bad = t.last > t.first * (1 + relative) + absolute;
    std::printf("  %-18s first third %10.1f %s, last third %10.1f %s  %s\n", what, t.first / scale,
                unit, t.last / scale, unit, bad ? "GREW" : "ok");
    grew = grew || bad;
  };
  std::printf("growth (mean of the first third -> mean of the last third of %zu samples):\n",
              samples_.size());
  judge("client RSS", thirds(samples_, [](const Sample& s) { return s.rss_kib; }), 0.05, 1024,
        "MiB", 1024);
  judge("client fds", thirds(samples_, [](const Sample& s) { return s.fds; }), 0, 0, "", 1);
  // The program's own timers (tick, sample, wake-ups) come and go: 3 to 5.
  judge("loop timers", thirds(samples_, [](const Sample& s) { return s.timers; }), 0, 2, "", 1);
  if (!o_.in_process) {
    judge("server RSS", thirds(samples_, [](const Sample& s) { return s.server_rss_kib; }), 0.05,
          1024, "MiB", 1024);
    judge("server fds", thirds(samples_, [](const Sample& s) { return s.server_fds; }), 0, 0, "",
          1);
  }
  return !grew;
}

void Soak::report() const {
  const Sample& last = samples_.empty() ? Sample{} : samples_.back();
  double n = o_.connections;
  Thirds rss =
      samples_.size() >= 3 ? thirds(samples_, [](const Sample& s) { return s.rss_kib; }) : Thirds{};
  std::printf("connections:          %d (server: %s)\n", o_.connections,
              o_.in_process ? "in this process, on the same loop" : "tulip-echo-server child");
  std::printf("steady phase:         %.1f s, %llu messages, %.1f MiB echoed and verified\n",
              last.at, static_cast<unsigned long long>(last.messages), verified_bytes_ / 1048576.0);
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
  std::printf("fds:                  %ld before, %ld loaded, %ld at the end", base_fds_, last.fds,
              end_fds_);
  if (!o_.in_process) std::printf("; server: %ld loaded", last.server_fds);
  std::printf("\n");
  std::printf("skipped sends:        %llu (a connection still waiting for its echo at its turn)\n",
              static_cast<unsigned long long>(skipped_));
  std::printf("errors:               %llu\n", static_cast<unsigned long long>(errors_));
}

int Soak::run() {
  long limit = raise_fd_limit();
  long needed = static_cast<long>(o_.connections) * (o_.in_process ? 2 : 1) + 64;
  if (limit < needed) {
    std::fprintf(stderr,
                 "tulip-soak: RLIMIT_NOFILE hard limit is %ld, below the %ld descriptors %d "
                 "connections need%s; raise the hard limit (as root: ulimit -Hn %ld) or use "
                 "fewer --connections\n",
                 limit, needed, o_.connections, o_.in_process ? " with --in-process" : "", needed);
    return 2;
  }
  loop_.set_exception_handler(
      [this](EventLoop&, const ExceptionContext& context) { error(describe(context)); });
  base_rss_kib_ = resident_kib();
  base_fds_ = open_fds();
  if (!start_server()) return 1;
  // Let the child finish starting before its baseline is taken.
  run_until([] { return false; }, 0.2);
  base_server_rss_kib_ = child_ > 0 ? resident_kib(child_) : 0;
  std::printf(
      "tulip-soak: %d connections to 127.0.0.1:%u for %.0f s, a message of ~%zu bytes "
      "per connection every %.2f s (fd limit %ld)\n",
      o_.connections, port_, o_.seconds, o_.message_size, o_.interval, limit);

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

  // The end: the last echoes, then every connection closed, then nothing left open.
  if (!run_until(
          [this] {
            return std::none_of(clients_.begin(), clients_.end(),
                                [](auto& c) { return c && c->alive() && c->busy(); });
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
  Options options = parse_options(argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  EventLoop loop;
  Soak soak(loop, options);
  return soak.run();
}
