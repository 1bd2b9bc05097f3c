// Robustness: every truncation and thousands of byte mutations of the valid fixtures must either
// load or throw a lav2::error; never crash, hang or throw anything else (run under ASan/UBSan too).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include "io/io_test_util.hpp"
#include "lav2/io/npy.hpp"
#include "lav2/io/safetensors.hpp"
#include "lav2/io/torch_checkpoint.hpp"

namespace {
std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

template <class Open>
void mutate_and_open(const std::string& fixture, Open open, int n_mutations) {
  const std::string good = slurp(lav2_test::io_data(fixture));
  REQUIRE(!good.empty());
  const std::string tmp = "/tmp/lav2_io_mut_" + std::to_string(::getpid()) + "_" + fixture;
  int loaded = 0, rejected = 0;
  auto attempt = [&](const std::string& bytes) {
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f.write(bytes.data(), std::streamsize(bytes.size()));
    }
    try {
      open(tmp);
      ++loaded;
    } catch (const lav2::error&) {
      ++rejected;
    } catch (const std::exception& e) {
      const std::string what = "non-lav2 exception: " + std::string(e.what());
      FAIL(what);
    }
  };
  for (std::size_t len = 0; len < good.size(); len += 1 + len / 64) attempt(good.substr(0, len));
  std::mt19937 rng(12345);
  for (int i = 0; i < n_mutations; ++i) {
    std::string bytes = good;
    const int flips = 1 + int(rng() % 3);
    for (int k = 0; k < flips; ++k) {
      const std::size_t pos = rng() % bytes.size();
      switch (rng() % 3) {
        case 0: bytes[pos] = char(rng()); break;
        case 1: bytes[pos] = char(0xff); break;
        default: bytes[pos] = char(bytes[pos] ^ (1 << (rng() % 8))); break;
      }
    }
    attempt(bytes);
  }
  std::remove(tmp.c_str());
  MESSAGE(fixture, ": ", loaded, " loaded, ", rejected, " rejected");
  CHECK(rejected > 0);
}
}  // namespace

TEST_CASE("mutated torch checkpoints load or fail with lav2 errors") {
  auto open = [](const std::string& p) {
    lav2::io::TorchCheckpoint ck(p);
    for (const auto& kv : ck.tensors()) (void)kv;
  };
  mutate_and_open("state_dict.pth", open, 800);
  mutate_and_open("nested.pth", open, 800);
  mutate_and_open("views.pth", open, 600);
  mutate_and_open("zip64.pth", open, 600);
}

TEST_CASE("mutated safetensors and npy files load or fail with lav2 errors") {
  mutate_and_open(
      "good.safetensors", [](const std::string& p) { lav2::io::SafetensorsFile f(p); }, 800);
  mutate_and_open(
      "f32_2x3.npy", [](const std::string& p) { (void)lav2::io::read_npy(p); }, 800);
}
