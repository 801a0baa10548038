// AVX-512: 16 lanes (CMake adds the AVX-512 F/BW/DQ/VL flags).
#define GPTFAST_ISA kernels_avx512
#define GPTFAST_L 16
#define GPTFAST_V 6
#define GPTFAST_V4 4
#define GPTFAST_INT4_LANES 8  // lanes of the int4 nibble-lane kernel
// Single-vector prefetch distances (matvec_kernels.inc): none for fp32 and bf16 (measured on Zen 4).
#define GPTFAST_AHEAD_F32 0
#define GPTFAST_AHEAD_BF16 0
#define GPTFAST_AHEAD_INT8 1024
// One-vector rows sharing x (matvec_kernels.inc): bf16 under 4,096 columns four at a time (eight:
// 13-17 GB/s instead of 28-32 on Zen 4); longer fp32 and bf16 rows eight (bf16 4,096 columns
// 17-20 -> 20-25 GB/s, 8,192 18-21 -> 18-24, fp32 level to +7 %).
#define GPTFAST_X_ROWS 4
#define GPTFAST_X_ROWS_LONG 8
#include "matvec_kernels.inc"
