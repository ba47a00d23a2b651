// The TLS load generator: the same small C program drives every TLS echo server
// (bench/run-tls.sh). It speaks TLS 1.3 with one cipher suite (default
// TLS_AES_128_GCM_SHA256) and one key-exchange group (default P-256), so that
// every server does the same work; it does not verify the server's
// certificate (that cost is the client's, not the server's).
//
// Modes (one result line of key=value pairs on stdout):
//   pingpong   C connections finish their handshakes, then each sends an S-byte
//              message, waits for the whole echo, verifies every byte, and
//              sends the next one. --warmup seconds, then --duration seconds
//              measured. Reports requests/s, MB/s, p50/p99 round trip.
//   handshake  C connections at a time, each: connect, a full handshake (no
//              session is ever offered), one byte each way, close_notify,
//              close; then the next. Reports handshakes/s.
// With --server-pid, it also reports the server's CPU time over the measured
// window per request (or handshake), and its own CPU share (near 1.0: the
// load generator was the limit).
//
// Single-threaded, level-triggered epoll, non-blocking sockets, TCP_NODELAY.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { kMaxEvents = 256, kChunk = 256 * 1024, kPatternSkew = 251 };

static int port = 8888;
static int server_pid = 0;
static SSL_CTX* context;

_Noreturn static void fail(const char* what) {
  fprintf(stderr, "tls_loadgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

_Noreturn static void fail_tls(const char* what) {
  unsigned long error = ERR_peek_last_error();
  fprintf(stderr, "tls_loadgen: %s: %s\n", what,
          error ? ERR_reason_error_string(error) : "connection closed");
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
  char* cursor = strrchr(text, ')');  // the command name ends at the last ')'
  unsigned long long utime = 0, stime = 0;
  if (!cursor || sscanf(cursor + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                        &stime) != 2) {
    return -1;
  }
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

struct window {
  double wall, own_cpu, server_cpu;
};

static struct window window_now(void) {
  struct window w = {now_seconds(CLOCK_MONOTONIC), now_seconds(CLOCK_PROCESS_CPUTIME_ID),
                     server_cpu_seconds()};
  return w;
}

static void report_window(struct window start, struct window end, long long count,
                          const char* unit) {
  double wall = end.wall - start.wall;
  printf(" seconds=%.4f loadgen_cpu_share=%.3f", wall, (end.own_cpu - start.own_cpu) / wall);
  if (start.server_cpu >= 0 && end.server_cpu >= 0) {
    double cpu = end.server_cpu - start.server_cpu;
    printf(" server_cpu_s=%.3f server_cpu_share=%.3f server_cpu_us_per_%s=%.3f", cpu, cpu / wall,
           unit, count > 0 ? cpu * 1e6 / (double)count : 0.0);
  }
}

// ---- connections -------------------------------------------------------------------

enum phase { kHandshaking, kRunning, kDone };

struct connection {
  int fd;
  SSL* ssl;
  enum phase phase;
  unsigned interest;  // the epoll events armed
  size_t sent;        // bytes of the current message SSL_write accepted
  size_t received;    // bytes of its echo received and verified
  int write_blocked;  // SSL_write is waiting for the socket to take more
  uint64_t sequence;
  uint64_t started_ns;
};

static int epfd;
static struct connection* connections;

static void set_interest(struct connection* c, unsigned events) {
  if (events == c->interest) return;
  struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)(c - connections)};
  if (epoll_ctl(epfd, c->interest ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) != 0) {
    fail("epoll_ctl");
  }
  c->interest = events;
}

static void open_connection(struct connection* c) {
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) fail("socket");
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, (struct sockaddr*)&address, sizeof address) != 0 && errno != EINPROGRESS) {
    fail("connect");
  }
  c->ssl = SSL_new(context);
  if (!c->ssl) fail_tls("SSL_new");
  SSL_set_fd(c->ssl, c->fd);
  SSL_set_connect_state(c->ssl);
  c->phase = kHandshaking;
  c->interest = 0;
  c->sent = c->received = 0;
  set_interest(c, EPOLLOUT);  // the connect's completion
}

static void close_connection(struct connection* c) {
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  SSL_free(c->ssl);
  close(c->fd);
  c->ssl = NULL;
  c->fd = -1;
  c->interest = 0;
}

// Arms what OpenSSL waits for after `result` of a call; fails on an error.
// Returns 1 if the call can be retried later, 0 if it succeeded.
static int wait_for(struct connection* c, int result, const char* what) {
  switch (SSL_get_error(c->ssl, result)) {
    case SSL_ERROR_NONE:
      return 0;
    case SSL_ERROR_WANT_READ:
      set_interest(c, EPOLLIN);
      return 1;
    case SSL_ERROR_WANT_WRITE:
      set_interest(c, EPOLLIN | EPOLLOUT);
      return 1;
    default:
      fail_tls(what);
  }
}

