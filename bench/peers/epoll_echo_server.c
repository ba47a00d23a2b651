// The floor: a hand-written single-threaded epoll echo server in C.
//
// Level-triggered epoll; one read and one write per readable event, so an echo
// round trip costs epoll_wait + read + write and nothing else. Bytes the kernel
// does not take at once are kept per connection and reading stops until they
// are sent (flow control). TCP_NODELAY on every accepted connection; a
// connection stays open until the peer closes it. --unix PATH serves a Unix
// stream socket instead (the same loop; a stale socket file is removed first).
// --reuse-port sets SO_REUSEPORT, so that N of these processes share a port (the
// "a process per core" floor of the threads benchmark).
//
// Usage: bench-epoll-echo-server [--host H] [--port P | --unix PATH] [--backlog N]
//                                [--reuse-port]
// SIGINT/SIGTERM end it cleanly (so callgrind writes its profile).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum { kReadSize = 256 * 1024, kMaxEvents = 256 };

// What a connection has read but not yet written back.
struct pending {
  char* data;
  size_t size;
  size_t offset;
};

static struct pending* pendings;  // indexed by descriptor
static size_t pending_capacity;

_Noreturn static void die(const char* what) {
  fprintf(stderr, "bench-epoll-echo-server: %s: %s\n", what, strerror(errno));
  exit(1);
}

static struct pending* pending_of(int fd) {
  if ((size_t)fd >= pending_capacity) {
    size_t capacity = pending_capacity ? pending_capacity : 1024;
    while (capacity <= (size_t)fd) capacity *= 2;
    pendings = realloc(pendings, capacity * sizeof *pendings);
    if (!pendings) die("realloc");
    memset(pendings + pending_capacity, 0, (capacity - pending_capacity) * sizeof *pendings);
    pending_capacity = capacity;
  }
  return &pendings[fd];
}

static void close_connection(int epfd, int fd) {
  struct pending* p = pending_of(fd);
  free(p->data);
  memset(p, 0, sizeof *p);
  epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
}

static void watch(int epfd, int fd, int op, unsigned events) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(epfd, op, fd, &ev) != 0) die("epoll_ctl");
}

// Sends what is pending; returns 0 when all is sent, 1 if some is left, -1 on error.
static int flush_pending(int fd, struct pending* p) {
  while (p->offset < p->size) {
    ssize_t n = send(fd, p->data + p->offset, p->size - p->offset, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN ? 1 : -1;
    p->offset += (size_t)n;
  }
  free(p->data);
  p->data = NULL;
  p->size = p->offset = 0;
  return 0;
}

static void on_readable(int epfd, int fd, char* buffer) {
  ssize_t n = read(fd, buffer, kReadSize);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    close_connection(epfd, fd);
    return;
  }
  if (n < 0) return;
  ssize_t sent = send(fd, buffer, (size_t)n, MSG_NOSIGNAL);
  if (sent < 0) {
    if (errno != EAGAIN) {
      close_connection(epfd, fd);
      return;
    }
    sent = 0;
  }
  if (sent == n) return;
  // The kernel's buffer is full: keep the rest and stop reading until it drains.
  struct pending* p = pending_of(fd);
  p->size = (size_t)(n - sent);
  p->offset = 0;
  p->data = malloc(p->size);
  if (!p->data) die("malloc");
  memcpy(p->data, buffer + sent, p->size);
  watch(epfd, fd, EPOLL_CTL_MOD, EPOLLOUT);
}

static void on_writable(int epfd, int fd) {
  int left = flush_pending(fd, pending_of(fd));
  if (left < 0) {
    close_connection(epfd, fd);
  } else if (left == 0) {
    watch(epfd, fd, EPOLL_CTL_MOD, EPOLLIN);
  }
}

static void accept_all(int epfd, int listener, int tcp) {
  for (;;) {
    int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != ECONNABORTED && errno != EINTR) {
        fprintf(stderr, "bench-epoll-echo-server: accept: %s\n", strerror(errno));
      }
      return;
    }
    if (tcp) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    watch(epfd, fd, EPOLL_CTL_ADD, EPOLLIN);
  }
}

static int listen_tcp(const char* host, int port, int backlog, int reuse_port) {
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
    fprintf(stderr, "bench-epoll-echo-server: bad IPv4 address '%s'\n", host);
    exit(2);
  }
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) die("socket");
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port && setsockopt(listener, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    die("SO_REUSEPORT");
  }
  if (bind(listener, (struct sockaddr*)&address, sizeof address) != 0) die("bind");
  if (listen(listener, backlog) != 0) die("listen");
  return listener;
}

static int listen_unix(const char* path, int backlog) {
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof address.sun_path) {
    fprintf(stderr, "bench-epoll-echo-server: --unix path too long: '%s'\n", path);
    exit(2);
  }
  strcpy(address.sun_path, path);
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) die("socket");
  unlink(path);  // a socket file left by an earlier run
  if (bind(listener, (struct sockaddr*)&address, sizeof address) != 0) die("bind");
  if (listen(listener, backlog) != 0) die("listen");
  return listener;
}

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  const char* unix_path = NULL;
  int port = 8888;
  int backlog = 1024;
  int reuse_port = 0;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && strcmp(argv[i], "--host") == 0) {
      host = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--port") == 0) {
      port = atoi(argv[++i]);
    } else if (i + 1 < argc && strcmp(argv[i], "--unix") == 0) {
      unix_path = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--backlog") == 0) {
      backlog = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--reuse-port") == 0) {
      reuse_port = 1;
    } else {
      fprintf(stderr,
              "usage: bench-epoll-echo-server [--host H] [--port P | --unix PATH] [--backlog N]"
              " [--reuse-port]\n");
      return 2;
    }
  }
  // SIGINT and SIGTERM arrive as readable events on a signalfd.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop_signals, NULL);
  int signal_fd = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd < 0) die("signalfd");
  signal(SIGPIPE, SIG_IGN);

  int listener =
      unix_path ? listen_unix(unix_path, backlog) : listen_tcp(host, port, backlog, reuse_port);
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  watch(epfd, listener, EPOLL_CTL_ADD, EPOLLIN);
  watch(epfd, signal_fd, EPOLL_CTL_ADD, EPOLLIN);

  char* buffer = malloc(kReadSize);
  if (!buffer) die("malloc");
  struct epoll_event events[kMaxEvents];
  int stopping = 0;
  while (!stopping) {
    int count = epoll_wait(epfd, events, kMaxEvents, -1);
    if (count < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < count; ++i) {
      int fd = events[i].data.fd;
      if (fd == listener) {
        accept_all(epfd, listener, unix_path == NULL);
      } else if (fd == signal_fd) {
        stopping = 1;
      } else if (events[i].events & EPOLLOUT) {
        on_writable(epfd, fd);
      } else {
        on_readable(epfd, fd, buffer);
      }
    }
  }
  free(buffer);
  close(epfd);
  close(signal_fd);
  close(listener);
  if (unix_path) unlink(unix_path);
  return 0;
}
