/*
 * Data-plane probes for bench:failover, compiled by the bench (cc -O2) into its scratch directory.
 * In C so that a probe every 100 us costs the machine little beside the daemon under test, and
 * its send times are taken right at sendto().
 *
 *   failover-probe send PORT RATE RUN OUT < destinations
 *     Sends UDP probes round robin to the IPv4 destinations read from stdin (one dotted quad a
 *     line), RATE a second in bursts every millisecond, until SIGTERM. Payload: magic, RUN, seq, destination index, send
 *     time. OUT gets one record per probe, in seq order, flushed every millisecond: {u64 send ns, i32 errno (0: sent)}.
 *   failover-probe sink PORT OUT
 *     Receives probes on 0.0.0.0:PORT (the namespace routes the probed nets to itself with a
 *     `local` route) until SIGTERM. OUT gets one record per probe: {u32 run, u32 seq, u64 recv ns}.
 *
 * Every time is CLOCK_MONOTONIC, which the bench (process.hrtime) and both sinks share. Records
 * are written in native byte order; the bench reads them on the same machine.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x6b72666fu /* "krfo" */

struct probe {
  uint32_t magic, run, seq, dest;
  uint64_t sent_ns;
};
struct sent_rec {
  uint64_t ns;
  int32_t err;
  uint32_t pad;
};
struct recv_rec {
  uint32_t run, seq;
  uint64_t ns;
};

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static FILE *open_out(const char *path) {
  FILE *f = fopen(path, "wb");
  if (!f) die(path);
  return f;
}

static int run_send(int port, double rate, uint32_t run, const char *out_path) {
  struct sockaddr_in *dst = NULL;
  size_t n = 0, cap = 0;
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) continue;
    if (n == cap && !(dst = realloc(dst, (cap = cap ? cap * 2 : 256) * sizeof *dst))) die("realloc");
    memset(&dst[n], 0, sizeof dst[n]);
    dst[n].sin_family = AF_INET;
    dst[n].sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, line, &dst[n].sin_addr) != 1) {
      fprintf(stderr, "failover-probe: not an IPv4 address: %s\n", line);
      return 2;
    }
    n++;
  }
  if (n == 0 || rate <= 0) {
    fprintf(stderr, "failover-probe: no destinations or no rate\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0) die("socket");
  /* Probes the kernel holds (queued for a neighbour that does not answer) must not block the next
   * ones: with the default send buffer the socket fills up behind a dead link and every later
   * probe fails with EAGAIN at the sender instead of being routed. */
  int sz = 64 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz);
  FILE *out = open_out(out_path);
  /* A burst every millisecond (RATE/1000 probes, the remainder carried): one wake-up per burst costs
   * the machine far less than one per probe, on a VM above all, and the probes of a burst go to
   * consecutive destinations, so each destination is still probed every n / RATE seconds. */
  const uint64_t tick = 1000000u;
  const double per_tick = rate / 1000.0;
  double due = 0;
  uint64_t next = now_ns();
  struct probe p = {MAGIC, run, 0, 0, 0};
  /* Announce the start on stdout: the bench waits for it before it counts on probes. */
  printf("started\n");
  fflush(stdout);
  while (!stop) {
    uint64_t t = now_ns();
    if (t < next) {
      struct timespec ts = {(time_t)(next / 1000000000u), (long)(next % 1000000000u)};
      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
      continue;
    }
    /* Descheduled for longer than a tick: start the schedule again rather than send a long burst. */
    if (t - next > tick) next = t;
    due += per_tick;
    for (; due >= 1; due -= 1) {
      p.dest = p.seq % (uint32_t)n;
      p.sent_ns = now_ns();
      struct sent_rec r = {p.sent_ns, 0, 0};
      if (sendto(fd, &p, sizeof p, 0, (struct sockaddr *)&dst[p.dest], sizeof dst[p.dest]) < 0) r.err = errno;
      fwrite(&r, sizeof r, 1, out);
      p.seq++;
    }
    /* On disk at once: the bench reads the file while the run goes on. */
    fflush(out);
    next += tick;
  }
  fclose(out);
  return 0;
}

static int run_sink(int port, const char *out_path) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  int sz = 64 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz);
  struct timeval tv = {0, 100000}; /* wake up to flush and to see SIGTERM */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  FILE *out = open_out(out_path);
  printf("listening\n");
  fflush(stdout);
  enum { BATCH = 64 };
  struct probe bufs[BATCH];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  while (!stop) {
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = &bufs[i];
      iov[i].iov_len = sizeof bufs[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int got = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
    uint64_t t = now_ns();
    if (got < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) die("recvmmsg");
      fflush(out);
      continue;
    }
    for (int i = 0; i < got; i++) {
      if (msgs[i].msg_len != sizeof(struct probe) || bufs[i].magic != MAGIC) continue;
      struct recv_rec r = {bufs[i].run, bufs[i].seq, t};
      fwrite(&r, sizeof r, 1, out);
    }
    fflush(out);
    /* Let a few bursts queue up: one wake-up for many probes (the bench reads which link a probe came
     * through, not when). */
    usleep(2000);
  }
  fclose(out);
  return 0;
}

int main(int argc, char **argv) {
  struct sigaction sa = {0};
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 6 && strcmp(argv[1], "send") == 0) return run_send(atoi(argv[2]), atof(argv[3]), (uint32_t)strtoul(argv[4], NULL, 10), argv[5]);
  if (argc == 4 && strcmp(argv[1], "sink") == 0) return run_sink(atoi(argv[2]), argv[3]);
  fprintf(stderr, "usage: failover-probe send PORT RATE RUN OUT < destinations | failover-probe sink PORT OUT\n");
  return 2;
}
