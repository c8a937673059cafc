/* pool.c: the thread pool when the system refuses threads. This binary's own
 * pthread_create interposes on libc's (an executable's symbol wins), lets the
 * first worker start and refuses the rest with EAGAIN; the pool must run with
 * the threads it got, cover every index once, and give the same sums. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "cpu/pool.h"

#include "../tap.h"

static int armed;     /* set in main, after the libraries' constructors */
static int allowed = 1;

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

int pthread_create(pthread_t *tid, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    static create_fn real;
    if (!real) real = (create_fn)(uintptr_t)dlsym(RTLD_NEXT, "pthread_create");
    if (armed && allowed-- <= 0) return EAGAIN;
    return real(tid, a, fn, arg);
}

#define N 10000
static atomic_int hits[N];
static atomic_int bad_index;

static void body(void *ctx, int b, int e)
{
    (void)ctx;
    if (vr_thread_index() < 0 || vr_thread_index() >= vr_threads()) atomic_store(&bad_index, 1);
    for (int i = b; i < e; i++) atomic_fetch_add(&hits[i], 1);
}

int main(void)
{
    setenv("VR_THREADS", "8", 1);
    armed = 1;
    is_int(vr_threads(), 2, "7 workers asked, 1 started: the pool has the caller and that one");
    vr_parallel_for(N, body, NULL);
    int once = 1;
    for (int i = 0; i < N; i++) once &= atomic_load(&hits[i]) == 1;
    ok(once, "vr_parallel_for covers each of %d indices exactly once", N);
    ok(!atomic_load(&bad_index), "thread indices stay below vr_threads()");
    return done_testing();
}
