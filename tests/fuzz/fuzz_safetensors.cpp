// libFuzzer target: the safetensors reader (io/safetensors.hpp): header length, JSON header,
// dtype/shape/offset checks, overlap and coverage of the data section.
#include <lav2/io/safetensors.hpp>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const lav2::Limits lim = lav2::fuzz::small_limits();
  LAV2_FUZZ_EXPECTED_ERRORS({
    lav2::io::SafetensorsFile st(lav2::io::MappedFile::from_buffer(data, size, "fuzz.safetensors"), lim.safetensors);
    (void)lav2::fuzz::touch_all(st.tensors());
  });
  return 0;
}
