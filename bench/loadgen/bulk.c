// The bulk pattern's modes: bulk (one connection, --bytes each way at once,
// every byte verified), and the sendfile benchmark's make-file and sink.
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

void run_bulk(unsigned long long total) {
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) fail("epoll_create1");
  // Sent from the bulk ring and verified against it.
  char* ring = bulk_ring();
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

// ---- sink and make-file (the sendfile benchmark) --------------------------------------

void make_file(const char* path, unsigned long long total) {
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

void run_sink(unsigned long long total) {
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
