// Weight-only quantization (linear_weight.h, matvec.h): the int8 and int4 kernels against a float64
// dequantize-then-multiply reference on random shapes (rows, columns and vector counts that are
// not multiples of the blocking, the SIMD width or the group), for every ISA variant this CPU can
// run; the quantizers' error bounds and GPT-Fast's int4 packing; and the loader's refusals of
// malformed quantized checkpoints, each with a message naming the problem.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <xmmintrin.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernel_test_support.h"
#include "linear_weight.h"
#include "matvec.h"

namespace {

using gptfast::MatvecKernel;
using kernel_test::kernels;
using kernel_test::ThreadCount;
using kernel_test::to_bf16;

// Checks y against the float64 reference: |y - ref| <= 1e-5 * sum |w||x| for every output (the
// issue's "1e-5 relative", relative to the dot product's magnitude so that outputs near zero
// are judged fairly). Returns the number of outputs outside the bound.
int64_t compare(const std::vector<float>& y, const std::vector<double>& ref, const std::vector<double>& mag,
                const std::string& what, bool report = true) {
  int64_t bad = 0;
  for (size_t o = 0; o < y.size(); ++o) {
    const double err = std::fabs(double(y[o]) - ref[o]);
    if (!(err <= 1e-5 * mag[o] + 1e-30) && ++bad <= 3 && report) {
      ADD_FAILURE() << what << " output " << o << " = " << y[o] << ", reference " << ref[o] << ", error " << err;
    }
  }
  return bad;
}

struct Int8Case {
  int64_t rows, cols, n;
  std::vector<int8_t> q;
  std::vector<float> scales, x;
  std::vector<double> ref, mag;
};

Int8Case int8_case(int64_t rows, int64_t cols, int64_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> qd(-128, 127);
  std::uniform_real_distribution<float> sd(1e-3f, 2e-2f);
  std::normal_distribution<float> xd(0.0f, 1.0f);
  Int8Case c{rows, cols, n, {}, {}, {}, {}, {}};
  c.q.resize(size_t(rows * cols));
  for (auto& v : c.q) v = int8_t(qd(rng));
  c.scales.resize(size_t(rows));
  for (auto& v : c.scales) v = sd(rng);
  c.x.resize(size_t(n * cols));
  for (auto& v : c.x) v = xd(rng);
  c.ref.assign(size_t(n * rows), 0.0);
  c.mag.assign(size_t(n * rows), 0.0);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < cols; ++k) {
        const double w = double(c.q[size_t(r * cols + k)]) * double(c.scales[size_t(r)]);
        c.ref[size_t(t * rows + r)] += w * c.x[size_t(t * cols + k)];
        c.mag[size_t(t * rows + r)] += std::fabs(w * c.x[size_t(t * cols + k)]);
      }
  return c;
}

struct Int4Case {
  int64_t rows, cols, n, group, ld, sz_ld;
  std::vector<uint8_t> q;
  std::vector<uint16_t> sz;
  std::vector<float> x;
  std::vector<double> ref, mag;
};

// c.ref and c.mag from c.q, c.sz and c.x, in float64.
void int4_reference(Int4Case& c) {
  c.ref.assign(size_t(c.n * c.rows), 0.0);
  c.mag.assign(size_t(c.n * c.rows), 0.0);
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t k = 0; k < c.cols; ++k) {
      const uint8_t b = c.q[size_t(r * c.ld + k / 2)];
      const int q = (k % 2) ? (b & 15) : (b >> 4);
      const double s = gptfast::bf16_to_float(c.sz[size_t(r * c.sz_ld + 2 * (k / c.group))]);
      const double z = gptfast::bf16_to_float(c.sz[size_t(r * c.sz_ld + 2 * (k / c.group) + 1)]);
      const double w = (q - 8) * s + z;
      for (int64_t t = 0; t < c.n; ++t) {
        c.ref[size_t(t * c.rows + r)] += w * c.x[size_t(t * c.cols + k)];
        c.mag[size_t(t * c.rows + r)] += std::fabs(w * c.x[size_t(t * c.cols + k)]);
      }
    }
}

