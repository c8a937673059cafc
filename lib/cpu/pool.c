/* pool.c: worker threads for vr_parallel_for (see pool.h). Workers spin
 * briefly on a generation counter before sleeping, because decode issues
 * hundreds of short parallel loops per token. */
#include "cpu/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_THREADS 64

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() sched_yield()
#endif

static struct {
    int n;                      /* threads including the caller */
    pthread_t tid[MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint gen;            /* bumped for each job */
    atomic_int pending;         /* workers still running the job */
    vr_range_fn fn;
    void *ctx;
    int total;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};
static pthread_once_t once = PTHREAD_ONCE_INIT;
static __thread int thread_index; /* 0 for callers, t for worker t */

int vr_thread_index(void) { return thread_index; }
static pthread_mutex_t job_mu = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */

static void chunk(int t, int *b, int *e)
{
    long n = P.total, k = P.n;
    *b = (int)(n * t / k);
    *e = (int)(n * (t + 1) / k);
}

static void *worker(void *arg)
{
    int t = (int)(long)arg;
    unsigned seen = 0;
    thread_index = t;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&P.gen, memory_order_acquire)) == seen) {
            if (++spins < 20000) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&P.mu);
            while (atomic_load(&P.gen) == seen) pthread_cond_wait(&P.wake, &P.mu);
            pthread_mutex_unlock(&P.mu);
        }
        seen = g;
        int b, e;
        chunk(t, &b, &e);
        if (b < e) P.fn(P.ctx, b, e);
        atomic_fetch_sub_explicit(&P.pending, 1, memory_order_release);
    }
    return NULL;
}

static void start(void)
{
    const char *env = getenv("VR_THREADS");
    long n = env ? atol(env) : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > MAX_THREADS) n = MAX_THREADS;
    P.n = (int)n;
    for (int t = 1; t < P.n; t++) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&P.tid[t], &a, worker, (void *)(long)t);
        pthread_attr_destroy(&a);
        /* out of threads (EAGAIN under a process or cgroup limit): run with
         * the t threads there are. No job has started, and no result depends
         * on the thread count, only the speed does. */
        if (rc != 0) {
            P.n = t;
            break;
        }
    }
}

int vr_threads(void)
{
    pthread_once(&once, start);
    return P.n;
}

void vr_parallel_for(int n, vr_range_fn fn, void *ctx)
{
    pthread_once(&once, start);
    if (P.n == 1 || n < 2) {
        if (n > 0) fn(ctx, 0, n);
        return;
    }
    pthread_mutex_lock(&job_mu);
    P.fn = fn;
    P.ctx = ctx;
    P.total = n;
    atomic_store(&P.pending, P.n - 1);
    pthread_mutex_lock(&P.mu);
    atomic_fetch_add_explicit(&P.gen, 1, memory_order_release);
    pthread_cond_broadcast(&P.wake);
    pthread_mutex_unlock(&P.mu);
    int b, e;
    chunk(0, &b, &e);
    if (b < e) fn(ctx, b, e);
    while (atomic_load_explicit(&P.pending, memory_order_acquire) > 0) cpu_relax();
    pthread_mutex_unlock(&job_mu);
}
