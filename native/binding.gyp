{
  "targets": [
    {
      "target_name": "krtsync_native",
      "sources": ["krtsync_native.c", "send_queue.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
