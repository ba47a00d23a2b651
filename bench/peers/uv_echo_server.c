// libuv echo server, callback style, written the way a careful libuv user would.
//
// Reads into one shared buffer (the data is written back before the next read),
// tries uv_try_write first, and queues only what the kernel did not take with
// uv_write; while such a write is queued it stops reading (flow control).
// TCP_NODELAY; a connection stays open until the peer closes it.
//
// --plain-write: the textbook shape instead (libuv's own echo server test): a
// fresh buffer per read, handed to uv_write and freed in its callback.
//
// --unix PATH: the same server on a Unix stream socket, libuv's pipe handle
// (uv_pipe_t); a stale socket file is removed first.
//
// Usage: bench-uv-echo-server [--host H] [--port P | --unix PATH] [--backlog N] [--plain-write]
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

enum { kReadSize = 256 * 1024 };

static char read_buffer[kReadSize];
static int plain_write;
static const char* unix_path;  // --unix: serve a Unix socket (uv_pipe_t), not TCP

struct pending_write {
  uv_write_t request;
  char data[];  // the bytes uv_try_write did not send
};

static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) {
  (void)handle;
  if (plain_write) {
    char* base = malloc(suggested);
    if (!base) abort();
    *buf = uv_buf_init(base, (unsigned)suggested);
    return;
  }
  *buf = uv_buf_init(read_buffer, sizeof read_buffer);
}

static void on_close(uv_handle_t* handle) { free(handle); }

static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);

static void on_written(uv_write_t* request, int status) {
  uv_stream_t* stream = request->handle;
  free(request);
  if (status < 0) {
    if (!uv_is_closing((uv_handle_t*)stream)) uv_close((uv_handle_t*)stream, on_close);
    return;
  }
  if (!uv_is_closing((uv_handle_t*)stream)) uv_read_start(stream, on_alloc, on_read);
}

// --plain-write: the write request owns the read buffer until it completes.
struct plain_write_request {
  uv_write_t request;
  uv_buf_t buf;
};

static void on_plain_written(uv_write_t* request, int status) {
  struct plain_write_request* plain = (struct plain_write_request*)request;
  uv_stream_t* stream = request->handle;
  free(plain->buf.base);
  free(plain);
  if (uv_is_closing((uv_handle_t*)stream)) return;
  if (status < 0) {
    uv_close((uv_handle_t*)stream, on_close);
  } else if (stream->write_queue_size == 0) {
    uv_read_start(stream, on_alloc, on_read);
  }
}

static void echo_plain(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  struct plain_write_request* plain = malloc(sizeof *plain);
  if (!plain) abort();
  plain->buf = uv_buf_init(buf->base, (unsigned)nread);
  if (uv_write(&plain->request, stream, &plain->buf, 1, on_plain_written) != 0) {
    free(buf->base);
    free(plain);
    uv_close((uv_handle_t*)stream, on_close);
    return;
  }
  // Flow control: what the kernel did not take at once waits; stop reading.
  if (stream->write_queue_size > 0) uv_read_stop(stream);
}

static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  if (nread <= 0 && plain_write) free(buf->base);
  if (nread < 0) {
    uv_close((uv_handle_t*)stream, on_close);
    return;
  }
  if (nread == 0) return;
  if (plain_write) {
    echo_plain(stream, nread, buf);
    return;
  }
  uv_buf_t out = uv_buf_init(buf->base, (unsigned)nread);
  int sent = uv_try_write(stream, &out, 1);
  if (sent == nread) return;
  if (sent < 0 && sent != UV_EAGAIN) {
    uv_close((uv_handle_t*)stream, on_close);
    return;
  }
  if (sent < 0) sent = 0;
  size_t left = (size_t)nread - (size_t)sent;
  struct pending_write* pending = malloc(sizeof *pending + left);
  if (!pending) abort();
  memcpy(pending->data, buf->base + sent, left);
  uv_buf_t rest = uv_buf_init(pending->data, (unsigned)left);
  uv_read_stop(stream);
  if (uv_write(&pending->request, stream, &rest, 1, on_written) != 0) {
    free(pending);
    uv_close((uv_handle_t*)stream, on_close);
  }
}

static void on_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  uv_stream_t* client;
  if (unix_path) {
    uv_pipe_t* pipe = malloc(sizeof *pipe);
    if (!pipe) abort();
    uv_pipe_init(server->loop, pipe, 0);
    client = (uv_stream_t*)pipe;
  } else {
    uv_tcp_t* tcp = malloc(sizeof *tcp);
    if (!tcp) abort();
    uv_tcp_init(server->loop, tcp);
    client = (uv_stream_t*)tcp;
  }
  if (uv_accept(server, client) != 0) {
    uv_close((uv_handle_t*)client, on_close);
    return;
  }
  if (!unix_path) uv_tcp_nodelay((uv_tcp_t*)client, 1);
  uv_read_start(client, on_alloc, on_read);
}

static void on_signal(uv_signal_t* handle, int signum) {
  (void)signum;
  uv_stop(handle->loop);
}

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  int port = 8888;
  int backlog = 1024;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && strcmp(argv[i], "--host") == 0) {
      host = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--port") == 0) {
      port = atoi(argv[++i]);
    } else if (i + 1 < argc && strcmp(argv[i], "--unix") == 0) {
      unix_path = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--backlog") == 0) {
      backlog = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--plain-write") == 0) {
      plain_write = 1;
    } else {
      fprintf(stderr,
              "usage: bench-uv-echo-server [--host H] [--port P | --unix PATH] [--backlog N] "
              "[--plain-write]\n");
      return 2;
    }
  }
  // A client closing with data in flight would otherwise kill the server.
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t* loop = uv_default_loop();
  // Either server handle is a stream; one of the two is used.
  uv_tcp_t tcp_server;
  uv_pipe_t pipe_server;
  uv_stream_t* server;
  int rc;
  if (unix_path) {
    uv_pipe_init(loop, &pipe_server, 0);
    unlink(unix_path);  // a socket file left by an earlier run
    rc = uv_pipe_bind(&pipe_server, unix_path);
    server = (uv_stream_t*)&pipe_server;
  } else {
    uv_tcp_init(loop, &tcp_server);
    struct sockaddr_in address;
    rc = uv_ip4_addr(host, port, &address);
    if (rc == 0) rc = uv_tcp_bind(&tcp_server, (const struct sockaddr*)&address, 0);
    server = (uv_stream_t*)&tcp_server;
  }
  if (rc == 0) rc = uv_listen(server, backlog, on_connection);
  if (rc != 0) {
    fprintf(stderr, "bench-uv-echo-server: %s\n", uv_strerror(rc));
    return 1;
  }
  uv_signal_t sigint, sigterm;
  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_unref((uv_handle_t*)&sigint);
  uv_unref((uv_handle_t*)&sigterm);
  uv_run(loop, UV_RUN_DEFAULT);
  if (unix_path) unlink(unix_path);
  return 0;
}
