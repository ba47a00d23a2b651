// The udp mode: --conns connected UDP senders, each keeping --window
// datagrams in flight, every echo verified; loss counted, never stalling.
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

void run_udp(int count, size_t size, int window, double loss_ms, double warmup, double duration,
             long long limit) {
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
  double p50, p99;
  latency_percentiles(run.latencies, run.latency_count, &p50, &p99);
  printf(
      "mode=udp conns=%d size=%zu window=%d datagrams=%lld dgram_per_s=%.1f lost=%lld late=%lld "
      "p50_us=%.1f p99_us=%.1f",
      count, size, window, run.completed, rate, run.lost, run.late, p50, p99);
  report_window(start, end, run.completed, "dgram");
  printf("\n");
  for (int s = 0; s < count; ++s) close(run.senders[s].fd);
}
