// The seed's client workload on libuv, callback style: connect, send 12 bytes,
// read the echo, close, then the next connection, for --duration seconds.
// Prints "conns=N seconds=T conns_per_s=R".
//
// Usage: bench-uv-churn-client [--host H] [--port P] [--duration S]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char kMessage[] = "Hello World!";
enum { kMessageSize = sizeof kMessage - 1 };

struct client {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  char echo[64];
  size_t received;
};

static struct sockaddr_in address;
static uv_loop_t* loop;
static long count;
static uint64_t deadline_ns;

static void start_client(void);

_Noreturn static void fail(const char* what, int status) {
  fprintf(stderr, "bench-uv-churn-client: %s: %s\n", what, uv_strerror(status));
  exit(1);
}

static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) {
  (void)suggested;
  struct client* c = handle->data;
  *buf = uv_buf_init(c->echo + c->received, (unsigned)(sizeof c->echo - c->received));
}

static void on_closed(uv_handle_t* handle) {
  free(handle->data);
  ++count;
  if (uv_hrtime() < deadline_ns) start_client();
}

static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  (void)buf;
  struct client* c = stream->data;
  if (nread < 0) fail("read", (int)nread);
  c->received += (size_t)nread;
  if (c->received < kMessageSize) return;
  if (memcmp(c->echo, kMessage, kMessageSize) != 0) {
    fprintf(stderr, "bench-uv-churn-client: the echo differs\n");
    exit(1);
  }
  uv_close((uv_handle_t*)stream, on_closed);
}

static void on_written(uv_write_t* request, int status) {
  (void)request;
  if (status < 0) fail("write", status);
}

static void on_connected(uv_connect_t* request, int status) {
  if (status < 0) fail("connect", status);
  struct client* c = request->handle->data;
  uv_tcp_nodelay(&c->tcp, 1);
  uv_buf_t buf = uv_buf_init((char*)kMessage, kMessageSize);
  uv_write(&c->write, (uv_stream_t*)&c->tcp, &buf, 1, on_written);
  uv_read_start((uv_stream_t*)&c->tcp, on_alloc, on_read);
}

static void start_client(void) {
  struct client* c = calloc(1, sizeof *c);
  if (!c) abort();
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  int rc = uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr*)&address, on_connected);
  if (rc != 0) fail("connect", rc);
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
      fprintf(stderr, "usage: bench-uv-churn-client [--host H] [--port P] [--duration S]\n");
      return 2;
    }
  }
  int rc = uv_ip4_addr(host, port, &address);
  if (rc != 0) fail("address", rc);
  loop = uv_default_loop();
  uint64_t start = uv_hrtime();
  deadline_ns = start + (uint64_t)(duration * 1e9);
  start_client();
  uv_run(loop, UV_RUN_DEFAULT);
  double elapsed = (double)(uv_hrtime() - start) / 1e9;
  printf("conns=%ld seconds=%.4f conns_per_s=%.1f\n", count, elapsed, (double)count / elapsed);
  return 0;
}
