// Reader for torch.save checkpoints (PyTorch >= 1.6 zip format), e.g. Meta's LLaMA
// consolidated.00.pth and LLaMA-Adapter V2's BIAS-7B.pth. Tensor data is memory-mapped, never
// copied (unless a storage is misaligned for its dtype, which torch's own writer never does).
//
// ---- The format, field by field -----------------------------------------------------------------
// The file is a zip archive (see io/zip.hpp for the container) whose entries are all STORED and
// share one top folder <dir>, whose name varies ("archive", "consolidated", the file stem, ...):
//   <dir>/data.pkl       the pickled object (protocol 2): a dict (OrderedDict) mapping names to
//                        tensors, or a dict of such dicts and plain values, e.g.
//                        {'model': OrderedDict(name -> tensor), 'config': {'w_bias': True, ...}}
//   <dir>/data/<key>     one raw storage per key: numel elements of its dtype, little-endian,
//                        no header; torch pads the local header so the data is 64-byte aligned
//   <dir>/version        the format version as text ("3\n"); not needed to read
//   <dir>/byteorder      (torch >= 2.1) "little" or "big"; lav2 reads only "little"
//   <dir>/.data/...      (torch >= 2.0) serialization ids; ignored
// A tensor inside data.pkl is
//   REDUCE torch._utils._rebuild_tensor_v2 (storage, storage_offset, size, stride,
//                                           requires_grad, backward_hooks [, metadata])
//   storage        = BINPERSID ('storage', torch.<T>Storage, key, location, numel)
//                    T gives the dtype: Float f32, Half f16, BFloat16 bf16, Long i64, Int i32,
//                    Short i16, Char i8, Byte u8, Bool bool; numel counts elements;
//                    location ('cpu', 'cuda:0') is where it was saved from and is ignored
//   storage_offset = first element of the view within the storage (elements)
//   size, stride   = tuples of ints (elements), outermost first; views of one storage share it
// An nn.Parameter (state_dict(keep_vars=True)) wraps that in torch._utils._rebuild_parameter.
// What the unpickler accepts beyond this is listed atop io/pickle.hpp.
//
// ---- Checks (each failure names the file and the field, with expected and actual values) ----------
//   - not the legacy pre-1.6 format (a bare pickle stream); not a TorchScript archive
//   - the zip checks of io/zip.hpp
//   - exactly one entry named <dir>/data.pkl; stored; CRC-32 matches; size within the limits
//   - <dir>/byteorder, if present, is "little"
//   - the restricted unpickler's checks (io/pickle.hpp)
//   - per storage key: <dir>/data/<key> exists, is stored, holds exactly numel * element size bytes
//   - per tensor: storage_offset >= 0, sizes >= 0, strides >= 0, numel without int64 overflow, and
//     storage_offset + sum((size_i - 1) * stride_i) < storage numel, all overflow-checked:
//     "checkpoint 'x.pth': tensor 'layers.3.attention.wq.weight': storage holds 100 elements,
//      the view needs 4096 (...)"
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/io/bytes.hpp"
#include "lav2/io/limits.hpp"
#include "lav2/io/mmap.hpp"
#include "lav2/io/pickle.hpp"
#include "lav2/io/storage.hpp"
#include "lav2/io/tensor_map.hpp"
#include "lav2/io/zip.hpp"

