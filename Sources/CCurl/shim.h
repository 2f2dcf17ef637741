#include <curl/curl.h>

/* curl_easy_setopt, curl_multi_setopt and curl_easy_getinfo are variadic, which Swift cannot
   call: one typed wrapper per argument kind. */
static inline CURLcode oops_easy_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode oops_easy_setopt_str(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode oops_easy_setopt_ptr(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode oops_easy_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode oops_easy_setopt_write(CURL *h, CURLoption o, size_t (*f)(char *, size_t, size_t, void *)) { return curl_easy_setopt(h, o, f); }
static inline CURLMcode oops_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }
static inline CURLcode oops_easy_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode oops_easy_getinfo_ptr(CURL *h, CURLINFO i, void **v) { return curl_easy_getinfo(h, i, v); }
/* CURLMsg.data is a union: the result of a finished transfer. */
static inline CURLcode oops_msg_result(CURLMsg *m) { return m->data.result; }
static inline CURLSHcode oops_share_setopt_long(CURLSH *s, CURLSHoption o, long v) { return curl_share_setopt(s, o, v); }
static inline CURLcode oops_global_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT); }

/* The multi handle driven through epoll (curl's socket interface): curl says which sockets to
   watch and when its next timeout is due, so each pass of the loop costs work per ready socket,
   not per transfer in flight. One oops_curl_ev per multi handle, used from its loop thread only
   (oops_ev_wake from any thread). */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <string.h>
#include <time.h>
#include <stdint.h>

typedef struct { int epfd; int wakefd; int64_t deadline_ms; } oops_curl_ev;

static inline int64_t oops_now_ms(void) {
  struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int oops_sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
  (void)e; (void)socketp;
  oops_curl_ev *ev = (oops_curl_ev *)userp;
  if (what == CURL_POLL_REMOVE) { epoll_ctl(ev->epfd, EPOLL_CTL_DEL, s, NULL); return 0; }
  struct epoll_event ee; memset(&ee, 0, sizeof ee);
  ee.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
  ee.data.fd = s;
  if (epoll_ctl(ev->epfd, EPOLL_CTL_MOD, s, &ee) != 0) epoll_ctl(ev->epfd, EPOLL_CTL_ADD, s, &ee);
  return 0;
}

static int oops_timer_cb(CURLM *m, long timeout_ms, void *userp) {
  (void)m;
  oops_curl_ev *ev = (oops_curl_ev *)userp;
  ev->deadline_ms = timeout_ms < 0 ? -1 : oops_now_ms() + timeout_ms;
  return 0;
}

static inline int oops_ev_init(oops_curl_ev *ev, CURLM *m) {
  ev->epfd = epoll_create1(EPOLL_CLOEXEC);
  ev->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ev->deadline_ms = -1;
  if (ev->epfd < 0 || ev->wakefd < 0) return -1;
  struct epoll_event ee; memset(&ee, 0, sizeof ee);
  ee.events = EPOLLIN; ee.data.fd = ev->wakefd;
  if (epoll_ctl(ev->epfd, EPOLL_CTL_ADD, ev->wakefd, &ee) != 0) return -1;
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, oops_sock_cb);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, ev);
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, oops_timer_cb);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, ev);
  return 0;
}

static inline void oops_ev_close(oops_curl_ev *ev) {
  if (ev->epfd >= 0) close(ev->epfd);
  if (ev->wakefd >= 0) close(ev->wakefd);
}

static inline void oops_ev_wake(oops_curl_ev *ev) { uint64_t one = 1; (void)!write(ev->wakefd, &one, sizeof one); }

/* Waits for a ready socket, curl's timeout or a wake-up (at most max_wait_ms), and lets curl
   act on each. */
static inline void oops_ev_step(oops_curl_ev *ev, CURLM *m, int max_wait_ms) {
  struct epoll_event evs[256];
  int wait = max_wait_ms;
  if (ev->deadline_ms >= 0) {
    int64_t left = ev->deadline_ms - oops_now_ms();
    if (left < 0) left = 0;
    if (left < wait) wait = (int)left;
  }
  int n = epoll_wait(ev->epfd, evs, 256, wait);
  int running = 0;
  for (int i = 0; i < n; i++) {
    int fd = evs[i].data.fd;
    if (fd == ev->wakefd) { uint64_t v; (void)!read(fd, &v, sizeof v); continue; }
    int mask = 0;
    if (evs[i].events & EPOLLIN) mask |= CURL_CSELECT_IN;
    if (evs[i].events & EPOLLOUT) mask |= CURL_CSELECT_OUT;
    if (evs[i].events & (EPOLLERR | EPOLLHUP)) mask |= CURL_CSELECT_ERR;
    curl_multi_socket_action(m, fd, mask, &running);
  }
  if (ev->deadline_ms >= 0 && oops_now_ms() >= ev->deadline_ms) {
    ev->deadline_ms = -1;
    curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
  }
}
