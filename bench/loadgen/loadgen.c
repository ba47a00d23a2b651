// The load generator: the same small C program drives every echo server.
//
// Modes (one result line of key=value pairs on stdout):
//   pingpong  C connections, each sends an S-byte message, waits for the whole
//             echo, verifies every byte, and sends the next one. Runs --warmup
//             seconds, then measures for --duration seconds (or, with
//             --requests N, runs exactly N round trips in all and measures them).
//             Reports requests/s, MB/s (S x requests/s, one way), p50/p99
//             round-trip latency.
//   bulk      one connection; --bytes each way (default 1 GiB), sending and
//             receiving at once, as fast as the echo server's flow control
//             allows; every byte verified. Reports GB/s.
//   idle      opens --conns connections, sends one byte on each and reads its
//             echo, then holds them all open and reports the server's RSS growth
//             per connection.
//   udp       --conns UDP senders (each its own connected socket), each keeping
//             --window S-byte datagrams in flight to a UDP echo server: every
//             echo is verified and replaced by a new datagram (recvmmsg and
//             sendmmsg batches). A datagram not echoed within --loss-ms is
//             counted lost and replaced, so loss never stalls the run. Reports
//             datagrams/s (echoes), lost and late ones, p50/p99 round trip;
//             with --requests N, exactly N datagrams are sent.
//   sink      one connection to a server that sends a file and closes (the
//             sendfile benchmark): reads to EOF, verifies every byte against
//             the pattern `--mode make-file` wrote, checks that --bytes came.
//             Reports GB/s; the server's CPU per MiB.
//   make-file writes --bytes of the bulk pattern to --file (for sink).
// With --server-pid, it also reports the server's CPU time (user + sys, from
// /proc/<pid>/stat) over the measured window, per request, and its own CPU share
// over the same window (near 1.0 means the load generator was the limit).
//
// --unix PATH connects to a Unix stream socket instead of TCP (the same modes).
//
// Single-threaded, level-triggered epoll, non-blocking sockets, TCP_NODELAY.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { kMaxEvents = 256, kChunk = 256 * 1024, kPatternSkew = 251, kBulkPeriod = 65521 };

static const char* host = "127.0.0.1";
static int port = 8888;
static const char* unix_path = NULL;  // --unix: a Unix stream socket instead of TCP
static int server_pid = 0;

_Noreturn static void fail(const char* what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

_Noreturn static void fail_message(const char* message) {
  fprintf(stderr, "loadgen: %s\n", message);
  exit(1);
}

static double now_seconds(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// The server's user + system CPU seconds, or -1 without --server-pid.
static double server_cpu_seconds(void) {
  if (server_pid <= 0) return -1;
  char path[64], text[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", server_pid);
  FILE* file = fopen(path, "r");
  if (!file) return -1;
  size_t length = fread(text, 1, sizeof text - 1, file);
  fclose(file);
  text[length] = '\0';
  // Fields after the command name, which ends at the last ')': state is field 3,
  // utime field 14, stime field 15.
  char* cursor = strrchr(text, ')');
  if (!cursor) return -1;
  unsigned long long utime = 0, stime = 0;
  if (sscanf(cursor + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
      2) {
    return -1;
  }
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

// The server's resident set size in KiB (VmRSS), or -1.
static long server_rss_kib(void) {
  if (server_pid <= 0) return -1;
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", server_pid);
  FILE* file = fopen(path, "r");
  if (!file) return -1;
  long kib = -1;
  while (fgets(line, sizeof line, file)) {
    if (strncmp(line, "VmRSS:", 6) == 0) kib = atol(line + 6);
  }
  fclose(file);
  return kib;
}

static void raise_fd_limit(void) {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// A non-blocking Unix stream socket, connected. The connect is blocking: a
// non-blocking one fails with EAGAIN instead of waiting when the server's
// backlog is full, and on a Unix socket it completes as soon as the server's
// kernel queue takes it, so there is nothing to overlap.
static int connect_unix(void) {
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  if (strlen(unix_path) >= sizeof address.sun_path) fail_message("--unix path too long");
  strcpy(address.sun_path, unix_path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  if (connect(fd, (struct sockaddr*)&address, sizeof address) != 0) fail("connect");
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) fail("fcntl");
  return fd;
}

// A non-blocking socket with a connect() under way (or done): TCP, or a Unix
// socket with --unix.
static int start_connect(void) {
  if (unix_path) return connect_unix();
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &address.sin_addr) != 1) fail_message("bad IPv4 --host");
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr*)&address, sizeof address) != 0 && errno != EINPROGRESS) {
    fail("connect");
  }
  return fd;
}

static void watch(int epfd, int fd, int op, unsigned events, uint64_t data) {
  struct epoll_event ev = {.events = events, .data.u64 = data};
  if (epoll_ctl(epfd, op, fd, &ev) != 0) fail("epoll_ctl");
}

// Waits until every socket in `fds` is connected.
static void await_connected(int epfd, const int* fds, int count) {
  for (int i = 0; i < count; ++i) watch(epfd, fds[i], EPOLL_CTL_ADD, EPOLLOUT, (uint64_t)i);
  struct epoll_event events[kMaxEvents];
  int left = count;
  while (left > 0) {
    int n = epoll_wait(epfd, events, kMaxEvents, 10000);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail_message("timed out connecting");
    for (int i = 0; i < n; ++i) {
      int fd = fds[events[i].data.u64];
      int error = 0;
      socklen_t size = sizeof error;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
      if (error != 0) {
        errno = error;
        fail("connect");
      }
      epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
      --left;
    }
  }
}

static char* make_pattern(size_t size) {
  char* pattern = malloc(size);
  if (!pattern) fail("malloc");
  uint32_t state = 2463534242u;
  for (size_t i = 0; i < size; ++i) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    pattern[i] = (char)(state >> 24);
  }
  return pattern;
}

