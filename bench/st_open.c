/* st_open: how long vr_safetensors_open (mmap + full header validation) takes
 * on a checkpoint shard, and proof that it copies no tensor bytes. Every stage
 * that loads weights or a pixel cache file pays this once per file, so it has
 * to stay far below a step (goal: < 50 ms warm on a 1 GB shard).
 *
 * The shard is shaped like part of Qwen2.5-VL-3B (vision tower blocks 0-23,
 * patch embedding, merger; bf16; "__metadata__": {"format": "pt"}), written
 * once with vr_safetensors_write into bench/out/ and reused. A run is
 * open + vr_safetensors_find of every tensor + close, timed warm (the file is
 * in the page cache): warm-up runs first, then the median and min of --runs.
 *
 * Zero copy is checked, not assumed: every tensor's view points into the
 * mapping; the process RSS and malloc'ed bytes grow by far less than the file
 * while a shard is open; minor faults per open are counted.
 *
 * bench/st_open.sh runs this and the Python safetensors peer together; the
 * peer's numbers come in through --peer-* so that one table holds both.
 *
 *   st_open [--file PATH] [--runs N] [--warmup N] [--create-only]
 *           [--peer NAME --peer-median-ms X --peer-min-ms Y]            */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "safetensors.h"

#define MAX_T 512

struct layout {
    int n;
    char *names[MAX_T];
    int ndim[MAX_T];
    int64_t shape[MAX_T][VR_MAX_DIMS];
    uint64_t bytes;
};

static void add(struct layout *l, int ndim, const int64_t *shape, const char *fmt, int i)
{
    VR_ASSERT(l->n < MAX_T);
    char name[160];
    snprintf(name, sizeof name, fmt, i);
    l->names[l->n] = vr_xstrdup(name);
    l->ndim[l->n] = ndim;
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (uint64_t)(l->shape[l->n][d] = shape[d]);
    l->bytes += 2 * numel;
    l->n++;
}

#define ADD(l, fmt, i, ...)                                                     \
    do {                                                                        \
        const int64_t s_[] = {__VA_ARGS__};                                     \
        add((l), (int)(sizeof s_ / sizeof *s_), s_, (fmt), (i));                \
    } while (0)

/* Qwen2.5-VL-3B vision config: depth 32, hidden 1280, MLP 3420, patch 14,
 * temporal patch 2, merger 2x2 -> 5120 -> out_hidden 2048. */
static void qwen_vision_shard(struct layout *l, int blocks)
{
    memset(l, 0, sizeof *l);
    ADD(l, "visual.patch_embed.proj.weight", 0, 1280, 3, 2, 14, 14);
    for (int b = 0; b < blocks; b++) {
        ADD(l, "visual.blocks.%d.attn.qkv.weight", b, 3840, 1280);
        ADD(l, "visual.blocks.%d.attn.qkv.bias", b, 3840);
        ADD(l, "visual.blocks.%d.attn.proj.weight", b, 1280, 1280);
        ADD(l, "visual.blocks.%d.attn.proj.bias", b, 1280);
        ADD(l, "visual.blocks.%d.mlp.gate_proj.weight", b, 3420, 1280);
        ADD(l, "visual.blocks.%d.mlp.gate_proj.bias", b, 3420);
        ADD(l, "visual.blocks.%d.mlp.up_proj.weight", b, 3420, 1280);
        ADD(l, "visual.blocks.%d.mlp.up_proj.bias", b, 3420);
        ADD(l, "visual.blocks.%d.mlp.down_proj.weight", b, 1280, 3420);
        ADD(l, "visual.blocks.%d.mlp.down_proj.bias", b, 1280);
        ADD(l, "visual.blocks.%d.norm1.weight", b, 1280);
        ADD(l, "visual.blocks.%d.norm2.weight", b, 1280);
    }
    ADD(l, "visual.merger.ln_q.weight", 0, 1280);
    ADD(l, "visual.merger.mlp.0.weight", 0, 5120, 5120);
    ADD(l, "visual.merger.mlp.0.bias", 0, 5120);
    ADD(l, "visual.merger.mlp.2.weight", 0, 2048, 5120);
    ADD(l, "visual.merger.mlp.2.bias", 0, 2048);
}

