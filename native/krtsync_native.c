/*
 * krtsync native addon: sockets only, no message logic.
 *
 * Two socket kinds: AF_NETLINK (NETLINK_ROUTE) and AF_UNIX datagram. A socket
 * is a JS external wrapping `struct ksock`. Everything is non-blocking; no
 * call here ever aborts the process on a socket error: errors are returned as
 * negative errno values (hot paths: send, recv) or thrown as JS errors with
 * `code` = errno name and `errno` = number (setup calls: open, setsockopt).
 *
 * Receive: `recv` drains datagrams with recvmmsg(MSG_DONTWAIT) into a caller
 * buffer. Netlink datagrams are compacted back to back (netlink messages never
 * span datagrams and are 4-byte aligned, so the result is one valid message
 * stream). Unix datagrams are framed as [u32 len][i32 fd or -1][data, padded
 * to 4] so boundaries and SCM_RIGHTS fds survive. `start` puts the fd in a
 * libuv poll handle whose callback drains once per wake-up into the buffer
 * given to `start` and calls the JS callback once with (bytes, errno,
 * writable): the batch, then the error (e.g. ENOBUFS) if one ended the drain.
 *
 * Send: `send` is a plain sendmsg on the calling thread. `sendAsync` sends a
 * list of chunks on a libuv worker thread: the kernel processes a netlink
 * request inside sendmsg, so this takes the kernel's work off the JS thread.
 * The send queue (send_queue.c) does the same on a thread of its own that
 * takes chunks while it sends, for the route pipeline.
 *
 * Only the kernel speaks on our netlink sockets: a datagram whose sender port
 * (nl_pid) is not 0 came from a process (root can unicast to our port, or
 * multicast to the route groups, with a forged RTM_DELROUTE) and is dropped
 * in the drain, counted, and its port remembered for the log (`foreign`).
 *
 * Close is safe with data queued and with a poll running: the poll handle is
 * stopped and closed first, the fd is closed in the close callback, and the
 * JS references are released there. A close during a sendAsync waits for it
 * to finish. An external collected by the GC without close() closes its fd (a
 * poll or a send keeps its external alive through a reference); one finalized
 * while a send still runs (the environment is being torn down) is left to the
 * send's completion, which frees it, so the worker never sees freed memory.
 *
 * Received fds (SCM_RIGHTS) are close-on-exec, and closed here when their
 * datagram is dropped (truncated), so none ever leaks. `recv` and `start`
 * refuse a buffer smaller than one datagram, which could never make progress.
 *
 * `flock` is here because Node has none: the daemon's one-instance lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <malloc.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <node_api.h>
#include <uv.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* Largest netlink datagram the kernel builds for a dump: SKB_WITH_OVERHEAD(32768). */
#define NL_SLOT 32768
/* Unix datagrams: journal entries may be large; bigger ones come as memfds. */
#define UNIX_SLOT 65536
#define MAX_VLEN 64

#include "ksock.h"

static void on_poll(uv_poll_t *h, int status, int events);
static void close_now(struct ksock *s);

/* ------------------------------------------------------------ helpers */

#define CHECK(call)                                                          \
  do {                                                                       \
    if ((call) != napi_ok) {                                                 \
      napi_throw_error(env, "KRT_ERR_NATIVE", "napi call failed: " #call);   \
      return NULL;                                                           \
    }                                                                        \
  } while (0)

static const char *errno_name(int e) {
  switch (e) {
  case EPERM: return "EPERM";
  case ENOENT: return "ENOENT";
  case EINTR: return "EINTR";
  case EBADF: return "EBADF";
  case EAGAIN: return "EAGAIN";
  case ENOMEM: return "ENOMEM";
  case EACCES: return "EACCES";
  case EINVAL: return "EINVAL";
  case EMSGSIZE: return "EMSGSIZE";
  case ENOBUFS: return "ENOBUFS";
  case ECONNREFUSED: return "ECONNREFUSED";
  case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
  case EADDRINUSE: return "EADDRINUSE";
  case ENOTCONN: return "ENOTCONN";
  case ENOPROTOOPT: return "ENOPROTOOPT";
  case ENAMETOOLONG: return "ENAMETOOLONG";
  case EBUSY: return "EBUSY";
  case ECANCELED: return "ECANCELED";
  default: return "EUNKNOWN";
  }
}

napi_value throw_errno(napi_env env, const char *what, int e) {
  char msg[256];
  napi_value code, message, err, num;
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
  napi_create_string_utf8(env, errno_name(e), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &err);
  napi_create_int32(env, e, &num);
  napi_set_named_property(env, err, "errno", num);
  napi_throw(env, err);
  return NULL;
}

napi_value make_int(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

int get_sock(napi_env env, napi_value v, struct ksock **out) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, "KRT_ERR_NATIVE", "not a krtsync socket");
    return 0;
  }
  *out = p;
  if ((*out)->fd < 0) {
    throw_errno(env, "socket is closed", EBADF);
    return 0;
  }
  return 1;
}

