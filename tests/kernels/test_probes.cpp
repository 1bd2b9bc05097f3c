// The machine probes (kernels/probes.hpp): every stream pattern reads every float of its buffer
// exactly once (the checksum of a buffer of ones is its length), at every level, and the probe's
// figure is the best pattern's. No speed is asserted: machines are noisy.
#include <doctest/doctest.h>

#include <cmath>

#include <lav2/kernels/probes.hpp>

using namespace lav2;
using namespace lav2::kernels;

TEST_CASE("stream probe: each pattern reads the whole buffer once; the figure is the best") {
  ThreadPool pool(2);
  const probes::StreamBuffer buf(pool, std::size_t(8) << 20);
  for (auto p : {probes::StreamPattern::one, probes::StreamPattern::two, probes::StreamPattern::prefetch}) {
    CAPTURE(probes::stream_pattern_name(p));
    double checksum = 0;
    const double g = probes::stream_gbps(pool, buf, p, 1, &checksum);
    CHECK(std::isfinite(g));
    CHECK(g > 0);
    CHECK(checksum == double(buf.size()));
  }
  probes::StreamPattern which = probes::StreamPattern::one;
  const double best = probes::stream_gbps(pool, buf, 1, nullptr, &which);
  CHECK(best > 0);
}
