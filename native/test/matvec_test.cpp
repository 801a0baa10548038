// matmul_rows (the fused decode step's weights x vectors kernel) against a float64 reference, for
// fp32 and bf16 weights, over shapes with every kind of tail (rows not a multiple of the row block,
// cols not a multiple of the SIMD width, vector counts not a multiple of the vector block), with 1
// and 2 threads, and for each ISA variant this CPU can run. The tolerance is the worst-case bound
// of fp32 summation, (cols + 2) * 2^-24 * sum |w||x|: any correct fp32 accumulation meets it, a
// dropped or doubled term, a wrong index or lower-precision arithmetic does not.
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <c10/util/BFloat16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gptfast/bench_api.h"
#include "gptfast/engine_api.h"
#include "kernel_test_support.h"
#include "matvec.h"
#include "test_models.h"
#include "thread_team.h"

namespace {

using gptfast::MatvecKernel;
using kernel_test::kernels;
using kernel_test::name;
using kernel_test::ThreadCount;
using kernel_test::to_bf16;

struct Case {
  int64_t rows, cols, n;
  std::vector<float> w32, x;
  std::vector<uint16_t> w16;
  std::vector<double> ref32, ref16, mag32, mag16;  // reference and sum |w||x| per output
};

Case make_case(int64_t rows, int64_t cols, int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Case c{rows, cols, n, {}, {}, {}, {}, {}, {}, {}};
  c.w32.resize(size_t(rows * cols));
  c.w16.resize(c.w32.size());
  c.x.resize(size_t(n * cols));
  for (auto& v : c.w32) v = normal(rng);
  for (size_t i = 0; i < c.w32.size(); ++i) c.w16[i] = to_bf16(c.w32[i]);
  for (auto& v : c.x) v = normal(rng);
  for (auto* out : {&c.ref32, &c.ref16, &c.mag32, &c.mag16}) out->assign(size_t(n * rows), 0.0);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      double s32 = 0, s16 = 0, m32 = 0, m16 = 0;
      for (int64_t k = 0; k < cols; ++k) {
        const double xv = c.x[size_t(t * cols + k)];
        const double w32 = c.w32[size_t(r * cols + k)];
        const double w16 = gptfast::bf16_to_float(c.w16[size_t(r * cols + k)]);
        s32 += w32 * xv;
        s16 += w16 * xv;
        m32 += std::fabs(w32 * xv);
        m16 += std::fabs(w16 * xv);
      }
      const size_t o = size_t(t * rows + r);
      c.ref32[o] = s32;
      c.ref16[o] = s16;
      c.mag32[o] = m32;
      c.mag16[o] = m16;
    }
  }
  return c;
}

// Counts outputs outside the bound (reporting the first few) for one run.
template <class W>
int64_t check(const Case& c, const std::vector<W>& w, const std::vector<double>& ref, const std::vector<double>& mag,
              MatvecKernel kernel, int threads, const char* dtype) {
  std::vector<float> y(size_t(c.n * c.rows), std::numeric_limits<float>::quiet_NaN());
  if (kernel == MatvecKernel::automatic) {
    gptfast::matmul_rows(w.data(), c.x.data(), y.data(), c.rows, c.cols, c.n);
  } else {
    gptfast::matmul_rows(kernel, w.data(), c.x.data(), y.data(), c.rows, c.cols, c.n);
  }
  const double unit = std::ldexp(1.0, -24);
  int64_t bad = 0;
  for (size_t o = 0; o < y.size(); ++o) {
    const double tol = double(c.cols + 2) * unit * mag[o] + 1e-30;
    const double err = std::fabs(double(y[o]) - ref[o]);
    if (!(err <= tol)) {
      if (++bad <= 3) {
        ADD_FAILURE() << dtype << " kernel=" << name(kernel) << " threads=" << threads << " rows=" << c.rows
                      << " cols=" << c.cols << " n=" << c.n << " out[" << o / c.rows << "][" << o % c.rows
                      << "] = " << y[o] << ", reference " << ref[o] << ", error " << err << " > " << tol;
      }
    }
  }
  return bad;
}

TEST(MatmulRows, MatchesFloat64ReferenceForAllShapesKernelsAndThreads) {
  std::mt19937 rng(1234);
  const auto ks = kernels();
  int64_t runs = 0, bad = 0;
  for (int64_t rows : {1, 3, 4, 5, 17, 64, 67}) {
    for (int64_t cols : {1, 7, 8, 9, 64, 100, 257}) {
      for (int64_t n : {1, 2, 3, 4, 5, 8, 13, 16, 33, 64}) {
        const Case c = make_case(rows, cols, n, rng);
        for (int threads : {1, 2}) {
          ThreadCount scope(threads);
          for (MatvecKernel k : ks) {
            bad += check(c, c.w32, c.ref32, c.mag32, k, threads, "fp32");
            bad += check(c, c.w16, c.ref16, c.mag16, k, threads, "bf16");
            runs += 2;
          }
        }
      }
    }
  }
  EXPECT_EQ(bad, 0) << "outputs outside the fp32 bound, over " << runs << " runs";
}