static int compare_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

// ---- ping-pong ------------------------------------------------------------------

struct connection {
  int fd;
  int writing;      // EPOLLOUT armed
  size_t sent;      // bytes of the current message sent
  size_t received;  // bytes of its echo received and verified
  uint64_t sequence;
  uint64_t started_ns;
};

struct pingpong {
  int epfd;
  size_t size;
  const char* pattern;  // size + kPatternSkew bytes
  char* scratch;
  struct connection* connections;
  int count;
  // Round trips: issued (with --requests), completed in the window.
  long long issued, limit, completed;
  int measuring;
  uint64_t* latencies;
  size_t latency_count, latency_capacity;
};

static const char* message_of(const struct pingpong* pp, const struct connection* c) {
  return pp->pattern + (c->sequence * 7 + (uint64_t)c->fd) % kPatternSkew;
}

static void send_some(struct pingpong* pp, struct connection* c) {
  const char* message = message_of(pp, c);
  while (c->sent < pp->size) {
    ssize_t n = send(c->fd, message + c->sent, pp->size - c->sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN) break;
      fail("send");
    }
    c->sent += (size_t)n;
  }
  int want = c->sent < pp->size;
  if (want != c->writing) {
    c->writing = want;
    watch(pp->epfd, c->fd, EPOLL_CTL_MOD, EPOLLIN | (want ? EPOLLOUT : 0),
          (uint64_t)(c - pp->connections));
  }
}

static void start_request(struct pingpong* pp, struct connection* c) {
  if (pp->limit > 0) {
    if (pp->issued >= pp->limit) return;
    ++pp->issued;
  }
  c->sent = c->received = 0;
  c->started_ns = now_ns();
  send_some(pp, c);
}

static void record_latency(struct pingpong* pp, uint64_t ns) {
  if (pp->latency_count == pp->latency_capacity) {
    pp->latency_capacity = pp->latency_capacity ? pp->latency_capacity * 2 : 1 << 16;
    pp->latencies = realloc(pp->latencies, pp->latency_capacity * sizeof *pp->latencies);
    if (!pp->latencies) fail("realloc");
  }
  pp->latencies[pp->latency_count++] = ns;
}

