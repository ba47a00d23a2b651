// tulip-fuzz-transport: a libFuzzer target for the TCP transport.
//
// Each input is decoded into a short script of network events — the peer
// writes, half-closes, resets or reads; the protocol pauses or resumes reading,
// writes (three ways), half-closes, closes or aborts; the loop runs one
// iteration — and the script is played against a tulip transport and protocol
// accepted by a tulip server on 127.0.0.1, whose other end is a raw
// non-blocking socket driven by this file (the peer). Afterwards the
// connection is brought to its end the orderly way and the invariants are
// checked:
//
//  * data_received (or buffer_updated) delivers exactly the bytes the peer's
//    kernel accepted, in order, with no gap or duplicate; all of them unless
//    the peer reset or the protocol closed first;
//  * eof_received comes at most once, only after the peer half-closed and only
//    once every byte it sent was delivered; no data after it;
//  * the peer receives the bytes write() accepted, in order, all of them and
//    then EOF unless something legitimately cut the connection short;
//  * connection_made once, first; connection_lost exactly once, last, with no
//    error unless the peer reset; pause_writing / resume_writing alternate;
//  * the process has as many open descriptors after the input as before, and
//    the server counts no leftover client.
//
// A broken invariant prints one line and aborts, which libFuzzer reports as a
// crash with the input that caused it. See docs/fuzzing.md.
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "harness.hpp"
#include "transport_script.hpp"
#include "tulip/tulip.hpp"

namespace {

using namespace tulip;
using fuzz::Behaviour;
using fuzz::check;
using fuzz::fail;
using fuzz::Input;
using fuzz::kMaxEvents;
using fuzz::kMaxPeerBytes;
using fuzz::kMaxWriteBytes;
using fuzz::Op;
using fuzz::stream_bytes;

// A connection that has not reached the expected state after this long is a
// hang: a safety net only, no check depends on timing.
constexpr auto kHangLimit = std::chrono::seconds(20);
// While waiting for a condition, this many non-blocking iterations without
// progress come before the loop is allowed to sleep (for a TCP timer such as a
// zero-window probe).
constexpr int kSpinIterations = 64;

// ---- The connection under test ------------------------------------------------------

// Everything one input knows: the model of both byte streams and the
// protocol's record of its callbacks.
struct Session {
  explicit Session(Behaviour b) : behaviour(b) {}

  Behaviour behaviour;
  std::shared_ptr<Transport> transport;  // kept past connection_lost: its methods stay safe

  // Peer -> transport.
  std::string peer_sent;  // what the peer's kernel accepted, in order
  std::string received;   // what the protocol was given
  bool peer_shut = false;
  bool peer_reset = false;
  bool peer_wrote_after_loss = false;

  // Transport -> peer.
  std::string accepted;       // what write() accepted, in order
  std::size_t peer_read = 0;  // how much of it the peer has read (and checked)
  bool peer_eof = false;      // the peer read EOF
  bool peer_saw_reset = false;
  bool write_eof = false;           // write_eof() took effect
  bool aborted = false;             // abort() took effect
  bool closed_by_protocol = false;  // close() took effect before anything else ended it

  // Callbacks.
  int made = 0;
  int lost = 0;
  bool eof = false;
  std::error_code lost_error;
  bool writing_paused = false;
  bool reading_paused = false;
  // Non-zero while a protocol callback or one of the fuzzer's calls into the
  // transport runs: connection_lost must never come from inside either.
  int nesting = 0;

  int peer_fd = -1;
};

// The callbacks, shared by the Protocol and the BufferedProtocol flavours.
template <class Base>
class Probe : public Base {
 public:
  explicit Probe(Session& session) : s_(session) {}