namespace lav2::io {

/// \brief Flattens the tensors of a dict value into name -> view. Nested dicts join their keys
/// with '.' ({'a': {'b': t}} gives "a.b"); int keys print as numbers; values that are not
/// tensors or dicts (config values, lists) are skipped. Throws load_error naming `context` on a
/// duplicate name, limit_error past `max_tensors` names.
/// \param v a dict Value whose tensors carry data (as TorchCheckpoint returns them).
inline TensorMap flatten_tensors(const Value& v, const std::string& context, std::size_t max_tensors = 1u << 20) {
  TensorMap out;
  if (!v.is_dict())
    LAV2_THROW(input_error, context, ": flatten_tensors needs a dict, got a ", Value::kind_name(v.kind()));
  struct Walker {
    TensorMap& out;
    const std::string& ctx;
    std::size_t max;
    void run(const Value& d, const std::string& prefix) {
      for (const auto& kv : d.dict().items) {
        const std::string key = kv.first.is_str() ? kv.first.as_str() : std::to_string(kv.first.as_int());
        const std::string name = prefix.empty() ? key : prefix + "." + key;
        if (kv.second.is_tensor()) {
          if (out.size() >= max) LAV2_THROW(limit_error, ctx, ": more than ", max, " tensors (the limit)");
          if (!out.emplace(name, kv.second.as_tensor()).second)
            LAV2_THROW(load_error, ctx, ": two tensors are both named ", detail::quoted(name));
        } else if (kv.second.is_dict()) {
          run(kv.second, name);
        }
      }
    }
  };
  Walker{out, context, max_tensors}.run(v, "");
  return out;
}

/// \brief An opened torch.save checkpoint: the unpickled value tree with every tensor checked and
/// pointing into the read-only mapping of the file. Moveable; views stay valid while this object
/// (or a `keep_alive()` handle) lives.
class TorchCheckpoint {
 public:
  /// \brief Opens, checks and unpickles `path`; no tensor data is read.
  explicit TorchCheckpoint(const std::string& path, const CheckpointLimits& limits = {})
      : TorchCheckpoint(MappedFile::open(path, "checkpoint"), limits) {}
  /// \brief Reads an already mapped file, or bytes held in memory (MappedFile::from_buffer).
  explicit TorchCheckpoint(std::shared_ptr<const MappedFile> file, const CheckpointLimits& limits = {})
      : limits_(limits) {
    const std::string& path = file->path();
    ctx_ = "checkpoint '" + path + "'";
    const unsigned char* b = file->data();
    if (file->size() >= 2 && b[0] == 0x80 && b[1] <= 5 && !(file->size() >= 4 && detail::le32(b) == 0x04034b50u))
      LAV2_THROW(load_error, ctx_,
                 ": a bare pickle stream (the legacy torch.save format of PyTorch < 1.6) is not "
                 "supported; re-save it with a current torch.save");
    zip_ = std::make_shared<ZipArchive>(file, "checkpoint", limits.zip);
    find_pickle_();
    const ZipEntry& pkl = *pickle_entry_;
    const std::string src = ctx_ + ": " + pkl.name;
    if (pkl.size > limits.pickle.max_bytes)
      LAV2_THROW(limit_error, src, ": ", pkl.size, " bytes exceed the pickle limit ", limits.pickle.max_bytes);
    zip_->verify_crc(pkl);
    if (const ZipEntry* bo = zip_->find(dir_ + "/byteorder")) {
      const std::string order(reinterpret_cast<const char*>(zip_->data(*bo)),
                              std::size_t(std::min<std::uint64_t>(bo->size, 16)));
      if (order != "little")
        LAV2_THROW(load_error, ctx_, ": ", bo->name, " is ", detail::quoted(order), ", expected 'little'");
    }
    Unpickler up(zip_->data(pkl), std::size_t(pkl.size), src, limits.pickle);
    root_ = up.load();
    resolve_all_();
  }

  const std::string& path() const { return zip_->file()->path(); }
  /// The top folder of the archive (entries are <dir>/data.pkl, <dir>/data/<key>).
  const std::string& archive_dir() const { return dir_; }
  /// The unpickled value: usually a dict (state_dict) or {'model': ..., 'config': ...}.
  const Value& root() const { return root_; }
  /// Tensors of the root dict, or of the dict under `key` ("model"), flattened by flatten_tensors.
  /// Throws load_error when `key` is absent or not a dict.
  TensorMap tensors(std::string_view key = {}) const {
    if (key.empty()) return flatten_tensors(root_, ctx_, limits_.max_tensors);
    const Value* v = root_.find(key);
    if (!v)
      LAV2_THROW(load_error, ctx_, ": the root has no key '", key, "'", root_.is_dict() ? "" : " (it is not a dict)");
    if (!v->is_dict())
      LAV2_THROW(load_error, ctx_, ": '", key, "' is a ", Value::kind_name(v->kind()), ", expected a dict");
    return flatten_tensors(*v, ctx_ + ": '" + std::string(key) + "'", limits_.max_tensors);
  }
  /// A handle that keeps the mapping (and any realigned copies) alive after this object is gone.
  std::shared_ptr<const void> keep_alive() const { return keep_; }
  const ZipArchive& archive() const { return *zip_; }
  /// Bytes copied because a storage was misaligned for its dtype (0 for files torch wrote).
  std::uint64_t copied_bytes() const { return copied_bytes_; }

 private:
  struct Owned {  // what keep_alive() holds
    std::shared_ptr<const MappedFile> file;
    StorageCopies copies;
  };

  void find_pickle_() {
    const ZipEntry* found = nullptr;
    for (const ZipEntry& e : zip_->entries()) {
      const std::string& n = e.name;
      const std::size_t slash = n.find('/');
      if (slash == std::string::npos || slash == 0 || n.compare(slash, std::string::npos, "/data.pkl") != 0) continue;
      if (found)
        LAV2_THROW(load_error, ctx_, ": two pickles, ", detail::quoted(found->name), " and ", detail::quoted(n),
                   "; expected one <dir>/data.pkl");
      found = &e;
    }
    if (!found)
      LAV2_THROW(load_error, ctx_, ": no '<dir>/data.pkl' entry among ", zip_->entries().size(),
                 " entries (not a torch.save archive)");
    dir_ = found->name.substr(0, found->name.size() - 9);
    if (zip_->find(dir_ + "/constants.pkl"))
      LAV2_THROW(load_error, ctx_, ": a TorchScript archive (has ", dir_,
                 "/constants.pkl), not a torch.save "
                 "checkpoint; convert it offline to a state_dict (torch.jit.load(f).state_dict())");
    pickle_entry_ = found;
  }

