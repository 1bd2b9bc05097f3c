// What lav2 reads from a PNG or JPEG container before any decoder sees it (image.hpp): the
// declared size, EXIF orientation, and the segment and chunk checks that keep stb_image from
// overflowing. No decoding here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/vision/image.hpp"

namespace lav2::vision {

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

}  // namespace detail
}  // namespace lav2::vision
