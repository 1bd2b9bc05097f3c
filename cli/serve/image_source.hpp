// Where the bytes of a request's image come from (docs/serve.md):
//   data:[<mime>][;base64],<data>    inline, base64 (RFC 4648 section 4, padding optional, no other
//                                    characters); its decoded size capped before decoding
//   file://PATH, or a bare PATH      only with --allow-local-images DIR: a relative PATH is taken
//                                    inside DIR, and the file opened must be inside DIR
// Remote http(s) URLs are refused: the server fetches nothing. The bytes then go to lav2's own
// image reader (vision/image.hpp), which checks the format and dimensions.
//
// The "inside DIR" check is made on the file actually opened: the path is opened (following
// symlinks), and the name the kernel gives the open descriptor (/proc/self/fd/N) must lie under
// realpath(DIR). A "../" or a symlink that leads out is refused, and swapping a link between a
// check and the open cannot help, because nothing is opened again after the check.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "api_error.hpp"

namespace lav2::cli::serve {

/// \brief The number of bytes `in` decodes to as base64 (ignoring which characters it holds).
inline std::uint64_t base64_decoded_size(std::string_view in) {
  std::size_t n = in.size();
  if (n % 4 == 0 && n >= 2 && in[n - 1] == '=') n -= in[n - 2] == '=' ? 2 : 1;
  return std::uint64_t(n) / 4 * 3 + (n % 4 > 1 ? n % 4 - 1 : 0);
}

/// \brief Decodes base64 (the standard alphabet; '=' padding optional); false on any other
/// character, a misplaced '=', or more than `max_bytes` of output.
inline bool decode_base64(std::string_view in, std::uint64_t max_bytes, std::vector<std::uint8_t>& out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::size_t n = in.size();
  if (n % 4 == 0 && n >= 2 && in[n - 1] == '=') n -= in[n - 2] == '=' ? 2 : 1;
  if (n % 4 == 1) return false;  // one leftover character holds fewer than 8 bits
  if (base64_decoded_size(in) > max_bytes) return false;
  out.clear();
  out.reserve(n / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const int v = value(in[i]);
    if (v < 0) return false;
    acc = (acc << 6) | std::uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(std::uint8_t(acc >> bits));
      acc &= (1u << bits) - 1;
    }
  }
  return acc == 0;  // the unused low bits of the last character must be zero (canonical form)
}

/// \brief What the server may read images from.
struct ImageSourcePolicy {
  std::string allow_dir;                        ///< --allow-local-images ("" : no local files)
  std::uint64_t max_image_bytes = 16ull << 20;  ///< decoded bytes of one image, inline or local
};

/// \brief The bytes of the image `url` names (field `param` in the request), per `policy`;
/// ApiError 400 naming `param` otherwise.
inline std::vector<std::uint8_t> read_image_source(const std::string& url, const std::string& param,
                                                   const ImageSourcePolicy& policy) {
  std::vector<std::uint8_t> bytes;
  if (url.rfind("data:", 0) == 0) {
    const std::size_t comma = url.find(',');
    if (comma == std::string::npos) bad_field(param, "a data: URL without ',' before its data");
    const std::string_view meta = std::string_view(url).substr(5, comma - 5);
    if (meta.size() < 7 || meta.substr(meta.size() - 7) != ";base64")
      bad_field(param, "a data: URL must be base64 (data:image/png;base64,...)");
    const std::string_view mime = meta.substr(0, meta.size() - 7);
    if (!mime.empty() && mime.rfind("image/", 0) != 0)
      bad_field(param, "a data: URL of type '" + std::string(mime) + "', expected image/png or image/jpeg");
    const std::string_view data = std::string_view(url).substr(comma + 1);
    if (base64_decoded_size(data) > policy.max_image_bytes)
      throw ApiError(
          413,
          param + ": the image has more than " + std::to_string(policy.max_image_bytes) + " bytes (--max-image-bytes)",
          param, "image_too_large");
    if (!decode_base64(data, policy.max_image_bytes, bytes)) bad_field(param, "the data: URL is not valid base64");
    return bytes;
  }
  if (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0)
    bad_field(param, "remote image URLs are not fetched; send the image inline as a data: URL (base64)");
  const std::string path = url.rfind("file://", 0) == 0 ? url.substr(7) : url;
  if (policy.allow_dir.empty())
    bad_field(param,
              "local image files are refused (the server was started without --allow-local-images DIR); "
              "send a data: URL");
  if (path.empty() || path.find('\0') != std::string::npos) bad_field(param, "an empty or invalid file path");
  char root[PATH_MAX];
  if (!::realpath(policy.allow_dir.c_str(), root))
    throw ApiError(500, "--allow-local-images '" + policy.allow_dir + "' cannot be resolved", "", "", "server_error");
  const std::string full = path[0] == '/' ? path : policy.allow_dir + "/" + path;
  const int fd = ::open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) bad_field(param, "cannot open the file '" + path + "' inside --allow-local-images");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  char opened[PATH_MAX];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), opened, sizeof opened - 1);
  if (n <= 0) throw ApiError(500, "cannot resolve an opened file", "", "", "server_error");
  opened[n] = '\0';
  const std::string r(root), o(opened);
  if (!(o.size() > r.size() && o.compare(0, r.size(), r) == 0 && (r == "/" || o[r.size()] == '/')))
    bad_field(param, "the file '" + path + "' is outside the --allow-local-images directory");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) bad_field(param, "'" + path + "' is not a regular file");
  if (std::uint64_t(st.st_size) > policy.max_image_bytes)
    throw ApiError(
        413,
        param + ": the file has more than " + std::to_string(policy.max_image_bytes) + " bytes (--max-image-bytes)",
        param, "image_too_large");
  bytes.resize(std::size_t(st.st_size));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (got <= 0) bad_field(param, "cannot read '" + path + "'");
    done += std::size_t(got);
  }
  return bytes;
}

}  // namespace lav2::cli::serve
