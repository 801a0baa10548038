// The AVX-512 blocking built for AVX2 (each 16-lane vector split in two): lets the tests
// check that instantiation's arithmetic on machines without AVX-512 (CMake adds -mavx2 -mfma).
#define GPTFAST_ISA kernels_avx512_shape
#define GPTFAST_L 16
#define GPTFAST_V 6
#define GPTFAST_V4 4
#define GPTFAST_INT4_LANES 8  // lanes of the int4 nibble-lane kernel
#include "matvec_kernels.inc"