// Large enough that the 2-thread split and the column tiling (cols > one tile) are exercised.
TEST(MatmulRows, LargeShapesWithTwoThreads) {
  std::mt19937 rng(99);
  ThreadCount scope(2);
  for (auto [rows, cols, n] : {std::tuple<int64_t, int64_t, int64_t>{768, 2048, 8}, {2048, 768, 5},
                               {1000, 1500, 17}, {515, 3001, 2}, {320, 768, 1}, {67, 4130, 1},
                               {32, 8192, 1}}) {
    const Case c = make_case(rows, cols, n, rng);
    for (MatvecKernel k : kernels()) {
      EXPECT_EQ(check(c, c.w32, c.ref32, c.mag32, k, 2, "fp32"), 0);
      EXPECT_EQ(check(c, c.w16, c.ref16, c.mag16, k, 2, "bf16"), 0);
    }
  }
}

TEST(MatmulRows, ZeroColumnsGiveZeros) {
  std::vector<float> w, x, y(6, 1.0f);
  gptfast::matmul_rows(w.data(), x.data(), y.data(), 3, 0, 2);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(BenchApi, MachineLimitsArePositiveAndRestoreThreads) {
  const int before = at::get_num_threads();
  const gptfast::MachineLimits limits = gptfast::measure_machine_limits(1);
  EXPECT_EQ(limits.threads, 1);
  EXPECT_GT(limits.read_bytes_per_second, 1e8);
  EXPECT_GT(limits.matmul_flops_per_second, 1e8);
  EXPECT_EQ(at::get_num_threads(), before);
  EXPECT_THROW(gptfast::measure_machine_limits(0), std::runtime_error);
  EXPECT_GT(gptfast::measure_read_bandwidth(1), 1e8);
  EXPECT_EQ(at::get_num_threads(), before);
  EXPECT_THROW(gptfast::measure_read_bandwidth(0), std::runtime_error);
}

// A session's thread count reaches OpenBLAS too (at::mm's fp32 GEMMs run there): at::set_num_threads
// alone left OpenBLAS's pool on every core, so --threads 1 prefilled long fp32 prompts on all of them.
TEST(IntraOpThreads, ASessionSetsOpenBlasThreadsToo) {
  const auto openblas_threads = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (openblas_threads == nullptr) GTEST_SKIP() << "the loaded BLAS is not OpenBLAS";
  const int before = at::get_num_threads();
  for (int threads : {1, 2}) {
    gptfast::Session session("5", "random", gptfast::test::small_llama(), "fp32", "cpu", threads, 0, 1, 0, "", 1);
    EXPECT_EQ(at::get_num_threads(), threads);
    EXPECT_EQ(openblas_threads(), threads);
  }
  gptfast::set_intra_op_threads(before);
}

TEST(BenchApi, MatmulRowsFlops) {
  EXPECT_GT(gptfast::matmul_rows_flops(1, 4, 256, 256), 1e7);
  EXPECT_THROW(gptfast::matmul_rows_flops(1, 0, 256, 256), std::runtime_error);
}

}  // namespace

// The fused decode step splits rows among its own threads with matmul_rows_range: any split at
// row-block boundaries must give bit-identical results to the whole product (so the output does
// not depend on the thread count).
TEST(MatmulRows, RangesAtRowBlocksMatchTheWholeProductExactly) {
  std::mt19937 rng(7);
  for (auto [rows, cols, n] : {std::tuple<int64_t, int64_t, int64_t>{100, 300, 1}, {77, 129, 3}, {64, 64, 9}}) {
    const Case c = make_case(rows, cols, n, rng);
    std::vector<float> whole32(size_t(n * rows)), whole16(whole32.size());
    gptfast::matmul_rows(c.w32.data(), c.x.data(), whole32.data(), rows, cols, n);
    gptfast::matmul_rows(c.w16.data(), c.x.data(), whole16.data(), rows, cols, n);
    const int64_t block = gptfast::kMatvecRowBlock;
    for (int64_t cut = 0; cut <= rows; cut += block) {
      std::vector<float> y32(whole32.size(), NAN), y16(whole32.size(), NAN);
      for (auto [b, e] : {std::pair<int64_t, int64_t>{0, cut}, {cut, rows}}) {
        gptfast::matmul_rows_range(c.w32.data(), c.x.data(), y32.data(), rows, cols, n, b, e);
        gptfast::matmul_rows_range(c.w16.data(), c.x.data(), y16.data(), rows, cols, n, b, e);
      }
      EXPECT_EQ(0, std::memcmp(y32.data(), whole32.data(), y32.size() * sizeof(float))) << rows << " cut " << cut;
      EXPECT_EQ(0, std::memcmp(y16.data(), whole16.data(), y16.size() * sizeof(float))) << rows << " cut " << cut;
    }
  }
}

