// libuv UDP echo server, written the way a careful libuv user would.
//
// uv_udp_init_ex with UV_UDP_RECVMMSG, so libuv receives up to 20 datagrams
// per recvmmsg() (its batch; the buffer is 20 slots of 64 KiB); each one is
// sent back with uv_udp_try_send, and only when the kernel refuses (EAGAIN)
// queued with uv_udp_send on a copy.
//
// Usage: bench-uv-udp-echo-server [--host H] [--port P]
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

enum { kSlot = 64 * 1024, kSlots = 20 };

static char receive_buffer[kSlot * kSlots];

struct queued_send {
  uv_udp_send_t request;
  char data[];
};

static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) {
  (void)handle;
  (void)suggested;
  // A multiple of 64 KiB asks libuv for recvmmsg with that many slots.
  *buf = uv_buf_init(receive_buffer, sizeof receive_buffer);
}

static void on_sent(uv_udp_send_t* request, int status) {
  (void)status;  // a datagram the kernel refused is dropped, as UDP may
  free(request);
}

static void on_receive(uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf,
                       const struct sockaddr* from, unsigned flags) {
  (void)flags;
  if (nread < 0 || from == NULL) return;  // an error, or the end of a recvmmsg batch
  uv_buf_t echo = uv_buf_init(buf->base, (unsigned)nread);
  int result = uv_udp_try_send(handle, &echo, 1, from);
  if (result >= 0 || result != UV_EAGAIN) return;
  struct queued_send* queued = malloc(sizeof *queued + (size_t)nread);
  if (!queued) abort();
  memcpy(queued->data, buf->base, (size_t)nread);
  uv_buf_t copy = uv_buf_init(queued->data, (unsigned)nread);
  if (uv_udp_send(&queued->request, handle, &copy, 1, from, on_sent) != 0) free(queued);
}

static void on_signal(uv_signal_t* handle, int signum) {
  (void)signum;
  uv_stop(handle->loop);
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
      fprintf(stderr, "usage: bench-uv-udp-echo-server [--host H] [--port P]\n");
      return 2;
    }
  }
  uv_loop_t* loop = uv_default_loop();
  uv_udp_t server;
  struct sockaddr_in address;
  int error = uv_ip4_addr(host, port, &address);
  if (!error) error = uv_udp_init_ex(loop, &server, AF_INET | UV_UDP_RECVMMSG);
  if (!error) error = uv_udp_bind(&server, (const struct sockaddr*)&address, 0);
  if (!error) error = uv_udp_recv_start(&server, on_alloc, on_receive);
  if (error) {
    fprintf(stderr, "bench-uv-udp-echo-server: %s\n", uv_strerror(error));
    return 1;
  }
  uv_signal_t sigint, sigterm;
  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
