/*
 * The send queue: a sender thread per netlink socket that sends chunks of one
 * buffer, in the order they were queued, one sendmsg each.
 *
 * The kernel does a route change inside sendmsg, on the sender's thread. With
 * `sendAsync` the JS thread handed over a list of chunks and the worker, once
 * done, waited for the JS thread to run its callback and hand over the next
 * list: on a loaded machine the kernel's work stopped at every hand-off until
 * the JS thread was scheduled. Here the JS thread queues each chunk the
 * moment it is encoded, also while the sender is inside sendmsg, and the
 * sender goes on with the next one without waiting for JS.
 *
 *   sendQueueOpen(sock, buf, cb(done, errno)) starts the thread. cb runs on
 *     the JS thread after chunks were sent (wake-ups coalesce: one call may
 *     stand for several chunks): `done` counts the chunks sent since the
 *     open, `errno` is the error that halted the queue, or 0.
 *   sendQueuePush(sock, off, len) queues buf[off..off+len).
 *   sendQueueClear(sock) after a halt: drops every chunk not sent (the one
 *     that failed included), resumes, and returns how many it dropped.
 *
 * A chunk is sent whole or not at all (netlink sendmsg); after an error
 * nothing more is sent until the JS thread has seen it and cleared, so the
 * chunks still go in order. The poll of the socket keeps running: answers are
 * read on the JS thread while the sender sends (the route pipeline reads a
 * batch of answers, then drains its notification socket, then handles them:
 * every notification of a change made before an answered request is then
 * seen first, docs/netlink.md). The buffer is held by a reference until the
 * queue is closed; JS must not write a chunk between its push and the `done`
 * that counts it.
 *
 * Close (and the finalizer, at environment teardown) stops the thread and
 * waits for it: at most one sendmsg the kernel is working through. A socket
 * with a queue refuses sendAsync, and one with a sendAsync running refuses a
 * queue: two senders on one socket would lose the order.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include <uv.h>
#include "ksock.h"

/* Chunks queued and not sent at most; the route pipeline's ring has 8-32. */
#define SENDQ_CAP 256

struct sendq {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uv_async_t async;
  napi_env env;
  napi_ref buf_ref, cb_ref;
  napi_async_context ctx;
  int fd;
  uint8_t *data;
  size_t len;
  /* Under mu. */
  uint64_t pushed; /* chunks queued since the open */
  uint64_t sent;   /* chunks sent since the open; the next to send is sent % SENDQ_CAP */
  int err;         /* errno that halted the queue, or 0 */
  int stop;
  int32_t off[SENDQ_CAP], clen[SENDQ_CAP];
};

