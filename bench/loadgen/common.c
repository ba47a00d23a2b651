// The load generator's shared parts (loadgen.h).
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

const char* host = "127.0.0.1";
int port = 8888;
const char* unix_path = NULL;
int server_pid = 0;

_Noreturn void fail(const char* what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

_Noreturn void fail_message(const char* message) {
  fprintf(stderr, "loadgen: %s\n", message);
  exit(1);
}

// The server's user + system CPU seconds, or -1 without --server-pid.
double server_cpu_seconds(void) {
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
long server_rss_kib(void) {
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

void raise_fd_limit(void) {
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

int start_connect(void) {
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

void watch(int epfd, int fd, int op, unsigned events, uint64_t data) {
  struct epoll_event ev = {.events = events, .data.u64 = data};
  if (epoll_ctl(epfd, op, fd, &ev) != 0) fail("epoll_ctl");
}

// Waits until every socket in `fds` is connected.
void await_connected(int epfd, const int* fds, int count) {
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

char* make_pattern(size_t size) {
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

void latency_percentiles(uint64_t* latencies, size_t count, double* p50_us, double* p99_us) {
  qsort(latencies, count, sizeof *latencies, compare_u64);
  *p50_us = *p99_us = 0;
  if (count > 0) {
    *p50_us = (double)latencies[(count - 1) / 2] / 1e3;
    *p99_us = (double)latencies[(size_t)((double)(count - 1) * 0.99)] / 1e3;
  }
}

char* bulk_ring(void) {
  // The bulk mode's stream: a kBulkPeriod-periodic pattern (a prime period, so
  // that no chunk boundary lines up with it), extended by a chunk so that any
  // chunk at any offset is one contiguous comparison.
  char* ring = make_pattern(kBulkPeriod + kChunk);
  for (size_t i = kBulkPeriod; i < kBulkPeriod + kChunk; ++i) ring[i] = ring[i - kBulkPeriod];
  return ring;
}

struct window window_now(void) {
  struct window w = {now_seconds(CLOCK_MONOTONIC), now_seconds(CLOCK_PROCESS_CPUTIME_ID),
                     server_cpu_seconds()};
  return w;
}

void report_window(struct window start, struct window end, long long requests, const char* unit) {
  double wall = end.wall - start.wall;
  printf(" seconds=%.4f loadgen_cpu_share=%.3f", wall, (end.own_cpu - start.own_cpu) / wall);
  if (start.server_cpu >= 0 && end.server_cpu >= 0) {
    double cpu = end.server_cpu - start.server_cpu;
    printf(" server_cpu_s=%.3f server_cpu_share=%.3f server_cpu_us_per_%s=%.3f", cpu, cpu / wall,
           unit, requests > 0 ? cpu * 1e6 / (double)requests : 0.0);
  }
}