int get_i32(napi_env env, napi_value v, int32_t *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, "KRT_ERR_NATIVE", "expected a number");
    return 0;
  }
  return 1;
}

/*
 * Calls the JS function behind `ref` (if still there) from a libuv callback.
 * An exception it throws is the caller's bug, not a socket error: it surfaces
 * as an uncaught exception, like any callback's.
 */
static void call_js(napi_env env, napi_ref ref, size_t argc, napi_value *argv) {
  napi_value cb, global, result;
  if (napi_get_reference_value(env, ref, &cb) != napi_ok || cb == NULL) return;
  napi_get_global(env, &global);
  if (napi_call_function(env, global, cb, argc, argv, &result) == napi_pending_exception) {
    napi_value ex;
    napi_get_and_clear_last_exception(env, &ex);
    napi_fatal_exception(env, ex);
  }
}

/* Bytes of a Buffer/Uint8Array argument. */
static int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is_buf = false;
  napi_is_buffer(env, v, &is_buf);
  if (is_buf) return napi_get_buffer_info(env, v, (void **)data, len) == napi_ok;
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (is_ta) {
    napi_typedarray_type t;
    napi_value ab;
    size_t off;
    if (napi_get_typedarray_info(env, v, &t, len, (void **)data, &ab, &off) != napi_ok) return 0;
    return t == napi_uint8_array;
  }
  napi_throw_type_error(env, "KRT_ERR_NATIVE", "expected a Buffer");
  return 0;
}

static void sock_release_refs(struct ksock *s) {
  if (s->cb_ref) napi_delete_reference(s->env, s->cb_ref);
  if (s->buf_ref) napi_delete_reference(s->env, s->buf_ref);
  if (s->self_ref) napi_delete_reference(s->env, s->self_ref);
  s->cb_ref = s->buf_ref = s->self_ref = NULL;
  s->buf = NULL;
  s->buf_len = 0;
}

static void sock_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct ksock *s = data;
  sendq_destroy(s);
  /* A running send holds a reference, so only an environment teardown gets
   * here while sending: the worker thread still uses s, and the job's
   * completion closes the fd and frees s. */
  if (s->sending) {
    s->finalized = 1;
    return;
  }
  /* A polling socket is referenced by self_ref, so only an environment
   * teardown finalizes it (a worker thread exiting): its poll handle must be
   * closed, or the loop cannot be, and the close callback frees s. A closing
   * one frees itself in on_closed. */
  if (s->polling && !s->closing) {
    sock_release_refs(s);
    s->finalized = 1;
    close_now(s);
    return;
  }
  if (s->polling || s->closing) return;
  if (s->fd >= 0) close(s->fd);
  free(s);
}

static napi_value wrap_sock(napi_env env, int fd, int kind) {
  struct ksock *s = calloc(1, sizeof *s);
  napi_value ext;
  if (!s) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  s->fd = fd;
  s->kind = kind;
  s->env = env;
  if (napi_create_external(env, s, sock_finalize, NULL, &ext) != napi_ok) {
    close(fd);
    free(s);
    return throw_errno(env, "napi_create_external", ENOMEM);
  }
  return ext;
}

/* ------------------------------------------------------------ open */

/*
 * Creates the socket, inside the network namespace at `ns_path` when given:
 * setns to it on this thread, socket(), setns back, all in this one call.
 * Returns fd or -errno. A failure to switch back is reported as EPERM-like
 * error and the fd is not leaked; the thread's namespace is then wrong, which
 * can only happen if /proc/thread-self is gone, so it is reported loudly.
 */
static int socket_in_ns(const char *ns_path, int domain, int type, int proto, int *restore_failed) {
  *restore_failed = 0;
  if (!ns_path) {
    int fd = socket(domain, type, proto);
    return fd < 0 ? -errno : fd;
  }
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return -errno;
  int target = open(ns_path, O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int e = errno;
    close(self);
    return -e;
  }
  int result;
  if (setns(target, CLONE_NEWNET) < 0) {
    result = -errno;
  } else {
    int fd = socket(domain, type, proto);
    result = fd < 0 ? -errno : fd;
    if (setns(self, CLONE_NEWNET) < 0) {
      *restore_failed = 1;
      if (fd >= 0) close(fd);
      result = -errno;
    }
  }
  close(target);
  close(self);
  return result;
}