static void *sendq_main(void *arg) {
  struct sendq *q = arg;
  pthread_mutex_lock(&q->mu);
  for (;;) {
    while (!q->stop && (q->err != 0 || q->sent == q->pushed)) pthread_cond_wait(&q->cv, &q->mu);
    if (q->stop) break;
    size_t i = (size_t)(q->sent % SENDQ_CAP);
    int32_t off = q->off[i], len = q->clen[i];
    pthread_mutex_unlock(&q->mu);
    ssize_t r = nl_send(q->fd, q->data + off, (size_t)len);
    pthread_mutex_lock(&q->mu);
    if (r < 0) q->err = (int)-r;
    else q->sent++;
    /* Coalesces: the JS thread reads the state when its callback runs. */
    uv_async_send(&q->async);
  }
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

static void sendq_on_async(uv_async_t *h) {
  struct sendq *q = h->data;
  napi_env env = q->env;
  pthread_mutex_lock(&q->mu);
  uint64_t sent = q->sent;
  int err = q->err;
  pthread_mutex_unlock(&q->mu);
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, result, argv[2];
  if (napi_get_reference_value(env, q->cb_ref, &cb) == napi_ok && cb != NULL) {
    napi_get_global(env, &recv);
    argv[0] = make_int(env, (int64_t)sent);
    argv[1] = make_int(env, err);
    /* A callback scope: the microtasks JS queues here run when it returns. */
    if (napi_make_callback(env, q->ctx, recv, cb, 2, argv, &result) == napi_pending_exception) {
      napi_value ex;
      napi_get_and_clear_last_exception(env, &ex);
      napi_fatal_exception(env, ex);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void sendq_free(uv_handle_t *h) {
  struct sendq *q = h->data;
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->cv);
  free(q);
}

void sendq_destroy(struct ksock *s) {
  struct sendq *q = s->q;
  if (q == NULL) return;
  s->q = NULL;
  pthread_mutex_lock(&q->mu);
  q->stop = 1;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
  pthread_join(q->thread, NULL);
  napi_delete_reference(q->env, q->cb_ref);
  napi_delete_reference(q->env, q->buf_ref);
  napi_async_destroy(q->env, q->ctx);
  /* Cancels a wake-up still pending; q is freed once libuv is done with the handle. */
  uv_close((uv_handle_t *)&q->async, sendq_free);
}

/* sendQueueOpen(sock, buf, cb(sent, errno)) */
napi_value sock_send_queue_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  struct ksock *s;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || !get_sock(env, argv[0], &s)) return NULL;
  if (s->kind != KIND_NETLINK) return throw_errno(env, "sendQueueOpen: not a netlink socket", EINVAL);
  if (s->q != NULL) return throw_errno(env, "sendQueueOpen: the socket has a send queue already", EBUSY);
  if (s->sending) return throw_errno(env, "sendQueueOpen: a sendAsync is running on this socket", EBUSY);
  if (s->closing || s->close_pending) return throw_errno(env, "socket is closed", EBADF);
  bool is_buf = false;
  napi_valuetype cbt;
  if (napi_is_buffer(env, argv[1], &is_buf) != napi_ok || !is_buf || napi_typeof(env, argv[2], &cbt) != napi_ok || cbt != napi_function) {
    napi_throw_type_error(env, "KRT_ERR_NATIVE", "sendQueueOpen(sock, buffer, callback)");
    return NULL;
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return throw_errno(env, "sendQueueOpen: event loop", EINVAL);
  struct sendq *q = calloc(1, sizeof *q);
  if (q == NULL) return throw_errno(env, "calloc", ENOMEM);
  q->env = env;
  q->fd = s->fd;
  if (napi_get_buffer_info(env, argv[1], (void **)&q->data, &q->len) != napi_ok) {
    free(q);
    return throw_errno(env, "sendQueueOpen: buffer", EINVAL);
  }
  napi_value name;
  if (napi_create_reference(env, argv[1], 1, &q->buf_ref) != napi_ok) goto no_refs;
  if (napi_create_reference(env, argv[2], 1, &q->cb_ref) != napi_ok) goto no_cb;
  if (napi_create_string_utf8(env, "krtsync.sendQueue", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &q->ctx) != napi_ok)
    goto no_ctx;
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->cv, NULL);
  int r = uv_async_init(loop, &q->async, sendq_on_async);
  if (r < 0) {
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    napi_async_destroy(env, q->ctx);
    goto no_ctx;
  }
  q->async.data = q;
  /* The pipeline keeps the loop alive through the socket's poll while it has work; the queue never does. */
  uv_unref((uv_handle_t *)&q->async);
  r = pthread_create(&q->thread, NULL, sendq_main, q);
  if (r != 0) {
    napi_delete_reference(env, q->cb_ref);
    napi_delete_reference(env, q->buf_ref);
    napi_async_destroy(env, q->ctx);
    uv_close((uv_handle_t *)&q->async, sendq_free);
    return throw_errno(env, "sendQueueOpen: pthread_create", r);
  }
  /* Named for `top -H`, perf and /proc/PID/task/TID/comm: the kernel's adds show under it. */
  pthread_setname_np(q->thread, "krtsync-send");
  s->q = q;
  return NULL;
no_ctx:
  napi_delete_reference(env, q->cb_ref);
no_cb:
  napi_delete_reference(env, q->buf_ref);
no_refs:
  free(q);
  return throw_errno(env, "sendQueueOpen: napi setup", ENOMEM);
}

/* sendQueuePush(sock, off, len) */
napi_value sock_send_queue_push(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  struct ksock *s;
  int32_t off, len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || !get_sock(env, argv[0], &s) || !get_i32(env, argv[1], &off) ||
      !get_i32(env, argv[2], &len))
    return NULL;
  struct sendq *q = s->q;
  if (q == NULL) return throw_errno(env, "sendQueuePush: the socket has no send queue", EINVAL);
  if (off < 0 || len <= 0 || (size_t)off + (size_t)len > q->len) return throw_errno(env, "sendQueuePush: chunk outside the buffer", EINVAL);
  pthread_mutex_lock(&q->mu);
  if (q->pushed - q->sent >= SENDQ_CAP) {
    pthread_mutex_unlock(&q->mu);
    return throw_errno(env, "sendQueuePush: queue full", EBUSY);
  }
  size_t i = (size_t)(q->pushed % SENDQ_CAP);
  q->off[i] = off;
  q->clen[i] = len;
  q->pushed++;
  pthread_cond_signal(&q->cv);
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

/* sendQueueClear(sock) -> chunks dropped (queued, not sent) */
napi_value sock_send_queue_clear(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct ksock *s;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || !get_sock(env, argv[0], &s)) return NULL;
  struct sendq *q = s->q;
  if (q == NULL) return throw_errno(env, "sendQueueClear: the socket has no send queue", EINVAL);
  pthread_mutex_lock(&q->mu);
  if (q->err == 0) {
    /* Not halted: the thread may be inside sendmsg with the chunk at `sent`. */
    pthread_mutex_unlock(&q->mu);
    return throw_errno(env, "sendQueueClear: the queue is not halted", EBUSY);
  }
  uint64_t dropped = q->pushed - q->sent;
  q->pushed = q->sent;
  q->err = 0;
  pthread_mutex_unlock(&q->mu);
  return make_int(env, (int64_t)dropped);
}
