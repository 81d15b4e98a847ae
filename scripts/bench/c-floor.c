/*
 * The kernel's own speed, as a floor for bench:netlink: N IPv4 /24 routes
 * (10.0.0.0/24, 10.0.1.0/24, ... as bench:netlink numbers them) added or
 * deleted in table T with protocol P, through one netlink socket, as many
 * messages per sendmsg as fit 256 KiB, no ack asked for (the kernel answers
 * only errors), errors read as they come. Compiled by scripts/bench/netlink.js
 * with the system's cc; run inside the benchmark's namespace.
 *
 *   c-floor add|replace|del N TABLE PROTO GATEWAY|nhid:ID [ORDER]
 *   c-floor nhdel ID      (deletes nexthop object ID, acked: every route on it goes with it)
 *
 * Routes start at 10.0.0.0/24, or at FIRST.0.0.0/24 with C_FLOOR_FIRST_OCTET=FIRST in the
 * environment (bench:e2e numbers its routes from 11.0.0.0/24).
 *
 * ORDER: a file of N little-endian u32 route indexes, the order to send them
 * in (bench:netlink gives krtsync's trie-spread order: the kernel's trie keeps
 * the layout of the order routes went in, and deletes depend on it).
 *
 * Prints one JSON line: {"op":..,"routes":N,"seconds":S,"errors":E}.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef RTA_NH_ID
#define RTA_NH_ID 30
#endif

static unsigned errors;

static void drain(int fd, int block) {
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, block ? 0 : MSG_DONTWAIT);
    if (n <= 0) return;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_ERROR && ((struct nlmsgerr *)NLMSG_DATA(h))->error != 0) errors++;
      if (block && h->nlmsg_type == NLMSG_ERROR && ((struct nlmsgerr *)NLMSG_DATA(h))->error == 0) return; /* the final ack */
    }
    block = 0;
  }
}

static char *put_attr(char *p, unsigned short type, const void *data, unsigned short len) {
  struct rtattr *a = (struct rtattr *)p;
  a->rta_type = type;
  a->rta_len = RTA_LENGTH(len);
  memcpy(RTA_DATA(a), data, len);
  return p + RTA_ALIGN(a->rta_len);
}

/* Deletes one nexthop object and waits for its ack: the kernel deletes the routes on it inside that sendmsg. */
static int nhdel(unsigned id) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) return perror("netlink"), 1;
  struct {
    struct nlmsghdr h;
    unsigned char nh[8]; /* struct nhmsg: family, scope, protocol, resvd, flags */
    struct rtattr a;
    uint32_t id;
  } m = {.h = {.nlmsg_len = sizeof m, .nlmsg_type = 105 /* RTM_DELNEXTHOP */, .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK, .nlmsg_seq = 1}, .a = {.rta_len = RTA_LENGTH(4), .rta_type = 1 /* NHA_ID */}, .id = id};
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (send(fd, &m, sizeof m, 0) < 0) return perror("send"), 1;
  char buf[8192];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int err = n > 0 ? ((struct nlmsgerr *)NLMSG_DATA((struct nlmsghdr *)buf))->error : -1;
  double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("{\"op\":\"nhdel\",\"seconds\":%.3f,\"errors\":%u}\n", s, err != 0);
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "nhdel") == 0) return nhdel((unsigned)strtoul(argv[2], 0, 10));
  if (argc != 6 && argc != 7) {
    fprintf(stderr, "usage: %s add|replace|del N TABLE PROTO GATEWAY|nhid:ID [ORDER] | nhdel ID\n", argv[0]);
    return 2;
  }
  int replace = strcmp(argv[1], "replace") == 0;
  int add = replace || strcmp(argv[1], "add") == 0;
  unsigned n = (unsigned)strtoul(argv[2], 0, 10), table = (unsigned)strtoul(argv[3], 0, 10), proto = (unsigned)strtoul(argv[4], 0, 10);
  unsigned nhid = 0;
  struct in_addr gw = {0};
  if (strncmp(argv[5], "nhid:", 5) == 0) nhid = (unsigned)strtoul(argv[5] + 5, 0, 10);
  else if (inet_pton(AF_INET, argv[5], &gw) != 1) return 2;

  const char *first = getenv("C_FLOOR_FIRST_OCTET");
  unsigned base = (first ? (unsigned)strtoul(first, 0, 10) : 10u) << 24;
  uint32_t *order = 0;
  if (argc == 7) {
    FILE *f = fopen(argv[6], "rb");
    order = malloc((size_t)n * 4);
    if (!f || !order || fread(order, 4, n, f) != n) return perror("order"), 2;
    fclose(f);
  }

  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  int big = 32 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) return perror("netlink"), 1;

  static char buf[256 * 1024];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  unsigned seq = 1, i = 0;
  while (i < n) {
    char *p = buf;
    while (i < n && (size_t)(p - buf) + 128 <= sizeof buf) {
      struct nlmsghdr *h = (struct nlmsghdr *)p;
      struct rtmsg *r = NLMSG_DATA(h);
      memset(h, 0, NLMSG_LENGTH(sizeof *r));
      h->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
      h->nlmsg_flags = NLM_F_REQUEST | (replace ? NLM_F_CREATE | NLM_F_REPLACE : add ? NLM_F_CREATE | NLM_F_EXCL : 0);
      h->nlmsg_seq = seq++;
      r->rtm_family = AF_INET;
      r->rtm_dst_len = 24;
      r->rtm_table = table < 256 ? table : RT_TABLE_UNSPEC;
      r->rtm_protocol = proto;
      r->rtm_scope = add ? RT_SCOPE_UNIVERSE : RT_SCOPE_NOWHERE;
      r->rtm_type = add ? RTN_UNICAST : RTN_UNSPEC;
      char *a = p + NLMSG_LENGTH(sizeof *r);
      uint32_t dst = htonl(base + (order ? order[i] : i) * 256u);
      a = put_attr(a, RTA_TABLE, &table, 4);
      a = put_attr(a, RTA_DST, &dst, 4);
      if (add && nhid) a = put_attr(a, RTA_NH_ID, &nhid, 4);
      else if (add) a = put_attr(a, RTA_GATEWAY, &gw, 4);
      h->nlmsg_len = (unsigned)(a - p);
      p += NLMSG_ALIGN(h->nlmsg_len);
      i++;
    }
    if (send(fd, buf, (size_t)(p - buf), 0) < 0) return perror("send"), 1;
    drain(fd, 0);
  }
  /* One acked request last: its answer comes after every answer before it. */
  struct {
    struct nlmsghdr h;
    struct rtmsg r;
  } fence = {.h = {.nlmsg_len = sizeof fence, .nlmsg_type = RTM_GETROUTE, .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK, .nlmsg_seq = seq}, .r = {.rtm_family = AF_INET}};
  send(fd, &fence, sizeof fence, 0);
  char rbuf[65536];
  for (int done = 0; !done;) {
    ssize_t m = recv(fd, rbuf, sizeof rbuf, 0);
    if (m <= 0) break;
    for (struct nlmsghdr *h = (struct nlmsghdr *)rbuf; NLMSG_OK(h, (size_t)m); h = NLMSG_NEXT(h, m)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      if (h->nlmsg_seq == seq) done = 1;
      else if (((struct nlmsgerr *)NLMSG_DATA(h))->error != 0) errors++;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("{\"op\":\"%s\",\"routes\":%u,\"seconds\":%.3f,\"errors\":%u}\n", argv[1], n, s, errors);
  close(fd);
  return 0;
}