// Realistic int4 parameters: a random normal weight matrix quantized as GPT-Fast does (rows padded
// to K), so that scale and zero have the relation they have in real checkpoints (the kernel
// applies them once per group, whose rounding is bounded relative to the weights only then).
// The nibbles past `cols` are then overwritten with random values: a kernel that used columns
// past `cols` would be caught.
Int4Case int4_case(int64_t rows, int64_t cols, int64_t n, int64_t group, std::mt19937& rng) {
  std::uniform_int_distribution<int> nib(0, 15);
  std::normal_distribution<float> xd(0.0f, 1.0f);
  at::manual_seed(rng());
  const gptfast::LinearWeight lw = gptfast::quantize(at::randn({rows, cols}) * 0.05,
                                                     gptfast::parse_quantize("int4:" + std::to_string(group)));
  const int64_t padded = lw.weight.size(1) * 2, groups = padded / group;
  Int4Case c{rows, cols, n, group, padded / 2, 2 * groups, {}, {}, {}, {}, {}};
  c.q.assign(lw.weight.data_ptr<uint8_t>(), lw.weight.data_ptr<uint8_t>() + rows * c.ld);
  const uint16_t* sz = reinterpret_cast<const uint16_t*>(lw.scales.data_ptr<at::BFloat16>());
  c.sz.assign(sz, sz + rows * c.sz_ld);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = cols; k < padded; ++k) {
      uint8_t& b = c.q[size_t(r * c.ld + k / 2)];
      b = (k % 2) ? uint8_t((b & 0xF0) | nib(rng)) : uint8_t((b & 0x0F) | (nib(rng) << 4));
    }
  }
  c.x.resize(size_t(n * cols));
  for (auto& v : c.x) v = xd(rng);
  int4_reference(c);
  return c;
}

std::string label(const char* type, MatvecKernel k, int64_t rows, int64_t cols, int64_t n, int threads) {
  return std::string(type) + " kernel=" + kernel_test::name(k) + " rows=" + std::to_string(rows) +
         " cols=" + std::to_string(cols) + " n=" + std::to_string(n) + " threads=" + std::to_string(threads);
}

TEST(QuantizedMatvec, Int8MatchesFloat64Reference) {
  std::mt19937 rng(7);
  int64_t bad = 0;
  for (int64_t rows : {1, 3, 4, 5, 17, 67}) {
    // 4,100 columns: rows of kLongRow or more go several at a time in some builds
    for (int64_t cols : {1, 7, 8, 33, 100, 257, 1100, 4100}) {
      for (int64_t n : {1, 2, 3, 7, 13}) {
        const Int8Case c = int8_case(rows, cols, n, rng);
        for (int threads : {1, 2}) {
          ThreadCount scope(threads);
          for (MatvecKernel k : kernels()) {
            std::vector<float> y(size_t(n * rows), NAN);
            const gptfast::Int8Rows w{c.q.data(), c.scales.data()};
            if (k == MatvecKernel::automatic) gptfast::matmul_rows(w, c.x.data(), y.data(), rows, cols, n);
            else gptfast::matmul_rows(k, w, c.x.data(), y.data(), rows, cols, n);
            bad += compare(y, c.ref, c.mag, label("int8", k, rows, cols, n, threads));
          }
        }
      }
    }
  }
  EXPECT_EQ(bad, 0);
}

