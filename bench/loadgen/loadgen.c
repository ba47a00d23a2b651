// The load generator: the same small C program drives every echo server.
//
// Modes (one result line of key=value pairs on stdout):
//   pingpong  C connections, each sends an S-byte message, waits for the whole
//             echo, verifies every byte, and sends the next one. Runs --warmup
//             seconds, then measures for --duration seconds (or, with
//             --requests N, runs exactly N round trips in all and measures them).
//             Reports requests/s, MB/s (S x requests/s, one way), p50/p99
//             round-trip latency.
//   bulk      one connection; --bytes each way (default 1 GiB), sending and
//             receiving at once, as fast as the echo server's flow control
//             allows; every byte verified. Reports GB/s.
//   idle      opens --conns connections, sends one byte on each and reads its
//             echo, then holds them all open and reports the server's RSS growth
//             per connection.
//   udp       --conns UDP senders (each its own connected socket), each keeping
//             --window S-byte datagrams in flight to a UDP echo server: every
//             echo is verified and replaced by a new datagram (recvmmsg and
//             sendmmsg batches). A datagram not echoed within --loss-ms is
//             counted lost and replaced, so loss never stalls the run. Reports
//             datagrams/s (echoes), lost and late ones, p50/p99 round trip;
//             with --requests N, exactly N datagrams are sent.
//   sink      one connection to a server that sends a file and closes (the
//             sendfile benchmark): reads to EOF, verifies every byte against
//             the pattern `--mode make-file` wrote, checks that --bytes came.
//             Reports GB/s; the server's CPU per MiB.
//   make-file writes --bytes of the bulk pattern to --file (for sink).
// With --server-pid, it also reports the server's CPU time (user + sys, from
// /proc/<pid>/stat) over the measured window, per request, and its own CPU share
// over the same window (near 1.0 means the load generator was the limit).
//
// --unix PATH connects to a Unix stream socket instead of TCP (the same modes).
//
// Single-threaded, level-triggered epoll, non-blocking sockets, TCP_NODELAY.
//
// The modes are in files of their own (loadgen.h names them); this one reads
// the command line.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

static const char kUsage[] =
    "usage: loadgen [--host H] [--port P | --unix PATH] [--server-pid PID]\n"
    "               --mode pingpong|bulk|idle|udp|sink|make-file\n"
    "  pingpong: [--conns C] [--size BYTES] [--warmup S] [--duration S] [--requests N]\n"
    "  bulk:     [--bytes BYTES]\n"
    "  idle:     [--conns N] [--hold S]\n"
    "  udp:      [--conns SENDERS] [--size BYTES] [--window N] [--loss-ms MS] [--warmup S]\n"
    "            [--duration S] [--requests N]\n"
    "  sink:     [--bytes BYTES]   make-file: --file PATH [--bytes BYTES]\n";

int main(int argc, char** argv) {
  const char* mode = "pingpong";
  int conns = 1;
  size_t size = 1024;
  double warmup = 0.5, duration = 2.0, hold = 0.5, loss_ms = 200;
  int window = 8;
  const char* file = NULL;
  long long requests = 0;
  unsigned long long bytes = 1ull << 30;
  for (int i = 1; i < argc; ++i) {
    const char* name = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : NULL;
    if (!value) {
      fprintf(stderr, "loadgen: option %s needs a value\n%s", name, kUsage);
      return 2;
    }
    ++i;
    if (strcmp(name, "--host") == 0) {
      host = value;
    } else if (strcmp(name, "--port") == 0) {
      port = atoi(value);
    } else if (strcmp(name, "--unix") == 0) {
      unix_path = value;
    } else if (strcmp(name, "--server-pid") == 0) {
      server_pid = atoi(value);
    } else if (strcmp(name, "--mode") == 0) {
      mode = value;
    } else if (strcmp(name, "--conns") == 0) {
      conns = atoi(value);
    } else if (strcmp(name, "--size") == 0) {
      size = (size_t)atol(value);
    } else if (strcmp(name, "--warmup") == 0) {
      warmup = atof(value);
    } else if (strcmp(name, "--duration") == 0) {
      duration = atof(value);
    } else if (strcmp(name, "--requests") == 0) {
      requests = atoll(value);
    } else if (strcmp(name, "--bytes") == 0) {
      bytes = strtoull(value, NULL, 10);
    } else if (strcmp(name, "--hold") == 0) {
      hold = atof(value);
    } else if (strcmp(name, "--file") == 0) {
      file = value;
    } else if (strcmp(name, "--window") == 0) {
      window = atoi(value);
    } else if (strcmp(name, "--loss-ms") == 0) {
      loss_ms = atof(value);
    } else {
      fprintf(stderr, "loadgen: unknown option %s\n%s", name, kUsage);
      return 2;
    }
  }
  if (conns < 1 || size < 1 || bytes < 1) {
    fprintf(stderr, "loadgen: --conns, --size and --bytes must be positive\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  if (strcmp(mode, "pingpong") == 0) {
    run_pingpong(conns, size, warmup, duration, requests);
  } else if (strcmp(mode, "bulk") == 0) {
    run_bulk(bytes);
  } else if (strcmp(mode, "idle") == 0) {
    run_idle(conns, hold);
  } else if (strcmp(mode, "sink") == 0) {
    run_sink(bytes);
  } else if (strcmp(mode, "make-file") == 0) {
    make_file(file, bytes);
  } else if (strcmp(mode, "udp") == 0) {
    run_udp(conns, size, window, loss_ms, warmup, duration, requests);
  } else {
    fprintf(stderr, "loadgen: unknown mode '%s'\n%s", mode, kUsage);
    return 2;
  }
  return 0;
}