/* netlinkOpen(protocol, groups: number[], nsPath: string | null) -> socket */
static napi_value netlink_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t proto;
  if (!get_i32(env, argv[0], &proto)) return NULL;
  char ns_path[4096];
  const char *nsp = NULL;
  napi_valuetype t;
  napi_typeof(env, argv[2], &t);
  if (t == napi_string) {
    size_t n;
    CHECK(napi_get_value_string_utf8(env, argv[2], ns_path, sizeof ns_path, &n));
    nsp = ns_path;
  }
  int restore_failed;
  int fd = socket_in_ns(nsp, AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto, &restore_failed);
  if (restore_failed) return throw_errno(env, "setns back to the original namespace failed", -fd);
  if (fd < 0) return throw_errno(env, nsp ? "netlink socket in namespace" : "netlink socket", -fd);
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "netlink bind", e);
  }
  uint32_t n = 0;
  if (napi_get_array_length(env, argv[1], &n) != napi_ok) {
    close(fd);
    napi_throw_type_error(env, "KRT_ERR_NATIVE", "groups must be an array of numbers");
    return NULL;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value g;
    int32_t grp;
    if (napi_get_element(env, argv[1], i, &g) != napi_ok || !get_i32(env, g, &grp)) {
      close(fd);
      return NULL;
    }
    if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof grp) < 0) {
      int e = errno;
      close(fd);
      return throw_errno(env, "NETLINK_ADD_MEMBERSHIP", e);
    }
  }
  return wrap_sock(env, fd, KIND_NETLINK);
}

static int fill_sun(struct sockaddr_un *sun, const char *path, socklen_t *len) {
  size_t n = strlen(path);
  memset(sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  if (n == 0 || n >= sizeof sun->sun_path) return 0;
  memcpy(sun->sun_path, path, n);
  /* A leading '@' names an abstract socket (as systemd's $NOTIFY_SOCKET does). */
  if (path[0] == '@') sun->sun_path[0] = 0;
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1));
  return 1;
}

/* unixOpen(bindPath: string | null) -> socket (AF_UNIX, SOCK_DGRAM) */
static napi_value unix_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "unix socket", errno);
  napi_valuetype t = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &t);
  if (t == napi_string) {
    char path[256];
    size_t n;
    struct sockaddr_un sun;
    socklen_t len;
    if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &n) != napi_ok || !fill_sun(&sun, path, &len)) {
      close(fd);
      return throw_errno(env, "unix bind path", ENAMETOOLONG);
    }
    if (bind(fd, (struct sockaddr *)&sun, len) < 0) {
      int e = errno;
      close(fd);
      return throw_errno(env, "unix bind", e);
    }
  }
  return wrap_sock(env, fd, KIND_UNIX);
}

/* ------------------------------------------------------------ options */

/* setsockoptInt(sock, level, name, value) */
static napi_value sock_setsockopt(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  struct ksock *s;
  int32_t level, name, value;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_sock(env, argv[0], &s) || !get_i32(env, argv[1], &level) || !get_i32(env, argv[2], &name) ||
      !get_i32(env, argv[3], &value))
    return NULL;
  if (setsockopt(s->fd, level, name, &value, sizeof value) < 0) return throw_errno(env, "setsockopt", errno);
  return NULL;
}

/* getsockoptInt(sock, level, name) -> number */
static napi_value sock_getsockopt(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  struct ksock *s;
  int32_t level, name, value = 0;
  socklen_t len = sizeof value;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_sock(env, argv[0], &s) || !get_i32(env, argv[1], &level) || !get_i32(env, argv[2], &name)) return NULL;
  if (getsockopt(s->fd, level, name, &value, &len) < 0) return throw_errno(env, "getsockopt", errno);
  return make_int(env, value);
}

/* portId(sock) -> the netlink port id the kernel bound the socket to (nl_pid). */
static napi_value sock_port_id(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct ksock *s;
  struct sockaddr_nl sa;
  socklen_t len = sizeof sa;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_sock(env, argv[0], &s)) return NULL;
  memset(&sa, 0, sizeof sa);
  if (getsockname(s->fd, (struct sockaddr *)&sa, &len) < 0) return throw_errno(env, "getsockname", errno);
  return make_int(env, sa.nl_pid);
}

/* attachFilter(sock, program): SO_ATTACH_FILTER with a classic BPF program,
 * given as its struct sock_filter array (8 bytes per instruction, host order). */
static napi_value sock_attach_filter(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  struct ksock *s;
  uint8_t *data;
  size_t len;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_sock(env, argv[0], &s)) return NULL;
  if (!get_bytes(env, argv[1], &data, &len) || len == 0 || len % sizeof(struct sock_filter) != 0 ||
      len / sizeof(struct sock_filter) > BPF_MAXINSNS) {
    napi_throw_type_error(env, "KRT_ERR_NATIVE", "expected a BPF program (8 bytes per instruction)");
    return NULL;
  }
  struct sock_fprog prog = {.len = (unsigned short)(len / sizeof(struct sock_filter)), .filter = (struct sock_filter *)data};
  if (setsockopt(s->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) return throw_errno(env, "SO_ATTACH_FILTER", errno);
  return NULL;
}

/* ------------------------------------------------------------ send */