// Returns 1 when a round trip completed.
static int receive_some(struct pingpong* pp, struct connection* c) {
  size_t want = pp->size - c->received;
  if (want > kChunk) want = kChunk;
  ssize_t n = recv(c->fd, pp->scratch, want, 0);
  if (n < 0) {
    if (errno == EAGAIN) return 0;
    fail("recv");
  }
  if (n == 0) fail_message("the server closed a connection");
  if (c->received + (size_t)n > c->sent) fail_message("the server echoed bytes never sent");
  if (memcmp(pp->scratch, message_of(pp, c) + c->received, (size_t)n) != 0) {
    fail_message("the echo differs from what was sent");
  }
  c->received += (size_t)n;
  if (c->received < pp->size) return 0;
  if (pp->measuring) {
    record_latency(pp, now_ns() - c->started_ns);
    ++pp->completed;
  }
  ++c->sequence;
  return 1;
}

struct window {
  double wall, own_cpu, server_cpu;
};

static struct window window_now(void) {
  struct window w = {now_seconds(CLOCK_MONOTONIC), now_seconds(CLOCK_PROCESS_CPUTIME_ID),
                     server_cpu_seconds()};
  return w;
}

static void report_window(struct window start, struct window end, long long requests,
                          const char* unit) {
  double wall = end.wall - start.wall;
  printf(" seconds=%.4f loadgen_cpu_share=%.3f", wall, (end.own_cpu - start.own_cpu) / wall);
  if (start.server_cpu >= 0 && end.server_cpu >= 0) {
    double cpu = end.server_cpu - start.server_cpu;
    printf(" server_cpu_s=%.3f server_cpu_share=%.3f server_cpu_us_per_%s=%.3f", cpu, cpu / wall,
           unit, requests > 0 ? cpu * 1e6 / (double)requests : 0.0);
  }
}

