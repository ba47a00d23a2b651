// The UDP echo floor: what a hand-written server costs per datagram.
//
// Level-triggered epoll on one UDP socket; on each readable event, recvmmsg()
// takes up to 64 waiting datagrams and one sendmmsg() sends each back to its
// sender, until the socket has nothing more (at most 8 batches per event, so
// that a flood cannot keep it from epoll_wait and SIGTERM forever).
//
// Usage: bench-udp-floor-server [--host H] [--port P]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { kBatch = 64, kSlot = 65536, kBatchesPerEvent = 8 };

static volatile sig_atomic_t stopping;

static void on_signal(int signum) {
  (void)signum;
  stopping = 1;
}

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  int port = 8888;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && strcmp(argv[i], "--host") == 0) {
      host = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--port") == 0) {
      port = atoi(argv[++i]);
    } else {
      fprintf(stderr, "usage: bench-udp-floor-server [--host H] [--port P]\n");
      return 2;
    }
  }
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
    fprintf(stderr, "bench-udp-floor-server: bad IPv4 --host\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr*)&address, sizeof address) != 0) {
    perror("bench-udp-floor-server: bind");
    return 1;
  }
  struct sigaction action = {.sa_handler = on_signal};
  sigaction(SIGINT, &action, NULL);
  sigaction(SIGTERM, &action, NULL);
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event watch = {.events = EPOLLIN};
  if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &watch) != 0) {
    perror("bench-udp-floor-server: epoll");
    return 1;
  }

  static char buffers[kBatch][kSlot];
  static struct sockaddr_storage senders[kBatch];
  static struct iovec vectors[kBatch];
  static struct mmsghdr messages[kBatch];
  while (!stopping) {
    struct epoll_event event;
    int n = epoll_wait(epfd, &event, 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("bench-udp-floor-server: epoll_wait");
      return 1;
    }
    for (int batch = 0; batch < kBatchesPerEvent; ++batch) {
      for (int i = 0; i < kBatch; ++i) {
        vectors[i] = (struct iovec){buffers[i], kSlot};
        messages[i].msg_hdr = (struct msghdr){.msg_name = &senders[i],
                                              .msg_namelen = sizeof senders[i],
                                              .msg_iov = &vectors[i],
                                              .msg_iovlen = 1};
      }
      int received = recvmmsg(fd, messages, kBatch, 0, NULL);
      if (received <= 0) break;  // EAGAIN: drained (an ICMP error is dropped too)
      // Echo each one back: the same buffers, lengths cut to what arrived.
      for (int i = 0; i < received; ++i) vectors[i].iov_len = messages[i].msg_len;
      for (int sent = 0; sent < received;) {
        int n_sent = sendmmsg(fd, messages + sent, (unsigned)(received - sent), 0);
        if (n_sent < 0) {
          if (errno == EINTR) continue;
          ++sent;  // that datagram's error (EAGAIN included): drop it, as UDP may
          continue;
        }
        sent += n_sent;
      }
      if (received < kBatch) break;
    }
  }
  close(epfd);
  close(fd);
  return 0;
}