/* One sendmsg of data[0..len) to a netlink port (0: the kernel) and/or groups: bytes sent or -errno. Safe on any thread. */
static ssize_t nl_send_to(int fd, const uint8_t *data, size_t len, uint32_t port, uint32_t groups) {
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_pid = port;
  sa.nl_groups = groups;
  struct iovec iov = {(void *)data, len};
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_name = &sa;
  mh.msg_namelen = sizeof sa;
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  ssize_t r;
  do r = sendmsg(fd, &mh, 0);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

ssize_t nl_send(int fd, const uint8_t *data, size_t len) {
  return nl_send_to(fd, data, len, 0, 0);
}

/* send(sock, buf, off, len[, port, groups]) -> bytes sent or -errno (netlink: to the kernel, or to a port and/or groups) */
static napi_value sock_send(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  struct ksock *s;
  uint8_t *data;
  size_t blen;
  int32_t off, len;
  uint32_t port = 0, groups = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_sock(env, argv[0], &s) || !get_bytes(env, argv[1], &data, &blen) || !get_i32(env, argv[2], &off) ||
      !get_i32(env, argv[3], &len))
    return NULL;
  if (argc >= 6 && (napi_get_value_uint32(env, argv[4], &port) != napi_ok || napi_get_value_uint32(env, argv[5], &groups) != napi_ok)) {
    napi_throw_type_error(env, "KRT_ERR_NATIVE", "port and groups must be numbers");
    return NULL;
  }
  if (off < 0 || len < 0 || (size_t)off + (size_t)len > blen) return make_int(env, -EINVAL);
  return make_int(env, nl_send_to(s->fd, data + off, (size_t)len, port, groups));
}

/*
 * sendAsync(sock, buf, chunks: Int32Array [off0, len0, off1, len1, ...], count, cb(sent, errno))
 *
 * Sends the chunks in order, one sendmsg each, on a libuv worker thread, and
 * calls cb on the JS thread with how many were sent and the errno that
 * stopped the rest (0 when all went). One job per socket at a time. While it
 * runs, the socket's poll is paused: everything the kernel answers to these
 * requests is queued by the time sendmsg returns, and the caller reads it
 * after cb, in the order it chooses (the pipeline drains its notification
 * socket first). The caller must not touch buf's chunks until cb has run.
 * The chunk table is copied when it is checked: the worker sends exactly the
 * chunks that were checked, whatever JS does to the table meanwhile.
 */
struct send_job {
  napi_async_work work;
  struct ksock *s;
  int fd;
  napi_ref sock_ref, buf_ref, cb_ref;
  uint8_t *data;
  int32_t *chunks; /* our copy: count (offset, length) pairs */
  int count;
  int sent;
  int err;
};

/* Releases what a job holds (any of it may not have been created yet). */
static void send_job_free(napi_env env, struct send_job *j) {
  if (j->cb_ref) napi_delete_reference(env, j->cb_ref);
  if (j->buf_ref) napi_delete_reference(env, j->buf_ref);
  if (j->sock_ref) napi_delete_reference(env, j->sock_ref);
  if (j->work) napi_delete_async_work(env, j->work);
  free(j->chunks);
  free(j);
}

static void send_job_execute(napi_env env, void *data) {
  (void)env;
  struct send_job *j = data;
  for (int i = 0; i < j->count; i++) {
    ssize_t r = nl_send(j->fd, j->data + j->chunks[2 * i], (size_t)j->chunks[2 * i + 1]);
    if (r < 0) {
      j->err = (int)-r;
      return;
    }
    j->sent++;
  }
}

static void send_job_complete(napi_env env, napi_status status, void *data) {
  struct send_job *j = data;
  struct ksock *s = j->s;
  s->sending = 0;
  if (status != napi_ok && j->err == 0) j->err = ECANCELED;
  if (s->finalized) {
    /* Collected during the send (environment teardown): nothing in JS can see it any more. */
    if (s->fd >= 0) close(s->fd);
    free(s);
    send_job_free(env, j);
    return;
  }
  if (s->close_pending) {
    s->close_pending = 0;
    close_now(s);
  } else if (s->polling && !s->closing) {
    uv_poll_start(&s->poll, UV_READABLE | (s->want_writable ? UV_WRITABLE : 0), on_poll);
  }
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[2] = {make_int(env, j->sent), make_int(env, j->err)};
  call_js(env, j->cb_ref, 2, argv);
  napi_close_handle_scope(env, scope);
  send_job_free(env, j);
}

