/* The floor of the pipe benchmark (bench/run-process-peers.sh): B bytes
 * through cat with plain blocking system calls, no event loop: a thread
 * writes the child's stdin while the main thread reads its stdout.
 *
 *   bench-blocking-cat --bytes B
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

#define CHUNK (1 << 18)
static char chunk[CHUNK];
static char buffer[1 << 18];
static size_t total;
static int stdin_write;

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

static void* writer(void* unused) {
  (void)unused;
  size_t sent = 0;
  while (sent < total) {
    size_t n = total - sent < CHUNK ? total - sent : CHUNK;
    ssize_t written = write(stdin_write, chunk, n);
    if (written <= 0) exit(1);
    sent += (size_t)written;
  }
  close(stdin_write);
  return NULL;
}

int main(int argc, char** argv) {
  total = (size_t)1 << 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--bytes") == 0) total = strtoull(argv[i + 1], NULL, 10);
  }
  memset(chunk, 'x', sizeof(chunk));
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) return 1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  char* args[] = {"/bin/cat", NULL};
  double cpu_before = cpu_seconds(RUSAGE_SELF) + cpu_seconds(RUSAGE_CHILDREN);
  double start = now();
  pid_t pid;
  if (posix_spawn(&pid, args[0], &actions, NULL, args, environ)) return 1;
  close(in[0]);
  close(out[1]);
  stdin_write = in[1];
  pthread_t thread;
  pthread_create(&thread, NULL, writer, NULL);
  size_t received = 0;
  for (ssize_t n; (n = read(out[0], buffer, sizeof(buffer))) > 0;) received += (size_t)n;
  pthread_join(thread, NULL);
  int status;
  waitpid(pid, &status, 0);
  double elapsed = now() - start;
  double cpu = cpu_seconds(RUSAGE_SELF) + cpu_seconds(RUSAGE_CHILDREN) - cpu_before;
  if (received != total) {
    fprintf(stderr, "cat: %zu bytes came back of %zu\n", received, total);
    return 1;
  }
  printf("gb_per_s=%.3f cpu_us_per_mib=%.1f\n", total / elapsed / 1e9,
         cpu / ((double)total / (1 << 20)) * 1e6);
  return 0;
}