// The VNNI int8 kernel (matvec_vnni.h) against its own bound, far tighter than fp32 summation:
// |y - ref| <= 2^-30 max |x| sum |q scale| (x's fixed point) + 2^-23 |ref| (the final rounding).
// Shapes it takes (columns not a multiple of 64, rows not of 4) and ones it leaves to the fp32
// kernel (rows too long for its int32 sums), x over 1e-30..1e30, x of tiny values only (past
// fp32's exponent range for its scale: fp32 kernel), zeros, and an infinity or a NaN, which must
// give non-finite outputs as the fp32 kernel does (not a rounded garbage integer).
TEST(QuantizedMatvec, Int8VnniKernelIsWithinItsFixedPointBound) {
  if (!gptfast::matvec_kernel_supported(MatvecKernel::avx512_vnni)) GTEST_SKIP() << "this CPU has no AVX-512 VNNI";
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> exponent(-30.0f, 30.0f);
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{64, 256}, {131, 1000}, {70, 4099}, {64, 40000}}) {
    Int8Case c = int8_case(rows, cols, 1, rng);
    const gptfast::Int8Rows w{c.q.data(), c.scales.data()};
    for (const char* kind : {"normal", "wide", "tiny", "zero", "inf", "nan"}) {
      const std::string what = std::string("vnni ") + kind + " " + std::to_string(rows) + "x" + std::to_string(cols);
      std::vector<float> x = c.x;
      for (int64_t k = 0; k < cols; ++k) {
        if (kind == std::string("wide")) x[size_t(k)] = (k % 3 ? 1.0f : -1.0f) * std::pow(10.0f, exponent(rng));
        if (kind == std::string("tiny")) x[size_t(k)] = (k % 2 ? 3e-33f : -7e-34f) * float(1 + k % 5);
        if (kind == std::string("zero")) x[size_t(k)] = 0.0f;
      }
      if (kind == std::string("inf")) x[size_t(cols / 2)] = INFINITY;
      if (kind == std::string("nan")) x[size_t(cols / 3)] = NAN;
      std::vector<float> y(size_t(rows), 0.5f);
      gptfast::matmul_rows(MatvecKernel::avx512_vnni, w, x.data(), y.data(), rows, cols, 1);
      double max_x = 0;
      bool finite = true;
      for (float v : x) {
        max_x = std::fmax(max_x, std::fabs(double(v)));
        finite = finite && std::isfinite(v);
      }
      int64_t bad = 0;
      for (int64_t r = 0; r < rows; ++r) {
        double ref = 0, mag = 0, qsum = 0;
        for (int64_t k = 0; k < cols; ++k) {
          const double wk = double(c.q[size_t(r * cols + k)]) * double(c.scales[size_t(r)]);
          ref += wk * double(x[size_t(k)]);
          mag += std::fabs(wk * double(x[size_t(k)]));
          qsum += std::fabs(wk);
        }
        bool ok;
        if (!finite) {
          ok = !std::isfinite(y[size_t(r)]) || c.q[size_t(r * cols + (kind == std::string("inf") ? cols / 2 : cols / 3))] == 0;
        } else {
          const double err = std::fabs(double(y[size_t(r)]) - ref);
          const double tight = std::ldexp(max_x, -30) * qsum + std::ldexp(std::fabs(ref), -23) + 1e-38;
          // rows past the kernel's column limit take the fp32 kernel: its bound
          ok = cols <= 32768 && kind != std::string("tiny") ? err <= tight : err <= 1e-5 * mag + 1e-30;
        }
        if (!ok && ++bad <= 3) ADD_FAILURE() << what << " row " << r << " = " << y[size_t(r)] << ", reference " << ref;
      }
      EXPECT_EQ(bad, 0) << what;
    }
  }
}

// Both ways of reading nibbles in the decode kernel, whatever this CPU would choose.
struct Int4LanesScope {
  explicit Int4LanesScope(gptfast::Int4Lanes mode) { gptfast::set_int4_lanes(mode); }
  ~Int4LanesScope() { gptfast::set_int4_lanes(gptfast::Int4Lanes::automatic); }
};
const char* lanes_name(gptfast::Int4Lanes mode) {
  return mode == gptfast::Int4Lanes::converted ? " converted" : mode == gptfast::Int4Lanes::subnormal ? " subnormal" : "";
}