static void run_pingpong(int count, size_t size, double warmup, double duration, long long limit) {
  struct pingpong pp = {.size = size, .count = count, .limit = limit};
  pp.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (pp.epfd < 0) fail("epoll_create1");
  pp.pattern = make_pattern(size + kPatternSkew);
  pp.scratch = malloc(kChunk);
  pp.connections = calloc((size_t)count, sizeof *pp.connections);
  if (!pp.scratch || !pp.connections) fail("malloc");
  int* fds = calloc((size_t)count, sizeof *fds);
  if (!fds) fail("malloc");
  for (int i = 0; i < count; ++i) fds[i] = start_connect();
  await_connected(pp.epfd, fds, count);
  for (int i = 0; i < count; ++i) {
    pp.connections[i].fd = fds[i];
    watch(pp.epfd, fds[i], EPOLL_CTL_ADD, EPOLLIN, (uint64_t)i);
  }
  free(fds);

  // With --requests the whole run is the window; else warm up first.
  struct window start = {0}, end;
  double measure_at = now_seconds(CLOCK_MONOTONIC) + (limit > 0 ? 0 : warmup);
  double stop_at = measure_at + duration;
  if (limit > 0) {
    pp.measuring = 1;
    start = window_now();
  }
  for (int i = 0; i < count; ++i) start_request(&pp, &pp.connections[i]);

  struct epoll_event events[kMaxEvents];
  long long outstanding = limit > 0 ? pp.issued : count;
  for (;;) {
    int n = epoll_wait(pp.epfd, events, kMaxEvents, 5000);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("epoll_wait");
    if (n == 0) fail_message("no echo for 5 seconds");
    for (int i = 0; i < n; ++i) {
      struct connection* c = &pp.connections[events[i].data.u64];
      if (events[i].events & EPOLLOUT) send_some(&pp, c);
      if ((events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && receive_some(&pp, c)) {
        long long before = pp.issued;
        start_request(&pp, c);
        if (limit > 0 && pp.issued == before) --outstanding;
      }
    }
    if (limit > 0) {
      if (outstanding == 0) break;
      continue;
    }
    double now = now_seconds(CLOCK_MONOTONIC);
    if (!pp.measuring && now >= measure_at) {
      pp.measuring = 1;
      start = window_now();
    } else if (pp.measuring && now >= stop_at) {
      break;
    }
  }
  end = window_now();

  double wall = end.wall - start.wall;
  double rate = (double)pp.completed / wall;
  qsort(pp.latencies, pp.latency_count, sizeof *pp.latencies, compare_u64);
  double p50 = 0, p99 = 0;
  if (pp.latency_count > 0) {
    p50 = (double)pp.latencies[(pp.latency_count - 1) / 2] / 1e3;
    p99 = (double)pp.latencies[(size_t)((double)(pp.latency_count - 1) * 0.99)] / 1e3;
  }
  printf(
      "mode=pingpong conns=%d size=%zu requests=%lld req_per_s=%.1f mb_per_s=%.2f p50_us=%.1f "
      "p99_us=%.1f",
      count, size, pp.completed, rate, rate * (double)size / 1e6, p50, p99);
  report_window(start, end, pp.completed, "req");
  printf("\n");
  for (int i = 0; i < count; ++i) close(pp.connections[i].fd);
}

// ---- bulk -----------------------------------------------------------------------

static void run_bulk(unsigned long long total) {
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) fail("epoll_create1");
  // The stream is a kBulkPeriod-periodic pattern, a prime period so that no
  // chunk boundary lines up with it; verified against the same ring.
  char* ring = make_pattern(kBulkPeriod + kChunk);
  for (size_t i = kBulkPeriod; i < kBulkPeriod + kChunk; ++i) ring[i] = ring[i - kBulkPeriod];
  char* scratch = malloc(kChunk);
  if (!scratch) fail("malloc");
  int fd = start_connect();
  await_connected(epfd, &fd, 1);
  watch(epfd, fd, EPOLL_CTL_ADD, EPOLLIN | EPOLLOUT, 0);

  struct window start = window_now();
  unsigned long long sent = 0, received = 0;
  int writing = 1;
  struct epoll_event events[4];
  while (received < total) {
    int n = epoll_wait(epfd, events, 4, 5000);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("epoll_wait");
    if (n == 0) fail_message("no progress for 5 seconds");
    unsigned ready = events[0].events;
    if ((ready & EPOLLOUT) && sent < total) {
      size_t want = total - sent < kChunk ? (size_t)(total - sent) : kChunk;
      ssize_t w = send(fd, ring + sent % kBulkPeriod, want, MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN) fail("send");
      if (w > 0) sent += (unsigned long long)w;
      if (sent == total && writing) {
        writing = 0;
        watch(epfd, fd, EPOLL_CTL_MOD, EPOLLIN, 0);
      }
    }
    if (ready & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
      ssize_t r = recv(fd, scratch, kChunk, 0);
      if (r < 0 && errno != EAGAIN) fail("recv");
      if (r == 0) fail_message("the server closed the connection");
      if (r > 0) {
        if (received + (unsigned long long)r > sent) fail_message("echoed bytes never sent");
        if (memcmp(scratch, ring + received % kBulkPeriod, (size_t)r) != 0) {
          fail_message("the echo differs from what was sent");
        }
        received += (unsigned long long)r;
      }
    }
  }
  struct window end = window_now();
  double wall = end.wall - start.wall;
  printf("mode=bulk bytes=%llu gb_per_s=%.3f", total, (double)total / wall / 1e9);
  // CPU per MiB echoed, so the figure reads like the others.
  report_window(start, end, (long long)(total >> 20), "mib");
  printf("\n");
  close(fd);
}

// ---- idle -------------------------------------------------------------------------

static void run_idle(int count, double hold) {
  raise_fd_limit();
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) fail("epoll_create1");
  int* fds = calloc((size_t)count, sizeof *fds);
  if (!fds) fail("malloc");
  long before = server_rss_kib();
  // In batches, so no server's listen backlog overflows.
  const int batch = 64;
  char byte = 'x', echo;
  for (int first = 0; first < count; first += batch) {
    int n = count - first < batch ? count - first : batch;
    for (int i = 0; i < n; ++i) fds[first + i] = start_connect();
    await_connected(epfd, fds + first, n);
    // One byte each way: the server has accepted the connection and read from it.
    for (int i = 0; i < n; ++i) {
      if (send(fds[first + i], &byte, 1, MSG_NOSIGNAL) != 1) fail("send");
    }
    for (int i = 0; i < n; ++i) {
      int fd = fds[first + i];
      int flags = fcntl(fd, F_GETFL);
      fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
      struct timeval timeout = {.tv_sec = 10};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      if (recv(fd, &echo, 1, 0) != 1 || echo != byte) fail_message("no echo on a new connection");
    }
  }
  struct timespec pause = {.tv_sec = (time_t)hold, .tv_nsec = (long)((hold - (long)hold) * 1e9)};
  nanosleep(&pause, NULL);
  long after = server_rss_kib();
  printf("mode=idle conns=%d rss_before_kib=%ld rss_after_kib=%ld bytes_per_conn=%.0f\n", count,
         before, after, (double)(after - before) * 1024.0 / count);
  for (int i = 0; i < count; ++i) close(fds[i]);
  free(fds);
}

