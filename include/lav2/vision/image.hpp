// Image loading: PNG and JPEG files -> 8-bit, 3-channel, HWC pixels, as cv2.imread(path) gives them.
//
// The official LLaMA-Adapter V2 pipeline reads images with `cv2.imread(path)` (IMREAD_COLOR), so
// the released weights saw BGR pixels. load_image() reproduces what that call returns:
//   - gray -> three equal channels; alpha dropped (not composited); 16-bit samples -> v >> 8;
//   - JPEG EXIF orientation (APP1 "Exif", TIFF IFD0 tag 0x0112, both byte orders, values 1..8)
//     applied, so the pixels are upright;
//   - channel order BGR by default (ChannelOrder::rgb on request).
// Decoding is stb_image (see detail/stb_image.hpp). PNG is lossless, so PNG pixels equal
// OpenCV's/Pillow's exactly; stb's JPEG IDCT and chroma upsampling differ from libjpeg-turbo's by a
// few levels (docs/vision.md gives the measured bound).
//
// Hostile input: the file is read with a byte limit; the declared dimensions are parsed by lav2
// (PNG IHDR, JPEG SOFn) and checked against ImageLimits before the decoder allocates anything;
// a JPEG must reach its EOI marker (a truncated file is rejected, where libjpeg would pad it with
// gray). Every failure throws load_error or limit_error naming the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lav2/core/error.hpp"
// stb_image's JPEG bit reader shifts by a negative count once a corrupt entropy stream has driven
// its bit counter below zero (stbi__grow_buffer_unsafe, found by tests/fuzz/fuzz_image under UBSan:
// "shift exponent 38 is too large for 32-bit type"). The result only garbles the pixels of a file
// that is corrupt anyway; it touches no memory. So UBSan's shift check is switched off inside stb
// (and only there, under clang); its memory accesses stay checked by ASan.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((no_sanitize("shift"))), apply_to = function)
#endif
#include "lav2/vision/detail/stb_image.hpp"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#include "lav2/vision/image_limits.hpp"

namespace lav2::vision {

/// \brief Order of the three channels of an Image.
enum class ChannelOrder {
  bgr,  ///< cv2.imread's order; what the released weights were trained on (the default)
  rgb,  ///< Pillow's order
};

/// \brief An 8-bit, 3-channel image, rows top to bottom, pixels interleaved (HWC).
struct Image {
  int width = 0;
  int height = 0;
  ChannelOrder order = ChannelOrder::bgr;
  std::vector<std::uint8_t> pixels;  // (height, width, 3)

  Image() = default;
  Image(int w, int h, ChannelOrder o = ChannelOrder::bgr)
      : width(w), height(h), order(o), pixels(std::size_t(w) * std::size_t(h) * 3u) {}

