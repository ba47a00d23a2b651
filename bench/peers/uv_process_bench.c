/* libuv's side of the process benchmarks (bench/run-process-peers.sh): the
 * same three workloads as tulip-bench-process, with uv_spawn, uv_pipe_t and
 * uv_queue_work. One line of key=value pairs per run.
 *
 *   bench-uv-process --mode spawn --count N     uv_spawn of /bin/true, one at a time
 *   bench-uv-process --mode cat --bytes B       B bytes through cat's stdin and stdout
 *   bench-uv-process --mode work --count N      uv_queue_work round trips of a no-op
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_seconds(int who) {
  struct rusage usage;
  getrusage(who, &usage);
  return (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

/* ---- spawn ------------------------------------------------------------------------ */

static long spawned;
static long to_spawn;
static uv_process_t child;

static void spawn_next(uv_loop_t* loop);

static void on_child_closed(uv_handle_t* handle) {
  if (++spawned < to_spawn) spawn_next(handle->loop);
}

static void on_exit_spawn(uv_process_t* process, int64_t status, int signal) {
  (void)status;
  (void)signal;
  uv_close((uv_handle_t*)process, on_child_closed);
}

static void spawn_next(uv_loop_t* loop) {
  char* args[] = {"/bin/true", NULL};
  uv_stdio_container_t stdio[3] = {
      {UV_INHERIT_FD, {.fd = 0}}, {UV_INHERIT_FD, {.fd = 1}}, {UV_INHERIT_FD, {.fd = 2}}};
  uv_process_options_t options;
  memset(&options, 0, sizeof(options));
  options.file = args[0];
  options.args = args;
  options.exit_cb = on_exit_spawn;
  options.stdio = stdio;
  options.stdio_count = 3;
  int error = uv_spawn(loop, &child, &options);
  if (error) {
    fprintf(stderr, "uv_spawn: %s\n", uv_strerror(error));
    exit(1);
  }
}

static int run_spawn(long count) {
  uv_loop_t* loop = uv_default_loop();
  to_spawn = count;
  double start = now();
  spawn_next(loop);
  uv_run(loop, UV_RUN_DEFAULT);
  double elapsed = now() - start;
  printf("procs_per_s=%.0f us_per_proc=%.1f\n", count / elapsed, elapsed / count * 1e6);
  return 0;
}

/* ---- cat -------------------------------------------------------------------------- */

#define CHUNK (1 << 18)
static uv_pipe_t cat_in, cat_out;
static char chunk[CHUNK];
static char read_buffer[1 << 18];
static size_t total, sent, received, in_flight;

static void pump(void);

static void on_write(uv_write_t* request, int status) {
  free(request);
  if (status) {
    fprintf(stderr, "write: %s\n", uv_strerror(status));
    exit(1);
  }
  in_flight -= CHUNK;
  pump();
}

static void on_stdin_closed(uv_handle_t* handle) { (void)handle; }

/* Keeps up to four chunks in flight: libuv's usual back-pressure is the
 * write request's callback. */
static void pump(void) {
  while (sent < total && in_flight < 4 * CHUNK) {
    size_t n = total - sent < CHUNK ? total - sent : CHUNK;
    uv_write_t* request = malloc(sizeof(*request));
    uv_buf_t buffer = uv_buf_init(chunk, (unsigned)n);
    sent += n;
    in_flight += CHUNK;
    uv_write(request, (uv_stream_t*)&cat_in, &buffer, 1, on_write);
  }
  if (sent == total && in_flight == 0 && !uv_is_closing((uv_handle_t*)&cat_in)) {
    uv_close((uv_handle_t*)&cat_in, on_stdin_closed);
  }
}

static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buffer) {
  (void)handle;
  (void)suggested;
  *buffer = uv_buf_init(read_buffer, sizeof(read_buffer));
}

static void on_read(uv_stream_t* stream, ssize_t n, const uv_buf_t* buffer) {
  (void)buffer;
  if (n > 0) received += (size_t)n;
  if (n < 0) uv_close((uv_handle_t*)stream, NULL);
}

static void on_exit_cat(uv_process_t* process, int64_t status, int signal) {
  (void)status;
  (void)signal;
  uv_close((uv_handle_t*)process, NULL);
}

static int run_cat(size_t bytes) {
  uv_loop_t* loop = uv_default_loop();
  total = bytes;
  memset(chunk, 'x', sizeof(chunk));
  uv_pipe_init(loop, &cat_in, 0);
  uv_pipe_init(loop, &cat_out, 0);
  char* args[] = {"cat", NULL};
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
  stdio[0].data.stream = (uv_stream_t*)&cat_in;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t*)&cat_out;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  uv_process_options_t options;
  memset(&options, 0, sizeof(options));
  options.file = args[0];
  options.args = args;
  options.exit_cb = on_exit_cat;
  options.stdio = stdio;
  options.stdio_count = 3;
  double cpu_before = cpu_seconds(RUSAGE_SELF) + cpu_seconds(RUSAGE_CHILDREN);
  double start = now();
  int error = uv_spawn(loop, &child, &options);
  if (error) {
    fprintf(stderr, "uv_spawn: %s\n", uv_strerror(error));
    return 1;
  }
  uv_read_start((uv_stream_t*)&cat_out, on_alloc, on_read);
  pump();
  uv_run(loop, UV_RUN_DEFAULT);
  double elapsed = now() - start;
  double cpu = cpu_seconds(RUSAGE_SELF) + cpu_seconds(RUSAGE_CHILDREN) - cpu_before;
  if (received != bytes) {
    fprintf(stderr, "cat: %zu bytes came back of %zu\n", received, bytes);
    return 1;
  }
  printf("gb_per_s=%.3f cpu_us_per_mib=%.1f\n", bytes / elapsed / 1e9,
         cpu / ((double)bytes / (1 << 20)) * 1e6);
  return 0;
}

/* ---- work ------------------------------------------------------------------------- */

static long worked, to_work;
static uv_work_t work_request;

static void no_op(uv_work_t* request) { (void)request; }

static void after_work(uv_work_t* request, int status) {
  (void)status;
  if (++worked < to_work) uv_queue_work(request->loop, &work_request, no_op, after_work);
}

static int run_work(long count) {
  uv_loop_t* loop = uv_default_loop();
  to_work = 1; /* the pool's threads start on first use */
  uv_queue_work(loop, &work_request, no_op, after_work);
  uv_run(loop, UV_RUN_DEFAULT);
  worked = 0;
  to_work = count;
  double start = now();
  uv_queue_work(loop, &work_request, no_op, after_work);
  uv_run(loop, UV_RUN_DEFAULT);
  double elapsed = now() - start;
  printf("round_trips_per_s=%.0f us_per_round_trip=%.2f\n", count / elapsed, elapsed / count * 1e6);
  return 0;
}

int main(int argc, char** argv) {
  const char* mode = "";
  long count = 1000;
  size_t bytes = (size_t)1 << 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--mode") == 0) mode = argv[i + 1];
    if (strcmp(argv[i], "--count") == 0) count = atol(argv[i + 1]);
    if (strcmp(argv[i], "--bytes") == 0) bytes = strtoull(argv[i + 1], NULL, 10);
  }
  if (strcmp(mode, "spawn") == 0) return run_spawn(count);
  if (strcmp(mode, "cat") == 0) return run_cat(bytes);
  if (strcmp(mode, "work") == 0) return run_work(count);
  fprintf(stderr, "usage: %s --mode spawn|cat|work [--count N] [--bytes B]\n", argv[0]);
  return 2;
}