// Returns 1 once the handshake is done.
static int drive_handshake(struct connection* c) {
  ERR_clear_error();
  int result = SSL_do_handshake(c->ssl);
  if (result == 1) {
    c->phase = kRunning;
    set_interest(c, EPOLLIN);
    return 1;
  }
  wait_for(c, result, "handshake");
  return 0;
}

// ---- ping-pong ------------------------------------------------------------------------

struct pingpong {
  size_t size;
  const char* pattern;
  char* scratch;
  int measuring;
  long long completed;
  uint64_t* latencies;
  size_t latency_count, latency_capacity;
};

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

static const char* message_of(const struct pingpong* pp, const struct connection* c) {
  return pp->pattern + (c->sequence * 7 + (uint64_t)c->fd) % kPatternSkew;
}

// Sends what the socket takes; the echo is read meanwhile, so a big message
// never deadlocks against a server that stops reading while its writes wait.
static void send_some(struct pingpong* pp, struct connection* c) {
  c->write_blocked = 0;
  while (c->sent < pp->size) {
    ERR_clear_error();
    int n = SSL_write(c->ssl, message_of(pp, c) + c->sent, (int)(pp->size - c->sent));
    if (n <= 0) {
      int error = SSL_get_error(c->ssl, n);
      if (error != SSL_ERROR_WANT_WRITE && error != SSL_ERROR_WANT_READ) fail_tls("write");
      c->write_blocked = error == SSL_ERROR_WANT_WRITE;
      return;
    }
    c->sent += (size_t)n;
  }
}

// Reads what is there; returns 1 when a round trip completed.
static int receive_some(struct pingpong* pp, struct connection* c) {
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(c->ssl, pp->scratch, kChunk);
    if (n <= 0) {
      int error = SSL_get_error(c->ssl, n);
      if (error == SSL_ERROR_ZERO_RETURN) {
        fprintf(stderr, "tls_loadgen: the server closed a connection\n");
        exit(1);
      }
      if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) fail_tls("read");
      return 0;
    }
    if (c->received + (size_t)n > c->sent) {
      fprintf(stderr, "tls_loadgen: the server echoed bytes never sent\n");
      exit(1);
    }
    if (memcmp(pp->scratch, message_of(pp, c) + c->received, (size_t)n) != 0) {
      fprintf(stderr, "tls_loadgen: the echo differs from what was sent\n");
      exit(1);
    }
    c->received += (size_t)n;
    if (c->received == pp->size) break;
  }
  if (pp->measuring) {
    if (pp->latency_count == pp->latency_capacity) {
      pp->latency_capacity = pp->latency_capacity ? pp->latency_capacity * 2 : 1 << 16;
      pp->latencies = realloc(pp->latencies, pp->latency_capacity * sizeof *pp->latencies);
      if (!pp->latencies) fail("realloc");
    }
    pp->latencies[pp->latency_count++] = now_ns() - c->started_ns;
    ++pp->completed;
  }
  ++c->sequence;
  return 1;
}

static void start_request(struct pingpong* pp, struct connection* c) {
  c->sent = c->received = 0;
  c->started_ns = now_ns();
  send_some(pp, c);
  set_interest(c, EPOLLIN | (c->write_blocked ? EPOLLOUT : 0));
}

static int compare_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

