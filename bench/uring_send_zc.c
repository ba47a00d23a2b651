// Where IORING_OP_SEND_ZC starts to pay: the CPU a bulk TCP stream costs per
// byte when each send request is an IORING_OP_SEND against IORING_OP_SEND_ZC,
// for send sizes 1 KiB .. 256 KiB, over loopback (bench/README.md, "io_uring").
//
// The sender does what tulip's io_uring stream transport does: one send request
// in flight per socket, the next submitted once the first completion of the
// previous one arrived; a ring set up as the backend's (SINGLE_ISSUER |
// DEFER_TASKRUN), one io_uring_submit_and_wait per request. A zero-copy
// request's buffer stays untouched until its notification (IORING_CQE_F_NOTIF)
// arrives, so the zero-copy sender cycles through a pool of buffers and only
// waits for a notification when every buffer is still held. Each request asks
// for usage reporting (IORING_SEND_ZC_REPORT_USAGE, 6.2+), and the run counts
// the notifications that say the kernel copied the bytes after all.
//
// A reader thread on the other core drains the connection with recv() into a
// 1 MiB buffer. For each case the program takes the CPU time of the sender's
// thread and of the reader's (CLOCK_THREAD_CPUTIME_ID: system and user time;
// on loopback the receiving side's TCP work mostly runs in the sender's
// thread, in the softirq its send raised) over a fixed number of bytes, on a
// fresh connection. Cases run interleaved (every size, both modes, then the
// next repetition), and the table shows medians.
//
// Usage: bench-uring-send-zc [--reps N] [--mib M] [--sizes 1,2,4,...]
//   --reps N   repetitions of every case (default 5)
//   --mib M    MiB sent per case (default 128)
//   --sizes L  send sizes in KiB, comma-separated (default 1,2,4,8,16,32,64,128,256)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// liburing 2.3's header predates these (kernel 6.2's usage reporting).
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

enum { kMaxSizes = 16, kMaxReps = 99, kPool = 64, kReadChunk = 1 << 20 };
enum mode { kSend, kSendZc, kModes };
static const char* const kModeNames[kModes] = {"send", "send_zc"};

struct sample {
  double sender_ns;  // sender thread CPU
  double reader_ns;  // reader thread CPU
  double wall_ns;
  unsigned long long notifications, copied;
};

_Noreturn static void die(const char* what, int error) {
  fprintf(stderr, "bench-uring-send-zc: %s: %s\n", what, strerror(error));
  exit(1);
}