  std::uint8_t* row(int y) { return pixels.data() + std::size_t(y) * std::size_t(width) * 3u; }
  const std::uint8_t* row(int y) const { return pixels.data() + std::size_t(y) * std::size_t(width) * 3u; }
  /// Channel `c` of pixel (x, y); no bounds check.
  std::uint8_t& at(int x, int y, int c) { return row(y)[std::size_t(x) * 3u + std::size_t(c)]; }
  std::uint8_t at(int x, int y, int c) const { return row(y)[std::size_t(x) * 3u + std::size_t(c)]; }
  bool empty() const { return pixels.empty(); }
};

static_assert(ImageLimits{}.max_side == LAV2_STBI_MAX_DIMENSIONS, "ImageLimits::max_side default is stb's cap");

namespace detail {

enum class ImageFormat { unknown, png, jpeg };

/// What lav2 learns from the container before decoding.
struct ImageHeader {
  ImageFormat format = ImageFormat::unknown;
  std::uint64_t width = 0, height = 0;
  int exif_orientation = 1;       // 1..8; 1 when absent or malformed
  bool jpeg_complete = false;     // the JPEG reaches EOI
  std::size_t jpeg_bad_dht = 0;   // offset of a DHT segment stb_image would overflow on (0: none)
  std::size_t jpeg_bad_scan = 0;  // offset of an SOS using a Huffman table no DHT defined (0: none)
  bool png_complete = false;      // the chunks, each inside the file, reach IEND
  std::size_t png_bad_chunk = 0;  // offset of a chunk whose length runs past the file end (0: none)
};

inline std::uint32_t read_be32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}
inline std::uint16_t read_be16(const std::uint8_t* p) { return std::uint16_t((p[0] << 8) | p[1]); }

/// Orientation (1..8) from an Exif APP1 payload `p[0..n)` that starts with "Exif\0\0"; 1 when
/// absent or malformed. Reads the TIFF header ("II"/"MM", 42, IFD0 offset) and IFD0's 12-byte
/// entries (tag u16, type u16, count u32, value u32); tag 0x0112 is a SHORT with count 1 whose value
/// sits in the first two bytes of the value field. Every read is bounds-checked against `n`.
inline int parse_exif_orientation(const std::uint8_t* p, std::size_t n) {
  static const std::uint8_t kExif[6] = {'E', 'x', 'i', 'f', 0, 0};
  if (n < 6 || std::memcmp(p, kExif, 6) != 0) return 1;
  const std::uint8_t* t = p + 6;  // TIFF header; offsets are relative to it
  const std::size_t tn = n - 6;
  if (tn < 8) return 1;
  bool little;
  if (t[0] == 'I' && t[1] == 'I') little = true;
  else if (t[0] == 'M' && t[1] == 'M') little = false;
  else return 1;
  auto u16 = [&](std::size_t off) -> std::uint32_t {
    return little ? std::uint32_t(t[off] | (t[off + 1] << 8)) : std::uint32_t((t[off] << 8) | t[off + 1]);
  };
  auto u32 = [&](std::size_t off) -> std::uint32_t {
    return little ? (u16(off) | (u16(off + 2) << 16)) : ((u16(off) << 16) | u16(off + 2));
  };
  if (u16(2) != 42) return 1;
  const std::uint64_t ifd = u32(4);
  if (ifd + 2 > tn) return 1;
  const std::uint32_t count = u16(std::size_t(ifd));
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint64_t e = ifd + 2 + std::uint64_t(i) * 12;
    if (e + 12 > tn) return 1;
    const std::size_t eo = std::size_t(e);
    if (u16(eo) != 0x0112) continue;
    if (u16(eo + 2) != 3 || u32(eo + 4) != 1) return 1;  // must be one SHORT
    const std::uint32_t v = u16(eo + 8);
    return (v >= 1 && v <= 8) ? int(v) : 1;
  }
  return 1;
}

/// True when a DHT segment's tables each declare at most 256 codes and lie inside the segment.
/// stb_image (Debian's 2022 snapshot) trusts the 16 code-length counts of a table: a sum over 256
/// writes past `stbi__huffman::size[257]` and `values[256]` inside its decoder state (a heap write
/// that ASan cannot see; found by tests/fuzz/fuzz_image, UBSan index check), and it reads a table
/// past the end of its segment before noticing. So such a segment never reaches stb.
/// `defined[class][id]` records the tables (class 0 DC, 1 AC; id 0..3) the segment defines.
inline bool dht_fits_stb(const std::uint8_t* seg, std::size_t n, bool (*defined)[4] = nullptr) {
  std::size_t pos = 0;
  while (pos < n) {
    if (n - pos < 17) return false;
    std::size_t codes = 0;
    for (int k = 1; k <= 16; ++k) codes += seg[pos + std::size_t(k)];
    if (codes > 256 || n - pos - 17 < codes) return false;
    if (defined && (seg[pos] >> 4) <= 1 && (seg[pos] & 15) <= 3) defined[seg[pos] >> 4][seg[pos] & 15] = true;
    pos += 17 + codes;
  }
  return true;
}

/// True when every Huffman table the scan (SOS segment) decodes with was defined by an earlier DHT.
/// stb_image decodes with whatever the selected table holds: an undefined one is uninitialised heap
/// memory, and a symbol index computed from it read `size[-437917507]` (found by
/// tests/fuzz/fuzz_image). Sequential scans use the DC and the AC table of each component;
/// progressive ones the DC table in a first DC scan (Ss = 0, Ah = 0), the AC table in AC scans (Ss > 0).
inline bool sos_tables_defined(const std::uint8_t* seg, std::size_t n, bool progressive, const bool (*defined)[4]) {
  if (n < 1) return false;
  const std::size_t ns = seg[0];
  if (n < 1 + 2 * ns + 3) return false;
  const std::uint8_t ss = seg[1 + 2 * ns], ah = std::uint8_t(seg[3 + 2 * ns] >> 4);
  const bool needs_dc = !progressive || (ss == 0 && ah == 0), needs_ac = !progressive || ss > 0;
  for (std::size_t c = 0; c < ns; ++c) {
    const std::uint8_t td = std::uint8_t(seg[2 + 2 * c] >> 4), ta = std::uint8_t(seg[2 + 2 * c] & 15);
    if (needs_dc && (td > 3 || !defined[0][td])) return false;
    if (needs_ac && (ta > 3 || !defined[1][ta])) return false;
  }
  return true;
}