// ---- udp ----------------------------------------------------------------------------
// Every datagram starts with a 16-byte header (sender, window slot, sequence);
// the rest is the pattern from an offset that depends on the sequence.

enum { kUdpHeader = 16, kUdpMaxWindow = 256 };

struct udp_slot {
  uint64_t sequence;
  uint64_t sent_ns;
  int busy;
  char* datagram;  // this slot's bytes (built before each send)
};

struct udp_sender {
  int fd;
  uint32_t id;
  struct udp_slot* slots;
};

struct udp_run {
  int epfd;
  size_t size;
  int window;
  uint64_t loss_ns;
  const char* pattern;  // size + kPatternSkew bytes
  struct udp_sender* senders;
  int count;
  uint64_t next_sequence;
  long long issued, limit, completed, lost, late;
  int measuring;
  uint64_t* latencies;
  size_t latency_count, latency_capacity;
  char* scratch;  // receive buffers: kUdpMaxWindow slots of size bytes + 1
};

static const char* udp_payload(const struct udp_run* run, uint64_t sequence) {
  return run->pattern + (sequence * 7) % kPatternSkew;
}

// Fills `slot` with a new datagram; returns 0 if --requests forbids another.
static int udp_prepare(struct udp_run* run, struct udp_sender* sender, uint32_t index) {
  if (run->limit > 0 && run->issued >= run->limit) return 0;
  ++run->issued;
  struct udp_slot* slot = &sender->slots[index];
  slot->sequence = run->next_sequence++;
  slot->busy = 1;
  slot->sent_ns = now_ns();
  memcpy(slot->datagram, &sender->id, 4);
  memcpy(slot->datagram + 4, &index, 4);
  memcpy(slot->datagram + 8, &slot->sequence, 8);
  memcpy(slot->datagram + kUdpHeader, udp_payload(run, slot->sequence), run->size - kUdpHeader);
  return 1;
}

// Sends the prepared slots `indexes[0..n)` of `sender` in one sendmmsg.
static void udp_send(struct udp_run* run, struct udp_sender* sender, const uint32_t* indexes,
                     int n) {
  struct mmsghdr messages[kUdpMaxWindow];
  struct iovec vectors[kUdpMaxWindow];
  for (int i = 0; i < n; ++i) {
    vectors[i] = (struct iovec){sender->slots[indexes[i]].datagram, run->size};
    messages[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &vectors[i], .msg_iovlen = 1}};
  }
  for (int sent = 0; sent < n;) {
    int k = sendmmsg(sender->fd, messages + sent, (unsigned)(n - sent), 0);
    if (k < 0) {
      if (errno == EINTR) continue;
      // The kernel refused this one (a full queue, an ICMP error): it will
      // count as lost when its time is up.
      ++sent;
      continue;
    }
    sent += k;
  }
}

