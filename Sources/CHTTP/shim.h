/* The C side of the HTTP server: Debian's http-parser (nodejs/http-parser 2.9, built strict),
   plus small accessors for what Swift cannot reach directly (the parser's bit fields, epoll's
   packed event struct). */
#include <stdint.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <string.h>
#include <sys/epoll.h>
#include <http_parser.h>

static inline unsigned int chttp_errno(const http_parser *p) { return p->http_errno; }
static inline unsigned int chttp_method(const http_parser *p) { return p->method; }
static inline unsigned short chttp_major(const http_parser *p) { return p->http_major; }
static inline unsigned short chttp_minor(const http_parser *p) { return p->http_minor; }
static inline int chttp_upgrade(const http_parser *p) { return p->upgrade; }
static inline uint64_t chttp_content_length(const http_parser *p) { return p->content_length; }
/* Whether the message has a body to read: a Content-Length (above 0) or chunked framing. */
static inline int chttp_has_body(const http_parser *p) {
  return (p->flags & F_CHUNKED) != 0 || ((p->flags & F_CONTENTLENGTH) != 0 && p->content_length > 0);
}
static inline int chttp_is_chunked(const http_parser *p) { return (p->flags & F_CHUNKED) != 0; }
static inline int chttp_has_content_length(const http_parser *p) { return (p->flags & F_CONTENTLENGTH) != 0; }

/* epoll_event is packed on x86-64; these keep Swift away from its layout. */
static inline int chttp_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.u64 = token;
  return epoll_ctl(epfd, op, fd, &ev);
}

/* Waits for events; fills tokens[i] and events[i]; returns the count (or -1 with errno). */
static inline int chttp_epoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int max, int timeout_ms) {
  struct epoll_event evs[256];
  if (max > 256) max = 256;
  int n = epoll_wait(epfd, evs, max, timeout_ms);
  for (int i = 0; i < n; i++) { tokens[i] = evs[i].data.u64; events[i] = evs[i].events; }
  return n;
}

/* A non-blocking, close-on-exec eventfd (the wake-up of an event thread). */
static inline int chttp_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

/* accept4 with non-blocking, close-on-exec sockets. glibc declares accept4 only under
   _GNU_SOURCE, which would change other headers' definitions from those Swift's modules see. */
extern int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
static inline int chttp_accept(int fd, struct sockaddr *addr, socklen_t *len) {
  return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}