/// Walks a JPEG's marker segments: SOFn gives the dimensions, the first Exif APP1 the orientation,
/// and entropy-coded data is skipped up to the next marker (0xFF followed by neither 0x00 stuffing
/// nor RSTn), until EOI. Segments are `FF xx len_hi len_lo payload[len-2]`; SOI, EOI, RSTn and TEM
/// carry no length. Never reads past `n`.
inline void walk_jpeg(const std::uint8_t* p, std::size_t n, ImageHeader& h) {
  std::size_t i = 2;  // after SOI
  bool have_exif = false, progressive = false;
  bool defined[2][4] = {};  // Huffman tables defined so far: [DC, AC][id]
  while (i < n) {
    if (p[i] != 0xFF) {  // entropy-coded data after SOS
      ++i;
      continue;
    }
    while (i < n && p[i] == 0xFF) ++i;  // fill bytes
    if (i >= n) return;
    const std::uint8_t m = p[i++];
    if (m == 0x00 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) continue;  // stuffing, RSTn, TEM
    if (m == 0xD9) {
      h.jpeg_complete = true;
      return;
    }
    if (m == 0xD8) return;  // a second SOI: malformed; stb decides
    if (i + 2 > n) return;
    const std::size_t len = read_be16(p + i);
    if (len < 2 || i + len > n) return;
    const std::uint8_t* seg = p + i + 2;
    const std::size_t seg_n = len - 2;
    const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof && seg_n >= 5 && h.width == 0) {
      h.height = read_be16(seg + 1);
      h.width = read_be16(seg + 3);
      progressive = m == 0xC2;
    } else if (m == 0xC4) {
      if (!dht_fits_stb(seg, seg_n, defined) && h.jpeg_bad_dht == 0) h.jpeg_bad_dht = i - 2;
    } else if (m == 0xDA) {
      if (!sos_tables_defined(seg, seg_n, progressive, defined) && h.jpeg_bad_scan == 0) h.jpeg_bad_scan = i - 2;
    } else if (m == 0xE1 && !have_exif && seg_n >= 6 && std::memcmp(seg, "Exif\0\0", 6) == 0) {
      have_exif = true;
      h.exif_orientation = parse_exif_orientation(seg, seg_n);
    }
    i += len;  // for SOS the entropy-coded data follows and is skipped byte by byte above
  }
}

/// Walks a PNG's chunks (`length u32 BE, type[4], data[length], crc u32`) from after the signature
/// to IEND, checking each lies inside the file. stb_image reallocates its IDAT buffer to a chunk's
/// declared length before reading it, so a 100-byte file declaring a 2 GiB IDAT made it allocate
/// 2 GiB (found by tests/fuzz/fuzz_image); such a file never reaches stb now.
inline void walk_png(const std::uint8_t* p, std::size_t n, ImageHeader& h) {
  std::size_t pos = 8;
  while (n - pos >= 12) {
    const std::uint64_t len = read_be32(p + pos);
    if (len > 0x7fffffffu || len > n - pos - 12) {
      h.png_bad_chunk = pos;
      return;
    }
    if (std::memcmp(p + pos + 4, "IEND", 4) == 0) {
      h.png_complete = true;
      return;
    }
    pos += 12 + std::size_t(len);
  }
}

/// Inflates a PNG's image data (its IDAT chunks, concatenated) into a buffer twice the size its
/// header implies, plus 1 KiB, and throws load_error when it does not fit. stb_image grows its
/// inflate buffer without bound, so a deflate bomb (1032:1) in a 4 MB file made it allocate 4 GB;
/// this bounds that allocation by the image size. Called after walk_png() accepted the chunks.
inline void check_png_inflate(const std::uint8_t* p, std::size_t n, const ImageHeader& h, const std::string& name) {
  if (n < 29) return;
  const int channels[] = {1, 0, 3, 1, 2, 0, 4};  // by colour type; 0: invalid, stb rejects it
  const std::uint8_t depth = p[24], color = p[25];
  if (color > 6 || channels[color] == 0 || depth == 0 || depth > 16) return;
  const std::uint64_t bpl = (h.width * depth + 7) / 8;
  const std::uint64_t limit = 2 * (bpl * h.height * std::uint64_t(channels[color]) + h.height) + 1024;
  if (limit > std::uint64_t(INT32_MAX))
    LAV2_THROW(limit_error, "image '", name, "': PNG image data of ", limit / 2,
               " bytes exceed the decoder's 2 GiB limit");
  std::string idat;
  for (std::size_t pos = 8; n - pos >= 12;) {
    const std::size_t len = read_be32(p + pos);  // walk_png checked it lies inside the file
    if (std::memcmp(p + pos + 4, "IDAT", 4) == 0) idat.append(reinterpret_cast<const char*>(p + pos + 8), len);
    if (std::memcmp(p + pos + 4, "IEND", 4) == 0) break;
    pos += 12 + len;
  }
  std::unique_ptr<char[]> out(new char[std::size_t(limit)]);
  if (stbi_zlib_decode_buffer(out.get(), int(limit), idat.data(), int(idat.size())) < 0) {
    const char* why = stbi_failure_reason();
    if (why && std::strcmp(why, "output buffer limit") == 0)
      LAV2_THROW(load_error, "image '", name, "': PNG image data inflates past ", limit, " bytes, twice what its ",
                 h.width, " x ", h.height, " header allows (a deflate bomb)");
    LAV2_THROW(load_error, "image '", name, "': cannot decode the PNG data (", why ? why : "bad zlib stream", ")");
  }
}