// Runs every kernel this CPU supports over c (both nibble readings) and counts bad outputs.
int64_t int4_bad_outputs(const Int4Case& c, const std::string& what, int threads = 1) {
  int64_t bad = 0;
  for (gptfast::Int4Lanes mode : {gptfast::Int4Lanes::converted, gptfast::Int4Lanes::subnormal}) {
    Int4LanesScope lanes(mode);
    for (MatvecKernel k : kernels()) {
      std::vector<float> y(size_t(c.n * c.rows), NAN);
      const gptfast::Int4Rows w{c.q.data(), c.ld, c.sz.data(), c.sz_ld, c.group};
      if (k == MatvecKernel::automatic) gptfast::matmul_rows(w, c.x.data(), y.data(), c.rows, c.cols, c.n);
      else gptfast::matmul_rows(k, w, c.x.data(), y.data(), c.rows, c.cols, c.n);
      bad += compare(y, c.ref, c.mag, label((what + lanes_name(mode)).c_str(), k, c.rows, c.cols, c.n, threads));
    }
  }
  return bad;
}

TEST(QuantizedMatvec, Int4MatchesFloat64Reference) {
  std::mt19937 rng(8);
  int64_t bad = 0;
  for (int64_t group : {32, 64, 128, 256}) {
    for (int64_t rows : {1, 4, 5, 17, 67}) {
      for (int64_t cols : {1, 7, 31, 32, 33, 100, 172, 257, 1100}) {
        for (int64_t n : {1, 2, 3, 5, 13}) {
          const Int4Case c = int4_case(rows, cols, n, group, rng);
          for (int threads : {1, 2}) {
            ThreadCount scope(threads);
            bad += int4_bad_outputs(c, "int4 g" + std::to_string(group), threads);
          }
        }
      }
    }
  }
  EXPECT_EQ(bad, 0);
}

// Activations far from 1 (the subnormal reading scales x by a power of two chosen from max |x|):
// magnitudes from 1e-30 to 1e30 within one vector, a vector of tiny values only, an all-zero one.
TEST(QuantizedMatvec, Int4KeepsWideActivationRanges) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> exponent(-30.0f, 30.0f);
  for (int64_t group : {32, 128}) {
    Int4Case c = int4_case(19, 520, 3, group, rng);
    for (int64_t k = 0; k < c.cols; ++k) {
      c.x[size_t(k)] = (k % 3 ? 1.0f : -1.0f) * std::pow(10.0f, exponent(rng));
      c.x[size_t(c.cols + k)] = (k % 2 ? 3e-33f : -7e-34f) * float(1 + k % 5);
      c.x[size_t(2 * c.cols + k)] = 0.0f;
    }
    int4_reference(c);
    EXPECT_EQ(int4_bad_outputs(c, "wide int4 g" + std::to_string(group)), 0);
  }
}

// MXCSR's denormals-are-zero flag (set by some libraries) must not turn subnormal nibbles into 0.
TEST(QuantizedMatvec, Int4SubnormalReadingIgnoresDenormalsAreZero) {
  std::mt19937 rng(12);
  const Int4Case c = int4_case(32, 256, 1, 32, rng);
  Int4LanesScope lanes(gptfast::Int4Lanes::subnormal);
  const unsigned saved = _mm_getcsr();
  _mm_setcsr(saved | 0x40);  // DAZ, on this thread: matmul_rows_range runs here
  std::vector<float> y(32, NAN);
  gptfast::matmul_rows_range(gptfast::Int4Rows{c.q.data(), c.ld, c.sz.data(), c.sz_ld, 32}, c.x.data(), y.data(), 32,
                             256, 1, 0, 32);
  const unsigned after = _mm_getcsr();
  _mm_setcsr(saved);
  EXPECT_EQ(after & 0x40, 0x40u) << "the kernel must restore the caller's MXCSR";
  EXPECT_EQ(compare(y, c.ref, c.mag, "int4 under DAZ"), 0);
}