static napi_value sock_send_async(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  struct ksock *s;
  uint8_t *data;
  size_t blen;
  int32_t count;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_sock(env, argv[0], &s) || !get_bytes(env, argv[1], &data, &blen) || !get_i32(env, argv[3], &count)) return NULL;
  if (s->kind != KIND_NETLINK) return throw_errno(env, "sendAsync: not a netlink socket", EINVAL);
  if (s->sending) return throw_errno(env, "sendAsync: a send is already running on this socket", EBUSY);
  if (s->q) return throw_errno(env, "sendAsync: the socket has a send queue", EBUSY);
  if (s->closing || s->close_pending) return throw_errno(env, "socket is closed", EBADF);
  napi_typedarray_type t;
  size_t clen, coff;
  int32_t *chunks;
  napi_value ab;
  CHECK(napi_get_typedarray_info(env, argv[2], &t, &clen, (void **)&chunks, &ab, &coff));
  if (t != napi_int32_array || count < 0 || (size_t)count * 2 > clen) {
    napi_throw_type_error(env, "KRT_ERR_NATIVE", "chunks must be an Int32Array of count (offset, length) pairs");
    return NULL;
  }
  napi_valuetype cbt;
  CHECK(napi_typeof(env, argv[4], &cbt));
  if (cbt != napi_function) {
    napi_throw_type_error(env, "KRT_ERR_NATIVE", "expected a callback");
    return NULL;
  }
  struct send_job *j = calloc(1, sizeof *j);
  if (!j) return throw_errno(env, "calloc", ENOMEM);
  j->chunks = malloc(sizeof(int32_t) * 2 * (size_t)(count > 0 ? count : 1));
  if (!j->chunks) {
    free(j);
    return throw_errno(env, "malloc", ENOMEM);
  }
  memcpy(j->chunks, chunks, sizeof(int32_t) * 2 * (size_t)count);
  /* Checked on the copy, which is what the worker sends. */
  for (int32_t i = 0; i < count; i++) {
    int32_t off = j->chunks[2 * i], len = j->chunks[2 * i + 1];
    if (off < 0 || len <= 0 || (size_t)off + (size_t)len > blen) {
      send_job_free(env, j);
      return throw_errno(env, "sendAsync: chunk outside the buffer", EINVAL);
    }
  }
  j->s = s;
  j->fd = s->fd;
  j->data = data;
  j->count = count;
  napi_value name;
  if (napi_create_reference(env, argv[0], 1, &j->sock_ref) != napi_ok || napi_create_reference(env, argv[1], 1, &j->buf_ref) != napi_ok ||
      napi_create_reference(env, argv[4], 1, &j->cb_ref) != napi_ok ||
      napi_create_string_utf8(env, "krtsync.sendAsync", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, send_job_execute, send_job_complete, j, &j->work) != napi_ok) {
    send_job_free(env, j);
    return throw_errno(env, "sendAsync: napi setup", ENOMEM);
  }
  if (s->polling && !s->closing) uv_poll_stop(&s->poll);
  s->sending = 1;
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    s->sending = 0;
    if (s->polling && !s->closing) uv_poll_start(&s->poll, UV_READABLE | (s->want_writable ? UV_WRITABLE : 0), on_poll);
    send_job_free(env, j);
    return throw_errno(env, "sendAsync: queue", ENOMEM);
  }
  return NULL;
}

/* unixSend(sock, path, buf, off, len, fdToPass) -> bytes or -errno; fdToPass < 0 sends no fd. */
static napi_value unix_send(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  struct ksock *s;
  uint8_t *data;
  size_t blen, n;
  int32_t off, len, pass_fd;
  char path[256];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_sock(env, argv[0], &s) || !get_bytes(env, argv[2], &data, &blen) || !get_i32(env, argv[3], &off) ||
      !get_i32(env, argv[4], &len) || !get_i32(env, argv[5], &pass_fd))
    return NULL;
  CHECK(napi_get_value_string_utf8(env, argv[1], path, sizeof path, &n));
  if (off < 0 || len < 0 || (size_t)off + (size_t)len > blen) return make_int(env, -EINVAL);
  struct sockaddr_un sun;
  socklen_t slen;
  if (!fill_sun(&sun, path, &slen)) return make_int(env, -ENAMETOOLONG);
  struct iovec iov = {data + off, (size_t)len};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } cm;
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_name = &sun;
  mh.msg_namelen = slen;
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (pass_fd >= 0) {
    memset(&cm, 0, sizeof cm);
    mh.msg_control = cm.buf;
    mh.msg_controllen = sizeof cm.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
  }
  ssize_t r;
  do r = sendmsg(s->fd, &mh, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return make_int(env, r < 0 ? -errno : r);
}

/* memfdFromBuffer(name, buf) -> fd: a sealed memfd holding buf (for journal entries too big for one datagram). */
static napi_value memfd_from_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char name[64];
  size_t n, blen;
  uint8_t *data;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_string_utf8(env, argv[0], name, sizeof name, &n));
  if (!get_bytes(env, argv[1], &data, &blen)) return NULL;
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return throw_errno(env, "memfd_create", errno);
  size_t done = 0;
  while (done < blen) {
    ssize_t w = write(fd, data + done, blen - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int e = errno;
      close(fd);
      return throw_errno(env, "memfd write", e);
    }
    done += (size_t)w;
  }
  /* journald refuses unsealed memfds. */
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "memfd seal", e);
  }
  return make_int(env, fd);
}

/* closeFd(fd): for fds handed out by memfdFromBuffer or received with SCM_RIGHTS. */
static napi_value close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_i32(env, argv[0], &fd)) return NULL;
  if (fd >= 0) close(fd);
  return NULL;
}

/* ------------------------------------------------------------ receive */

/* Closes every fd a datagram's control data carries, but `keep` (-1: none). */
static void close_passed_fds(struct msghdr *mh, int keep) {
  struct cmsghdr *c;
  for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int nfd = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int k = 0; k < nfd; k++) {
      int fdk;
      memcpy(&fdk, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
      if (fdk != keep) close(fdk);
    }
  }
}