static double thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void pin_to(int cpu) {
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// ---- The reader ------------------------------------------------------------------

struct reader {
  int fd;
  unsigned long long expected;
  double cpu_ns;
  int failed;
};

static void* read_all(void* argument) {
  struct reader* r = argument;
  pin_to(1);
  char* buffer = malloc(kReadChunk);
  if (!buffer) die("malloc", ENOMEM);
  double start = thread_cpu_ns();
  unsigned long long got = 0;
  while (got < r->expected) {
    ssize_t n = recv(r->fd, buffer, kReadChunk, 0);
    if (n <= 0) {
      r->failed = 1;
      break;
    }
    got += (unsigned long long)n;
  }
  r->cpu_ns = thread_cpu_ns() - start;
  free(buffer);
  return NULL;
}

// ---- Connections -----------------------------------------------------------------

static void connected_pair(int* sender, int* receiver) {
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) die("socket", errno);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t length = sizeof address;
  if (bind(listener, (struct sockaddr*)&address, sizeof address) != 0) die("bind", errno);
  if (listen(listener, 1) != 0) die("listen", errno);
  if (getsockname(listener, (struct sockaddr*)&address, &length) != 0) die("getsockname", errno);
  *sender = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (*sender < 0) die("socket", errno);
  if (connect(*sender, (struct sockaddr*)&address, sizeof address) != 0) die("connect", errno);
  *receiver = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
  if (*receiver < 0) die("accept", errno);
  close(listener);
  // As tulip's transports: no Nagle delay.
  int one = 1;
  setsockopt(*sender, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// ---- The sender ------------------------------------------------------------------

static struct io_uring ring;
static unsigned zc_flags = IORING_SEND_ZC_REPORT_USAGE;

// user_data: the pool slot of a zero-copy request, or this for a plain send.
enum { kPlainTag = kPool };

static void submit_send(enum mode mode, int fd, const char* data, size_t size, unsigned tag) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (!sqe) die("io_uring_get_sqe", EBUSY);
  if (mode == kSendZc) {
    io_uring_prep_send_zc(sqe, fd, data, size, MSG_NOSIGNAL, zc_flags);
  } else {
    io_uring_prep_send(sqe, fd, data, size, MSG_NOSIGNAL);
  }
  io_uring_sqe_set_data64(sqe, tag);
}

// Sends `total` bytes in requests of `size`, one in flight at a time.
static void send_stream(enum mode mode, int fd, size_t size, unsigned long long total,
                        char* const* pool, struct sample* out) {
  int held[kPool] = {0};  // the kernel still holds this buffer (no notification yet)
  unsigned next = 0, holding = 0;
  unsigned long long sent = 0;
  int in_flight = 0;
  size_t offset = 0;  // into the current request's buffer, after a short send
  unsigned current = 0;
  while (sent < total || in_flight || holding) {
    if (!in_flight && sent < total) {
      if (offset == 0) {
        // A buffer the kernel no longer holds.
        if (mode == kSendZc) {
          while (held[next]) {
            struct io_uring_cqe* cqe;
            int error = io_uring_submit_and_wait(&ring, 1);
            if (error < 0 && error != -EINTR) die("io_uring_submit_and_wait", -error);
            unsigned head, seen = 0;
            io_uring_for_each_cqe(&ring, head, cqe) {
              ++seen;
              if (cqe->flags & IORING_CQE_F_NOTIF) {
                held[cqe->user_data] = 0;
                --holding;
                ++out->notifications;
                if (cqe->res & IORING_NOTIF_USAGE_ZC_COPIED) ++out->copied;
              }
            }
            io_uring_cq_advance(&ring, seen);
          }
          current = next;
          next = (next + 1) % kPool;
        } else {
          current = 0;
        }
      }
      size_t length = size - offset;
      if (total - sent < length) length = (size_t)(total - sent);
      submit_send(mode, fd, pool[current] + offset, length, mode == kSendZc ? current : kPlainTag);
      in_flight = 1;
    }
    struct io_uring_cqe* cqe;
    int error = io_uring_submit_and_wait(&ring, 1);
    if (error < 0 && error != -EINTR) die("io_uring_submit_and_wait", -error);
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      if (cqe->flags & IORING_CQE_F_NOTIF) {
        held[cqe->user_data] = 0;
        --holding;
        ++out->notifications;
        if (cqe->res & IORING_NOTIF_USAGE_ZC_COPIED) ++out->copied;
        continue;
      }
      in_flight = 0;
      if (cqe->res < 0) die(kModeNames[mode], -cqe->res);
      if (cqe->flags & IORING_CQE_F_MORE) {
        held[cqe->user_data] = 1;
        ++holding;
      }
      sent += (unsigned long long)cqe->res;
      offset += (size_t)cqe->res;
      if (offset >= size || sent >= total) offset = 0;
    }
    io_uring_cq_advance(&ring, seen);
  }
}

static struct sample run_case(enum mode mode, size_t size, unsigned long long total,
                              char* const* pool) {
  struct sample s = {0};
  int sender, receiver;
  connected_pair(&sender, &receiver);
  struct reader r = {.fd = receiver, .expected = total};
  pthread_t thread;
  if (pthread_create(&thread, NULL, read_all, &r) != 0) die("pthread_create", errno);
  double wall = wall_ns();
  double cpu = thread_cpu_ns();
  send_stream(mode, sender, size, total, pool, &s);
  s.sender_ns = thread_cpu_ns() - cpu;
  pthread_join(thread, NULL);
  s.wall_ns = wall_ns() - wall;
  s.reader_ns = r.cpu_ns;
  if (r.failed) die("the reader ended early", EPIPE);
  close(sender);
  close(receiver);
  return s;
}

// ---- Setup and the table ------------------------------------------------------------