// From two vectors on, a vector's result does not depend on how many others share the call: the
// blocked kernel sums each (row, vector) in the same order whatever the vector block (bf16 and
// int8 widen each weight the same way in every block). So a batch or a prompt chunk gives each
// sequence the bits it would get in a call of two.
TEST(MatmulRows, EachVectorsResultIsTheSameWhateverTheVectorCount) {
  std::mt19937 rng(11);
  for (auto [rows, cols, n] : {std::tuple<int64_t, int64_t, int64_t>{67, 257, 13}, {40, 2100, 8}, {16, 64, 33}}) {
    const Case c = make_case(rows, cols, n, rng);
    for (MatvecKernel k : kernels()) {
      if (k == MatvecKernel::automatic) continue;
      std::vector<float> all32(size_t(n * rows)), all16(all32.size()), pair32(all32.size()), pair16(all32.size());
      gptfast::matmul_rows(k, c.w32.data(), c.x.data(), all32.data(), rows, cols, n);
      gptfast::matmul_rows(k, c.w16.data(), c.x.data(), all16.data(), rows, cols, n);
      for (int64_t t = 0; t < n; t += 2) {  // vectors t, t + 1 alone (odd n: the last pair is n - 2, n - 1)
        const int64_t t0 = std::min(t, n - 2);
        gptfast::matmul_rows(k, c.w32.data(), c.x.data() + t0 * cols, pair32.data() + t0 * rows, rows, cols, 2);
        gptfast::matmul_rows(k, c.w16.data(), c.x.data() + t0 * cols, pair16.data() + t0 * rows, rows, cols, 2);
      }
      EXPECT_EQ(0, std::memcmp(all32.data(), pair32.data(), all32.size() * sizeof(float)))
          << "fp32 kernel=" << name(k) << " rows=" << rows << " cols=" << cols << " n=" << n;
      EXPECT_EQ(0, std::memcmp(all16.data(), pair16.data(), all16.size() * sizeof(float)))
          << "bf16 kernel=" << name(k) << " rows=" << rows << " cols=" << cols << " n=" << n;
    }
  }
}

// One vector: every ISA's build with FMA sums each row in the same order (8-lane accumulators,
// however many rows it takes at a time and whatever the row length), so its bits are the same on
// every such CPU (matvec_kernels.inc). (The SSE2 baseline has no FMA: it rounds each product.)
TEST(MatmulRows, OneVectorGivesTheSameBitsOnEveryFmaIsa) {
  if (!gptfast::matvec_kernel_supported(MatvecKernel::avx2)) GTEST_SKIP() << "this CPU has no AVX2+FMA";
  std::mt19937 rng(5);
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{67, 257}, {64, 2048}, {37, 4130}, {16, 8192}}) {
    const Case c = make_case(rows, cols, 1, rng);
    const size_t n = static_cast<size_t>(rows);
    std::vector<float> base32(n), base16(n), y32(n), y16(n);
    gptfast::matmul_rows(MatvecKernel::avx2, c.w32.data(), c.x.data(), base32.data(), rows, cols, 1);
    gptfast::matmul_rows(MatvecKernel::avx2, c.w16.data(), c.x.data(), base16.data(), rows, cols, 1);
    for (MatvecKernel k : kernels()) {
      if (k == MatvecKernel::baseline || k == MatvecKernel::avx2) continue;
      gptfast::matmul_rows(k, c.w32.data(), c.x.data(), y32.data(), rows, cols, 1);
      gptfast::matmul_rows(k, c.w16.data(), c.x.data(), y16.data(), rows, cols, 1);
      EXPECT_EQ(0, std::memcmp(y32.data(), base32.data(), y32.size() * sizeof(float)))
          << "fp32 kernel=" << name(k) << " rows=" << rows << " cols=" << cols;
      EXPECT_EQ(0, std::memcmp(y16.data(), base16.data(), y16.size() * sizeof(float)))
          << "bf16 kernel=" << name(k) << " rows=" << rows << " cols=" << cols;
    }
  }
}