/* The first fd a datagram carries, or -1. */
static int first_passed_fd(struct msghdr *mh) {
  struct cmsghdr *c;
  for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int fd;
      memcpy(&fd, CMSG_DATA(c), sizeof(int));
      return fd;
    }
  }
  return -1;
}

/* Smallest buffer a drain can make progress with: one whole datagram (and its frame). */
static size_t min_recv_buffer(const struct ksock *s) {
  return s->kind == KIND_UNIX ? UNIX_SLOT + 8 : NL_SLOT;
}

/*
 * Drains datagrams into buf[0..cap). Returns bytes stored; *err is 0 when the
 * socket ran dry (EAGAIN) or the buffer filled up, ENOBUFS when the kernel said
 * it dropped messages (the drain reads on past it: the socket stays usable),
 * else the errno that stopped the drain.
 * A netlink datagram cut short (MSG_TRUNC) is dropped and reported as EMSGSIZE;
 * one sent by a process rather than the kernel (nl_pid != 0) is dropped and
 * counted. A unix datagram keeps its first passed fd (close-on-exec); any other,
 * and every fd of a dropped datagram, is closed here.
 */
static size_t drain(struct ksock *s, uint8_t *buf, size_t cap, int *err, int *dry) {
  struct mmsghdr msgs[MAX_VLEN];
  struct iovec iovs[MAX_VLEN];
  struct sockaddr_nl from[MAX_VLEN];
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * 4)];
  } cms[MAX_VLEN];
  const int is_unix = s->kind == KIND_UNIX;
  const size_t slot = is_unix ? UNIX_SLOT : NL_SLOT;
  const size_t hdr = is_unix ? 8 : 0;
  size_t w = 0;
  int overflowed = 0;
  *err = 0;
  *dry = 0;
  for (;;) {
    size_t room = cap - w;
    int vlen = (int)(room / (slot + hdr));
    if (vlen > MAX_VLEN) vlen = MAX_VLEN;
    if (vlen <= 0) { /* full: the poll fires again for the rest */
      if (overflowed) *err = ENOBUFS;
      return w;
    }
    memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)vlen);
    for (int i = 0; i < vlen; i++) {
      iovs[i].iov_base = buf + w + (size_t)i * (slot + hdr) + hdr;
      iovs[i].iov_len = slot;
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      if (is_unix) {
        msgs[i].msg_hdr.msg_control = cms[i].buf;
        msgs[i].msg_hdr.msg_controllen = sizeof cms[i].buf;
      } else {
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      }
    }
    int got = recvmmsg(s->fd, msgs, (unsigned)vlen, MSG_DONTWAIT | MSG_CMSG_CLOEXEC, NULL);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        /* The kernel reports an overflow before what is still queued, and keeps
         * dropping every later message (NETLINK_S_CONGESTED) until a read empties
         * the queue: read on now, so it is listening again before anyone acts on
         * the overflow (a resync must not miss a change made meanwhile). */
        overflowed = 1;
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) *dry = 1;
      else *err = errno;
      if (overflowed && *err == 0) *err = ENOBUFS;
      return w;
    }
    /* Compact: datagram i moves down to w; its slot never lies below w. */
    for (int i = 0; i < got; i++) {
      size_t n = msgs[i].msg_len;
      uint8_t *src = (uint8_t *)iovs[i].iov_base;
      if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        if (is_unix) close_passed_fds(&msgs[i].msg_hdr, -1);
        *err = EMSGSIZE;
        continue;
      }
      if (is_unix) {
        int32_t passed = first_passed_fd(&msgs[i].msg_hdr);
        close_passed_fds(&msgs[i].msg_hdr, passed); /* one fd per datagram is all the journal protocol uses */
        uint32_t len32 = (uint32_t)n;
        memmove(buf + w + hdr, src, n);
        memcpy(buf + w, &len32, 4);
        memcpy(buf + w + 4, &passed, 4);
        w += hdr + ((n + 3) & ~(size_t)3);
      } else {
        if (msgs[i].msg_hdr.msg_namelen >= sizeof(struct sockaddr_nl) && from[i].nl_pid != 0) {
          s->foreign++;
          s->foreign_port = from[i].nl_pid;
          continue;
        }
        memmove(buf + w, src, n);
        w += (n + 3) & ~(size_t)3;
      }
    }
    if (*err) return w; /* EMSGSIZE: it wins over an overflow, both mean a resync */
    if (got < vlen) {
      /* Short batch: most likely dry; the next round confirms with EAGAIN cheaply. */
      continue;
    }
  }
}