/// Identifies PNG/JPEG by signature and reads what the container declares.
inline ImageHeader probe_image(const std::uint8_t* p, std::size_t n) {
  ImageHeader h;
  static const std::uint8_t kPng[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (n >= 8 && std::memcmp(p, kPng, 8) == 0) {
    h.format = ImageFormat::png;
    // Signature, then the IHDR chunk: length u32, "IHDR", width u32, height u32 (big-endian).
    if (n >= 24 && std::memcmp(p + 12, "IHDR", 4) == 0) {
      h.width = read_be32(p + 16);
      h.height = read_be32(p + 20);
    }
    walk_png(p, n, h);
  } else if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) {
    h.format = ImageFormat::jpeg;
    walk_jpeg(p, n, h);
  }
  return h;
}

/// Reads a whole file, refusing files larger than `max_bytes` before reading them.
inline std::vector<std::uint8_t> read_file_limited(const std::string& path, std::uint64_t max_bytes) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) LAV2_THROW(load_error, "image '", path, "': cannot open the file");
  std::vector<std::uint8_t> data;
  std::uint8_t buf[1 << 16];
  for (;;) {
    const std::size_t got = std::fread(buf, 1, sizeof buf, f.get());
    if (got == 0) break;
    if (std::uint64_t(data.size()) + got > max_bytes)
      LAV2_THROW(limit_error, "image '", path, "': file is larger than the limit of ", max_bytes, " bytes");
    data.insert(data.end(), buf, buf + got);
  }
  if (std::ferror(f.get())) LAV2_THROW(load_error, "image '", path, "': read error");
  return data;
}

/// Turns a decoded image upright according to an EXIF orientation (1..8), as cv2 and Pillow's
/// ImageOps.exif_transpose do: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise,
/// 7 transverse, 8 rotate 90 counter-clockwise. `src(x, y)` below is the stored pixel.
inline Image apply_exif_orientation(const Image& src, int orientation) {
  if (orientation < 2 || orientation > 8) return src;
  const int w = src.width, h = src.height;
  const bool swap = orientation >= 5;
  Image out(swap ? h : w, swap ? w : h, src.order);
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (orientation) {
        case 2:
          sx = w - 1 - x;
          sy = y;
          break;
        case 3:
          sx = w - 1 - x;
          sy = h - 1 - y;
          break;
        case 4:
          sx = x;
          sy = h - 1 - y;
          break;
        case 5:
          sx = y;
          sy = x;
          break;
        case 6:
          sx = y;
          sy = h - 1 - x;
          break;
        case 7:
          sx = w - 1 - y;
          sy = h - 1 - x;
          break;
        case 8:
          sx = w - 1 - y;
          sy = x;
          break;
        default: break;
      }
      std::memcpy(out.row(y) + std::size_t(x) * 3u, src.row(sy) + std::size_t(sx) * 3u, 3);
    }
  }
  return out;
}

struct StbFree {
  void operator()(stbi_uc* p) const { stbi_image_free(p); }
};

}  // namespace detail

