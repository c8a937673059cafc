/* tensor.c: the dtype table, tensor storage, and the bf16/f16 conversions,
 * bit for bit against PyTorch (tests/golden/safetensors/floats.safetensors and
 * the checksums in expected.json, from tests/golden/make_safetensors.py), plus
 * exhaustive checks over all 65536 bf16 and f16 bit patterns.
 *
 * NaN: PyTorch's tensor conversions give different NaN bits on different code
 * paths (its vectorised f32->bf16 writes 0xffff, the scalar c10::BFloat16
 * 0x7fc0; its F16C path keeps payloads, c10::Half does not), so a NaN must map
 * to a NaN, and vr's own NaN encodings are checked against what tensor.h
 * promises. Every other value must match bit for bit. */
#include <math.h>

#include "safetensors.h"
#include "tensor.h"

#include "../tap.h"
#include "golden.h"

static int bf16_nan(uint16_t h) { return (h & 0x7fffu) > 0x7f80u; }
static int f16_nan(uint16_t h) { return (h & 0x7fffu) > 0x7c00u; }
static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static const void *view(const struct vr_safetensors *st, const char *name, enum vr_dtype dt,
                        int64_t *n)
{
    struct vr_tensor t;
    struct vr_err err;
    VR_ASSERT(vr_safetensors_view(st, name, &t, &err) == 0 && t.dtype == dt && t.ndim == 1);
    *n = t.shape[0];
    return t.data;
}

/* f32 -> 16-bit against torch's answers for the tricky values */
static void to16(const struct vr_safetensors *st, const char *want_name, enum vr_dtype dt,
                 uint16_t (*conv)(float), int (*isnan16)(uint16_t), const char *what)
{
    int64_t n, m;
    const float *x = view(st, "f32", VR_DTYPE_F32, &n);
    const uint16_t *want = view(st, want_name, dt, &m);
    VR_ASSERT(n == m);
    int bad = 0, nans = 0, nanbits = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t got = conv(x[i]);
        if (isnan16(want[i])) {
            nans++;
            nanbits += got == want[i];
            if (!isnan16(got) && bad++ < 10)
                diag("%s(%08x): got %04x, torch NaN %04x", what, bits(x[i]), got, want[i]);
            continue;
        }
        if (got != want[i] && bad++ < 10)
            diag("%s(%08x): got %04x, torch %04x", what, bits(x[i]), got, want[i]);
    }
    ok(bad == 0, "%s matches torch on %lld tricky values (%d NaN in, %d with torch's NaN bits)",
       what, (long long)n, nans, nanbits);
}

/* 16-bit -> f32 against torch for the sampled patterns */
static void to32(const struct vr_safetensors *st, const char *in, const char *out, enum vr_dtype dt,
                 float (*conv)(uint16_t), const char *what)
{
    int64_t n, m;
    const uint16_t *x = view(st, in, dt, &n);
    const float *want = view(st, out, VR_DTYPE_F32, &m);
    VR_ASSERT(n == m);
    int bad = 0, nans = 0, nanbits = 0;
    for (int64_t i = 0; i < n; i++) {
        float got = conv(x[i]);
        if (isnan(want[i])) {
            nans++;
            nanbits += bits(got) == bits(want[i]);
            if (!isnan(got) && bad++ < 10)
                diag("%s(%04x): got %08x, torch NaN", what, x[i], bits(got));
            continue;
        }
        if (bits(got) != bits(want[i]) && bad++ < 10)
            diag("%s(%04x): got %08x, torch %08x", what, x[i], bits(got), bits(want[i]));
    }
    ok(bad == 0, "%s matches torch on %lld patterns (%d NaN, %d with torch's NaN bits)", what,
       (long long)n, nans, nanbits);
}

/* keep in step with rand_f32_bits in tests/golden/make_safetensors.py */
static uint32_t *rand_f32_bits(size_t *n)
{
    size_t a = 1u << 20, b = 1u << 18;
    uint32_t *u = malloc((a + 2 * b) * sizeof *u);
    for (uint64_t i = 0; i < a; i++) u[i] = (uint32_t)(i * 2654435761u + 12345u);
    for (size_t i = 0; i < b; i++) u[a + i] = (u[i] & 0xffff0000u) | 0x8000u;
    for (size_t i = 0; i < b; i++) u[a + b + i] = (u[b + i] & 0xffffe000u) | 0x1000u;
    *n = a + 2 * b;
    return u;
}

static const char *want_sum(json_t *conv, const char *key, size_t *n)
{
    json_t *o = json_object_get(conv, key);
    *n = (size_t)json_integer_value(json_object_get(o, "n"));
    return json_string_value(json_object_get(o, "wsum"));
}