static void run_pingpong(int count, size_t size, double warmup, double duration) {
  struct pingpong pp = {.size = size};
  pp.pattern = make_pattern(size + kPatternSkew);
  pp.scratch = malloc(kChunk);
  connections = calloc((size_t)count, sizeof *connections);
  if (!pp.scratch || !connections) fail("malloc");
  for (int i = 0; i < count; ++i) open_connection(&connections[i]);
  struct epoll_event events[kMaxEvents];
  int handshaking = count;
  while (handshaking > 0) {
    int n = epoll_wait(epfd, events, kMaxEvents, 10000);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("handshakes (no progress for 10 seconds)");
    for (int i = 0; i < n; ++i) {
      struct connection* c = &connections[events[i].data.u64];
      if (c->phase == kHandshaking && drive_handshake(c)) --handshaking;
    }
  }
  struct window start = {0}, end;
  double measure_at = now_seconds(CLOCK_MONOTONIC) + warmup;
  double stop_at = measure_at + duration;
  for (int i = 0; i < count; ++i) start_request(&pp, &connections[i]);
  for (;;) {
    int n = epoll_wait(epfd, events, kMaxEvents, 5000);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("epoll_wait");
    if (n == 0) fail("no echo for 5 seconds");
    for (int i = 0; i < n; ++i) {
      struct connection* c = &connections[events[i].data.u64];
      if (c->sent < pp.size) send_some(&pp, c);
      if (receive_some(&pp, c)) start_request(&pp, c);
      set_interest(c, EPOLLIN | (c->write_blocked ? EPOLLOUT : 0));
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
  double rate = (double)pp.completed / (end.wall - start.wall);
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
  for (int i = 0; i < count; ++i) close_connection(&connections[i]);
}

// ---- handshakes -------------------------------------------------------------------------

// One step of a handshake-mode connection; returns 1 when it has finished
// (handshake, one byte each way, close_notify sent, closed).
static int step_handshake_connection(struct connection* c) {
  if (c->phase == kHandshaking) {
    if (!drive_handshake(c)) return 0;
    c->started_ns = now_ns();
  }
  char byte = 'h';
  if (c->sent == 0) {
    ERR_clear_error();
    int n = SSL_write(c->ssl, &byte, 1);
    if (n <= 0) {
      wait_for(c, n, "write");
      return 0;
    }
    c->sent = 1;
    set_interest(c, EPOLLIN);
  }
  ERR_clear_error();
  int n = SSL_read(c->ssl, &byte, 1);
  if (n <= 0) {
    wait_for(c, n, "read");
    return 0;
  }
  // The server has finished its handshake and echoed: say goodbye properly
  // (close_notify; not waiting for the server's) and close.
  SSL_shutdown(c->ssl);
  close_connection(c);
  return 1;
}

static void run_handshakes(int count, double warmup, double duration) {
  connections = calloc((size_t)count, sizeof *connections);
  if (!connections) fail("malloc");
  for (int i = 0; i < count; ++i) open_connection(&connections[i]);
  struct epoll_event events[kMaxEvents];
  struct window start = {0}, end;
  int measuring = 0;
  long long completed = 0;
  double measure_at = now_seconds(CLOCK_MONOTONIC) + warmup;
  double stop_at = measure_at + duration;
  for (;;) {
    int n = epoll_wait(epfd, events, kMaxEvents, 5000);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("epoll_wait");
    if (n == 0) fail("no handshake progress for 5 seconds");
    for (int i = 0; i < n; ++i) {
      struct connection* c = &connections[events[i].data.u64];
      if (c->ssl == NULL) continue;  // closed earlier in this batch
      if (step_handshake_connection(c)) {
        if (measuring) ++completed;
        open_connection(c);
      }
    }
    double now = now_seconds(CLOCK_MONOTONIC);
    if (!measuring && now >= measure_at) {
      measuring = 1;
      start = window_now();
    } else if (measuring && now >= stop_at) {
      break;
    }
  }
  end = window_now();
  printf("mode=handshake conns=%d handshakes=%lld handshakes_per_s=%.1f", count, completed,
         (double)completed / (end.wall - start.wall));
  report_window(start, end, completed, "handshake");
  printf("\n");
  for (int i = 0; i < count; ++i) {
    if (connections[i].ssl) close_connection(&connections[i]);
  }
}

// ---- main ----------------------------------------------------------------------------------

static const char kUsage[] =
    "usage: tls_loadgen [--port P] [--server-pid PID] --mode pingpong|handshake\n"
    "                   [--conns C] [--size BYTES] [--warmup S] [--duration S]\n"
    "                   [--group P-256|X25519] [--ciphersuites LIST]\n";

int main(int argc, char** argv) {
  const char* mode = "pingpong";
  const char* group = "P-256";
  const char* ciphersuites = "TLS_AES_128_GCM_SHA256";
  int conns = 1;
  size_t size = 1024;
  double warmup = 0.5, duration = 2.0;
  for (int i = 1; i < argc; ++i) {
    const char* name = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : NULL;
    if (!value) {
      fprintf(stderr, "tls_loadgen: option %s needs a value\n%s", name, kUsage);
      return 2;
    }
    ++i;
    if (strcmp(name, "--port") == 0) {
      port = atoi(value);
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
    } else if (strcmp(name, "--group") == 0) {
      group = value;
    } else if (strcmp(name, "--ciphersuites") == 0) {
      ciphersuites = value;
    } else {
      fprintf(stderr, "tls_loadgen: unknown option %s\n%s", name, kUsage);
      return 2;
    }
  }
  if (conns < 1 || size < 1) {
    fprintf(stderr, "tls_loadgen: --conns and --size must be positive\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  context = SSL_CTX_new(TLS_client_method());
  if (!context || SSL_CTX_set_min_proto_version(context, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_ciphersuites(context, ciphersuites) != 1 ||
      SSL_CTX_set1_groups_list(context, group) != 1) {
    fail_tls("the client context (cipher suite or group)");
  }
  SSL_CTX_set_verify(context, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) fail("epoll_create1");
  if (strcmp(mode, "pingpong") == 0) {
    run_pingpong(conns, size, warmup, duration);
  } else if (strcmp(mode, "handshake") == 0) {
    run_handshakes(conns, warmup, duration);
  } else {
    fprintf(stderr, "tls_loadgen: unknown mode '%s'\n%s", mode, kUsage);
    return 2;
  }
  return 0;
}
