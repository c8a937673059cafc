/* vcache.c: the vision-embedding cache (lib/vcache.h) on the tiny golden
 * model: the cached embeddings are exactly a direct vr_vision_fwd on the
 * pixels vr_pixels_load gives, a second lookup runs nothing, the vision hash
 * is XXH3-64 over the "visual." parameters, and a torn entry is rebuilt. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "golden.h"
#include "hash.h"
#include "qwen.h"
#include "vcache.h"
#include "../tap.h"

/* The vision hash by hand: the same fields, one buffer, one-shot XXH3-64. */
static uint64_t hash_by_hand(const struct vr_model *m)
{
    size_t cap = 1 << 20, n = 0;
    uint8_t *b = vr_xmalloc(cap);
#define PUT(p, k)                                                                                   \
    do {                                                                                           \
        size_t k_ = (k);                                                                           \
        while (n + k_ > cap) b = vr_xrealloc(b, cap *= 2);                                         \
        memcpy(b + n, (p), k_);                                                                    \
        n += k_;                                                                                   \
    } while (0)
#define PUT64(v)                                                                                    \
    do {                                                                                           \
        uint64_t v_ = (uint64_t)(v);                                                               \
        uint8_t le[8];                                                                             \
        for (int i_ = 0; i_ < 8; i_++) le[i_] = (uint8_t)(v_ >> (8 * i_));                         \
        PUT(le, 8);                                                                                \
    } while (0)
    for (int i = 0; i < m->nparams; i++) {
        const struct vr_param *p = &m->params[i];
        if (strncmp(p->name, "visual.", 7) != 0) continue;
        const char *dt = vr_dtype_name(p->t.dtype);
        PUT64(strlen(p->name));
        PUT(p->name, strlen(p->name));
        PUT64(strlen(dt));
        PUT(dt, strlen(dt));
        PUT64(p->t.ndim);
        for (int d = 0; d < p->t.ndim; d++) PUT64(p->t.shape[d]);
        PUT(p->t.data, vr_tensor_nbytes(&p->t));
    }
    uint64_t h = vr_hash64(b, n);
    free(b);
    return h;
}

int main(void)
{
    struct vr_model m;
    struct vr_err err;
    int rc = vr_model_load(&m, golden_path("model/ckpt"), &err);
    if (!ok(rc == 0, "load the tiny model %s", rc ? err.msg : ""))
        return done_testing();
    int nvis = 0;
    for (int i = 0; i < m.nparams; i++) nvis += strncmp(m.params[i].name, "visual.", 7) == 0;
    uint64_t vh = vr_vision_hash(&m);
    ok(nvis > 10 && vh == hash_by_hand(&m),
       "vision hash %016llx = XXH3-64 over %d visual.* parameters (streamed = one-shot)",
       (unsigned long long)vh, nvis);

    char dir[] = "/tmp/vr-vcache.XXXXXX";
    if (!ok(mkdtemp(dir) != NULL, "make a cache folder")) return done_testing();
    struct vr_preproc pp;
    vr_preproc_defaults(&pp);
    pp.max_pixels = 200000;
    struct vr_pixcache pc;
    struct vr_vcache vc;
    struct vr_pixref px = {0};
    struct vr_visref v = {0}, v2 = {0};
    err.msg[0] = 0;
    rc = vr_pixcache_init(&pc, dir, &pp, 0, &err) ||
             vr_pixcache_get(&pc, golden_path("images/rgb_211x143.png"), &px, &err) ||
             vr_vcache_init(&vc, dir, &m, &err) || vr_vcache_get(&vc, &px, &v, &err);
    if (!ok(rc == 0, "pixels and embeddings of rgb_211x143.png %s", err.msg)) return done_testing();
    ok(!v.hit && v.rows == px.grid[1] * px.grid[2] / 4 && v.cols == m.cfg.vision.out_hidden,
       "a miss: embeds [%lld, %lld] for grid [%lld, %lld, %lld]", (long long)v.rows,
       (long long)v.cols, (long long)px.grid[0], (long long)px.grid[1], (long long)px.grid[2]);

    /* direct: load the pixels, run the tower */
    struct vr_tensor pv, emb;
    int64_t grid[3];
    struct vr_ws ws = {0};
    rc = vr_pixels_load(px.file, &pp, &pv, grid, &err);
    float *want = vr_xmalloc((size_t)v.rows * (size_t)v.cols * sizeof *want);
    const int g[1][3] = {{(int)grid[0], (int)grid[1], (int)grid[2]}};
    rc = rc || vr_vision_fwd(&m, want, pv.data, 1, g, &ws, &err);
    rc = rc || vr_vision_load(v.file, vh, &emb, &err);
    ok(rc == 0 && emb.shape[0] == v.rows && emb.shape[1] == v.cols &&
           memcmp(emb.data, want, (size_t)v.rows * (size_t)v.cols * sizeof *want) == 0,
       "the cached embeddings are a direct vr_vision_fwd, bit for bit %s", rc ? err.msg : "");
    vr_tensor_release(&emb);
    rc = vr_vision_load(v.file, vh ^ 1, &emb, &err);
    ok(rc == -1 && strstr(err.msg, "made by vision tower"), "another model's hash is refused: %s",
       err.msg);

    rc = vr_vcache_get(&vc, &px, &v2, &err);
    ok(rc == 0 && v2.hit && strcmp(v.file, v2.file) == 0 && vc.misses == 1 && vc.hits == 1,
       "a second lookup hits (no forward)");
    vr_visref_release(&v2);

    /* a torn write: zeros where the tail of the data should be */
    struct stat sb;
    FILE *f = fopen(v.file, "r+b");
    static const char zeros[64];
    int torn = f && stat(v.file, &sb) == 0 && fseek(f, (long)sb.st_size - 64, SEEK_SET) == 0 &&
               fwrite(zeros, 1, sizeof zeros, f) == sizeof zeros;
    if (f) fclose(f);
    rc = torn ? vr_vcache_get(&vc, &px, &v2, &err) : -1;
    ok(rc == 0 && !v2.hit && strstr(v2.rebuilt, "checksum mismatch") && vc.rebuilt == 1,
       "a torn entry is rebuilt: %s", v2.rebuilt);
    rc = vr_vision_load(v2.file, vh, &emb, &err);
    ok(rc == 0 && memcmp(emb.data, want, (size_t)v.rows * (size_t)v.cols * sizeof *want) == 0,
       "and equals the direct forward again");
    vr_tensor_release(&emb);

    unlink(v.file);
    unlink(px.file);
    rmdir(dir);
    free(want);
    vr_ws_release(&ws);
    vr_tensor_release(&pv);
    vr_visref_release(&v);
    vr_visref_release(&v2);
    vr_pixref_release(&px);
    vr_vcache_release(&vc);
    vr_pixcache_release(&pc);
    vr_model_release(&m);
    return done_testing();
}