/* recv(sock, buf, status: Int32Array) -> bytes; status[0] = errno or 0, status[1] = 1 when the socket ran dry. */
static napi_value sock_recv(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  struct ksock *s;
  uint8_t *data;
  size_t blen;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_sock(env, argv[0], &s) || !get_bytes(env, argv[1], &data, &blen)) return NULL;
  napi_typedarray_type t;
  size_t slen, soff;
  int32_t *status;
  napi_value ab;
  CHECK(napi_get_typedarray_info(env, argv[2], &t, &slen, (void **)&status, &ab, &soff));
  if (t != napi_int32_array || slen < 2) {
    napi_throw_type_error(env, "KRT_ERR_NATIVE", "status must be an Int32Array(2)");
    return NULL;
  }
  /* A smaller buffer holds no datagram: the drain would return 0, not dry, forever. */
  if (blen < min_recv_buffer(s)) return throw_errno(env, "receive buffer too small for one datagram", EINVAL);
  int err, dry;
  size_t n = drain(s, data, blen, &err, &dry);
  status[0] = err;
  status[1] = dry;
  return make_int(env, (int64_t)n);
}

static void on_closed(uv_handle_t *h) {
  struct ksock *s = h->data;
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  if (s->finalized) {
    /* Finalized while polling (environment teardown): nothing in JS can see it any more. */
    free(s);
    return;
  }
  sock_release_refs(s);
  s->polling = 0;
  /* The external may still be reachable from JS: it now reports EBADF. It is
   * freed by its finalizer; mark closing done so the finalizer frees it. */
  s->closing = 0;
}

static void on_poll(uv_poll_t *h, int status, int events) {
  struct ksock *s = h->data;
  if (s->closing || !s->polling) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  int err = 0, dry = 0, writable = 0;
  size_t n = 0;
  if (status < 0) {
    /* libuv turns POLLERR into UV_EBADF and stops the handle. On a netlink
     * socket POLLERR means a pending socket error, typically ENOBUFS after an
     * overflow: the socket is fine. Drain (recvmmsg returns and clears the real
     * error), then poll again unless the fd really is bad. */
    n = drain(s, s->buf, s->buf_len, &err, &dry);
    if (err == 0) {
      int soerr = 0;
      socklen_t l = sizeof soerr;
      if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &l) == 0 && soerr != 0) err = soerr;
      else if (n == 0 && !dry) err = -status;
    }
    if (err != EBADF) uv_poll_start(&s->poll, UV_READABLE | (s->want_writable ? UV_WRITABLE : 0), on_poll);
  } else {
    if (events & UV_READABLE) n = drain(s, s->buf, s->buf_len, &err, &dry);
    if (events & UV_WRITABLE) writable = 1;
  }
  napi_value argv[3];
  argv[0] = make_int(env, (int64_t)n);
  argv[1] = make_int(env, err);
  napi_get_boolean(env, writable, &argv[2]);
  call_js(env, s->cb_ref, 3, argv);
  napi_close_handle_scope(env, scope);
}

/* start(sock, buf, cb(bytes, errno, writable)) */
static napi_value sock_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  struct ksock *s;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_sock(env, argv[0], &s)) return NULL;
  if (s->polling) return throw_errno(env, "socket is already polling", EINVAL);
  uint8_t *data;
  size_t blen;
  if (!get_bytes(env, argv[1], &data, &blen)) return NULL;
  if (blen < min_recv_buffer(s)) return throw_errno(env, "receive buffer too small for one datagram", EINVAL);
  napi_valuetype cbt;
  CHECK(napi_typeof(env, argv[2], &cbt));
  if (cbt != napi_function) {
    napi_throw_type_error(env, "KRT_ERR_NATIVE", "expected a callback");
    return NULL;
  }
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  /* References first: nothing can fail after uv_poll_init but uv_poll_start, whose path closes the handle. */
  if (napi_create_reference(env, argv[0], 1, &s->self_ref) != napi_ok || napi_create_reference(env, argv[1], 1, &s->buf_ref) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &s->cb_ref) != napi_ok) {
    sock_release_refs(s);
    return throw_errno(env, "start: napi references", ENOMEM);
  }
  int r = uv_poll_init(loop, &s->poll, s->fd);
  if (r < 0) {
    sock_release_refs(s);
    return throw_errno(env, "uv_poll_init", -r);
  }
  s->poll.data = s;
  s->buf = data;
  s->buf_len = blen;
  s->polling = 1;
  r = uv_poll_start(&s->poll, UV_READABLE | (s->want_writable ? UV_WRITABLE : 0), on_poll);
  if (r < 0) {
    s->closing = 1;
    uv_close((uv_handle_t *)&s->poll, on_closed);
    return throw_errno(env, "uv_poll_start", -r);
  }
  return NULL;
}

/* wantWritable(sock, bool): also wake up (with writable=true) when the socket can take more. */
static napi_value sock_want_writable(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  struct ksock *s;
  bool want;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_sock(env, argv[0], &s)) return NULL;
  CHECK(napi_get_value_bool(env, argv[1], &want));
  s->want_writable = want;
  if (s->polling && !s->sending) uv_poll_start(&s->poll, UV_READABLE | (want ? UV_WRITABLE : 0), on_poll);
  return NULL;
}

