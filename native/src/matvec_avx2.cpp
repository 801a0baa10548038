// AVX2 + FMA: 8 lanes (CMake adds -mavx2 -mfma).
#define GPTFAST_ISA kernels_avx2
#define GPTFAST_L 8
#define GPTFAST_V 3
#define GPTFAST_V4 2
#define GPTFAST_INT4_LANES 8  // lanes of the int4 nibble-lane kernel
// One-vector rows sharing x (matvec_kernels.inc): fp32 long rows, bf16. Measured with this build
// on Zen 4, one thread from memory: fp32 8,192 columns 14 -> 25 GB/s, bf16 12 -> 19-20, bf16
// 2,048 columns 15-17 -> 29-30 (two rows: 31-32 there, but 14-15 on long rows).
#define GPTFAST_X_ROWS 4
#include "matvec_kernels.inc"
