#include <stdint.h>
#include <stdarg.h>
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <microhttpd.h>
/* MHD_OPTION_END and friends are enum values, but the variadic MHD_start_daemon cannot be
   called from Swift; MHD_start_daemon_va with an options array is used instead (see HTTPServer). */

/* Starts a daemon with the options HTTPServer needs. MHD_start_daemon is variadic, so Swift
   cannot call it; the options travel in an MHD_OPTION_ARRAY built here instead.
   `addr` is copied by MHD before this returns. */
static inline struct MHD_Daemon *CMicroHTTPD_start(unsigned int flags,
                                                   const struct sockaddr *addr,
                                                   unsigned int connection_limit,
                                                   size_t memory_limit,
                                                   unsigned int timeout_seconds,
                                                   unsigned int thread_pool_size,
                                                   MHD_AccessHandlerCallback handler, void *handler_cls,
                                                   MHD_RequestCompletedCallback completed, void *completed_cls) {
  struct MHD_OptionItem ops[] = {
    { MHD_OPTION_SOCK_ADDR, 0, (void *) addr },
    { MHD_OPTION_CONNECTION_LIMIT, (intptr_t) connection_limit, NULL },
    { MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t) memory_limit, NULL },
    { MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t) timeout_seconds, NULL },
    { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t) completed, completed_cls },
    { thread_pool_size > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t) thread_pool_size, NULL },
    { MHD_OPTION_END, 0, NULL }
  };
  return MHD_start_daemon(flags, 0, NULL, NULL, handler, handler_cls, MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
}

/* The port the daemon listens on (useful when bound to port 0); 0 when unknown. */
static inline uint16_t CMicroHTTPD_bound_port(struct MHD_Daemon *daemon) {
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
  return info == NULL ? 0 : info->port;
}

/* The peer's address of a connection, or NULL (MHD_get_connection_info is variadic). */
static inline const struct sockaddr *CMicroHTTPD_client_address(struct MHD_Connection *connection) {
  const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  return info == NULL ? NULL : info->client_addr;
}