static void checksums(json_t *conv)
{
    size_t n, wn;
    uint32_t *u = rand_f32_bits(&n);
    uint16_t *h = malloc(n * sizeof *h);
    char ws[17];
    const char *w;
    for (size_t i = 0; i < n; i++) {
        h[i] = vr_f32_to_bf16(from_bits(u[i]));
        if (bf16_nan(h[i])) h[i] = 0x7fff;
    }
    golden_wsum(h, n * 2, ws);
    w = want_sum(conv, "f32_to_bf16_random", &wn);
    is_int(wn, n, "random f32 stream has torch's length");
    is_str(ws, w, "f32->bf16 of %zu random and tie-forced patterns matches torch (checksum)", n);
    for (size_t i = 0; i < n; i++) {
        h[i] = vr_f32_to_f16(from_bits(u[i]));
        if (f16_nan(h[i])) h[i] = 0x7fff;
    }
    golden_wsum(h, n * 2, ws);
    w = want_sum(conv, "f32_to_f16_random", &wn);
    is_str(ws, w, "f32->f16 of %zu random and tie-forced patterns matches torch (checksum)", n);
    free(h);
    free(u);

    uint32_t *f = malloc(65536 * sizeof *f);
    for (uint32_t p = 0; p < 65536; p++) {
        float x = vr_bf16_to_f32((uint16_t)p);
        f[p] = isnan(x) ? 0x7fffffffu : bits(x);
    }
    golden_wsum(f, 65536 * 4, ws);
    is_str(ws, want_sum(conv, "bf16_to_f32_all", &wn),
           "bf16->f32 of all 65536 patterns matches torch");
    for (uint32_t p = 0; p < 65536; p++) {
        float x = vr_f16_to_f32((uint16_t)p);
        f[p] = isnan(x) ? 0x7fffffffu : bits(x);
    }
    golden_wsum(f, 65536 * 4, ws);
    is_str(ws, want_sum(conv, "f16_to_f32_all", &wn),
           "f16->f32 of all 65536 patterns matches torch");
    free(f);
}

/* for every 16-bit pattern: widen, narrow, get the same bits back */
static void exhaustive(void)
{
    int bad_b = 0, bad_h = 0, nan_b = 0, nan_h = 0, exact_h = 0, order = 0;
    for (uint32_t p = 0; p < 65536; p++) {
        uint16_t b = (uint16_t)p;
        uint16_t q = vr_f32_to_bf16(vr_bf16_to_f32(b));
        if (bf16_nan(b)) {
            nan_b += isnan(vr_bf16_to_f32(b)) && q == 0x7fc0;
        } else if (q != b && bad_b++ < 10) {
            diag("bf16 %04x -> %08x -> %04x", b, bits(vr_bf16_to_f32(b)), q);
        }
        q = vr_f32_to_f16(vr_f16_to_f32(b));
        if (f16_nan(b)) {
            nan_h += isnan(vr_f16_to_f32(b)) && q == ((b & 0x8000u) | 0x7e00u);
        } else if (q != b && bad_h++ < 10) {
            diag("f16 %04x -> %08x -> %04x", b, bits(vr_f16_to_f32(b)), q);
        }
        /* f16 value from its definition, in double */
        int e = (b >> 10) & 31, m = b & 1023;
        double v = e == 31 ? (m ? NAN : INFINITY) : e ? ldexp(1024 + m, e - 25) : ldexp(m, -24);
        if (b & 0x8000) v = -v;
        float got = vr_f16_to_f32(b);
        exact_h += isnan(v) ? isnan(got) : (double)got == v && !signbit(got) == !signbit(v);
        /* widening keeps order among positive finite values */
        if (p > 0 && p < 0x7c00) order += vr_f16_to_f32(b) > vr_f16_to_f32((uint16_t)(p - 1));
    }
    is_int(bad_b, 0, "every non-NaN bf16 pattern survives bf16->f32->bf16");
    is_int(nan_b, 254, "each of the 254 bf16 NaNs widens to a NaN and narrows to 0x7fc0");
    is_int(bad_h, 0, "every non-NaN f16 pattern survives f16->f32->f16");
    is_int(nan_h, 2046,
           "each of the 2046 f16 NaNs widens to a NaN and narrows to 0x7e00 with its sign");
    is_int(exact_h, 65536, "f16->f32 equals the IEEE definition for all 65536 patterns");
    is_int(order, 0x7bff, "f16->f32 is strictly increasing over positive finite patterns");
}

static void arrays(const struct vr_safetensors *st)
{
    int64_t n;
    const float *x = view(st, "f32", VR_DTYPE_F32, &n);
    uint16_t *h = malloc((size_t)n * 2);
    float *back = malloc((size_t)n * 4);
    int same = 1;
    vr_convert_from_f32(h, VR_DTYPE_BF16, x, (size_t)n);
    vr_convert_to_f32(back, h, VR_DTYPE_BF16, (size_t)n);
    for (int64_t i = 0; i < n; i++)
        same &= h[i] == vr_f32_to_bf16(x[i]) && bits(back[i]) == bits(vr_bf16_to_f32(h[i]));
    vr_convert_from_f32(h, VR_DTYPE_F16, x, (size_t)n);
    vr_convert_to_f32(back, h, VR_DTYPE_F16, (size_t)n);
    for (int64_t i = 0; i < n; i++)
        same &= h[i] == vr_f32_to_f16(x[i]) && bits(back[i]) == bits(vr_f16_to_f32(h[i]));
    vr_convert_from_f32(back, VR_DTYPE_F32, x, (size_t)n);
    same &= memcmp(back, x, (size_t)n * 4) == 0;
    ok(same, "vr_convert_{from,to}_f32 agree with the scalar conversions");
    free(h);
    free(back);
}

