// The sendfile floor: sendfile(2) in a loop on a blocking socket, one client
// at a time, then close. What sending a file costs with no event loop at all.
//
// Usage: bench-sendfile-floor-server --file PATH [--host H] [--port P]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  const char* path = NULL;
  int port = 8888;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && strcmp(argv[i], "--host") == 0) {
      host = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--port") == 0) {
      port = atoi(argv[++i]);
    } else if (i + 1 < argc && strcmp(argv[i], "--file") == 0) {
      path = argv[++i];
    } else {
      path = NULL;
      break;
    }
  }
  if (!path) {
    fprintf(stderr, "usage: bench-sendfile-floor-server --file PATH [--host H] [--port P]\n");
    return 2;
  }
  int file = open(path, O_RDONLY | O_CLOEXEC);
  struct stat status;
  if (file < 0 || fstat(file, &status) != 0) {
    perror("bench-sendfile-floor-server: open");
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
    fprintf(stderr, "bench-sendfile-floor-server: bad IPv4 --host\n");
    return 2;
  }
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listener, (struct sockaddr*)&address, sizeof address) != 0 ||
      listen(listener, 64) != 0) {
    perror("bench-sendfile-floor-server: listen");
    return 1;
  }
  for (;;) {
    int client = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EINTR) continue;
      perror("bench-sendfile-floor-server: accept");
      return 1;
    }
    off_t offset = 0;
    while (offset < status.st_size) {
      ssize_t n = sendfile(client, file, &offset, (size_t)(status.st_size - offset));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // the client went away (or the file shrank)
    }
    close(client);
  }
}
