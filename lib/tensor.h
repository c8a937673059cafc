/* tensor.h: dense, contiguous, row-major tensors of up to 5 dimensions.
 *
 * Shape legend used in every op comment across lib/ and kernels/:
 *   B batch   T tokens   D model width   H heads   G group size   V vocabulary
 *   N patches   F feed-forward width   K head dim
 *
 * A tensor either owns its bytes (allocated by vr_tensor_alloc) or views bytes
 * owned by somebody else (a mapped safetensors file, a bigger buffer). */
#ifndef VR_TENSOR_H
#define VR_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define VR_MAX_DIMS 5

/* Every dtype safetensors knows, so that any valid file can be opened and
 * listed; arithmetic in lib/ is defined for F32, BF16, F16, I32, I64 and U8. */
enum vr_dtype {
    VR_DTYPE_BOOL,
    VR_DTYPE_U8,
    VR_DTYPE_I8,
    VR_DTYPE_F8_E4M3,
    VR_DTYPE_F8_E5M2,
    VR_DTYPE_I16,
    VR_DTYPE_U16,
    VR_DTYPE_F16,
    VR_DTYPE_BF16,
    VR_DTYPE_I32,
    VR_DTYPE_U32,
    VR_DTYPE_F32,
    VR_DTYPE_F64,
    VR_DTYPE_I64,
    VR_DTYPE_U64,
    VR_DTYPE_COUNT
};

struct vr_tensor {
    enum vr_dtype dtype;
    int ndim;
    int64_t shape[VR_MAX_DIMS];
    void *data;
    int owned;  /* 1: data was malloc'ed by vr_tensor_alloc and is freed by release */
};

/* Bytes per element; the safetensors spelling ("BF16") and back. */
size_t vr_dtype_size(enum vr_dtype dt);
const char *vr_dtype_name(enum vr_dtype dt);
/* Returns -1 when the name is not a safetensors dtype. */
int vr_dtype_parse(const char *name, enum vr_dtype *out);

/* Number of elements (1 for ndim 0). Returns -1 when the product overflows int64. */
int64_t vr_tensor_numel(const struct vr_tensor *t);
size_t vr_tensor_nbytes(const struct vr_tensor *t);

/* Fill t as a view of data (not owned). shape has ndim entries. */
void vr_tensor_view(struct vr_tensor *t, enum vr_dtype dt, int ndim, const int64_t *shape,
                    void *data);
/* Allocate zeroed, owned storage. Fails (VR_ERR_SYS) when out of memory or the
 * size overflows. */
int vr_tensor_alloc(struct vr_tensor *t, enum vr_dtype dt, int ndim, const int64_t *shape,
                    struct vr_err *err);
/* Free owned storage; views are just forgotten. */
void vr_tensor_release(struct vr_tensor *t);
/* "[2, 3, 4]" into buf. */
const char *vr_tensor_shape_str(const struct vr_tensor *t, char *buf, size_t n);

/* Scalar conversions, bit-compatible with PyTorch's c10::BFloat16 / c10::Half:
 * float -> bf16 rounds to nearest even and maps every NaN to 0x7fc0. */
uint16_t vr_f32_to_bf16(float f);
float vr_bf16_to_f32(uint16_t h);
uint16_t vr_f32_to_f16(float f);
float vr_f16_to_f32(uint16_t h);

/* Convert n elements between float32 and a storage dtype (F32, BF16, F16). */
void vr_convert_to_f32(float *out, const void *in, enum vr_dtype dt, size_t n);
void vr_convert_from_f32(void *out, enum vr_dtype dt, const float *in, size_t n);

#endif
