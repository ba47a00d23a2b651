// The TLS floor: a hand-written single-threaded epoll + OpenSSL echo server in C.
//
// OpenSSL reads and writes the socket itself (SSL_set_fd: no BIO in between
// but OpenSSL's socket BIO), with read-ahead on, so that one read() takes
// every record the kernel holds instead of a header and a body per record.
// Level-triggered epoll; on a readable event the
// connection decrypts everything that has come (SSL_read until it wants more)
// and encrypts it straight back; what the kernel does not take is kept and
// reading stops until it is sent (flow control). OpenSSL's record buffers are
// released while idle, and the context is set up as tulip's: TLS 1.2 or
// newer, no renegotiation, the default cipher lists (the load generator
// chooses). TCP_NODELAY; a connection stays open until the peer closes it.
//
// Usage: bench-epoll-tls-echo-server --cert FILE --key FILE [--host H] [--port P] [--backlog N]
// SIGINT/SIGTERM end it cleanly.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

enum { kReadSize = 256 * 1024, kMaxEvents = 256 };

struct connection {
  SSL* ssl;
  char* pending;  // plaintext read and not yet accepted by SSL_write
  size_t size;
  size_t offset;
  int handshaken;
  unsigned interest;
};

static struct connection* connections;  // indexed by descriptor
static size_t capacity;
static char* buffer;
static int epfd;

_Noreturn static void die(const char* what) {
  fprintf(stderr, "bench-epoll-tls-echo-server: %s: %s\n", what, strerror(errno));
  exit(1);
}

static struct connection* connection_of(int fd) {
  if ((size_t)fd >= capacity) {
    size_t grown = capacity ? capacity : 1024;
    while (grown <= (size_t)fd) grown *= 2;
    connections = realloc(connections, grown * sizeof *connections);
    if (!connections) die("realloc");
    memset(connections + capacity, 0, (grown - capacity) * sizeof *connections);
    capacity = grown;
  }
  return &connections[fd];
}

static void set_interest(int fd, struct connection* c, unsigned events) {
  if (events == c->interest) return;
  struct epoll_event ev = {.events = events, .data.fd = fd};
  epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
  c->interest = events;
}

static void close_connection(int fd) {
  struct connection* c = connection_of(fd);
  SSL_free(c->ssl);
  free(c->pending);
  memset(c, 0, sizeof *c);
  epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
}

// Encrypts and sends what is pending; returns -1 if the connection failed, 0
// if some is still pending (EPOLLOUT armed), 1 if everything went.
static int flush_pending(int fd, struct connection* c) {
  while (c->offset < c->size) {
    ERR_clear_error();
    int n = SSL_write(c->ssl, c->pending + c->offset, (int)(c->size - c->offset));
    if (n > 0) {
      c->offset += (size_t)n;
      continue;
    }
    int error = SSL_get_error(c->ssl, n);
    if (error == SSL_ERROR_WANT_WRITE) {
      set_interest(fd, c, EPOLLOUT);  // reading stops until the echo is out
      return 0;
    }
    return -1;
  }
  free(c->pending);
  c->pending = NULL;
  c->size = c->offset = 0;
  set_interest(fd, c, EPOLLIN);
  return 1;
}

static void on_event(int fd, unsigned events) {
  struct connection* c = connection_of(fd);
  if (!c->handshaken) {
    ERR_clear_error();
    int result = SSL_do_handshake(c->ssl);
    if (result != 1) {
      int error = SSL_get_error(c->ssl, result);
      if (error == SSL_ERROR_WANT_READ) {
        set_interest(fd, c, EPOLLIN);
      } else if (error == SSL_ERROR_WANT_WRITE) {
        set_interest(fd, c, EPOLLOUT);
      } else {
        close_connection(fd);
      }
      return;
    }
    c->handshaken = 1;
  }
  if ((events & EPOLLOUT) && c->pending) {
    int sent = flush_pending(fd, c);
    if (sent < 0) close_connection(fd);
    if (sent <= 0) return;
  }
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(c->ssl, buffer, kReadSize);
    if (n <= 0) {
      int error = SSL_get_error(c->ssl, n);
      if (error == SSL_ERROR_WANT_READ) return;
      close_connection(fd);  // close_notify, EOF or an error
      return;
    }
    ERR_clear_error();
    int written = SSL_write(c->ssl, buffer, n);
    if (written == n) continue;
    int error = written > 0 ? SSL_ERROR_WANT_WRITE : SSL_get_error(c->ssl, written);
    if (error != SSL_ERROR_WANT_WRITE) {
      close_connection(fd);
      return;
    }
    // Keep the rest (OpenSSL needs the same bytes again) and stop reading.
    size_t done = written > 0 ? (size_t)written : 0;
    c->size = (size_t)n - done;
    c->offset = 0;
    c->pending = malloc(c->size);
    if (!c->pending) die("malloc");
    memcpy(c->pending, buffer + done, c->size);
    set_interest(fd, c, EPOLLOUT);
    return;
  }
}

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  const char* cert = NULL;
  const char* key = NULL;
  int port = 8888, backlog = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--host") == 0) {
      host = argv[i + 1];
    } else if (strcmp(argv[i], "--port") == 0) {
      port = atoi(argv[i + 1]);
    } else if (strcmp(argv[i], "--backlog") == 0) {
      backlog = atoi(argv[i + 1]);
    } else if (strcmp(argv[i], "--cert") == 0) {
      cert = argv[i + 1];
    } else if (strcmp(argv[i], "--key") == 0) {
      key = argv[i + 1];
    }
  }
  if (!cert || !key) {
    fprintf(stderr,
            "usage: bench-epoll-tls-echo-server --cert FILE --key FILE [--host H] [--port P] "
            "[--backlog N]\n");
    return 2;
  }
  SSL_CTX* context = SSL_CTX_new(TLS_server_method());
  if (!context || SSL_CTX_use_certificate_chain_file(context, cert) != 1 ||
      SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) != 1) {
    fprintf(stderr, "bench-epoll-tls-echo-server: cannot load %s / %s\n", cert, key);
    return 1;
  }
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_read_ahead(context, 1);
  buffer = malloc(kReadSize);
  if (!buffer) die("malloc");

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) die("socket");
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &address.sin_addr) != 1) die("inet_pton");
  if (bind(listener, (struct sockaddr*)&address, sizeof address) != 0) die("bind");
  if (listen(listener, backlog) != 0) die("listen");
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
  epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &ev);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop_signals, NULL);
  int signals = signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
  ev.data.fd = signals;
  epoll_ctl(epfd, EPOLL_CTL_ADD, signals, &ev);
  signal(SIGPIPE, SIG_IGN);

  struct epoll_event events[kMaxEvents];
  for (;;) {
    int n = epoll_wait(epfd, events, kMaxEvents, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("epoll_wait");
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == signals) return 0;
      if (fd == listener) {
        for (int accepted = 0; accepted < backlog; ++accepted) {
          int client = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (client < 0) break;
          setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct connection* c = connection_of(client);
          c->ssl = SSL_new(context);
          SSL_set_fd(c->ssl, client);
          SSL_set_accept_state(c->ssl);
          c->interest = EPOLLIN;
          struct epoll_event client_event = {.events = EPOLLIN, .data.fd = client};
          epoll_ctl(epfd, EPOLL_CTL_ADD, client, &client_event);
        }
        continue;
      }
      if (connection_of(fd)->ssl) on_event(fd, events[i].events);
    }
  }
}
