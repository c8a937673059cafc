/* pool.h: a fixed pool of worker threads for the CPU ops' outer loops.
 * vr_parallel_for splits [0, n) into one contiguous chunk per thread (the
 * caller runs the first) and returns when all are done. Threads: $VR_THREADS,
 * else the number of online CPUs. Results never depend on the thread count:
 * every output element is computed by exactly one thread, in the same order. */
#ifndef VR_CPU_POOL_H
#define VR_CPU_POOL_H

typedef void (*vr_range_fn)(void *ctx, int begin, int end);

void vr_parallel_for(int n, vr_range_fn fn, void *ctx);
int vr_threads(void);
/* Inside a vr_parallel_for body: which thread runs it, in [0, vr_threads()),
 * for per-thread scratch. */
int vr_thread_index(void);

#endif
