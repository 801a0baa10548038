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
#define GPTFAST_X_ROWS 4  // one-vector rows sharing x (matvec_kernels.inc): fp32 long rows, bf16
#include "matvec_kernels.inc"