  void connection_made(Transport& transport) override {
    check(s_.made == 0, "connection_made twice");
    check(s_.lost == 0, "connection_made after connection_lost");
    ++s_.made;
    s_.transport = transport.shared();
    if (s_.behaviour.small_limits) transport.set_write_buffer_limits(s_.behaviour.high_water());
    if (s_.behaviour.small_buffers) {
      // A small kernel send buffer makes write() keep bytes in the transport's
      // own buffer, so that on_writable and flow control come into play.
      int fd = transport.get_extra_info<int>("socket").value_or(-1);
      int bytes = 4096;
      check(::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes)) == 0,
            "SO_SNDBUF on the transport's socket");
    }
  }

  bool eof_received() override {
    check(s_.made == 1 && s_.lost == 0, "eof_received outside the connection");
    check(!s_.eof, "eof_received twice");
    check(s_.peer_shut, "eof_received but the peer did not half-close");
    check(s_.received.size() == s_.peer_sent.size(), "eof_received before all data", [&] {
      return std::to_string(s_.received.size()) + " of " + std::to_string(s_.peer_sent.size()) +
             " bytes delivered";
    });
    s_.eof = true;
    return s_.behaviour.keep_open_on_eof;
  }

  void connection_lost(std::error_code error) override {
    check(s_.made == 1, "connection_lost without connection_made");
    check(s_.lost == 0, "connection_lost twice");
    check(s_.nesting == 0, "connection_lost called from inside another call");
    ++s_.lost;
    s_.lost_error = error;
  }

  void pause_writing() override {
    check(s_.made == 1 && s_.lost == 0, "pause_writing outside the connection");
    check(!s_.writing_paused, "pause_writing twice in a row");
    auto [low, high] = s_.transport->get_write_buffer_limits();
    (void)low;
    check(s_.transport->get_write_buffer_size() > high, "pause_writing below the high-water mark");
    s_.writing_paused = true;
  }

  void resume_writing() override {
    check(s_.made == 1 && s_.lost == 0, "resume_writing outside the connection");
    check(s_.writing_paused, "resume_writing without pause_writing");
    auto [low, high] = s_.transport->get_write_buffer_limits();
    (void)high;
    check(s_.transport->get_write_buffer_size() <= low, "resume_writing above the low-water mark");
    s_.writing_paused = false;
  }

 protected:
  void deliver(std::string_view data) {
    ++s_.nesting;
    deliver_nested(data);
    --s_.nesting;
  }

  void deliver_nested(std::string_view data) {
    check(s_.made == 1, "data before connection_made");
    check(s_.lost == 0, "data after connection_lost");
    check(!s_.eof, "data after eof_received");
    check(!data.empty(), "empty data delivered");
    std::size_t at = s_.received.size();
    check(at + data.size() <= s_.peer_sent.size(), "more bytes delivered than the peer sent", [&] {
      return std::to_string(at + data.size()) + " > " + std::to_string(s_.peer_sent.size());
    });
    check(s_.peer_sent.compare(at, data.size(), data) == 0, "delivered bytes differ from sent",
          [&] { return "at offset " + std::to_string(at); });
    s_.received.append(data);
    if (s_.behaviour.echo && !s_.write_eof) write_accounted(s_, std::string(data));
    if (s_.behaviour.pause_on_data) {
      s_.transport->pause_reading();
      s_.reading_paused = true;
    }
    // Closing from inside a callback: connection_lost must still come later,
    // once, on a fresh stack, and nothing more may be delivered.
    if (s_.behaviour.close_on_data && !s_.transport->is_closing()) {
      s_.closed_by_protocol = true;
      s_.transport->close();
    }
    if (s_.behaviour.abort_on_data && s_.lost == 0) {
      s_.aborted = true;
      s_.transport->abort();
    }
  }

 public:
  // Writes through the transport and records what it accepted.
  static void write_accounted(Session& s, std::string data) {
    bool accept = !s.transport->is_closing();
    if (accept) s.accepted.append(data);
    s.transport->write(std::move(data));
  }

 protected:
  Session& s_;
};

class StreamProbe final : public Probe<Protocol> {
 public:
  using Probe::Probe;
  void data_received(std::string_view data) override { deliver(data); }
};

class BufferedProbe final : public Probe<BufferedProtocol> {
 public:
  explicit BufferedProbe(Session& session)
      : Probe(session), buffer_(session.behaviour.buffer_size()) {}

  std::span<std::byte> get_buffer(std::size_t size_hint) override {
    check(size_hint > 0, "get_buffer with a zero size hint");
    // A read that found nothing (or EOF) ends without buffer_updated: a second
    // get_buffer is fine, a buffer_updated without one is not.
    lent_ = true;
    return buffer_;
  }
  void buffer_updated(std::size_t bytes) override {
    check(lent_, "buffer_updated without get_buffer");
    check(bytes > 0 && bytes <= buffer_.size(), "buffer_updated with a bad size",
          [&] { return std::to_string(bytes); });
    lent_ = false;
    deliver(std::string_view(reinterpret_cast<const char*>(buffer_.data()), bytes));
  }

