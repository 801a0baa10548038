// AVX2 + FMA: 8 lanes (CMake adds -mavx2 -mfma).
#define GPTFAST_ISA kernels_avx2
#define GPTFAST_L 8
#define GPTFAST_V 3
#define GPTFAST_V4 2
#define GPTFAST_INT4_LANES 8  // lanes of the int4 nibble-lane kernel
// One-vector rows sharing x (matvec_kernels.inc). Measured with this build on Zen 4, one thread
// from memory: bf16 2,048 columns one row 15-17 GB/s, four 29-30 (two: 31-32, but 14-15 on long
// rows); rows of 4,096 columns and more, one / four / eight rows: fp32 8,192 columns 14 / 25 /
// 27-28, bf16 8,192 12 / 20 / 22-23, bf16 4,096 18 / 19 / 22-23. On Zen 3: one row instead of eight
// on 8,192 columns fp32 33 % and bf16 17 % slower; short bf16 rows one at a time 7-15 % faster
// from memory, but the 134M bf16 decode level, so four.
#define GPTFAST_X_ROWS 4
#define GPTFAST_X_ROWS_LONG 8
// Zen 3, one thread from memory: bf16 rows of 4 KiB and more read 13-30 % faster without the
// next block's request (matvec_kernels.inc, bf16).
#define GPTFAST_REQUEST_ROW_BYTES 4096
// int8 rows of 4,096 columns or more four at a time (matvec_kernels.inc, int8): Zen 3, 8,192
// columns +32 % from memory.
#define GPTFAST_INT8_ROWS_LONG 4
#include "matvec_kernels.inc"
