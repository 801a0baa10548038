"""Rewrites the CUDA sources for the CPU emulator (emu_cuda.h): kernel<<<grid, block, smem,
stream>>>(args) becomes emu::launch(grid, block, smem, stream, [=] { kernel(args); }), the sampling
block size becomes argv[3] (fewer emulated threads run faster; the kernels work for any multiple of
32), and the test's draw count becomes GPTFAST_EMU_DRAWS.
usage: generate.py NATIVE_DIR OUT_DIR THREADS"""
import pathlib
import re
import sys

native, out, threads = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
(out / "cuda").mkdir(parents=True, exist_ok=True)
launch = re.compile(r"(\w+(?:<[^;<>]*>)?)<<<(.*?)>>>\((.*?)\);", re.S)
for cu in sorted((native / "src" / "cuda").glob("*.cu")):
    s = launch.sub(lambda m: f"emu::launch({m.group(2)}, [=] {{ {m.group(1)}({m.group(3)}); }});", cu.read_text())
    s = s.replace("constexpr int kThreads = 512;", f"constexpr int kThreads = {threads};")
    (out / "cuda" / (cu.stem + ".cpp")).write_text(s)
test = (native / "test" / "cuda_kernels_test.cpp").read_text()
marker = "constexpr int kDraws = 200000;"
if marker not in test:
    sys.exit("generate.py: the test's kDraws line changed; update the emulator")
(out / "test.cpp").write_text(test.replace(marker, "constexpr int kDraws = int(GPTFAST_EMU_DRAWS);"))
