// SSE2 (any x86-64): 4 lanes, built without extra ISA flags.
#define GPTFAST_ISA kernels_baseline
#define GPTFAST_L 4
#define GPTFAST_V 3
#define GPTFAST_V4 2
#define GPTFAST_INT4_LANES 4  // lanes of the int4 nibble-lane kernel
#include "matvec_kernels.inc"