  // Walks the tree once per container (shared sub-trees are visited once), naming each tensor by
  // its path, and checks and attaches every tensor's data.
  void resolve_all_() {
    auto owned = std::make_shared<Owned>(Owned{zip_->file(), {}});
    owned_ = owned.get();
    keep_ = owned;
    std::unordered_set<const void*> seen;
    std::size_t count = 0;
    struct Walker {
      TorchCheckpoint& self;
      std::unordered_set<const void*>& seen;
      std::size_t& count;
      void run(const Value& v, const std::string& name) {
        if (v.is_tensor()) {
          if (++count > self.limits_.max_tensors)
            LAV2_THROW(limit_error, self.ctx_, ": more than ", self.limits_.max_tensors, " tensors (the limit)");
          self.resolve_(const_cast<PickledTensor&>(v.tensor()), name);
          return;
        }
        if (!v.is_dict() && !v.is_list() && !v.is_tuple()) return;
        const void* id = v.is_dict() ? static_cast<const void*>(&v.dict()) : static_cast<const void*>(&v.items());
        if (!seen.insert(id).second) return;
        if (v.is_dict()) {
          for (const auto& kv : v.dict().items) {
            const std::string key = kv.first.is_str() ? kv.first.as_str() : std::to_string(kv.first.as_int());
            run(kv.second, name.empty() ? key : name + "." + key);
          }
        } else {
          const auto& items = v.items();
          for (std::size_t i = 0; i < items.size(); ++i)
            run(items[i], name.empty() ? std::to_string(i) : name + "." + std::to_string(i));
        }
      }
    };
    Walker{*this, seen, count}.run(root_, "");
  }

  const unsigned char* storage_data_(const PickledStorage& s, const std::string& tensor) {
    if (auto it = storages_.find(s.key); it != storages_.end()) return it->second;
    const std::string entry_name = dir_ + "/data/" + s.key;
    const ZipEntry* e = zip_->find(entry_name);
    if (!e)
      LAV2_THROW(load_error, ctx_, ": tensor ", detail::quoted(tensor), ": storage entry ", detail::quoted(entry_name),
                 " is missing");
    const unsigned char* p = storage_bytes(*zip_, *e, entry_name, s, ctx_, limits_, owned_->copies, copied_bytes_);
    storages_.emplace(s.key, p);
    return p;
  }

  void resolve_(PickledTensor& t, const std::string& name) {
    if (t.resolved) return;
    const PickledStorage& s = *t.storage;
    const std::string where = ctx_ + ": tensor " + detail::quoted(name);
    auto layout = [&] {
      std::string st = "(";
      for (int i = 0; i < t.shape.rank; ++i) st += (i ? ", " : "") + std::to_string(t.strides[std::size_t(i)]);
      st += t.shape.rank == 1 ? ",)" : ")";
      return lav2::detail::str_cat("storage '", s.key, "', offset ", t.storage_offset, ", shape ", t.shape.to_string(),
                                   ", strides ", st);
    };
    if (t.storage_offset < 0)
      LAV2_THROW(load_error, where, ": storage offset is ", t.storage_offset, ", expected >= 0");
    std::uint64_t numel = 1, last = std::uint64_t(t.storage_offset);
    for (int i = 0; i < t.shape.rank; ++i) {
      const std::int64_t d = t.shape[i], st = t.strides[std::size_t(i)];
      if (d < 0) LAV2_THROW(load_error, where, ": dimension ", i, " has size ", d, ", expected >= 0 (", layout(), ")");
      if (st < 0)
        LAV2_THROW(load_error, where, ": dimension ", i, " has stride ", st, ", expected >= 0 (", layout(), ")");
      std::uint64_t step = 0;
      if (!detail::mul_ok(numel, std::uint64_t(d), numel) || numel > std::uint64_t(INT64_MAX) ||
          (d > 0 && (!detail::mul_ok(std::uint64_t(d - 1), std::uint64_t(st), step) ||
                     !detail::add_ok(last, step, last) || last >= std::uint64_t(INT64_MAX))))
        LAV2_THROW(load_error, where, ": the view's extent overflows 64 bits (", layout(), ")");
    }
    const std::uint64_t needed = numel == 0 ? std::uint64_t(t.storage_offset) : last + 1;
    if (needed > std::uint64_t(s.numel))
      LAV2_THROW(load_error, where, ": storage holds ", s.numel, " elements, the view needs ", needed, " (", layout(),
                 ")");
    const unsigned char* base = storage_data_(s, name);
    t.view.dtype = s.dtype;
    t.view.data = base + std::uint64_t(t.storage_offset) * dtype_size(s.dtype);
    t.view.shape = t.shape;
    t.view.strides = t.strides;
    t.resolved = true;
  }

  CheckpointLimits limits_;
  std::string ctx_;
  std::string dir_;
  std::shared_ptr<ZipArchive> zip_;
  const ZipEntry* pickle_entry_ = nullptr;
  Value root_;
  std::shared_ptr<const void> keep_;
  Owned* owned_ = nullptr;
  std::unordered_map<std::string, const unsigned char*> storages_;
  std::uint64_t copied_bytes_ = 0;
};

}  // namespace lav2::io
