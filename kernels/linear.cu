/* linear.cu: the linear layer's GEMMs through cuBLASLt (vr_cuda.h).
 * Row-major (N, In) activations and (O, In) weights are the column-major
 * matrices X^T and W^T, so y^T = W x^T is one column-major GEMM with A = W^T
 * transposed: m = O, n = N, k = In (and likewise for the backward). fp32
 * compute without TF32 for the fp32 path, so the GPU's products differ from
 * OpenBLAS's by summation order only. */
#include <cublasLt.h>

#include "common.cuh"

static cublasLtHandle_t lt;
static void *lt_ws;
static const size_t LT_WS = (size_t)32 << 20;

static int lt_ready(void)
{
    if (lt) return 1;
    cublasStatus_t s = cublasLtCreate(&lt);
    if (s != CUBLAS_STATUS_SUCCESS) {
        vr_cuda_keep(cudaErrorUnknown, "cublasLtCreate");
        lt = NULL;
        return 0;
    }
    lt_ws = vr_cuda_alloc(LT_WS);
    return 1;
}

static void lt_check(cublasStatus_t s, const char *what)
{
    if (s != CUBLAS_STATUS_SUCCESS) vr_cuda_keep(cudaErrorUnknown, what);
}

/* Column-major C (m,n) = op(A) op(B) + beta C with A, B of type ab (f32 or
 * bf16), C f32, fp32 compute. ta/tb: A, B stored transposed (then A is
 * stored (k, m), B (n, k)). */
static void gemm(int ta, int tb, int m, int n, int k, const void *A, int lda, const void *B, int ldb, float beta,
                 float *C, int ldc, cudaDataType_t ab, const char *what)
{
    if (m <= 0 || n <= 0 || !lt_ready()) return;
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasComputeType_t ct = CUBLAS_COMPUTE_32F; /* fp32 inputs stay fp32: TF32 only with _FAST_TF32 */
    lt_check(cublasLtMatmulDescCreate(&op, ct, CUDA_R_32F), what);
    lt_check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &oa, sizeof oa), what);
    lt_check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &ob, sizeof ob), what);
    lt_check(cublasLtMatrixLayoutCreate(&la, ab, ta ? k : m, ta ? m : k, lda), what);
    lt_check(cublasLtMatrixLayoutCreate(&lb, ab, tb ? n : k, tb ? k : n, ldb), what);
    lt_check(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, m, n, ldc), what);
    float alpha = 1.0f;
    if (k <= 0) { /* an empty product: C = beta C */
        if (beta == 0) vr_cuda_keep(cudaMemset2D(C, (size_t)ldc * 4, 0, (size_t)m * 4, n), what);
    } else {
        lt_check(cublasLtMatmul(lt, op, &alpha, A, la, B, lb, &beta, C, lc, C, lc, NULL, lt_ws, LT_WS, 0), what);
    }
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatmulDescDestroy(op);
}

__global__ void k_rows_bias(float *y, const float *b, int N, int O)
{
    size_t total = (size_t)N * O;
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < total; t += (size_t)gridDim.x * blockDim.x)
        y[t] = b[t % O];
}

static void linear_fwd(float *y, const void *xin, const void *w, const float *b, int N, int O, int In,
                       cudaDataType_t ab, const char *what)
{
    if (N <= 0 || O <= 0) return;
    if (b) {
        k_rows_bias<<<vr_blocks((size_t)N * O, 256), 256>>>(y, b, N, O);
        VR_CU_LAUNCHED(what);
    }
    /* y^T (O, N) = W (O, In) x^T: A = W^T stored (In, O) transposed, B = x^T (In, N) */
    gemm(1, 0, O, N, In, w, In, xin, In, b ? 1.0f : 0.0f, y, O, ab, what);
}

extern "C" void vr_cuda_linear_fwd(float *y, const float *x, const float *w, const float *b, int N, int O, int In)
{
    linear_fwd(y, x, w, b, N, O, In, CUDA_R_32F, "linear_fwd");
}

__global__ void k_round_bf16(uint16_t *o, const float *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        o[i] = vr_f32_bf16(x[i]);
}

extern "C" void vr_cuda_linear_fwd_bf16(float *y, const float *x, const uint16_t *w, const float *b, int N, int O,
                                        int In, uint16_t *xb)
{
    size_t n = (size_t)N * In;
    if (n) {
        k_round_bf16<<<vr_blocks(n, 256), 256>>>(xb, x, n);
        VR_CU_LAUNCHED("linear_fwd_bf16 round");
    }
    linear_fwd(y, xb, w, b, N, O, In, CUDA_R_16BF, "linear_fwd_bf16");
}

/* db[o] += sum_n dy[n][o]: one thread a column, rows in order */
__global__ void k_colsum(float *db, const float *dy, int N, int O)
{
    for (int o = blockIdx.x * blockDim.x + threadIdx.x; o < O; o += gridDim.x * blockDim.x) {
        float acc = 0;
        for (int n = 0; n < N; n++) acc += dy[(size_t)n * O + o];
        db[o] += acc;
    }
}

extern "C" void vr_cuda_linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                   int N, int O, int In)
{
    if (N <= 0) return;
    /* dx^T (In, N) = W^T (In, O) dy^T (O, N): A = W^T stored (In, O), B = dy^T stored (O, N) */
    if (dx) gemm(0, 0, In, N, O, w, In, dy, O, 0.0f, dx, In, CUDA_R_32F, "linear_bwd dx");
    /* dw^T (In, O) += x^T (In, N) dy (N, O): A = x^T stored (In, N), B = dy^T stored (O, N) transposed */
    if (dw) gemm(0, 1, In, O, N, x, In, dy, O, 1.0f, dw, In, CUDA_R_32F, "linear_bwd dw");
    if (db) {
        k_colsum<<<(O + 127) / 128, 128>>>(db, dy, N, O);
        VR_CU_LAUNCHED("linear_bwd db");
    }
}