 private:
  std::vector<std::byte> buffer_;
  bool lent_ = false;
};

// ---- The process-wide loop and server ---------------------------------------------------

struct World {
  EventLoop loop;
  std::shared_ptr<Server> server;
  std::shared_ptr<StreamProtocol> next;  // the protocol the next accepted connection gets
  sockaddr_in address{};
};

World* world = nullptr;

void run_once() {
  world->loop.stop();
  world->loop.run_forever();
}

// Lets the loop sleep up to a millisecond, for when nothing is ready at once.
void run_briefly() {
  TimerHandle wake = world->loop.call_later(0.001, [] { world->loop.stop(); });
  world->loop.run_forever();
  wake.cancel();
}

// ---- The peer -----------------------------------------------------------------------------

void peer_write(Session& s, std::size_t size) {
  if (s.peer_fd < 0 || s.peer_shut || s.peer_sent.size() + size > s.behaviour.peer_limit()) return;
  if (s.lost > 0) s.peer_wrote_after_loss = true;
  std::string data = stream_bytes(s.peer_sent.size(), size, 0x5a);
  ssize_t n = ::send(s.peer_fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n > 0) {
    s.peer_sent.append(data, 0, static_cast<std::size_t>(n));
  } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    check(s.lost > 0, "the peer's send failed while the transport was open",
          [&] { return std::to_string(errno); });
    s.peer_saw_reset = true;
  }
}

// Reads up to `limit` bytes (all there is when 0) and checks them against
// what write() accepted.
void peer_read(Session& s, std::size_t limit) {
  if (s.peer_fd < 0 || s.peer_eof) return;
  // Static, not on the stack: the sanitizers would poison 64 KiB on every call.
  static char buffer[65536];
  std::size_t total = 0;
  while (limit == 0 || total < limit) {
    std::size_t want = sizeof(buffer);
    if (limit != 0) want = std::min(want, limit - total);
    ssize_t n = ::recv(s.peer_fd, buffer, want, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      check(s.lost > 0, "the peer's recv failed while the transport was open",
            [&] { return std::to_string(errno); });
      s.peer_saw_reset = true;
      s.peer_eof = true;
      return;
    }
    if (n == 0) {
      check(s.write_eof || s.transport->is_closing(), "the peer read EOF the transport never sent");
      s.peer_eof = true;
      return;
    }
    std::string_view got(buffer, static_cast<std::size_t>(n));
    check(s.peer_read + got.size() <= s.accepted.size(), "the peer got bytes nobody wrote");
    check(s.accepted.compare(s.peer_read, got.size(), got) == 0,
          "the peer got bytes other than those written",
          [&] { return "at offset " + std::to_string(s.peer_read); });
    s.peer_read += got.size();
    total += got.size();
  }
}

void peer_shutdown(Session& s) {
  if (s.peer_fd < 0 || s.peer_shut) return;
  ::shutdown(s.peer_fd, SHUT_WR);
  s.peer_shut = true;
}

void peer_reset(Session& s) {
  if (s.peer_fd < 0) return;
  linger option{1, 0};
  ::setsockopt(s.peer_fd, SOL_SOCKET, SO_LINGER, &option, sizeof(option));
  ::close(s.peer_fd);
  s.peer_fd = -1;
  s.peer_reset = true;
}

// ---- The protocol's actions ----------------------------------------------------------------

void protocol_write(Session& s, std::size_t size, std::uint8_t variant) {
  if (s.accepted.size() + size > kMaxWriteBytes) return;
  std::string data = stream_bytes(s.accepted.size(), size, 0xa5);
  Transport& t = *s.transport;
  if (s.write_eof) {
    // asyncio raises on write() after write_eof(); so must tulip.
    try {
      t.write(std::string_view(data));
    } catch (const RuntimeError&) {
      return;
    }
    fail("write() after write_eof() did not throw");
  }
  bool accept = !t.is_closing();
  if (accept) s.accepted.append(data);
  switch (variant % 3) {
    case 0:
      t.write(std::string_view(data));
      break;
    case 1:
      t.write(std::move(data));
      break;
    default: {
      // Split in three (some pieces possibly empty) for writelines().
      std::string_view all(data);
      std::size_t a = all.size() / 3;
      std::size_t b = (all.size() * 2) / 3;
      t.writelines({all.substr(0, a), all.substr(a, b - a), all.substr(b)});
      break;
    }
  }
}

