// Opening a >= 13 GB torch.save checkpoint maps it rather than reads it.
//
// The benchmark writes a synthetic checkpoint in torch's zip format with the tensor names and
// shapes of Meta's LLaMA-7B consolidated.00.pth (fp16, saved from 'cuda:0'), plus one 4.0 GiB
// tensor so that an entry size, not just the offsets, needs ZIP64. Only the headers, data.pkl and
// the central directory are written: the storage bytes are a hole (ftruncate), so the ~17 GB file
// takes well under 1 MB of disk. It then measures:
//   open_ms            TorchCheckpoint construction + flattening the tensor map
//   rss_growth_MB      resident-set growth (/proc/self/statm) after open, before touching data;
//                      must stay below 64 MB (the run fails otherwise)
//   touched_MB / rss_after_touch_MB   reading one 32 MiB tensor, to show pages come in on demand
// The file is deleted at exit.
//
//   bench_io [--io_path=/path/to/file.pth] [google-benchmark flags]
//   (or LAV2_BENCH_IO_PATH=...); default: $TMPDIR or /tmp, lav2_bench_io_<pid>.pth.
// When the directory has less than 16 MB free, the file system refuses a file this large, or it
// does not keep the file sparse, the benchmark prints why and exits 0 without running.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "lav2/io/torch_checkpoint.hpp"