/// \brief Decodes a PNG or JPEG held in memory; see load_image().
/// \param name used in error messages (the file name, or a description).
inline Image decode_image(const std::uint8_t* data, std::size_t size, const std::string& name,
                          const ImageLimits& limits = {}, ChannelOrder order = ChannelOrder::bgr) {
  if (size > limits.max_file_bytes)
    LAV2_THROW(limit_error, "image '", name, "': ", size, " bytes exceed the limit of ", limits.max_file_bytes);
  const detail::ImageHeader h = detail::probe_image(data, size);
  if (h.format == detail::ImageFormat::unknown)
    LAV2_THROW(load_error, "image '", name, "': not a PNG or JPEG file (unrecognised signature)");
  const char* fmt = h.format == detail::ImageFormat::png ? "PNG" : "JPEG";
  if (h.width == 0 || h.height == 0)
    LAV2_THROW(load_error, "image '", name, "': ", fmt, " header declares no valid dimensions (truncated or corrupt)");
  if (h.width > limits.max_side || h.height > limits.max_side || h.width * h.height > limits.max_pixels)
    LAV2_THROW(limit_error, "image '", name, "': ", fmt, " declares ", h.width, " x ", h.height,
               " pixels, over the limit of ", limits.max_pixels, " pixels or ", limits.max_side, " per side");
  if (h.format == detail::ImageFormat::jpeg && !h.jpeg_complete)
    LAV2_THROW(load_error, "image '", name, "': JPEG ends before its EOI marker (truncated)");
  if (h.format == detail::ImageFormat::png && h.png_bad_chunk != 0)
    LAV2_THROW(load_error, "image '", name, "': PNG chunk at byte ", h.png_bad_chunk, " declares ",
               detail::read_be32(data + h.png_bad_chunk), " bytes, past the end of the file (truncated or corrupt)");
  if (h.format == detail::ImageFormat::png && !h.png_complete)
    LAV2_THROW(load_error, "image '", name, "': PNG ends before its IEND chunk (truncated)");
  if (h.format == detail::ImageFormat::png) detail::check_png_inflate(data, size, h, name);
  if (h.format == detail::ImageFormat::jpeg && h.jpeg_bad_dht != 0)
    LAV2_THROW(load_error, "image '", name, "': JPEG Huffman table segment (DHT) at byte ", h.jpeg_bad_dht,
               " declares more than 256 codes or runs past its segment (corrupt)");
  if (h.format == detail::ImageFormat::jpeg && h.jpeg_bad_scan != 0)
    LAV2_THROW(load_error, "image '", name, "': JPEG scan (SOS) at byte ", h.jpeg_bad_scan,
               " decodes with a Huffman table that no earlier DHT segment defines (corrupt)");
  if (size > std::size_t(INT32_MAX))
    LAV2_THROW(limit_error, "image '", name, "': ", size, " bytes exceed the decoder's 2 GiB limit");

  // A second, independent gate: stb's own header parse must agree before it allocates pixels.
  int w = 0, hgt = 0, comp = 0;
  if (!stbi_info_from_memory(data, int(size), &w, &hgt, &comp) || std::uint64_t(w) != h.width ||
      std::uint64_t(hgt) != h.height)
    LAV2_THROW(load_error, "image '", name, "': ", fmt, " header rejected by the decoder (",
               stbi_failure_reason() ? stbi_failure_reason() : "dimension mismatch", ")");
  // req_comp = 3: gray is replicated, alpha dropped; 16-bit samples are reduced with >> 8.
  std::unique_ptr<stbi_uc, detail::StbFree> px(stbi_load_from_memory(data, int(size), &w, &hgt, &comp, 3));
  if (!px)
    LAV2_THROW(load_error, "image '", name, "': cannot decode the ", fmt, " data (",
               stbi_failure_reason() ? stbi_failure_reason() : "unknown error", ")");
  Image img(w, hgt, ChannelOrder::rgb);
  std::memcpy(img.pixels.data(), px.get(), img.pixels.size());
  px.reset();
  if (h.format == detail::ImageFormat::jpeg && h.exif_orientation != 1)
    img = detail::apply_exif_orientation(img, h.exif_orientation);
  if (order == ChannelOrder::bgr) {
    for (std::size_t i = 0; i < img.pixels.size(); i += 3) std::swap(img.pixels[i], img.pixels[i + 2]);
  }
  img.order = order;
  return img;
}

/// \brief Loads a PNG or JPEG file as cv2.imread(path) would: 8-bit, 3 channels, upright.
/// \param path file to read (at most `limits.max_file_bytes`).
/// \param limits checked against the declared dimensions before decoding.
/// \param order BGR (the default, what the released weights expect) or RGB.
/// \throws load_error for unreadable, unsupported, truncated or corrupt files; limit_error when a
///         limit would be exceeded. Messages name the file.
inline Image load_image(const std::string& path, const ImageLimits& limits = {},
                        ChannelOrder order = ChannelOrder::bgr) {
  const std::vector<std::uint8_t> bytes = detail::read_file_limited(path, limits.max_file_bytes);
  return decode_image(bytes.data(), bytes.size(), path, limits, order);
}

}  // namespace lav2::vision
