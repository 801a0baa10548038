// AVX2 + FMA: 8 lanes (CMake adds -mavx2 -mfma).
#define GPTFAST_ISA kernels_avx2
#define GPTFAST_L 8
#define GPTFAST_V 3
#define GPTFAST_V4 2
#define GPTFAST_INT4_LANES 8  // lanes of the int4 nibble-lane kernel
#include "matvec_kernels.inc"
