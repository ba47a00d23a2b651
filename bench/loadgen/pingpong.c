// The pingpong mode: C connections, each one message of S bytes in flight
// at a time, every echo verified; requests/s and round-trip latency.
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

#include "loadgen.h"

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

void run_pingpong(int count, size_t size, double warmup, double duration, long long limit) {
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
  double p50, p99;
  latency_percentiles(pp.latencies, pp.latency_count, &p50, &p99);
  printf(
      "mode=pingpong conns=%d size=%zu requests=%lld req_per_s=%.1f mb_per_s=%.2f p50_us=%.1f "
      "p99_us=%.1f",
      count, size, pp.completed, rate, rate * (double)size / 1e6, p50, p99);
  report_window(start, end, pp.completed, "req");
  printf("\n");
  for (int i = 0; i < count; ++i) close(pp.connections[i].fd);
}
