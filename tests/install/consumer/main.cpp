// A downstream program that uses the installed lav2 package: includes the umbrella header,
// converts a value through f16 and runs a kernel on the thread pool.
#include <lav2/lav2.hpp>

#include <cstdio>

int main() {
  const float back = lav2::f16_to_f32(lav2::f32_to_f16(1.5f));
  lav2::ThreadPool pool(2);
  std::int64_t sum = 0;
  std::mutex m;
  pool.parallel_for(100, [&](std::int64_t b, std::int64_t e) {
    std::lock_guard<std::mutex> l(m);
    for (std::int64_t i = b; i < e; ++i) sum += i;
  });
  std::printf("lav2 %s: f16(1.5)=%g sum=%lld\n", lav2::kVersion, back, static_cast<long long>(sum));
  return (back == 1.5f && sum == 4950) ? 0 : 1;
}
