// The load generator's shared parts: the target (--host/--port/--unix,
// --server-pid), connecting, the byte patterns every mode verifies against,
// and the measured window each mode reports. Each mode lives in a file of its
// own (pingpong.c, bulk.c, idle.c, udp.c) and main in loadgen.c.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum { kMaxEvents = 256, kChunk = 256 * 1024, kPatternSkew = 251, kBulkPeriod = 65521 };

// The target, from the command line.
extern const char* host;
extern int port;
extern const char* unix_path;  // --unix: a Unix stream socket instead of TCP
extern int server_pid;

// Print the error (with errno's text) and exit(1).
_Noreturn void fail(const char* what);
_Noreturn void fail_message(const char* message);

static inline double now_seconds(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// The server's user + system CPU seconds, or -1 without --server-pid.
double server_cpu_seconds(void);
// The server's resident set size in KiB (VmRSS), or -1.
long server_rss_kib(void);
void raise_fd_limit(void);

// A non-blocking socket with a connect() under way (or done): TCP, or a Unix
// socket with --unix.
int start_connect(void);
// epoll_ctl, or fail.
void watch(int epfd, int fd, int op, unsigned events, uint64_t data);
// Waits until every socket in `fds` is connected.
void await_connected(int epfd, const int* fds, int count);

// `size` pseudo-random bytes, the same in every run.
char* make_pattern(size_t size);
// The bulk stream: a kBulkPeriod-periodic pattern, kBulkPeriod + kChunk bytes.
char* bulk_ring(void);
// Sorts the `count` round trips (ns) and gives their median and 99th
// percentile in microseconds (both 0 without any).
void latency_percentiles(uint64_t* latencies, size_t count, double* p50_us, double* p99_us);

// The clocks at one end of the measured window.
struct window {
  double wall, own_cpu, server_cpu;
};
struct window window_now(void);
// Prints the window's seconds, the load generator's CPU share and, with
// --server-pid, the server's CPU (in all, and per `unit` of `requests`).
void report_window(struct window start, struct window end, long long requests, const char* unit);

// The modes (one result line on stdout each).
void run_pingpong(int count, size_t size, double warmup, double duration, long long limit);
void run_bulk(unsigned long long total);
void run_idle(int count, double hold);
void run_udp(int count, size_t size, int window, double loss_ms, double warmup, double duration,
             long long limit);
void run_sink(unsigned long long total);
void make_file(const char* path, unsigned long long total);