static void udp_receive(struct udp_run* run, struct udp_sender* sender) {
  struct mmsghdr messages[kUdpMaxWindow];
  struct iovec vectors[kUdpMaxWindow];
  uint32_t refill[kUdpMaxWindow];
  size_t room = run->size + 1;  // one more byte: a longer echo shows as such
  for (int round = 0; round < 4; ++round) {
    int want = run->window;
    for (int i = 0; i < want; ++i) {
      vectors[i] = (struct iovec){run->scratch + (size_t)i * room, room};
      messages[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &vectors[i], .msg_iovlen = 1}};
    }
    int n = recvmmsg(sender->fd, messages, (unsigned)want, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      fail("recvmmsg (is the UDP server running?)");
    }
    int refills = 0;
    uint64_t now = now_ns();
    for (int i = 0; i < n; ++i) {
      const char* echo = run->scratch + (size_t)i * room;
      if (messages[i].msg_len != run->size) fail_message("an echo of the wrong size");
      uint32_t id, index;
      uint64_t sequence;
      memcpy(&id, echo, 4);
      memcpy(&index, echo + 4, 4);
      memcpy(&sequence, echo + 8, 8);
      if (id != sender->id || index >= (uint32_t)run->window) {
        fail_message("an echo that no sender sent");
      }
      if (memcmp(echo + kUdpHeader, udp_payload(run, sequence), run->size - kUdpHeader) != 0) {
        fail_message("the echo differs from what was sent");
      }
      struct udp_slot* slot = &sender->slots[index];
      if (!slot->busy || slot->sequence != sequence) {
        ++run->late;  // already counted lost and replaced
        continue;
      }
      slot->busy = 0;
      if (run->measuring) {
        ++run->completed;
        if (run->latency_count == run->latency_capacity) {
          run->latency_capacity = run->latency_capacity ? run->latency_capacity * 2 : 1 << 16;
          run->latencies = realloc(run->latencies, run->latency_capacity * sizeof *run->latencies);
          if (!run->latencies) fail("realloc");
        }
        run->latencies[run->latency_count++] = now - slot->sent_ns;
      }
      if (udp_prepare(run, sender, index)) refill[refills++] = index;
    }
    if (refills > 0) udp_send(run, sender, refill, refills);
    if (n < want) break;
  }
}

// Datagrams older than the loss bound are counted lost and replaced.
static void udp_expire(struct udp_run* run) {
  uint64_t now = now_ns();
  uint32_t refill[kUdpMaxWindow];
  for (int s = 0; s < run->count; ++s) {
    struct udp_sender* sender = &run->senders[s];
    int refills = 0;
    for (int i = 0; i < run->window; ++i) {
      struct udp_slot* slot = &sender->slots[i];
      if (!slot->busy || now - slot->sent_ns < run->loss_ns) continue;
      slot->busy = 0;
      if (run->measuring) ++run->lost;
      if (udp_prepare(run, sender, (uint32_t)i)) refill[refills++] = (uint32_t)i;
    }
    if (refills > 0) udp_send(run, sender, refill, refills);
  }
}

static int udp_in_flight(const struct udp_run* run) {
  int busy = 0;
  for (int s = 0; s < run->count; ++s) {
    for (int i = 0; i < run->window; ++i) busy += run->senders[s].slots[i].busy;
  }
  return busy;
}