static void dtypes_and_storage(void)
{
    static const char *names[] = {"BOOL", "U8",  "I8",  "F8_E4M3", "F8_E5M2", "I16", "U16", "F16",
                                  "BF16", "I32", "U32", "F32",     "F64",     "I64", "U64"};
    static const size_t sizes[] = {1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8};
    int good = 0;
    for (int i = 0; i < VR_DTYPE_COUNT; i++) {
        enum vr_dtype d;
        good += vr_dtype_parse(names[i], &d) == 0 && d == (enum vr_dtype)i &&
                strcmp(vr_dtype_name(d), names[i]) == 0 && vr_dtype_size(d) == sizes[i];
    }
    is_int(good, VR_DTYPE_COUNT, "all %d safetensors dtypes: name, parse, size", VR_DTYPE_COUNT);
    enum vr_dtype d;
    ok(vr_dtype_parse("f32", &d) == -1 && vr_dtype_parse("", &d) == -1,
       "unknown names are refused");

    struct vr_tensor t;
    struct vr_err err;
    int64_t s5[] = {2, 1, 3, 1, 2}, s0[] = {4, 0, 2}, big[] = {INT64_MAX / 2, 3};
    ok(vr_tensor_alloc(&t, VR_DTYPE_BF16, 5, s5, &err) == 0 && vr_tensor_numel(&t) == 12 &&
           vr_tensor_nbytes(&t) == 24 && t.owned,
       "alloc 5-d bf16: 12 elements, 24 bytes");
    char buf[64];
    is_str(vr_tensor_shape_str(&t, buf, sizeof buf), "[2, 1, 3, 1, 2]", "shape string");
    vr_tensor_release(&t);
    ok(vr_tensor_alloc(&t, VR_DTYPE_F32, 3, s0, &err) == 0 && vr_tensor_numel(&t) == 0 &&
           vr_tensor_nbytes(&t) == 0 && t.data,
       "zero-size tensor allocates");
    vr_tensor_release(&t);
    ok(vr_tensor_alloc(&t, VR_DTYPE_F32, 0, NULL, &err) == 0 && vr_tensor_numel(&t) == 1,
       "0-d tensor has one element");
    is_str(vr_tensor_shape_str(&t, buf, sizeof buf), "[]", "0-d shape string");
    vr_tensor_release(&t);
    vr_tensor_view(&t, VR_DTYPE_F32, 2, big, NULL);
    ok(vr_tensor_numel(&t) == -1, "numel reports int64 overflow");
    ok(vr_tensor_alloc(&t, VR_DTYPE_F32, 2, big, &err) == -1 && err.kind == VR_ERR_SYS,
       "alloc of an overflowing shape fails: %s", err.msg);
}

int main(void)
{
    dtypes_and_storage();
    json_t *exp = golden_json("safetensors/expected.json");
    struct vr_safetensors st;
    struct vr_err err;
    if (vr_safetensors_open(&st, golden_path("safetensors/floats.safetensors"), &err)) {
        printf("Bail out! %s\n", err.msg);
        return 1;
    }
    to16(&st, "f32.bf16", VR_DTYPE_BF16, vr_f32_to_bf16, bf16_nan, "f32->bf16");
    to16(&st, "f32.f16", VR_DTYPE_F16, vr_f32_to_f16, f16_nan, "f32->f16");
    to32(&st, "bf16.in", "bf16.in.f32", VR_DTYPE_BF16, vr_bf16_to_f32, "bf16->f32");
    to32(&st, "f16.in", "f16.in.f32", VR_DTYPE_F16, vr_f16_to_f32, "f16->f32");
    arrays(&st);
    checksums(json_object_get(exp, "conversions"));
    exhaustive();

    /* what tensor.h promises for NaN, whatever torch's vector paths do */
    ok(vr_f32_to_bf16(from_bits(0x7f80ffffu)) == 0x7fc0 &&
           vr_f32_to_bf16(from_bits(0xffc12345u)) == 0x7fc0,
       "f32->bf16 maps every NaN to 0x7fc0 (c10::BFloat16), never to inf");
    ok(vr_f32_to_f16(from_bits(0x7f800001u)) == 0x7e00 &&
           vr_f32_to_f16(from_bits(0xffc12345u)) == 0xfe00,
       "f32->f16 maps NaN to 0x7e00 with its sign (c10::Half)");
    vr_safetensors_close(&st);
    json_decref(exp);
    return done_testing();
}
