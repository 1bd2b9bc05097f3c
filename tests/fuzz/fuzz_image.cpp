// libFuzzer target: PNG/JPEG decoding (vision/image.hpp: container probe, limits, stb_image,
// EXIF orientation) and CLIP preprocessing (vision/image_preprocess.hpp) of what decodes.
#include <lav2/vision/image.hpp>
#include <lav2/vision/image_preprocess.hpp>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const lav2::Limits lim = lav2::fuzz::small_limits();
  LAV2_FUZZ_EXPECTED_ERRORS({
    const auto order = size && (data[size - 1] & 1) ? lav2::vision::ChannelOrder::rgb : lav2::vision::ChannelOrder::bgr;
    const lav2::vision::Image img = lav2::vision::decode_image(data, size, "fuzz.img", lim.image, order);
    lav2::vision::ClipPreprocess opt;
    opt.size = 32;  // the full 224 path is the same code with larger loops
    (void)lav2::vision::preprocess_clip(img, opt);
  });
  return 0;
}