namespace {

std::string g_path;
std::uint64_t g_file_bytes = 0;
std::size_t g_tensors = 0;

double rss_mb() {
  long pages_total = 0, pages_resident = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = 0;
    std::fclose(f);
  }
  return double(pages_resident) * double(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

// ---- protocol-2 pickle emitter (what torch.save writes for a state_dict) ----------------------
struct PickleOut {
  std::string b;
  void op(unsigned char c) { b += char(c); }
  void str(const std::string& s) {
    op('X');
    for (int i = 0; i < 4; ++i) b += char((s.size() >> (8 * i)) & 0xff);
    b += s;
  }
  void integer(std::int64_t v) {  // LONG1 with 8 bytes: any int64
    op(0x8a);
    b += char(8);
    for (int i = 0; i < 8; ++i) b += char((std::uint64_t(v) >> (8 * i)) & 0xff);
  }
  void global(const char* module, const char* name) {
    op('c');
    b += module;
    b += '\n';
    b += name;
    b += '\n';
  }
  void tuple(const std::vector<std::int64_t>& v) {
    op('(');
    for (std::int64_t x : v) integer(x);
    op('t');
  }
};

struct Spec {
  std::string name;
  std::vector<std::int64_t> shape;
};

std::vector<Spec> llama7b_specs() {
  std::vector<Spec> s;
  const std::int64_t dim = 4096, hidden = 11008, vocab = 32000;
  s.push_back({"tok_embeddings.weight", {vocab, dim}});
  for (int l = 0; l < 32; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    for (const char* w : {"wq", "wk", "wv", "wo"}) s.push_back({p + "attention." + w + ".weight", {dim, dim}});
    s.push_back({p + "feed_forward.w1.weight", {hidden, dim}});
    s.push_back({p + "feed_forward.w2.weight", {dim, hidden}});
    s.push_back({p + "feed_forward.w3.weight", {hidden, dim}});
    s.push_back({p + "attention_norm.weight", {dim}});
    s.push_back({p + "ffn_norm.weight", {dim}});
  }
  s.push_back({"norm.weight", {dim}});
  s.push_back({"output.weight", {vocab, dim}});
  s.push_back({"rope.freqs", {64}});
  s.push_back({"zip64_probe.weight", {1, (std::int64_t(1) << 31) + 1024}});  // one entry > 4 GiB
  return s;
}

std::string data_pkl(const std::vector<Spec>& specs) {
  PickleOut p;
  p.op(0x80);
  p.b += char(2);
  p.global("collections", "OrderedDict");
  p.op(')');
  p.op('R');
  p.op('(');
  for (std::size_t k = 0; k < specs.size(); ++k) {
    const Spec& s = specs[k];
    std::int64_t numel = 1;
    for (std::int64_t d : s.shape) numel *= d;
    std::vector<std::int64_t> stride(s.shape.size());
    for (std::int64_t i = std::int64_t(s.shape.size()) - 1, acc = 1; i >= 0; --i) {
      stride[std::size_t(i)] = acc;
      acc *= s.shape[std::size_t(i)];
    }
    p.str(s.name);
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.op('(');
    p.op('(');  // persistent id
    p.str("storage");
    p.global("torch", "HalfStorage");
    p.str(std::to_string(k));
    p.str("cuda:0");
    p.integer(numel);
    p.op('t');
    p.op('Q');
    p.integer(0);
    p.tuple(s.shape);
    p.tuple(stride);
    p.op(0x89);  // requires_grad=False
    p.global("collections", "OrderedDict");
    p.op(')');
    p.op('R');
    p.op('t');
    p.op('R');
  }
  p.op('u');
  p.op('.');
  return p.b;
}

// ---- ZIP64 writer for STORED entries whose data may be left as a hole --------------------------
void put16(std::string& b, std::uint32_t v) {
  b += char(v & 0xff);
  b += char((v >> 8) & 0xff);
}
void put32(std::string& b, std::uint32_t v) {
  put16(b, v & 0xffff);
  put16(b, v >> 16);
}
void put64(std::string& b, std::uint64_t v) {
  put32(b, std::uint32_t(v));
  put32(b, std::uint32_t(v >> 32));
}

bool pwrite_all(int fd, const std::string& s, std::uint64_t off) {
  std::size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::pwrite(fd, s.data() + done, s.size() - done, off_t(off + done));
    if (n <= 0) return false;
    done += std::size_t(n);
  }
  return true;
}

/// Writes the archive; returns an empty string on success, else why it could not.
std::string write_sparse_checkpoint(const std::string& path) {
  const auto specs = llama7b_specs();
  const std::string pkl = data_pkl(specs);
  struct Entry {
    std::string name;
    std::uint64_t size, offset;
    std::uint32_t crc;
  };
  std::vector<Entry> entries;
  entries.push_back({"consolidated/data.pkl", pkl.size(), 0,
                     lav2::io::detail::crc32(reinterpret_cast<const unsigned char*>(pkl.data()), pkl.size())});
  for (std::size_t k = 0; k < specs.size(); ++k) {
    std::uint64_t n = 2;
    for (std::int64_t d : specs[k].shape) n *= std::uint64_t(d);
    entries.push_back({"consolidated/data/" + std::to_string(k), n, 0, 0});  // CRC not computed (data is a hole)
  }
  entries.push_back(
      {"consolidated/version", 2, 0, lav2::io::detail::crc32(reinterpret_cast<const unsigned char*>("3\n"), 2)});

  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot create " + path + ": " + std::strerror(errno);
  std::uint64_t off = 0;
  for (Entry& e : entries) {
    e.offset = off;
    std::string h;
    put32(h, 0x04034b50u);
    put16(h, 45);
    put16(h, 0);
    put16(h, 0);
    put16(h, 0);
    put16(h, 0x21);
    put32(h, e.crc);
    put32(h, 0xffffffffu);
    put32(h, 0xffffffffu);
    const std::uint64_t base = off + 30 + e.name.size() + 20 + 4;  // + zip64 extra + padding header
    const std::uint32_t pad = std::uint32_t((64 - base % 64) % 64);
    put16(h, std::uint16_t(e.name.size()));
    put16(h, 20 + 4 + pad);
    h += e.name;
    put16(h, 1);
    put16(h, 16);
    put64(h, e.size);
    put64(h, e.size);
    put16(h, 0x4246);
    put16(h, pad);
    h.append(pad, 'Z');
    if (!pwrite_all(fd, h, off)) {
      ::close(fd);
      return std::string("write failed: ") + std::strerror(errno);
    }
    off += h.size();
    if (&e == &entries.front()) {
      if (!pwrite_all(fd, pkl, off)) {
        ::close(fd);
        return std::string("write failed: ") + std::strerror(errno);
      }
    } else if (&e == &entries.back()) {
      if (!pwrite_all(fd, "3\n", off)) {
        ::close(fd);
        return std::string("write failed: ") + std::strerror(errno);
      }
    }
    off += e.size;  // storages: skipped, left as a hole
  }
  const std::uint64_t cd_offset = off;
  std::string cd;
  for (const Entry& e : entries) {
    put32(cd, 0x02014b50u);
    put16(cd, 45);
    put16(cd, 45);
    put16(cd, 0);
    put16(cd, 0);
    put16(cd, 0);
    put16(cd, 0x21);
    put32(cd, e.crc);
    put32(cd, 0xffffffffu);
    put32(cd, 0xffffffffu);
    put16(cd, std::uint16_t(e.name.size()));
    put16(cd, 28);
    put16(cd, 0);
    put16(cd, 0);
    put16(cd, 0);
    put32(cd, 0);
    put32(cd, 0xffffffffu);
    cd += e.name;
    put16(cd, 1);
    put16(cd, 24);
    put64(cd, e.size);
    put64(cd, e.size);
    put64(cd, e.offset);
  }
  const std::uint64_t z64 = cd_offset + cd.size();
  std::string end;
  put32(end, 0x06064b50u);
  put64(end, 44);
  put16(end, 45);
  put16(end, 45);
  put32(end, 0);
  put32(end, 0);
  put64(end, entries.size());
  put64(end, entries.size());
  put64(end, cd.size());
  put64(end, cd_offset);
  put32(end, 0x07064b50u);
  put32(end, 0);
  put64(end, z64);
  put32(end, 1);
  put32(end, 0x06054b50u);
  put16(end, 0);
  put16(end, 0);
  put16(end, 0xffff);
  put16(end, 0xffff);
  put32(end, 0xffffffffu);
  put32(end, 0xffffffffu);
  put16(end, 0);
  if (::ftruncate(fd, off_t(cd_offset)) != 0) {  // the storage region: a hole
    const int e = errno;
    ::close(fd);
    return std::string("cannot extend the file to ") + std::to_string(cd_offset) + " bytes: " + std::strerror(e);
  }
  if (!pwrite_all(fd, cd + end, cd_offset)) {
    ::close(fd);
    return std::string("write failed: ") + std::strerror(errno);
  }
  struct stat st {};
  ::fstat(fd, &st);
  ::close(fd);
  g_file_bytes = std::uint64_t(st.st_size);
  if (std::uint64_t(st.st_blocks) * 512 > (256u << 20))
    return "the file system did not keep the file sparse (" + std::to_string(st.st_blocks * 512) + " bytes allocated)";
  return {};
}

void BM_OpenCheckpoint(benchmark::State& state) {
  double growth = 0, touched = 0, after_touch = 0, open_ms = 0;
  for (auto _ : state) {
    const double before = rss_mb();
    const auto t0 = std::chrono::steady_clock::now();
    lav2::io::TorchCheckpoint ck(g_path);
    const auto tensors = ck.tensors();
    const auto t1 = std::chrono::steady_clock::now();
    growth = rss_mb() - before;
    open_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    g_tensors = tensors.size();
    // Touch one 32 MiB weight: only now are its pages read.
    const auto& w = tensors.at("layers.0.attention.wq.weight");
    const auto* p = static_cast<const unsigned char*>(w.data);
    const std::size_t bytes = std::size_t(w.numel()) * 2;
    unsigned sum = 0;
    for (std::size_t i = 0; i < bytes; i += 4096) sum += p[i];
    benchmark::DoNotOptimize(sum);
    touched = double(bytes) / (1024.0 * 1024.0);
    after_touch = rss_mb() - before;
    if (growth >= 64.0) state.SkipWithError("opening grew the resident set by 64 MB or more");
  }
  state.counters["file_GB"] = double(g_file_bytes) / 1e9;
  state.counters["tensors"] = double(g_tensors);
  state.counters["open_ms"] = open_ms;
  state.counters["rss_growth_MB"] = growth;
  state.counters["touched_MB"] = touched;
  state.counters["rss_after_touch_MB"] = after_touch;
}
BENCHMARK(BM_OpenCheckpoint)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--io_path=", 10) == 0) g_path = argv[i] + 10;
    else args.push_back(argv[i]);
  }
  if (g_path.empty()) {
    if (const char* e = std::getenv("LAV2_BENCH_IO_PATH")) g_path = e;
  }
  if (g_path.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    g_path = std::string(tmp && *tmp ? tmp : "/tmp") + "/lav2_bench_io_" + std::to_string(::getpid()) + ".pth";
  }
  const std::string dir = g_path.find('/') == std::string::npos ? "." : g_path.substr(0, g_path.rfind('/') + 1);
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0 || std::uint64_t(vfs.f_bavail) * vfs.f_frsize < (16u << 20)) {
    std::printf("bench_io: skipped: less than 16 MB free in '%s' (or it cannot be inspected)\n", dir.c_str());
    return 0;
  }
  const std::string why = write_sparse_checkpoint(g_path);
  if (!why.empty()) {
    ::unlink(g_path.c_str());
    std::printf("bench_io: skipped: %s\n", why.c_str());
    return 0;
  }
  std::printf("bench_io: synthetic checkpoint '%s': %.2f GB (%.2f GiB) apparent size\n", g_path.c_str(),
              double(g_file_bytes) / 1e9, double(g_file_bytes) / double(1ull << 30));
  int n = int(args.size());
  benchmark::Initialize(&n, args.data());
  int rc = 0;
  try {
    benchmark::RunSpecifiedBenchmarks();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_io: %s\n", e.what());
    rc = 1;
  }
  benchmark::Shutdown();
  ::unlink(g_path.c_str());
  return rc;
}
