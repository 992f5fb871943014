// The floor for scripts/bench/label.sh at 1 in flight: one blocking keep-alive socket, one
// write per request (the same body every time), reads until Content-Length is in; no JSON, no
// event loop, no framework. Its CPU per request is what the kernel, the loopback TCP and the
// host charge any client, so the rest of a real client's figure is its own code path.
// Usage: label_floor_client PORT COUNT BODY_FILE   -> prints CPU ms per request (getrusage)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static double cpu_seconds(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: %s PORT COUNT BODY_FILE\n", argv[0]); return 2; }
  int port = atoi(argv[1]), count = atoi(argv[2]);
  static char body[1 << 16], request[(1 << 16) + 512], reply[1 << 16];
  FILE *f = fopen(argv[3], "rb");
  if (!f) { perror(argv[3]); return 1; }
  size_t body_len = fread(body, 1, sizeof body, f);
  fclose(f);
  int len = snprintf(request, 512,
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: application/json\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", port, body_len);
  memcpy(request + len, body, body_len);
  len += (int)body_len;

  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(s, (struct sockaddr *)&addr, sizeof addr)) { perror("connect"); return 1; }

  double c0 = cpu_seconds();
  for (int i = 0; i < count; i++) {
    if (write(s, request, len) != len) { perror("write"); return 1; }
    size_t have = 0;
    long need = -1;
    while (need < 0 || (long)have < need) {
      ssize_t n = read(s, reply + have, sizeof reply - 1 - have);
      if (n <= 0) { perror("read"); return 1; }
      have += n;
      reply[have] = 0;
      char *end = strstr(reply, "\r\n\r\n"), *cl = strcasestr(reply, "content-length:");
      if (need < 0 && end && cl) need = (end + 4 - reply) + atol(cl + 15);
    }
  }
  printf("%.3f\n", (cpu_seconds() - c0) * 1000 / count);
  return 0;
}