// Everything but a loop iteration: none of it may run connection_lost.
void apply_call(Session& s, Op op, Input& input) {
  Transport& t = *s.transport;
  switch (op) {
    case Op::kPeerWrite:
      peer_write(s, input.chunk());
      break;
    case Op::kPeerShutdown:
      peer_shutdown(s);
      break;
    case Op::kPeerReset:
      peer_reset(s);
      break;
    case Op::kPeerRead:
      peer_read(s, input.chunk());
      break;
    case Op::kPauseReading:
      t.pause_reading();
      s.reading_paused = true;
      check(!t.is_reading(), "is_reading() after pause_reading()");
      break;
    case Op::kResumeReading:
      t.resume_reading();
      s.reading_paused = false;
      check(t.is_reading() || t.is_closing(), "not reading after resume_reading()");
      break;
    case Op::kWrite: {
      std::size_t size = input.chunk();
      protocol_write(s, size, input.byte());
      break;
    }
    case Op::kWriteEof:
      if (!t.is_closing()) s.write_eof = true;
      t.write_eof();
      break;
    case Op::kClose:
      if (!t.is_closing()) s.closed_by_protocol = true;
      t.close();
      check(t.is_closing(), "is_closing() false after close()");
      break;
    case Op::kAbort:
      if (s.lost == 0 && !s.aborted) {
        // Bytes still buffered are dropped: only a prefix can arrive from now on.
        s.aborted = true;
      }
      t.abort();
      break;
    case Op::kRunOnce:
    case Op::kCount:
      break;
  }
}

void apply(Session& s, Op op, Input& input) {
  if (op == Op::kRunOnce) {
    run_once();
    return;
  }
  ++s.nesting;
  apply_call(s, op, input);
  --s.nesting;
}

// Drives the connection to its end the orderly way: reading resumed, the peer
// half-closed and draining, the transport closed if the protocol kept it open.
void finish(Session& s) {
  auto start = std::chrono::steady_clock::now();
  int idle = 0;
  for (;;) {
    if (s.lost == 0) {
      if (s.reading_paused) {
        s.transport->resume_reading();
        s.reading_paused = false;
      }
      peer_shutdown(s);
      if (s.eof && !s.transport->is_closing()) s.transport->close();
    }
    std::size_t progress = s.received.size() + s.peer_read + s.lost + s.peer_eof;
    peer_read(s, 0);
    if (s.lost > 0 && (s.peer_fd < 0 || s.peer_eof)) return;
    if (idle < kSpinIterations) {
      run_once();
    } else {
      run_briefly();
    }
    if (s.received.size() + s.peer_read + s.lost + s.peer_eof != progress) {
      idle = 0;
      start = std::chrono::steady_clock::now();
    } else if (++idle > kSpinIterations && std::chrono::steady_clock::now() - start > kHangLimit) {
      fail("the connection did not end",
           "lost=" + std::to_string(s.lost) + " peer_eof=" + std::to_string(s.peer_eof) +
               " buffered=" + std::to_string(s.transport->get_write_buffer_size()));
    }
  }
}

int open_fd_count() {
  int count = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  check(dir != nullptr, "cannot list /proc/self/fd");
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // the directory stream itself
}

