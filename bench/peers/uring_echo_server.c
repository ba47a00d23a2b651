// The completion floor: a hand-written single-threaded io_uring echo server in C.
//
// What a modern io_uring server does on Debian 12 (liburing 2.3, kernel >= 6.1):
// a SINGLE_ISSUER | DEFER_TASKRUN ring, one multishot accept, one multishot
// receive per connection into a provided buffer ring (registered by hand with
// io_uring_register_buf_ring), and the bytes sent back straight from the
// provided buffer, which goes back to the ring once the send completed. One
// send in flight per connection keeps the bytes in order; what arrives
// meanwhile waits in a per-connection queue of buffers. Every iteration is one
// io_uring_submit_and_wait. TCP_NODELAY on every accepted connection; a
// connection stays open until the peer closes it.
//
// --fixed-files: the registered-file variant (bench/uring-fixed-files.sh). A
// sparse file table is registered at start; each accepted socket is put in
// it (slot = its descriptor number, one io_uring_register_files_update when
// accepted, one when closed) and its receives and sends name the slot with
// IOSQE_FIXED_FILE, so that the kernel skips the per-request file lookup and
// reference count (fget/fput).
//
// Usage: bench-uring-echo-server [--host H] [--port P] [--backlog N] [--fixed-files]
// SIGINT/SIGTERM end it cleanly (so callgrind writes its profile).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
  kBufferSize = 16 * 1024,
  kBufferCount = 1024,  // a power of two
  kQueued = kBufferCount,
  kGroup = 0,
};
enum op { kAccept, kReceive, kSend, kSignal };

// A connection: the buffers received and not yet sent back, in order.
struct connection {
  unsigned short queue[kQueued];  // buffer ids
  unsigned lengths[kQueued];
  unsigned head, count;
  unsigned offset;  // bytes of the front buffer already sent
  int sending, receiving, closing;
};

static struct io_uring ring;
static struct io_uring_buf_ring* buffer_ring;
static char* buffers;
static struct connection** connections;  // indexed by descriptor
static size_t connection_capacity;
static int fixed_files;  // --fixed-files: requests name a registered file's slot

_Noreturn static void die(const char* what, int error) {
  fprintf(stderr, "bench-uring-echo-server: %s: %s\n", what, strerror(error));
  exit(1);
}

static unsigned long long key(int fd, enum op op) { return ((unsigned long long)fd << 8) | op; }

static struct io_uring_sqe* sqe_for(int fd, enum op op) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (!sqe) {
    io_uring_submit(&ring);
    sqe = io_uring_get_sqe(&ring);
    if (!sqe) die("io_uring_get_sqe", EBUSY);
  }
  io_uring_sqe_set_data64(sqe, key(fd, op));
  return sqe;
}

static char* buffer(unsigned id) { return buffers + (size_t)id * kBufferSize; }

static void recycle(unsigned id) {
  io_uring_buf_ring_add(buffer_ring, buffer(id), kBufferSize, (unsigned short)id,
                        io_uring_buf_ring_mask(kBufferCount), 0);
  io_uring_buf_ring_advance(buffer_ring, 1);
}

static struct connection* connection_of(int fd) {
  if ((size_t)fd >= connection_capacity) {
    size_t capacity = connection_capacity ? connection_capacity : 1024;
    while (capacity <= (size_t)fd) capacity *= 2;
    connections = realloc(connections, capacity * sizeof *connections);
    if (!connections) die("realloc", ENOMEM);
    memset(connections + connection_capacity, 0,
           (capacity - connection_capacity) * sizeof *connections);
    connection_capacity = capacity;
  }
  return connections[fd];
}

static void arm_receive(int fd, struct connection* c) {
  struct io_uring_sqe* sqe = sqe_for(fd, kReceive);
  io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
  if (fixed_files) sqe->flags |= IOSQE_FIXED_FILE;  // fd is the slot
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kGroup;
  c->receiving = 1;
}

static void send_front(int fd, struct connection* c) {
  unsigned id = c->queue[c->head];
  struct io_uring_sqe* sqe = sqe_for(fd, kSend);
  io_uring_prep_send(sqe, fd, buffer(id) + c->offset, c->lengths[c->head] - c->offset,
                     MSG_NOSIGNAL);
  if (fixed_files) sqe->flags |= IOSQE_FIXED_FILE;
  c->sending = 1;
}

static void maybe_close(int fd, struct connection* c) {
  if (!c->closing || c->sending || c->receiving) return;
  while (c->count > 0) {
    recycle(c->queue[c->head]);
    c->head = (c->head + 1) % kQueued;
    c->count--;
  }
  free(c);
  connections[fd] = NULL;
  if (fixed_files) {
    int none = -1;
    io_uring_register_files_update(&ring, (unsigned)fd, &none, 1);
  }
  close(fd);
}