// The VNNI int4 kernel (matvec_vnni.h) on the shapes it takes (rows >= 64, cols >= 256; columns
// not a multiple of its 128-column step or of the group) for every group size, with x over
// 1e-30..1e30, tiny x only (the fp32 kernel's case), zeros, and an infinity or a NaN (non-finite
// outputs, not a rounded garbage integer).
TEST(QuantizedMatvec, Int4VnniKernelMatchesReferenceOnWideAndNonFiniteInputs) {
  if (!gptfast::matvec_kernel_supported(MatvecKernel::avx512_vnni)) GTEST_SKIP() << "this CPU has no AVX-512 VNNI";
  std::mt19937 rng(22);
  std::uniform_real_distribution<float> exponent(-30.0f, 30.0f);
  for (int64_t group : {32, 64, 128, 256}) {
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{64, 256}, {67, 300}, {130, 1100}}) {
      Int4Case c = int4_case(rows, cols, 1, group, rng);
      for (const char* kind : {"normal", "wide", "tiny", "zero", "inf", "nan"}) {
        const std::string what = std::string("vnni int4 g") + std::to_string(group) + " " + kind + " " +
                                 std::to_string(rows) + "x" + std::to_string(cols);
        for (int64_t k = 0; k < cols; ++k) {
          if (kind == std::string("wide")) c.x[size_t(k)] = (k % 3 ? 1.0f : -1.0f) * std::pow(10.0f, exponent(rng));
          if (kind == std::string("tiny")) c.x[size_t(k)] = (k % 2 ? 3e-33f : -7e-34f) * float(1 + k % 5);
          if (kind == std::string("zero")) c.x[size_t(k)] = 0.0f;
        }
        if (kind == std::string("inf")) c.x[size_t(cols / 2)] = INFINITY;
        if (kind == std::string("nan")) c.x[size_t(cols / 3)] = NAN;
        int4_reference(c);
        std::vector<float> y(size_t(rows), 0.5f);
        gptfast::matmul_rows(MatvecKernel::avx512_vnni, gptfast::Int4Rows{c.q.data(), c.ld, c.sz.data(), c.sz_ld, group},
                             c.x.data(), y.data(), rows, cols, 1);
        if (kind == std::string("inf") || kind == std::string("nan")) {
          int64_t finite = 0;
          for (float v : y) finite += std::isfinite(v) ? 1 : 0;
          EXPECT_EQ(finite, 0) << what;  // the fp32 kernel multiplies x by scale and zero apart
        } else {
          EXPECT_EQ(compare(y, c.ref, c.mag, what), 0);
        }
      }
    }
  }
}

// The comparison above can fail: a kernel that ignored the zero points would be caught.
TEST(QuantizedMatvec, ReferenceComparisonDetectsAWrongZeroPoint) {
  std::mt19937 rng(9);
  Int4Case c = int4_case(8, 96, 1, 32, rng);
  for (size_t i = 1; i < c.sz.size(); i += 2) c.sz[i] = to_bf16(gptfast::bf16_to_float(c.sz[i]) + 0.001f);
  std::vector<float> y(8);
  gptfast::matmul_rows(gptfast::Int4Rows{c.q.data(), c.ld, c.sz.data(), c.sz_ld, 32}, c.x.data(), y.data(), 8, 96, 1);
  EXPECT_GT(compare(y, c.ref, c.mag, "shifted zeros", /*report=*/false), 0);
}

at::Tensor random_weight(int64_t out, int64_t in, uint64_t seed) {
  at::manual_seed(seed);
  return at::randn({out, in}) * 0.05;
}

TEST(Quantize, Int8ErrorIsAtMostHalfAStepPlusScaleRounding) {
  const at::Tensor w = random_weight(600, 200, 1);  // rows in three blocks of kQuantizeRows and a part
  const gptfast::LinearWeight q = gptfast::quantize(w, gptfast::parse_quantize("int8"));
  ASSERT_EQ(q.weight.scalar_type(), at::kChar);
  const at::Tensor scale = q.scales.unsqueeze(1);
  // bf16 scales: exactly representable in bf16.
  EXPECT_TRUE(at::equal(q.scales, q.scales.to(at::kBFloat16).to(at::kFloat)));
  const at::Tensor err = (q.dequantize(at::kFloat) - w).abs();
  const at::Tensor bound = scale * 0.5 + w.abs() * (1.0 / 256) + 1e-9;
  EXPECT_TRUE(err.le(bound).all().item<bool>()) << "max error " << err.max().item<float>();
  // Symmetric per row: the largest |w| of a row maps to about 127.5 steps (127 or -128).
  const at::Tensor qmax = q.weight.to(at::kInt).abs().amax(1);
  EXPECT_TRUE(qmax.ge(127).all().item<bool>());
}

