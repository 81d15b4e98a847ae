/*
 * What the addon's two files share: the socket every call works on, and the
 * helpers both use. krtsync_native.c holds the sockets, send_queue.c the
 * send queue (a sender thread per netlink socket).
 */
#ifndef KRTSYNC_KSOCK_H
#define KRTSYNC_KSOCK_H
#include <node_api.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

enum { KIND_NETLINK = 1, KIND_UNIX = 2 };

struct ksock {
  int fd;
  int kind;
  int polling;
  int closing;
  int want_writable;
  int sending;       /* a sendAsync job is running on a worker thread */
  int close_pending; /* close() came while sending: done when the job completes */
  int finalized;     /* the external was collected while sending or polling (environment teardown): the job's completion, or the poll's close, frees it */
  uint32_t foreign;  /* netlink datagrams dropped because a process, not the kernel, sent them */
  uint32_t foreign_port; /* the last such sender's port */
  uv_poll_t poll;
  napi_env env;
  napi_ref self_ref; /* keeps the external alive while polling */
  napi_ref cb_ref;
  napi_ref buf_ref;
  uint8_t *buf;
  size_t buf_len;
  struct sendq *q; /* the send queue and its sender thread (send_queue.c), or NULL */
};

struct sendq;

napi_value throw_errno(napi_env env, const char *what, int e);
napi_value make_int(napi_env env, int64_t v);
int get_sock(napi_env env, napi_value v, struct ksock **out);
int get_i32(napi_env env, napi_value v, int32_t *out);
/* One sendmsg of data[0..len) to the kernel: bytes sent or -errno. Safe on any thread. */
ssize_t nl_send(int fd, const uint8_t *data, size_t len);

/* send_queue.c */
napi_value sock_send_queue_open(napi_env env, napi_callback_info info);
napi_value sock_send_queue_push(napi_env env, napi_callback_info info);
napi_value sock_send_queue_clear(napi_env env, napi_callback_info info);
/* Stops the sender thread (waiting for a sendmsg it is inside) and releases the queue; on the JS thread. */
void sendq_destroy(struct ksock *s);

#endif