static void run_udp(int count, size_t size, int window, double loss_ms, double warmup,
                    double duration, long long limit) {
  if (size < kUdpHeader || size > 65507) fail_message("--size must be 16 to 65507 for udp");
  if (window < 1 || window > kUdpMaxWindow) fail_message("--window must be 1 to 256");
  struct udp_run run = {.size = size, .window = window, .count = count, .limit = limit};
  run.loss_ns = (uint64_t)(loss_ms * 1e6);
  run.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (run.epfd < 0) fail("epoll_create1");
  run.pattern = make_pattern(size + kPatternSkew);
  run.scratch = malloc((size + 1) * kUdpMaxWindow);
  run.senders = calloc((size_t)count, sizeof *run.senders);
  if (!run.scratch || !run.senders) fail("malloc");
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &address.sin_addr) != 1) fail_message("bad IPv4 --host");
  for (int s = 0; s < count; ++s) {
    struct udp_sender* sender = &run.senders[s];
    sender->id = (uint32_t)s + 1;
    sender->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (sender->fd < 0) fail("socket");
    if (connect(sender->fd, (struct sockaddr*)&address, sizeof address) != 0) fail("connect");
    sender->slots = calloc((size_t)window, sizeof *sender->slots);
    if (!sender->slots) fail("malloc");
    for (int i = 0; i < window; ++i) {
      sender->slots[i].datagram = malloc(size);
      if (!sender->slots[i].datagram) fail("malloc");
    }
    watch(run.epfd, sender->fd, EPOLL_CTL_ADD, EPOLLIN, (uint64_t)s);
  }

  struct window start = {0}, end;
  double measure_at = now_seconds(CLOCK_MONOTONIC) + (limit > 0 ? 0 : warmup);
  double stop_at = measure_at + duration;
  if (limit > 0) {
    run.measuring = 1;
    start = window_now();
  }
  uint32_t all[kUdpMaxWindow];
  for (int s = 0; s < count; ++s) {
    int n = 0;
    for (int i = 0; i < window; ++i) {
      if (udp_prepare(&run, &run.senders[s], (uint32_t)i)) all[n++] = (uint32_t)i;
    }
    if (n > 0) udp_send(&run, &run.senders[s], all, n);
  }

  struct epoll_event events[kMaxEvents];
  uint64_t next_expiry = now_ns() + run.loss_ns / 4;
  for (;;) {
    int n = epoll_wait(run.epfd, events, kMaxEvents, 1);
    if (n < 0 && errno != EINTR) fail("epoll_wait");
    for (int i = 0; i < n; ++i) udp_receive(&run, &run.senders[events[i].data.u64]);
    if (now_ns() >= next_expiry) {
      udp_expire(&run);
      next_expiry = now_ns() + run.loss_ns / 4;
    }
    if (limit > 0) {
      if (run.issued >= limit && udp_in_flight(&run) == 0) break;
      continue;
    }
    double now = now_seconds(CLOCK_MONOTONIC);
    if (!run.measuring && now >= measure_at) {
      run.measuring = 1;
      start = window_now();
    } else if (run.measuring && now >= stop_at) {
      break;
    }
  }
  end = window_now();

  double wall = end.wall - start.wall;
  double rate = (double)run.completed / wall;
  qsort(run.latencies, run.latency_count, sizeof *run.latencies, compare_u64);
  double p50 = 0, p99 = 0;
  if (run.latency_count > 0) {
    p50 = (double)run.latencies[(run.latency_count - 1) / 2] / 1e3;
    p99 = (double)run.latencies[(size_t)((double)(run.latency_count - 1) * 0.99)] / 1e3;
  }
  printf(
      "mode=udp conns=%d size=%zu window=%d datagrams=%lld dgram_per_s=%.1f lost=%lld late=%lld "
      "p50_us=%.1f p99_us=%.1f",
      count, size, window, run.completed, rate, run.lost, run.late, p50, p99);
  report_window(start, end, run.completed, "dgram");
  printf("\n");
  for (int s = 0; s < count; ++s) close(run.senders[s].fd);
}

// ---- sink and make-file (the sendfile benchmark) --------------------------------------

static char* bulk_ring(void) {
  // The bulk mode's stream: a kBulkPeriod-periodic pattern (a prime period, so
  // that no chunk boundary lines up with it), extended by a chunk so that any
  // chunk at any offset is one contiguous comparison.
  char* ring = make_pattern(kBulkPeriod + kChunk);
  for (size_t i = kBulkPeriod; i < kBulkPeriod + kChunk; ++i) ring[i] = ring[i - kBulkPeriod];
  return ring;
}

static void make_file(const char* path, unsigned long long total) {
  if (!path) fail_message("make-file needs --file");
  char* ring = bulk_ring();
  FILE* file = fopen(path, "wb");
  if (!file) fail("fopen");
  for (unsigned long long written = 0; written < total;) {
    size_t want = total - written < kChunk ? (size_t)(total - written) : kChunk;
    if (fwrite(ring + written % kBulkPeriod, 1, want, file) != want) fail("fwrite");
    written += want;
  }
  if (fclose(file) != 0) fail("fclose");
  printf("mode=make-file bytes=%llu\n", total);
}

static void run_sink(unsigned long long total) {
  char* ring = bulk_ring();
  char* scratch = malloc(kChunk);
  if (!scratch) fail("malloc");
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) fail("epoll_create1");
  int fd = start_connect();
  await_connected(epfd, &fd, 1);
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  struct window start = window_now();
  unsigned long long received = 0;
  for (;;) {
    ssize_t n = recv(fd, scratch, kChunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("recv");
    if (n == 0) break;
    if (received + (unsigned long long)n > total) fail_message("more bytes than the file holds");
    if (memcmp(scratch, ring + received % kBulkPeriod, (size_t)n) != 0) {
      fail_message("the bytes differ from the file");
    }
    received += (unsigned long long)n;
  }
  struct window end = window_now();
  if (received != total) fail_message("the connection ended before the whole file came");
  double wall = end.wall - start.wall;
  printf("mode=sink bytes=%llu gb_per_s=%.3f", total, (double)total / wall / 1e9);
  report_window(start, end, (long long)(total >> 20), "mib");
  printf("\n");
  close(fd);
}