static int compare_doubles(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static double median(double* values, int count) {
  qsort(values, (size_t)count, sizeof *values, compare_doubles);
  return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

// A zero-copy send of one byte on a fresh loopback connection: -EINVAL if the
// kernel does not know IORING_SEND_ZC_REPORT_USAGE (before 6.2), which is
// then left out.
static void probe_usage_reporting(char* const* pool) {
  int sender, receiver;
  connected_pair(&sender, &receiver);
  submit_send(kSendZc, sender, pool[0], 1, 0);
  int pending = 1;
  while (pending) {
    struct io_uring_cqe* cqe;
    int error = io_uring_submit_and_wait(&ring, 1);
    if (error < 0 && error != -EINTR) die("io_uring_submit_and_wait", -error);
    if (io_uring_peek_cqe(&ring, &cqe) != 0) continue;
    if (!(cqe->flags & IORING_CQE_F_NOTIF)) {
      if (cqe->res == -EINVAL && zc_flags != 0) {
        zc_flags = 0;
        fprintf(stderr, "# this kernel cannot report zero-copy usage: copies are not counted\n");
      } else if (cqe->res < 0) {
        die("send_zc", -cqe->res);
      }
    }
    pending = (cqe->flags & IORING_CQE_F_MORE) != 0;
    io_uring_cqe_seen(&ring, cqe);
  }
  close(sender);
  close(receiver);
}

static int parse_sizes(const char* list, size_t* sizes) {
  int count = 0;
  char* copy = strdup(list);
  for (char* item = strtok(copy, ","); item && count < kMaxSizes; item = strtok(NULL, ",")) {
    long kib = strtol(item, NULL, 10);
    if (kib <= 0 || kib > 65536) {
      fprintf(stderr, "bench-uring-send-zc: bad size '%s' (KiB, 1..65536)\n", item);
      exit(2);
    }
    sizes[count++] = (size_t)kib * 1024;
  }
  free(copy);
  return count;
}

int main(int argc, char** argv) {
  int reps = 5;
  unsigned long long mib = 128;
  size_t sizes[kMaxSizes];
  int size_count = parse_sizes("1,2,4,8,16,32,64,128,256", sizes);
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && strcmp(argv[i], "--reps") == 0) {
      reps = atoi(argv[++i]);
    } else if (i + 1 < argc && strcmp(argv[i], "--mib") == 0) {
      mib = strtoull(argv[++i], NULL, 10);
    } else if (i + 1 < argc && strcmp(argv[i], "--sizes") == 0) {
      size_count = parse_sizes(argv[++i], sizes);
    } else {
      fprintf(stderr, "usage: bench-uring-send-zc [--reps N] [--mib M] [--sizes 1,2,4,...]\n");
      return 2;
    }
  }
  if (reps < 1 || reps > kMaxReps || mib < 1 || size_count < 1) {
    fprintf(stderr, "bench-uring-send-zc: --reps 1..%d, --mib >= 1, at least one size\n", kMaxReps);
    return 2;
  }
  pin_to(0);
  struct io_uring_params params = {0};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int error = io_uring_queue_init_params(2 * kPool, &ring, &params);
  if (error) die("io_uring_queue_init_params", -error);

  size_t largest = 0;
  for (int i = 0; i < size_count; ++i) largest = sizes[i] > largest ? sizes[i] : largest;
  char* pool[kPool];
  for (int i = 0; i < kPool; ++i) {
    pool[i] = malloc(largest);
    if (!pool[i]) die("malloc", ENOMEM);
    memset(pool[i], 'a' + i % 26, largest);  // touched: no page faults inside a case
  }
  probe_usage_reporting(pool);

  unsigned long long total = mib << 20;
  static struct sample samples[kMaxSizes][kModes][kMaxReps];
  for (int rep = 0; rep < reps; ++rep) {
    for (int i = 0; i < size_count; ++i) {
      // Alternate which mode goes first, so that neither always follows the other.
      for (int k = 0; k < kModes; ++k) {
        enum mode mode = (enum mode)((k + rep + i) % kModes);
        samples[i][mode][rep] = run_case(mode, sizes[i], total, pool);
      }
    }
    fprintf(stderr, "# repetition %d of %d done\n", rep + 1, reps);
  }

  printf("# %llu MiB per case, %d repetitions, medians; CPU in ns per KiB sent\n", mib, reps);
  printf("%-8s %12s %12s %12s %12s %10s %10s %9s %9s %8s\n", "size", "send_cpu", "zc_cpu",
         "send_total", "zc_total", "zc/send", "tot_ratio", "send_GB/s", "zc_GB/s", "copied");
  for (int i = 0; i < size_count; ++i) {
    double per_kib = (double)total / 1024.0;
    double cpu[kModes], all[kModes], rate[kModes];
    unsigned long long notes = 0, copied = 0;
    for (int m = 0; m < kModes; ++m) {
      double a[kMaxReps], b[kMaxReps], c[kMaxReps];
      for (int rep = 0; rep < reps; ++rep) {
        struct sample* s = &samples[i][m][rep];
        a[rep] = s->sender_ns / per_kib;
        b[rep] = (s->sender_ns + s->reader_ns) / per_kib;
        c[rep] = (double)total / s->wall_ns;  // bytes per ns = GB/s
        if (m == kSendZc) {
          notes += s->notifications;
          copied += s->copied;
        }
      }
      cpu[m] = median(a, reps);
      all[m] = median(b, reps);
      rate[m] = median(c, reps);
    }
    char copied_text[32];
    if (zc_flags == 0) {
      snprintf(copied_text, sizeof copied_text, "n/a");
    } else {
      snprintf(copied_text, sizeof copied_text, "%.0f%%", notes ? 100.0 * copied / notes : 0.0);
    }
    printf("%-8zu %12.1f %12.1f %12.1f %12.1f %9.2fx %9.2fx %9.2f %9.2f %8s\n", sizes[i] / 1024,
           cpu[kSend], cpu[kSendZc], all[kSend], all[kSendZc], cpu[kSendZc] / cpu[kSend],
           all[kSendZc] / all[kSend], rate[kSend], rate[kSendZc], copied_text);
  }
  io_uring_queue_exit(&ring);
  return 0;
}
