// The emulator stands in for the CUDA headers (see emu_cuda.h).
#include "emu_cuda.h"