void run_input(const std::uint8_t* data, std::size_t size) {
  Input input(data, size);
  Session s(Behaviour::decode(input));
  int fds_before = open_fd_count();

  if (s.behaviour.buffered) {
    world->next = std::make_shared<BufferedProbe>(s);
  } else {
    world->next = std::make_shared<StreamProbe>(s);
  }
  s.peer_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  check(s.peer_fd >= 0, "socket() failed");
  // Without TCP_NODELAY, Nagle's algorithm and the delayed ACK of the other side
  // would hold back the peer's small writes for tens of milliseconds.
  int one = 1;
  ::setsockopt(s.peer_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (s.behaviour.small_buffers) {
    // A small receive buffer (set before connect(), so that the advertised
    // window matches from the start) makes the transport's writes wait for the
    // peer to read; a small send buffer makes the peer's writes wait for the
    // transport to read.
    int bytes = 4096;
    ::setsockopt(s.peer_fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
    ::setsockopt(s.peer_fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
  }
  // Loopback connects complete at once against a listening socket, but
  // libFuzzer's timeout alarm (SIGALRM) can interrupt the call: the connection
  // then goes on in the background, so wait for it and read its outcome.
  int status = ::connect(s.peer_fd, reinterpret_cast<const sockaddr*>(&world->address),
                         sizeof(world->address));
  int error = status == 0 ? 0 : errno;
  if (error == EINTR) {
    pollfd writable{s.peer_fd, POLLOUT, 0};
    while (::poll(&writable, 1, -1) < 0 && errno == EINTR) {
    }
    socklen_t length = sizeof(error);
    ::getsockopt(s.peer_fd, SOL_SOCKET, SO_ERROR, &error, &length);
  }
  check(error == 0, "connect() failed", [&] { return std::to_string(error); });
  auto start = std::chrono::steady_clock::now();
  for (int round = 0; s.made == 0; ++round) {
    if (round < kSpinIterations) {
      run_once();
    } else {
      run_briefly();
      check(std::chrono::steady_clock::now() - start < kHangLimit, "connection_made never came");
    }
  }
  check(world->next == nullptr, "the server did not take the protocol");

  for (std::size_t events = 0; events < kMaxEvents && !input.done(); ++events) {
    auto op = static_cast<Op>(input.byte() % static_cast<std::uint8_t>(Op::kCount));
    apply(s, op, input);
  }
  finish(s);
  // A few more iterations: nothing may follow connection_lost.
  for (int i = 0; i < 4; ++i) run_once();

  check(s.lost == 1, "connection_lost did not come exactly once");
  if (s.peer_reset) {
    int code = s.lost_error.value();
    check(!s.lost_error || code == ECONNRESET || code == EPIPE,
          "unexpected error after a peer reset", [&] { return s.lost_error.message(); });
  } else {
    check(!s.lost_error, "connection_lost with an error though the peer never reset",
          [&] { return s.lost_error.message(); });
  }
  // The peer half-closed at the latest in finish(): unless something ended the
  // connection first, the protocol must have seen every byte and then EOF.
  bool ended_early = s.peer_reset || s.aborted || s.closed_by_protocol;
  if (!ended_early) {
    check(s.eof, "eof_received never came although the peer half-closed");
    check(s.received.size() == s.peer_sent.size(), "not every byte the peer sent was delivered");
  }
  // What write() accepted must reach the peer in full, then EOF, unless the
  // connection was cut short. A transport that closes with unread input makes
  // its kernel reset the connection, which may drop what was still in flight.
  bool unread_input = s.received.size() < s.peer_sent.size();
  bool cut_short = s.peer_reset || s.aborted || unread_input || s.peer_wrote_after_loss;
  if (!cut_short) {
    check(s.peer_read == s.accepted.size(), "the peer did not get every byte written",
          [&] { return std::to_string(s.peer_read) + " of " + std::to_string(s.accepted.size()); });
    check(s.peer_eof && !s.peer_saw_reset, "the peer did not see a clean EOF");
  }

  // An abortive close leaves no TIME_WAIT socket behind, so that millions of
  // inputs do not run out of loopback ports.
  if (s.peer_fd >= 0) peer_reset(s);
  check(world->server->connection_count() == 0, "the server still counts the connection");
  s.transport.reset();
  int fds_after = open_fd_count();
  check(fds_after == fds_before, "descriptor leak", [&] {
    return std::to_string(fds_before) + " before, " + std::to_string(fds_after) + " after";
  });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  world = new World;  // lives as long as the process: inputs share one loop and one server
  // A write after close is expected here; its warning would only be noise.
  set_log_sink([](LogLevel, std::string_view) {});
  // The probes never throw, so any report to the exception handler is a bug.
  world->loop.set_exception_handler([](EventLoop&, const ExceptionContext& context) {
    fail("exception handler called", describe(context));
  });
  auto factory = []() -> std::shared_ptr<StreamProtocol> {
    check(world->next != nullptr, "an unexpected connection was accepted");
    return std::move(world->next);
  };
  world->server =
      world->loop.run_until_complete(world->loop.create_server(factory, "127.0.0.1", 0));
  world->address.sin_family = AF_INET;
  world->address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  world->address.sin_port = htons(world->server->sockets().at(0).sockname.port());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run_input(data, size);
  return 0;
}