// exp_shifted (attention's and the sampler's exp) against float64 exp, every tail length of the
// 8-lane loop, inputs down to below the -87 clamp: within 4 ulp where exp(x) is a normal float,
// ~1e-38 (not 0) below the clamp, as matvec.h says.
TEST(VectorLoops, ExpShiftedMatchesFloat64Exp) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-95.0f, 0.0f);
  for (int64_t n = 1; n <= 41; ++n) {
    const float shift = 3.5f;
    std::vector<float> v(n), x(n);
    for (int64_t j = 0; j < n; ++j) v[j] = x[j] = u(rng) + shift;
    if (n == 41) v[0] = x[0] = shift;  // exp(0) = 1 exactly
    gptfast::exp_shifted(v.data(), n, shift);
    for (int64_t j = 0; j < n; ++j) {
      const double d = double(x[j]) - shift;
      const double want = std::exp(d);
      if (d >= -87.0) {
        EXPECT_NEAR(v[j], want, 4 * want * std::ldexp(1.0, -23)) << "n " << n << " x " << d;
      } else {
        EXPECT_NEAR(v[j], std::exp(-87.0), 1e-40) << "clamped, n " << n << " x " << d;
      }
    }
  }
}

// attend (one query head over keys 0..last, online softmax in blocks of 64 keys) against a
// float64 softmax, for head sizes with and without the 8-key transposing path, with values
// read 64 columns at a time (64, 128) or 8 (8, 72), and context lengths around the block edges,
// with scores large enough that the running maximum changes between blocks (the rescale path).
// Keys and values fp32, and bf16 (a bf16 model's cache: the reference reads the values c10's
// conversion rounds them to).
TEST(VectorLoops, AttendMatchesFloat64Softmax) {
  std::mt19937 rng(12);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (bool bf16 : {false, true}) for (int64_t hd : {8, 6, 64, 72, 128}) {
    for (int64_t last : {0, 6, 7, 8, 63, 64, 65, 130, 200}) {
      std::vector<float> q(hd), k((last + 1) * hd), v((last + 1) * hd), out(hd);
      std::vector<uint16_t> kb(k.size()), vb(v.size());
      for (auto& e : q) e = g(rng);
      for (int64_t j = 0; j <= last; ++j) {
        const float grow = 0.02f * float(j);  // later keys score higher: the maximum moves
        for (int64_t i = 0; i < hd; ++i) {
          k[j * hd + i] = g(rng) + grow * q[i];
          v[j * hd + i] = g(rng);
        }
      }
      if (bf16) {
        for (size_t e = 0; e < k.size(); ++e) {
          const c10::BFloat16 kr(k[e]), vr(v[e]);
          kb[e] = kr.x;
          vb[e] = vr.x;
          k[e] = float(kr);
          v[e] = float(vr);
        }
      }
      const float scale = 1.0f / std::sqrt(float(hd));
      if (bf16) gptfast::attend(q.data(), kb.data(), vb.data(), hd, last, scale, out.data());
      else gptfast::attend(q.data(), k.data(), v.data(), hd, last, scale, out.data());
      std::vector<double> s(last + 1);
      double top = -1e300, total = 0;
      for (int64_t j = 0; j <= last; ++j) {
        double dot = 0;
        for (int64_t i = 0; i < hd; ++i) dot += double(q[i]) * k[j * hd + i];
        s[j] = dot * scale;
        top = std::max(top, s[j]);
      }
      for (auto& e : s) total += (e = std::exp(e - top));
      for (int64_t i = 0; i < hd; ++i) {
        double want = 0, magnitude = 0;
        for (int64_t j = 0; j <= last; ++j) {
          want += s[j] / total * v[j * hd + i];
          magnitude += s[j] / total * std::abs(v[j * hd + i]);
        }
        EXPECT_NEAR(out[i], want, 1e-5 * (magnitude + 1e-3))
            << (bf16 ? "bf16" : "fp32") << " hd " << hd << " last " << last << " i " << i;
      }
    }
  }
}

// The fused step's fp32 -> bf16 rounding of keys and values is c10's (what the ATen path stores):
// ties to even, carries into the exponent, infinities, NaN.
TEST(VectorLoops, FloatToBf16RoundsAsC10Does) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<uint32_t> bits;
  std::vector<uint32_t> cases = {0x00000000u, 0x80000000u, 0x3f808000u, 0x3f818000u, 0x3f80ffffu, 0x7f7fffffu,
                                 0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u, 0x00008000u, 0x00018000u};
  for (int i = 0; i < 100000; ++i) cases.push_back(bits(rng));
  for (uint32_t b : cases) {
    float f;
    std::memcpy(&f, &b, sizeof(f));
    EXPECT_EQ(gptfast::float_to_bf16(f), c10::BFloat16(f).x) << std::hex << b;
  }
}
