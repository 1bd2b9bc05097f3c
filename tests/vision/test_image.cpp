// Image decoding: PNG colour types, JPEG vs libjpeg-turbo, EXIF orientation, hostile files.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <lav2/vision/detail/image_probe.hpp>
#include <lav2/vision/image.hpp>

using namespace lav2;
using namespace lav2::vision;
namespace fs = std::filesystem;

namespace {

const std::string kDir = std::string(LAV2_TEST_DATA_DIR) + "/images/";

nlohmann::json manifest() {
  std::ifstream f(kDir + "manifest.json");
  REQUIRE(f.good());
  return nlohmann::json::parse(f);
}

std::vector<std::uint8_t> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

/// A file in a per-process temp directory, removed at the end of the test case.
struct TempFile {
  std::string path;
  TempFile(const std::string& name, const std::vector<std::uint8_t>& bytes) {
    const fs::path dir = fs::temp_directory_path() / ("lav2_test_vision_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    path = (dir / name).string();
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
  ~TempFile() {
    std::error_code ec;
    fs::remove(path, ec);
  }
};

/// Runs `fn`, expects it to throw `E`, returns the message.
template <class E, class Fn>
std::string message_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("wrong exception type: " << e.what());
  }
  FAIL("no exception");
  return {};
}

int max_abs_diff(const Image& a, const Image& b) {
  int m = 0;
  for (std::size_t i = 0; i < a.pixels.size(); ++i) m = std::max(m, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  return m;
}

void put_be32(std::vector<std::uint8_t>& v, std::size_t at, std::uint32_t x) {
  v[at] = std::uint8_t(x >> 24);
  v[at + 1] = std::uint8_t(x >> 16);
  v[at + 2] = std::uint8_t(x >> 8);
  v[at + 3] = std::uint8_t(x);
}

}  // namespace

TEST_CASE("PNG colour types become 8-bit 3-channel like cv2.imread: alpha dropped, gray replicated, 16-bit >> 8") {
  const nlohmann::json m = manifest();
  REQUIRE(m["special"].size() >= 8);
  for (const auto& c : m["special"]) {
    const std::string in = c["input"];
    CAPTURE(in);
    const Image got = load_image(kDir + in, {}, ChannelOrder::rgb);
    const Image ref = load_image(kDir + c["ref"].get<std::string>(), {}, ChannelOrder::rgb);
    REQUIRE(got.width == ref.width);
    REQUIRE(got.height == ref.height);
    CHECK(got.pixels == ref.pixels);
  }
}

TEST_CASE("BGR is the default and is RGB with channels 0 and 2 swapped") {
  const std::string path = kDir + manifest()["clip"][13]["input"].get<std::string>();
  const Image bgr = load_image(path);
  const Image rgb = load_image(path, {}, ChannelOrder::rgb);
  CHECK(bgr.order == ChannelOrder::bgr);
  CHECK(rgb.order == ChannelOrder::rgb);
  REQUIRE(bgr.pixels.size() == rgb.pixels.size());
  bool same = true;
  for (std::size_t i = 0; i < rgb.pixels.size(); i += 3)
    same = same && bgr.pixels[i] == rgb.pixels[i + 2] && bgr.pixels[i + 1] == rgb.pixels[i + 1] &&
           bgr.pixels[i + 2] == rgb.pixels[i];
  CHECK(same);
}

TEST_CASE("a 1x1 PNG loads") {
  const Image img = load_image(kDir + "resize/000_1x1_noise.png");
  CHECK(img.width == 1);
  CHECK(img.height == 1);
  CHECK(img.pixels.size() == 3);
}

// stb_image's JPEG decoder (its own IDCT and chroma upsampling) is not libjpeg-turbo, which
// Pillow and cv2 use; the pixels differ by a few levels. This is the bound docs/vision.md states.
constexpr int kJpegMaxDiff = 6;

TEST_CASE("JPEG decode is within a stated bound of Pillow/libjpeg-turbo, EXIF applied") {
  const nlohmann::json m = manifest();
  int worst = 0;
  for (const auto& c : m["jpeg"]) {
    const std::string in = c["input"];
    CAPTURE(in);
    const Image got = load_image(kDir + in, {}, ChannelOrder::rgb);
    const Image ref = load_image(kDir + c["ref"].get<std::string>(), {}, ChannelOrder::rgb);
    REQUIRE(got.width == ref.width);
    REQUIRE(got.height == ref.height);
    const int d = max_abs_diff(got, ref);
    CAPTURE(d);
    CHECK(d <= kJpegMaxDiff);
    worst = std::max(worst, d);
  }
  MESSAGE("JPEG: max |stb - libjpeg-turbo (Pillow)| = ", worst, " over ", m["jpeg"].size(), " files");
}

TEST_CASE("all 8 EXIF orientations, both TIFF byte orders, are exact transforms of the stored pixels") {
  const Image base = load_image(kDir + "jpeg/noexif.jpg", {}, ChannelOrder::rgb);
  const int w = base.width, h = base.height;
  for (int o = 1; o <= 8; ++o) {
    CAPTURE(o);
    const std::string name = "jpeg/exif" + std::to_string(o) + (o % 2 == 0 ? "_be" : "_le") + ".jpg";
    const Image got = load_image(kDir + name, {}, ChannelOrder::rgb);
    const bool swap = o >= 5;
    REQUIRE(got.width == (swap ? h : w));
    REQUIRE(got.height == (swap ? w : h));
    // Where the stored pixel (sx, sy) lands, written independently of the library's table:
    // the inverse mappings of the EXIF definitions (row 0 / column 0 of the stored image is ...).
    int bad = 0;
    for (int sy = 0; sy < h; ++sy)
      for (int sx = 0; sx < w; ++sx) {
        int x = sx, y = sy;
        switch (o) {
          case 2: x = w - 1 - sx; break;  // mirrored
          case 3:
            x = w - 1 - sx;
            y = h - 1 - sy;
            break;                        // upside down
          case 4: y = h - 1 - sy; break;  // flipped
          case 5:
            x = sy;
            y = sx;
            break;  // transposed
          case 6:
            x = h - 1 - sy;
            y = sx;
            break;  // needs 90 degrees clockwise
          case 7:
            x = h - 1 - sy;
            y = w - 1 - sx;
            break;  // transverse
          case 8:
            x = sy;
            y = w - 1 - sx;
            break;  // needs 90 degrees counter-clockwise
          default: break;
        }
        for (int c = 0; c < 3; ++c) bad += got.at(x, y, c) != base.at(sx, sy, c);
      }
    CHECK(bad == 0);
  }
}

TEST_CASE("EXIF parser: byte orders, malformed and hostile payloads fall back to 1") {
  using vision::detail::parse_exif_orientation;
  // "Exif\0\0" + TIFF header (8 bytes) + IFD0 with one entry + next-IFD offset.
  auto make = [](bool be, std::uint16_t tag, std::uint16_t type, std::uint32_t count, std::uint16_t value) {
    std::vector<std::uint8_t> v = {'E', 'x', 'i', 'f', 0, 0};
    auto u16 = [&](std::uint32_t x) {
      if (be) {
        v.push_back(std::uint8_t(x >> 8));
        v.push_back(std::uint8_t(x));
      } else {
        v.push_back(std::uint8_t(x));
        v.push_back(std::uint8_t(x >> 8));
      }
    };
    auto u32 = [&](std::uint32_t x) {
      if (be) {
        u16(x >> 16);
        u16(x & 0xFFFF);
      } else {
        u16(x & 0xFFFF);
        u16(x >> 16);
      }
    };
    v.push_back(be ? 'M' : 'I');
    v.push_back(be ? 'M' : 'I');
    u16(42);
    u32(8);
    u16(1);
    u16(tag);
    u16(type);
    u32(count);
    u16(value);
    u16(0);
    u32(0);
    return v;
  };
  for (bool be : {false, true}) {
    for (std::uint16_t o = 1; o <= 8; ++o) {
      const auto v = make(be, 0x0112, 3, 1, o);
      CHECK(parse_exif_orientation(v.data(), v.size()) == o);
    }
    auto v = make(be, 0x0112, 3, 1, 9);  // out of range
    CHECK(parse_exif_orientation(v.data(), v.size()) == 1);
    v = make(be, 0x0112, 4, 1, 6);  // wrong type
    CHECK(parse_exif_orientation(v.data(), v.size()) == 1);
    v = make(be, 0x0110, 3, 1, 6);  // another tag
    CHECK(parse_exif_orientation(v.data(), v.size()) == 1);
    v = make(be, 0x0112, 3, 1, 6);
    for (std::size_t n = 0; n <= v.size(); ++n)                         // every truncation stays in bounds
      CHECK(parse_exif_orientation(v.data(), n) == (n >= 28 ? 6 : 1));  // IFD0 entry ends at 28
    v[be ? 9 : 8] = 0;                                                  // corrupt the 42
    CHECK(parse_exif_orientation(v.data(), v.size()) == 1);
  }
  auto v = make(false, 0x0112, 3, 1, 6);
  v[10] = 0xF0;
  v[11] = 0xFF;
  v[12] = 0xFF;
  v[13] = 0xFF;  // IFD offset far outside
  CHECK(parse_exif_orientation(v.data(), v.size()) == 1);
  v = make(false, 0x0110, 3, 1, 6);
  v[14] = 0xFF;
  v[15] = 0xFF;  // 65535 entries claimed, the scan runs off the end
  CHECK(parse_exif_orientation(v.data(), v.size()) == 1);
  v[6] = 'X';
  CHECK(parse_exif_orientation(v.data(), v.size()) == 1);
}

TEST_CASE("hostile: a PNG header claiming 2^24 x 2^24 is rejected before decoding, naming file and size") {
  std::vector<std::uint8_t> png = read_all(kDir + "resize/000_1x1_noise.png");
  put_be32(png, 16, 1u << 24);
  put_be32(png, 20, 1u << 24);
  TempFile f("huge.png", png);
  const std::string msg = message_of<limit_error>([&] { load_image(f.path); });
  CHECK(msg.find(f.path) != std::string::npos);
  CHECK(msg.find("16777216 x 16777216") != std::string::npos);
  // Just over the area limit, within stb's side limit: still limit_error.
  ImageLimits small;
  small.max_pixels = 100;
  CHECK_THROWS_AS(load_image(kDir + "resize/017_30x20_noise.png", small), limit_error);
  ImageLimits narrow;
  narrow.max_side = 20;
  CHECK_THROWS_AS(load_image(kDir + "resize/017_30x20_noise.png", narrow), limit_error);
  ImageLimits tiny_file;
  tiny_file.max_file_bytes = 100;
  const std::string m2 = message_of<limit_error>([&] { load_image(kDir + "resize/017_30x20_noise.png", tiny_file); });
  CHECK(m2.find("017_30x20_noise.png") != std::string::npos);
}

TEST_CASE("hostile: truncated PNG and JPEG files throw load_error naming the file") {
  const std::vector<std::uint8_t> png = read_all(kDir + "resize/027_37x53_noise.png");
  const std::vector<std::uint8_t> jpg = read_all(kDir + "jpeg/smooth_320x240.jpg");
  for (double frac : {0.0, 0.01, 0.1, 0.5, 0.9, 0.999}) {
    CAPTURE(frac);
    const std::size_t np = std::size_t(double(png.size()) * frac), nj = std::size_t(double(jpg.size()) * frac);
    TempFile fp("trunc.png", std::vector<std::uint8_t>(png.begin(), png.begin() + std::ptrdiff_t(np)));
    TempFile fj("trunc.jpg", std::vector<std::uint8_t>(jpg.begin(), jpg.begin() + std::ptrdiff_t(nj)));
    CHECK(message_of<load_error>([&] { load_image(fp.path); }).find(fp.path) != std::string::npos);
    CHECK(message_of<load_error>([&] { load_image(fj.path); }).find(fj.path) != std::string::npos);
  }
  // Only the final EOI missing: libjpeg would warn and return the image; lav2 refuses.
  TempFile fj("noeoi.jpg", std::vector<std::uint8_t>(jpg.begin(), jpg.end() - 2));
  CHECK_THROWS_AS(load_image(fj.path), load_error);
}

TEST_CASE("hostile: non-image bytes, empty and missing files throw load_error") {
  const std::string text = "this is not an image, just some text\n";
  TempFile t("text.png", std::vector<std::uint8_t>(text.begin(), text.end()));
  const std::string msg = message_of<load_error>([&] { load_image(t.path); });
  CHECK(msg.find(t.path) != std::string::npos);
  CHECK(msg.find("not a PNG or JPEG") != std::string::npos);
  TempFile e("empty.jpg", {});
  CHECK_THROWS_AS(load_image(e.path), load_error);
  CHECK_THROWS_AS(load_image(kDir + "does/not/exist.png"), load_error);
  // A PNG signature followed by garbage.
  std::vector<std::uint8_t> junk = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  for (int i = 0; i < 100; ++i) junk.push_back(std::uint8_t(i * 89 + 7));
  TempFile j("junk.png", junk);
  CHECK_THROWS_AS(load_image(j.path), load_error);
  // Random bytes after a JPEG SOI: no crash, load_error.
  std::vector<std::uint8_t> rj = {0xFF, 0xD8, 0xFF};
  std::uint32_t s = 12345;
  for (int i = 0; i < 4000; ++i) {
    s = s * 1664525u + 1013904223u;
    rj.push_back(std::uint8_t(s >> 24));
  }
  rj.push_back(0xFF);
  rj.push_back(0xD9);
  TempFile r("random.jpg", rj);
  CHECK_THROWS_AS(load_image(r.path), load_error);
}

TEST_CASE("decode_image works from memory and names the source") {
  const std::vector<std::uint8_t> bytes = read_all(kDir + "special/rgb16.png");
  const Image img = decode_image(bytes.data(), bytes.size(), "in-memory");
  CHECK(img.width == 37);
  CHECK(img.height == 23);
  const std::string msg = message_of<load_error>([&] { decode_image(bytes.data(), 20, "in-memory"); });
  CHECK(msg.find("in-memory") != std::string::npos);
}