TEST(Quantize, Int4ErrorIsAtMostHalfAStepAndPaddingFollowsGptFast) {
  for (int64_t in : {256, 172, 1100}) {
    for (int group : {32, 64, 128, 256}) {
      const int64_t rows = 300;  // a block of kQuantizeRows and a part
      const at::Tensor w = random_weight(rows, in, uint64_t(in * group));
      const gptfast::LinearWeight q = gptfast::quantize(w, gptfast::parse_quantize("int4:" + std::to_string(group)));
      const int64_t padded = (in % group == 0 && in % 128 == 0) ? in : (in + 1023) / 1024 * 1024;
      ASSERT_EQ(q.weight.sizes(), at::IntArrayRef({rows, padded / 2})) << "in " << in << " g " << group;
      ASSERT_EQ(q.scales.sizes(), at::IntArrayRef({rows, padded / group, 2}));
      const at::Tensor scale = q.scales.select(2, 0).to(at::kFloat).repeat_interleave(group, 1).narrow(1, 0, in);
      const at::Tensor zero = q.scales.select(2, 1).to(at::kFloat).repeat_interleave(group, 1).narrow(1, 0, in);
      const at::Tensor err = (q.dequantize(at::kFloat) - w).abs();
      const at::Tensor bound = scale * 0.5 + (zero.abs() + scale * 8) * (1.0 / 256) + 1e-7;
      EXPECT_TRUE(err.le(bound).all().item<bool>()) << "in " << in << " g " << group << " max error " << err.max().item<float>();
    }
  }
}

TEST(Quantize, Int4PacksColumnPairsHighNibbleFirst) {
  // One group of 32 columns whose values sit exactly on the grid min + k * step, k = 0..15, 15..0:
  // the codes must be k, packed two per byte with the even column in the high nibble.
  std::vector<float> values(32);
  for (int c = 0; c < 32; ++c) values[size_t(c)] = -0.5f + 0.0625f * float(c < 16 ? c : 31 - c);
  const at::Tensor w = at::tensor(values).view({1, 32}).repeat({8, 1});  // 8 rows, in = 32 -> padded to 1024
  const gptfast::LinearWeight q = gptfast::quantize(w, gptfast::parse_quantize("int4:32"));
  ASSERT_EQ(q.weight.size(1), 512);
  const uint8_t* bytes = q.weight.data_ptr<uint8_t>();
  for (int j = 0; j < 16; ++j) {
    const int hi = j * 2 < 16 ? j * 2 : 31 - j * 2, lo = j * 2 + 1 < 16 ? j * 2 + 1 : 30 - j * 2;
    EXPECT_EQ(int(bytes[j]), (hi << 4) | lo) << "byte " << j;
  }
  EXPECT_FLOAT_EQ(gptfast::bf16_to_float(reinterpret_cast<const uint16_t*>(q.scales.data_ptr<at::BFloat16>())[0]), 0.0625f);
  EXPECT_TRUE(at::allclose(q.dequantize(at::kFloat), w, 0, 1e-7));
}

// A StateDict holding one layer "l" [out = 8, in = 64] as the tests below need it.
gptfast::StateDict quantized_dict(const std::string& mode) {
  gptfast::StateDict d;
  gptfast::put_linear(d, "l", gptfast::quantize(random_weight(8, 64, 3), gptfast::parse_quantize(mode)));
  return d;
}

