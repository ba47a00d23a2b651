// The idle mode: --conns connections held open, the server's RSS growth per
// connection.
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

void run_idle(int count, double hold) {
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