static void on_receive(int fd, const struct io_uring_cqe* cqe) {
  struct connection* c = connection_of(fd);
  if (!(cqe->flags & IORING_CQE_F_MORE)) c->receiving = 0;
  if (cqe->res > 0) {
    unsigned id = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    if (c->closing || c->count == kQueued) {
      recycle(id);
    } else {
      unsigned tail = (c->head + c->count) % kQueued;
      c->queue[tail] = (unsigned short)id;
      c->lengths[tail] = (unsigned)cqe->res;
      c->count++;
      if (!c->sending) send_front(fd, c);
    }
  } else if (cqe->res != -ENOBUFS) {
    c->closing = 1;  // EOF or an error
  }
  if (!c->receiving && !c->closing) arm_receive(fd, c);
  maybe_close(fd, c);
}

static void on_send(int fd, const struct io_uring_cqe* cqe) {
  struct connection* c = connection_of(fd);
  c->sending = 0;
  if (cqe->res < 0) {
    c->closing = 1;
  } else {
    c->offset += (unsigned)cqe->res;
    if (c->offset == c->lengths[c->head]) {
      recycle(c->queue[c->head]);
      c->head = (c->head + 1) % kQueued;
      c->count--;
      c->offset = 0;
    }
    if (c->count > 0 && !c->closing) send_front(fd, c);
  }
  maybe_close(fd, c);
}

static void arm_accept(int listener) {
  io_uring_prep_multishot_accept(sqe_for(listener, kAccept), listener, NULL, NULL, SOCK_CLOEXEC);
}

static void on_accept(int listener, const struct io_uring_cqe* cqe) {
  if (cqe->res >= 0) {
    int fd = cqe->res;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fixed_files) {
      int error = io_uring_register_files_update(&ring, (unsigned)fd, &fd, 1);
      if (error < 0) die("io_uring_register_files_update", -error);
    }
    connection_of(fd);
    struct connection* c = calloc(1, sizeof *c);
    if (!c) die("calloc", ENOMEM);
    connections[fd] = c;
    arm_receive(fd, c);
  }
  if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept(listener);
}

static void setup_buffers(void) {
  size_t ring_bytes = kBufferCount * sizeof(struct io_uring_buf);
  buffer_ring = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (buffer_ring == MAP_FAILED) die("mmap", errno);
  struct io_uring_buf_reg registration = {
      .ring_addr = (unsigned long)buffer_ring, .ring_entries = kBufferCount, .bgid = kGroup};
  int error = io_uring_register_buf_ring(&ring, &registration, 0);
  if (error) die("io_uring_register_buf_ring", -error);
  buffers = malloc((size_t)kBufferSize * kBufferCount);
  if (!buffers) die("malloc", ENOMEM);
  io_uring_buf_ring_init(buffer_ring);
  for (unsigned id = 0; id < kBufferCount; ++id) {
    io_uring_buf_ring_add(buffer_ring, buffer(id), kBufferSize, (unsigned short)id,
                          io_uring_buf_ring_mask(kBufferCount), (int)id);
  }
  io_uring_buf_ring_advance(buffer_ring, kBufferCount);
}

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  int port = 8888, backlog = 1024;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && strcmp(argv[i], "--host") == 0) {
      host = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--port") == 0) {
      port = atoi(argv[++i]);
    } else if (i + 1 < argc && strcmp(argv[i], "--backlog") == 0) {
      backlog = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--fixed-files") == 0) {
      fixed_files = 1;
    } else {
      fprintf(stderr,
              "usage: bench-uring-echo-server [--host H] [--port P] [--backlog N] "
              "[--fixed-files]\n");
      return 2;
    }
  }
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop_signals, NULL);
  int signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
  if (signal_fd < 0) die("signalfd", errno);

  struct io_uring_params params = {0};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
  params.cq_entries = 16384;
  int error = io_uring_queue_init_params(4096, &ring, &params);
  if (error) die("io_uring_queue_init_params", -error);
  setup_buffers();
  if (fixed_files) {
    // One slot per possible descriptor number (the table may not exceed RLIMIT_NOFILE).
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) die("getrlimit", errno);
    unsigned slots = limit.rlim_cur > 65536 ? 65536 : (unsigned)limit.rlim_cur;
    error = io_uring_register_files_sparse(&ring, slots);
    if (error) die("io_uring_register_files_sparse", -error);
  }

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) die("socket", errno);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  if (inet_pton(AF_INET, host, &address.sin_addr) != 1) die("inet_pton", EINVAL);
  if (bind(listener, (struct sockaddr*)&address, sizeof address) != 0) die("bind", errno);
  if (listen(listener, backlog) != 0) die("listen", errno);
  arm_accept(listener);
  struct signalfd_siginfo signal_info;
  io_uring_prep_read(sqe_for(signal_fd, kSignal), signal_fd, &signal_info, sizeof signal_info, 0);

  for (;;) {
    error = io_uring_submit_and_wait(&ring, 1);
    if (error < 0 && error != -EINTR) die("io_uring_submit_and_wait", -error);
    struct io_uring_cqe* cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      int fd = (int)(cqe->user_data >> 8);
      switch ((enum op)(cqe->user_data & 0xff)) {
        case kAccept:
          on_accept(fd, cqe);
          break;
        case kReceive:
          on_receive(fd, cqe);
          break;
        case kSend:
          on_send(fd, cqe);
          break;
        case kSignal:
          io_uring_queue_exit(&ring);
          return 0;
      }
      ++seen;
    }
    io_uring_cq_advance(&ring, seen);
  }
}