std::string load_error(gptfast::StateDict d, const std::string& quantize = "") {
  try {
    gptfast::take_linear(d, "l", 8, 64, at::TensorOptions(), gptfast::parse_quantize(quantize));
  } catch (const gptfast::Error& e) {
    return e.what();
  }
  return "";
}

TEST(QuantizedCheckpoint, RoundTripsThroughTheCheckpointLayout) {
  for (const std::string mode : {"int8", "int4:32", "int4:64"}) {
    gptfast::StateDict d = quantized_dict(mode);
    const gptfast::LinearWeight w = gptfast::take_linear(d, "l", 8, 64, at::TensorOptions(), {});
    const gptfast::LinearWeight direct = gptfast::quantize(random_weight(8, 64, 3), gptfast::parse_quantize(mode));
    EXPECT_TRUE(at::equal(w.dequantize(at::kFloat), direct.dequantize(at::kFloat))) << mode;
  }
}

TEST(QuantizedCheckpoint, MalformedFilesAreRefusedWithAMessage) {
  {  // GPT-Fast's CUDA tensor-core layout
    gptfast::StateDict d = quantized_dict("int4:32");
    d["l.weight"] = at::zeros({1, 1, 32, 4}, at::kInt);
    EXPECT_NE(load_error(d).find("CUDA tensor cores"), std::string::npos) << load_error(d);
  }
  {  // scales of the wrong shape
    gptfast::StateDict d = quantized_dict("int8");
    d["l.scales"] = at::ones({7}, at::kBFloat16);
    EXPECT_NE(load_error(d).find("'l.scales' has shape [7]"), std::string::npos) << load_error(d);
    d = quantized_dict("int4:32");
    d["l.scales_and_zeros"] = at::ones({32, 9, 2}, at::kBFloat16);
    EXPECT_NE(load_error(d).find("'l.scales_and_zeros' has shape [32, 9, 2]"), std::string::npos) << load_error(d);
  }
  {  // an int4 file used as int8: packed weights next to per-row scales
    gptfast::StateDict d = quantized_dict("int4:32");
    d["l.scales"] = at::ones({8}, at::kBFloat16);
    d.erase("l.scales_and_zeros");
    EXPECT_NE(load_error(d).find("int4 file used as int8"), std::string::npos) << load_error(d);
  }
  {  // a group size GPT-Fast does not allow: 1024 columns in 21 groups would be 48.76; 1024/16 = 64 ok, /64 = 16 not
    gptfast::StateDict d = quantized_dict("int4:32");
    d["l.scales_and_zeros"] = at::ones({64, 8, 2}, at::kBFloat16);  // K = 1024 -> group 16
    EXPECT_NE(load_error(d).find("group size 16"), std::string::npos) << load_error(d);
  }
  {  // uint8 weights without the layout entry
    gptfast::StateDict d = quantized_dict("int4:32");
    d.erase(gptfast::kInt4LayoutKey);
    EXPECT_NE(load_error(d).find("packing is unknown"), std::string::npos) << load_error(d);
  }
  {  // quantized again at load, differently
    EXPECT_NE(load_error(quantized_dict("int8"), "int4:32").find("already quantized (int8"), std::string::npos);
    EXPECT_EQ(load_error(quantized_dict("int8"), "int8"), "");
  }
  {  // int8 weights without scales
    gptfast::StateDict d = quantized_dict("int8");
    d.erase("l.scales");
    EXPECT_NE(load_error(d).find("neither 'l.scales'"), std::string::npos) << load_error(d);
  }
}

TEST(QuantizeSpec, AcceptsGptFastValuesOnly) {
  EXPECT_EQ(gptfast::parse_quantize("int4").group, 128);
  EXPECT_EQ(gptfast::parse_quantize("int4:256").name(), "int4:256");
  EXPECT_EQ(gptfast::parse_quantize("").kind, gptfast::WeightKind::dense);
  for (const char* bad : {"int4:48", "int4:", "int2", "fp8", "int8:32"}) {
    EXPECT_THROW(gptfast::parse_quantize(bad), gptfast::Error) << bad;
  }
}

}  // namespace
