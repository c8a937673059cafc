/* tensor.c: dtype table, tensor storage, float conversions (see tensor.h).
 * Reference code; used by every stage. */
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct { const char *name; size_t size; } dtypes[VR_DTYPE_COUNT] = {
    [VR_DTYPE_BOOL] = {"BOOL", 1},       [VR_DTYPE_U8] = {"U8", 1},
    [VR_DTYPE_I8] = {"I8", 1},           [VR_DTYPE_F8_E4M3] = {"F8_E4M3", 1},
    [VR_DTYPE_F8_E5M2] = {"F8_E5M2", 1}, [VR_DTYPE_I16] = {"I16", 2},
    [VR_DTYPE_U16] = {"U16", 2},         [VR_DTYPE_F16] = {"F16", 2},
    [VR_DTYPE_BF16] = {"BF16", 2},       [VR_DTYPE_I32] = {"I32", 4},
    [VR_DTYPE_U32] = {"U32", 4},         [VR_DTYPE_F32] = {"F32", 4},
    [VR_DTYPE_F64] = {"F64", 8},         [VR_DTYPE_I64] = {"I64", 8},
    [VR_DTYPE_U64] = {"U64", 8},
};

size_t vr_dtype_size(enum vr_dtype dt)
{
    VR_ASSERT(dt >= 0 && dt < VR_DTYPE_COUNT);
    return dtypes[dt].size;
}

const char *vr_dtype_name(enum vr_dtype dt)
{
    VR_ASSERT(dt >= 0 && dt < VR_DTYPE_COUNT);
    return dtypes[dt].name;
}

int vr_dtype_parse(const char *name, enum vr_dtype *out)
{
    for (int i = 0; i < VR_DTYPE_COUNT; i++)
        if (strcmp(name, dtypes[i].name) == 0) {
            *out = (enum vr_dtype)i;
            return 0;
        }
    return -1;
}

int64_t vr_tensor_numel(const struct vr_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0) return -1;
        if (t->shape[i] && n > INT64_MAX / t->shape[i]) return -1;
        n *= t->shape[i];
    }
    return n;
}

size_t vr_tensor_nbytes(const struct vr_tensor *t)
{
    return (size_t)vr_tensor_numel(t) * vr_dtype_size(t->dtype);
}

void vr_tensor_view(struct vr_tensor *t, enum vr_dtype dt, int ndim, const int64_t *shape,
                    void *data)
{
    VR_ASSERT(ndim >= 0 && ndim <= VR_MAX_DIMS);
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
}

int vr_tensor_alloc(struct vr_tensor *t, enum vr_dtype dt, int ndim, const int64_t *shape,
                    struct vr_err *err)
{
    vr_tensor_view(t, dt, ndim, shape, NULL);
    int64_t n = vr_tensor_numel(t);
    if (n < 0 || (uint64_t)n > SIZE_MAX / vr_dtype_size(dt))
        return vr_err_set(err, VR_ERR_SYS, NULL, 0, "tensor size overflows");
    t->data = calloc((size_t)n ? (size_t)n : 1, vr_dtype_size(dt));
    if (!t->data)
        return vr_err_set(err, VR_ERR_SYS, NULL, 0, "out of memory allocating %lld elements",
                          (long long)n);
    t->owned = 1;
    return 0;
}

void vr_tensor_release(struct vr_tensor *t)
{
    if (t->owned) free(t->data);
    t->data = NULL;
    t->owned = 0;
}

const char *vr_tensor_shape_str(const struct vr_tensor *t, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

uint16_t vr_f32_to_bf16(float f)
{
    /* c10::BFloat16 round_to_nearest_even: NaN -> canonical quiet NaN */
    if (isnan(f)) return 0x7fc0;
    uint32_t u = f2u(f);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float vr_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

/* IEEE binary16, round to nearest even (what c10::Half and the F16C
 * instruction do). NaN becomes the canonical 0x7e00 with its sign, as c10::Half. */
uint16_t vr_f32_to_f16(float f)
{
    uint32_t x = f2u(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) { /* inf or nan */
        return sign | (ax == 0x7f800000u ? 0x7c00u : 0x7e00u);
    }
    if (ax >= 0x477ff000u) return sign | 0x7c00u; /* rounds to >= 65520: inf */
    if (ax < 0x38800000u) {                      /* result is subnormal or zero */
        /* add 0.5 (as a float) so the FPU does the round-to-nearest-even */
        float r = u2f(ax) + 0.5f;
        return sign | (uint16_t)(f2u(r) - f2u(0.5f));
    }
    uint32_t mant_odd = (ax >> 13) & 1u;
    ax += ((uint32_t)(15 - 127) << 23) + 0xfffu + mant_odd;
    return sign | (uint16_t)(ax >> 13);
}

float vr_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        if (m == 0) return u2f(sign);
        float v = (float)m * 0x1p-24f; /* subnormal: exact */
        return sign ? -v : v;
    }
    if (e == 31) return u2f(sign | 0x7f800000u | (m << 13));
    return u2f(sign | ((e + 112) << 23) | (m << 13));
}

void vr_convert_to_f32(float *out, const void *in, enum vr_dtype dt, size_t n)
{
    switch (dt) {
    case VR_DTYPE_F32: memcpy(out, in, n * 4); break;
    case VR_DTYPE_BF16: {
        const uint16_t *p = in;
        for (size_t i = 0; i < n; i++) out[i] = vr_bf16_to_f32(p[i]);
        break;
    }
    case VR_DTYPE_F16: {
        const uint16_t *p = in;
        for (size_t i = 0; i < n; i++) out[i] = vr_f16_to_f32(p[i]);
        break;
    }
    default: VR_ASSERT(!"vr_convert_to_f32: not a float storage dtype");
    }
}

void vr_convert_from_f32(void *out, enum vr_dtype dt, const float *in, size_t n)
{
    switch (dt) {
    case VR_DTYPE_F32: memcpy(out, in, n * 4); break;
    case VR_DTYPE_BF16: {
        uint16_t *p = out;
        for (size_t i = 0; i < n; i++) p[i] = vr_f32_to_bf16(in[i]);
        break;
    }
    case VR_DTYPE_F16: {
        uint16_t *p = out;
        for (size_t i = 0; i < n; i++) p[i] = vr_f32_to_f16(in[i]);
        break;
    }
    default: VR_ASSERT(!"vr_convert_from_f32: not a float storage dtype");
    }
}
