// The seed's client workload in plain C, the floor for connection churn:
// connect, send 12 bytes, read the echo, close; one connection at a time, with
// blocking system calls (nothing cheaper exists), for --duration seconds.
// Prints "conns=N seconds=T conns_per_s=R".
//
// Usage: bench-epoll-churn-client [--host H] [--port P] [--duration S]
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char kMessage[] = "Hello World!";
enum { kMessageSize = sizeof kMessage - 1 };

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

_Noreturn static void fail(const char* what) {
  fprintf(stderr, "bench-epoll-churn-client: %s: %s\n", what, strerror(errno));
  exit(1);
}

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  int port = 8888;
  double duration = 2.0;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && strcmp(argv[i], "--host") == 0) {
      host = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--port") == 0) {
      port = atoi(argv[++i]);
    } else if (i + 1 < argc && strcmp(argv[i], "--duration") == 0) {
      duration = atof(argv[++i]);
    } else {
      fprintf(stderr, "usage: bench-epoll-churn-client [--host H] [--port P] [--duration S]\n");
      return 2;
    }
  }
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
    fprintf(stderr, "bench-epoll-churn-client: bad IPv4 address '%s'\n", host);
    return 2;
  }
  long count = 0;
  double start = now(), deadline = start + duration, elapsed;
  while ((elapsed = now()) < deadline) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr*)&address, sizeof address) != 0) fail("connect");
    if (send(fd, kMessage, kMessageSize, MSG_NOSIGNAL) != kMessageSize) fail("send");
    char echo[kMessageSize];
    size_t received = 0;
    while (received < kMessageSize) {
      ssize_t n = recv(fd, echo + received, kMessageSize - received, 0);
      if (n <= 0) fail("recv");
      received += (size_t)n;
    }
    if (memcmp(echo, kMessage, kMessageSize) != 0) {
      fprintf(stderr, "bench-epoll-churn-client: the echo differs\n");
      return 1;
    }
    close(fd);
    ++count;
  }
  elapsed = now() - start;
  printf("conns=%ld seconds=%.4f conns_per_s=%.1f\n", count, elapsed, (double)count / elapsed);
  return 0;
}