/* ref(sock, bool): whether a polling socket keeps the event loop alive (a monitor should not). */
static napi_value sock_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  struct ksock *s;
  bool ref;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_sock(env, argv[0], &s)) return NULL;
  CHECK(napi_get_value_bool(env, argv[1], &ref));
  if (s->polling) {
    if (ref) uv_ref((uv_handle_t *)&s->poll);
    else uv_unref((uv_handle_t *)&s->poll);
  }
  return NULL;
}

static void close_now(struct ksock *s) {
  if (s->polling) {
    s->closing = 1;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_closed);
  } else {
    close(s->fd);
    s->fd = -1;
  }
}

/* close(sock): idempotent; safe with data queued and while polling (also from inside the poll callback). */
static napi_value sock_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *p = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (napi_get_value_external(env, argv[0], &p) != napi_ok || !p) return NULL;
  struct ksock *s = p;
  sendq_destroy(s);
  if (s->closing || s->fd < 0) return NULL;
  if (s->sending) s->close_pending = 1; /* the worker thread is using the fd */
  else close_now(s);
  return NULL;
}

/* fd(sock) -> number, or -1 once closed. */
static napi_value sock_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *p = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (napi_get_value_external(env, argv[0], &p) != napi_ok || !p) return make_int(env, -1);
  return make_int(env, ((struct ksock *)p)->fd);
}

/* foreign(sock) -> [datagrams dropped because a process sent them, the last one's port] */
static napi_value sock_foreign(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], arr;
  struct ksock *s;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_sock(env, argv[0], &s)) return NULL;
  CHECK(napi_create_array_with_length(env, 2, &arr));
  CHECK(napi_set_element(env, arr, 0, make_int(env, s->foreign)));
  CHECK(napi_set_element(env, arr, 1, make_int(env, s->foreign_port)));
  return arr;
}

/* flock(fd, op) -> 0 or -errno (LOCK_EX | LOCK_NB: -EWOULDBLOCK when another holds it). */
static napi_value fd_flock(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd, op;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_i32(env, argv[0], &fd) || !get_i32(env, argv[1], &op)) return NULL;
  int r;
  do r = flock(fd, op);
  while (r < 0 && errno == EINTR);
  return make_int(env, r < 0 ? -errno : 0);
}

/*
 * mallopt(M_MMAP_THRESHOLD, bytes) -> 1 when set, 0 when the C library has no such setting.
 * Setting it also turns off glibc's dynamic threshold, which rises to the size of every large
 * block freed (up to 32 MiB) and from then on keeps blocks of that size in the heap, where
 * freeing them returns nothing to the system.
 */
static napi_value malloc_mmap_threshold(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t bytes;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_i32(env, argv[0], &bytes)) return NULL;
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
  return make_int(env, mallopt(M_MMAP_THRESHOLD, bytes) == 1 ? 1 : 0);
#else
  (void)bytes;
  return make_int(env, 0);
#endif
}

/* ------------------------------------------------------------ module */

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"netlinkOpen", NULL, netlink_open, NULL, NULL, NULL, napi_default, NULL},
      {"unixOpen", NULL, unix_open, NULL, NULL, NULL, napi_default, NULL},
      {"setsockoptInt", NULL, sock_setsockopt, NULL, NULL, NULL, napi_default, NULL},
      {"getsockoptInt", NULL, sock_getsockopt, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, sock_send, NULL, NULL, NULL, napi_default, NULL},
      {"sendAsync", NULL, sock_send_async, NULL, NULL, NULL, napi_default, NULL},
      {"sendQueueOpen", NULL, sock_send_queue_open, NULL, NULL, NULL, napi_default, NULL},
      {"sendQueuePush", NULL, sock_send_queue_push, NULL, NULL, NULL, napi_default, NULL},
      {"sendQueueClear", NULL, sock_send_queue_clear, NULL, NULL, NULL, napi_default, NULL},
      {"unixSend", NULL, unix_send, NULL, NULL, NULL, napi_default, NULL},
      {"memfdFromBuffer", NULL, memfd_from_buffer, NULL, NULL, NULL, napi_default, NULL},
      {"closeFd", NULL, close_fd, NULL, NULL, NULL, napi_default, NULL},
      {"recv", NULL, sock_recv, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, sock_start, NULL, NULL, NULL, napi_default, NULL},
      {"wantWritable", NULL, sock_want_writable, NULL, NULL, NULL, napi_default, NULL},
      {"ref", NULL, sock_ref, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, sock_close, NULL, NULL, NULL, napi_default, NULL},
      {"fd", NULL, sock_fd, NULL, NULL, NULL, napi_default, NULL},
      {"portId", NULL, sock_port_id, NULL, NULL, NULL, napi_default, NULL},
      {"attachFilter", NULL, sock_attach_filter, NULL, NULL, NULL, napi_default, NULL},
      {"foreign", NULL, sock_foreign, NULL, NULL, NULL, napi_default, NULL},
      {"flock", NULL, fd_flock, NULL, NULL, NULL, napi_default, NULL},
      {"mallocMmapThreshold", NULL, malloc_mmap_threshold, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