static int create(const char *path, const struct layout *l)
{
    struct vr_tensor *t = vr_xcalloc((size_t)l->n, sizeof *t);
    struct vr_err err;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < l->n; i++) {
        if (vr_tensor_alloc(&t[i], VR_DTYPE_BF16, l->ndim[i], l->shape[i], &err)) {
            fprintf(stderr, "st_open: %s\n", err.msg);
            return -1;
        }
        /* small bf16 values, not zeros: the file should look like weights */
        uint64_t *p = t[i].data;
        size_t words = vr_tensor_nbytes(&t[i]) / 8;
        for (size_t k = 0; k < words; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            p[k] = (x & 0x807f807f807f807full) | 0x3c003c003c003c00ull;
        }
    }
    json_t *meta = json_pack("{s:s}", "format", "pt");
    int rc = vr_safetensors_write(path, l->n, (const char *const *)l->names, t,
                                  &(struct vr_st_write_opts){.metadata = meta}, &err);
    if (rc) fprintf(stderr, "st_open: %s\n", err.msg);
    json_decref(meta);
    for (int i = 0; i < l->n; i++) vr_tensor_release(&t[i]);
    free(t);
    return rc;
}

/* The file exists and holds exactly this layout. */
static int matches(const char *path, const struct layout *l)
{
    struct vr_safetensors st;
    struct vr_err err;
    if (vr_safetensors_open(&st, path, &err)) return 0;
    int ok = st.n == l->n && st.data_len == l->bytes;
    for (int i = 0; ok && i < l->n; i++) {
        const struct vr_st_entry *e = vr_safetensors_find(&st, l->names[i]);
        ok = e && e->dtype == VR_DTYPE_BF16 && e->ndim == l->ndim[i] &&
             memcmp(e->shape, l->shape[i], (size_t)e->ndim * sizeof *e->shape) == 0;
    }
    vr_safetensors_close(&st);
    return ok;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

static long minflt(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static size_t heap_bytes(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(void)
{
    fprintf(stderr, "usage: st_open [--file PATH] [--runs N] [--warmup N] [--create-only]\n"
                    "               [--peer NAME --peer-median-ms X --peer-min-ms Y]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *path = "bench/out/qwen2_5_vl_3b_vision.safetensors", *peer = NULL;
    int runs = 50, warmup = 5, create_only = 0;
    double peer_med = -1, peer_min = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--create-only") == 0) create_only = 1;
        else if (!v) usage();
        else if (strcmp(a, "--file") == 0) path = v, i++;
        else if (strcmp(a, "--runs") == 0) runs = atoi(v), i++;
        else if (strcmp(a, "--warmup") == 0) warmup = atoi(v), i++;
        else if (strcmp(a, "--peer") == 0) peer = v, i++;
        else if (strcmp(a, "--peer-median-ms") == 0) peer_med = atof(v), i++;
        else if (strcmp(a, "--peer-min-ms") == 0) peer_min = atof(v), i++;
        else usage();
    }
    if (runs < 20 || warmup < 1) {
        fprintf(stderr, "st_open: --runs must be at least 20 and --warmup at least 1\n");
        return 2;
    }

    struct layout l;
    qwen_vision_shard(&l, 24);
    if (!matches(path, &l)) {
        char *dir = vr_path_dir(path);
        struct vr_err err;
        if (vr_mkdir_p(dir, &err)) {
            fprintf(stderr, "st_open: %s\n", err.msg);
            return 1;
        }
        free(dir);
        fprintf(stderr, "st_open: writing %s (%d tensors, %.2f GB)\n", path, l.n, l.bytes / 1e9);
        double t0 = now_ms();
        if (create(path, &l)) return 1;
        fprintf(stderr, "st_open: written in %.1f s\n", (now_ms() - t0) / 1e3);
    }
    if (create_only) return 0;

    struct stat sb;
    if (stat(path, &sb) != 0) {
        perror(path);
        return 1;
    }
    /* warm the page cache (header and data), outside any timed or counted run */
    {
        char *buf;
        size_t len;
        struct vr_err err;
        if (vr_file_read(path, &buf, &len, &err)) {
            fprintf(stderr, "st_open: %s\n", err.msg);
            return 1;
        }
        free(buf);
    }

    /* zero copy: views point into the mapping; RSS, heap and faults stay small */
    struct vr_safetensors st;
    struct vr_err err;
    long rss0 = rss_kb(), flt0 = minflt();
    size_t heap0 = heap_bytes();
    if (vr_safetensors_open(&st, path, &err)) {
        fprintf(stderr, "st_open: %s\n", err.msg);
        return 1;
    }
    int in_map = 1, found = 0;
    for (int i = 0; i < l.n; i++) {
        struct vr_tensor t;
        if (vr_safetensors_find(&st, l.names[i])) found++;
        if (vr_safetensors_view(&st, l.names[i], &t, &err)) {
            fprintf(stderr, "st_open: %s\n", err.msg);
            return 1;
        }
        const uint8_t *p = t.data;
        in_map &= !t.owned && p >= st.map && p + vr_tensor_nbytes(&t) <= st.map + st.size;
    }
    long rss_open = rss_kb(), flt_open = minflt() - flt0;
    size_t heap_open = heap_bytes() - heap0;
    uint64_t hlen = (uint64_t)(st.data - st.map) - 8;
    vr_safetensors_close(&st);
    long rss_delta = rss_open - rss0;
    int zero_copy = in_map && found == l.n && rss_delta * 1024L < (long)(sb.st_size / 100) &&
                    heap_open < (size_t)sb.st_size / 100;

    /* timed runs */
    int total = warmup + runs;
    double *all = vr_xcalloc((size_t)runs, sizeof *all), *to = vr_xcalloc((size_t)runs, sizeof *to),
           *tf = vr_xcalloc((size_t)runs, sizeof *tf), *tc = vr_xcalloc((size_t)runs, sizeof *tc);
    long flt_sum = 0;
    for (int r = 0; r < total; r++) {
        long f0 = minflt();
        double t0 = now_ms();
        if (vr_safetensors_open(&st, path, &err)) {
            fprintf(stderr, "st_open: %s\n", err.msg);
            return 1;
        }
        double t1 = now_ms();
        int hit = 0;
        for (int i = 0; i < l.n; i++) hit += vr_safetensors_find(&st, l.names[i]) != NULL;
        double t2 = now_ms();
        vr_safetensors_close(&st);
        double t3 = now_ms();
        VR_ASSERT(hit == l.n);
        if (r < warmup) continue;
        int k = r - warmup;
        flt_sum += minflt() - f0;
        all[k] = t3 - t0, to[k] = t1 - t0, tf[k] = t2 - t1, tc[k] = t3 - t2;
    }
    double open_med = median(to, runs), find_med = median(tf, runs), close_med = median(tc, runs);
    double med = median(all, runs), mn = all[0], p90 = all[(runs * 9) / 10], mx = all[runs - 1];

    double ratio = peer && peer_med > 0 ? peer_med / med : -1;
    printf("{\"bench\":\"st_open\",\"config\":\"vr_safetensors open+find all+close\",\"file\":\"%s\","
           "\"file_bytes\":%lld,\"tensors\":%d,\"header_bytes\":%llu,\"warmup\":%d,\"runs\":%d,"
           "\"median_ms\":%.3f,\"min_ms\":%.3f,\"p90_ms\":%.3f,\"max_ms\":%.3f,"
           "\"open_median_ms\":%.3f,\"find_all_median_ms\":%.3f,\"close_median_ms\":%.3f,"
           "\"header_mb_per_s\":%.1f,\"minflt_per_run\":%.1f,\"minflt_open_view_all\":%ld,\"rss_delta_kb\":%ld,"
           "\"heap_delta_bytes\":%zu,\"views_in_mapping\":%s,\"zero_copy\":%s,",
           path, (long long)sb.st_size, l.n, (unsigned long long)hlen, warmup, runs, med, mn, p90,
           mx, open_med, find_med, close_med, (double)hlen / 1e3 / med,
           (double)flt_sum / runs, flt_open, rss_delta, heap_open, in_map ? "true" : "false",
           zero_copy ? "true" : "false");
    if (peer && peer_med > 0)
        printf("\"peer\":\"%s\",\"peer_median_ms\":%.3f,\"peer_min_ms\":%.3f,\"ratio_peer_over_vr\":%.2f,",
               peer, peer_med, peer_min, ratio);
    else
        printf("\"peer\":null,\"ratio_peer_over_vr\":null,");
    printf("\"goal_ms\":50,\"goal_met\":%s}\n", med < 50 ? "true" : "false");

    printf("\n| config | median ms | min ms | p90 ms | peer ms / this ms |\n|---|---:|---:|---:|---:|\n");
    char rs[32] = "n/a";
    if (ratio > 0) snprintf(rs, sizeof rs, "%.2f", ratio);
    printf("| vr open+find %d+close | %.3f | %.3f | %.3f | %s |\n", l.n, med, mn, p90, rs);
    if (peer && peer_med > 0)
        printf("| %s | %.3f | %.3f | | 1.00 |\n", peer, peer_med, peer_min);
    printf("\n%s: %.2f GB, %d tensors, %llu-byte header; warm-up %d, %d runs. "
           "Zero copy: %s (views inside the mapping: %s; RSS +%ld kB, heap +%zu B, "
           "%.1f minor faults per open). Goal < 50 ms: %s.\n",
           path, sb.st_size / 1e9, l.n, (unsigned long long)hlen, warmup, runs,
           zero_copy ? "yes" : "NO", in_map ? "yes" : "no", rss_delta, heap_open,
           (double)flt_sum / runs, med < 50 ? "met" : "MISSED");
    free(all);
    free(to);
    free(tf);
    free(tc);
    for (int i = 0; i < l.n; i++) free(l.names[i]);
    return zero_copy ? 0 : 1;
}