// ---- main ---------------------------------------------------------------------------

static const char kUsage[] =
    "usage: loadgen [--host H] [--port P | --unix PATH] [--server-pid PID]\n"
    "               --mode pingpong|bulk|idle|udp|sink|make-file\n"
    "  pingpong: [--conns C] [--size BYTES] [--warmup S] [--duration S] [--requests N]\n"
    "  bulk:     [--bytes BYTES]\n"
    "  idle:     [--conns N] [--hold S]\n"
    "  udp:      [--conns SENDERS] [--size BYTES] [--window N] [--loss-ms MS] [--warmup S]\n"
    "            [--duration S] [--requests N]\n"
    "  sink:     [--bytes BYTES]   make-file: --file PATH [--bytes BYTES]\n";

int main(int argc, char** argv) {
  const char* mode = "pingpong";
  int conns = 1;
  size_t size = 1024;
  double warmup = 0.5, duration = 2.0, hold = 0.5, loss_ms = 200;
  int window = 8;
  const char* file = NULL;
  long long requests = 0;
  unsigned long long bytes = 1ull << 30;
  for (int i = 1; i < argc; ++i) {
    const char* name = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : NULL;
    if (!value) {
      fprintf(stderr, "loadgen: option %s needs a value\n%s", name, kUsage);
      return 2;
    }
    ++i;
    if (strcmp(name, "--host") == 0) {
      host = value;
    } else if (strcmp(name, "--port") == 0) {
      port = atoi(value);
    } else if (strcmp(name, "--unix") == 0) {
      unix_path = value;
    } else if (strcmp(name, "--server-pid") == 0) {
      server_pid = atoi(value);
    } else if (strcmp(name, "--mode") == 0) {
      mode = value;
    } else if (strcmp(name, "--conns") == 0) {
      conns = atoi(value);
    } else if (strcmp(name, "--size") == 0) {
      size = (size_t)atol(value);
    } else if (strcmp(name, "--warmup") == 0) {
      warmup = atof(value);
    } else if (strcmp(name, "--duration") == 0) {
      duration = atof(value);
    } else if (strcmp(name, "--requests") == 0) {
      requests = atoll(value);
    } else if (strcmp(name, "--bytes") == 0) {
      bytes = strtoull(value, NULL, 10);
    } else if (strcmp(name, "--hold") == 0) {
      hold = atof(value);
    } else if (strcmp(name, "--file") == 0) {
      file = value;
    } else if (strcmp(name, "--window") == 0) {
      window = atoi(value);
    } else if (strcmp(name, "--loss-ms") == 0) {
      loss_ms = atof(value);
    } else {
      fprintf(stderr, "loadgen: unknown option %s\n%s", name, kUsage);
      return 2;
    }
  }
  if (conns < 1 || size < 1 || bytes < 1) {
    fprintf(stderr, "loadgen: --conns, --size and --bytes must be positive\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  if (strcmp(mode, "pingpong") == 0) {
    run_pingpong(conns, size, warmup, duration, requests);
  } else if (strcmp(mode, "bulk") == 0) {
    run_bulk(bytes);
  } else if (strcmp(mode, "idle") == 0) {
    run_idle(conns, hold);
  } else if (strcmp(mode, "sink") == 0) {
    run_sink(bytes);
  } else if (strcmp(mode, "make-file") == 0) {
    make_file(file, bytes);
  } else if (strcmp(mode, "udp") == 0) {
    run_udp(conns, size, window, loss_ms, warmup, duration, requests);
  } else {
    fprintf(stderr, "loadgen: unknown mode '%s'\n%s", mode, kUsage);
    return 2;
  }
  return 0;
}
