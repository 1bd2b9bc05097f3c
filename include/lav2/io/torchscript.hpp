// Reader for TorchScript archives (torch.jit.save), e.g. OpenAI's CLIP `ViT-L-14.pt`: the module
// graph is unpickled as data (no code is read or run) and its tensors come out under the names
// `module.state_dict()` would give them ("visual.transformer.resblocks.0.attn.in_proj_weight").
// Tensor data is memory-mapped, never copied (unless misaligned, which torch's writer never does).
//
// ---- The format, field by field -----------------------------------------------------------------
// A zip archive (io/zip.hpp), every entry STORED, under one top folder <dir> whose name varies
// (torch 1.13 uses the file stem; "archive" and others occur), so <dir> is found as the folder of
// the single `*/data.pkl`:
//   <dir>/version         format version as text ("4\n" from torch 1.13's jit.save); recorded only
//   <dir>/data.pkl        the module object graph, pickle protocol 2, written by the C++ pickler:
//                           GLOBAL '__torch__.<module path> <Class>'   (e.g. __torch__.torch.nn.
//                           modules.conv Conv2d; names may carry ___torch_mangle_N)
//                           EMPTY_TUPLE NEWOBJ                          -> an empty object
//                           {attribute: value, ...} BUILD               -> its attributes
//                         Attributes are parameters and buffers (tensors), submodules (objects),
//                         `training` (bool) and plain values (`_is_full_backward_hook` None, ints,
//                         lists via torch.jit._pickle.build_*list / restore_type_tag).
//                         A tensor is REDUCE torch._utils._rebuild_tensor_v2 (storage, offset,
//                         size, stride, requires_grad, OrderedDict()) with storage = BINPERSID
//                         ('storage', torch.<T>Storage, key, device, numel), as in io/torch_checkpoint.hpp
//   <dir>/data/<key>      raw storages of data.pkl, little-endian, numel elements, 64-byte aligned
//   <dir>/constants.pkl   a tuple of the constants the code refers to (CONSTANTS.c0, c1, ...);
//                         tensors among them (trace-captured values, e.g. double scalars or masks)
//   <dir>/constants/<key> their storages
//   <dir>/code/...        TorchScript source of the methods (and .debug_pkl); never read
//   <dir>/byteorder       (newer torch) "little"; anything else is rejected
//   <dir>/.data/...       (mobile/storage-context archives) storages shared between pickles;
//                         a key not found under data/ (constants/) is looked up here
// State names: the attributes of the root object, joined with '.' down through submodules (an
// attribute holding an object); tensors are named, other values skipped. A submodule reachable
// twice is named once (the first path, as torch's named_modules memo does).
//
// ---- Checks (load_error "TorchScript archive '<path>': ..." naming the entry, tensor, values) ----
//   - the zip checks; exactly one <dir>/data.pkl and a <dir>/constants.pkl (else it is not
//     TorchScript: a torch.save checkpoint goes to io/torch_checkpoint.hpp); both stored and
//     CRC-checked, within the pickle limits
//   - both pickles through the restricted unpickler in TorchScript mode (io/pickle.hpp): any other
//     global (os.system, builtins.eval, ...) or opcode is rejected naming the file, the pickle, the
//     global and its byte offset
//   - the root of data.pkl is a __torch__ object; constants.pkl is a tuple
//   - per storage and tensor: the same entry-size and view-extent checks as io/torch_checkpoint.hpp
//   - tensors of dtypes lav2 does not hold (Double, Complex) are not resolved; their names are
//     listed in `skipped()`; a caller needing one reports it missing
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
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

/// \brief True when `zip` holds a `<dir>/constants.pkl` (the TorchScript marker).
inline bool is_torchscript_archive(const ZipArchive& zip) {
  for (const ZipEntry& e : zip.entries()) {
    const std::size_t slash = e.name.find('/');
    if (slash != std::string::npos && slash > 0 && e.name.compare(slash, std::string::npos, "/constants.pkl") == 0)
      return true;
  }
  return false;
}

/// \brief An opened TorchScript archive: the module graph and constants, every needed tensor
/// checked and pointing into the read-only mapping. Views stay valid while this object (or a
/// `keep_alive()` handle) lives.
class TorchScriptArchive {
 public:
  /// \brief Opens, checks and unpickles `path` (data.pkl and constants.pkl); reads no tensor data.
  explicit TorchScriptArchive(const std::string& path, const CheckpointLimits& limits = {})
      : TorchScriptArchive(MappedFile::open(path, "TorchScript archive"), limits) {}
  /// \brief Reads an already mapped file, or bytes held in memory (MappedFile::from_buffer).
  explicit TorchScriptArchive(std::shared_ptr<const MappedFile> file, const CheckpointLimits& limits = {})
      : limits_(limits) {
    ctx_ = "TorchScript archive '" + file->path() + "'";
    zip_ = std::make_shared<ZipArchive>(file, "TorchScript archive", limits.zip);
    keep_ = std::make_shared<Owned>(Owned{zip_->file(), {}});
    find_entries_();
    if (const ZipEntry* bo = zip_->find(dir_ + "/byteorder")) {
      const std::string order(reinterpret_cast<const char*>(zip_->data(*bo)),
                              std::size_t(std::min<std::uint64_t>(bo->size, 16)));
      if (order != "little")
        LAV2_THROW(load_error, ctx_, ": ", bo->name, " is ", detail::quoted(order), ", expected 'little'");
    }
    if (const ZipEntry* ver = zip_->find(dir_ + "/version")) {
      version_.assign(reinterpret_cast<const char*>(zip_->data(*ver)),
                      std::size_t(std::min<std::uint64_t>(ver->size, 32)));
      while (!version_.empty() && (version_.back() == '\n' || version_.back() == '\r')) version_.pop_back();
    }
    root_ = unpickle_(*data_pkl_);
    constants_ = unpickle_(*constants_pkl_);
    if (!root_.is_dict() || root_.dict().class_name.empty())
      LAV2_THROW(load_error, ctx_, ": ", data_pkl_->name, " holds a ", Value::kind_name(root_.kind()),
                 ", expected a __torch__ module object");
    if (!constants_.is_tuple())
      LAV2_THROW(load_error, ctx_, ": ", constants_pkl_->name, " holds a ", Value::kind_name(constants_.kind()),
                 ", expected a tuple");
    name_module_(root_, "");
    const auto& c = constants_.items();
    for (std::size_t i = 0; i < c.size(); ++i)
      if (c[i].is_tensor()) add_(constants_map_, c[i], "CONSTANTS.c" + std::to_string(i), "constants");
  }

  const std::string& path() const { return zip_->file()->path(); }
  /// The top folder of the archive.
  const std::string& archive_dir() const { return dir_; }
  /// The text of <dir>/version ("" when absent).
  const std::string& version() const { return version_; }
  /// The class of the root module, e.g. "__torch__.clip.model.CLIP".
  const std::string& root_class() const { return root_.dict().class_name; }
  /// The unpickled module graph (objects are dicts with `class_name`).
  const Value& root() const { return root_; }
  /// The tensors of the module graph under their state_dict names.
  const TensorMap& tensors() const { return tensors_; }
  /// Tensors of constants.pkl as "CONSTANTS.c<i>" (their index in the constants tuple).
  const TensorMap& constant_tensors() const { return constants_map_; }
  /// Names of tensors left out because lav2 has no such dtype, with the storage type.
  const std::vector<std::string>& skipped() const { return skipped_; }
  std::shared_ptr<const void> keep_alive() const { return keep_; }
  std::uint64_t copied_bytes() const { return copied_bytes_; }

 private:
  struct Owned {
    std::shared_ptr<const MappedFile> file;
    StorageCopies copies;
  };

  void find_entries_() {
    const ZipEntry* found = nullptr;
    for (const ZipEntry& e : zip_->entries()) {
      const std::size_t slash = e.name.find('/');
      if (slash == std::string::npos || slash == 0 || e.name.compare(slash, std::string::npos, "/data.pkl") != 0)
        continue;
      if (found)
        LAV2_THROW(load_error, ctx_, ": two pickles, ", detail::quoted(found->name), " and ", detail::quoted(e.name),
                   "; expected one <dir>/data.pkl");
      found = &e;
    }
    if (!found)
      LAV2_THROW(load_error, ctx_, ": no '<dir>/data.pkl' entry among ", zip_->entries().size(),
                 " entries (not a TorchScript archive)");
    dir_ = found->name.substr(0, found->name.size() - 9);
    data_pkl_ = found;
    constants_pkl_ = zip_->find(dir_ + "/constants.pkl");
    if (!constants_pkl_)
      LAV2_THROW(load_error, ctx_, ": no '", dir_,
                 "/constants.pkl' (a torch.save checkpoint, not a TorchScript archive; "
                 "read it with TorchCheckpoint)");
  }

  Value unpickle_(const ZipEntry& e) {
    const std::string src = ctx_ + ": " + e.name;
    if (e.size > limits_.pickle.max_bytes)
      LAV2_THROW(limit_error, src, ": ", e.size, " bytes exceed the pickle limit ", limits_.pickle.max_bytes);
    zip_->verify_crc(e);
    Unpickler up(zip_->data(e), std::size_t(e.size), src, limits_.pickle);
    up.allow_torchscript();
    return up.load();
  }

  // Depth is bounded by the unpickler's tree check (max_depth); shared objects are named once.
  void name_module_(const Value& obj, const std::string& prefix) {
    if (!visited_.insert(&obj.dict()).second) return;
    for (const auto& kv : obj.dict().items) {
      const std::string name = prefix.empty() ? kv.first.as_str() : prefix + "." + kv.first.as_str();
      if (kv.second.is_tensor()) add_(tensors_, kv.second, name, "data");
      else if (kv.second.is_dict() && !kv.second.dict().class_name.empty()) name_module_(kv.second, name);
    }
  }

  void add_(TensorMap& out, const Value& v, const std::string& name, const char* folder) {
    PickledTensor& t = const_cast<PickledTensor&>(v.tensor());
    if (!t.storage->lav2_dtype) {
      skipped_.push_back(name + " (" + t.storage->type + ")");
      return;
    }
    if (++count_ > limits_.max_tensors)
      LAV2_THROW(limit_error, ctx_, ": more than ", limits_.max_tensors, " tensors (the limit)");
    resolve_(t, name, folder);
    if (!out.emplace(name, t.view).second)
      LAV2_THROW(load_error, ctx_, ": two tensors are both named ", detail::quoted(name));
  }

  const unsigned char* storage_data_(const PickledStorage& s, const std::string& tensor, const char* folder) {
    const std::string id = std::string(folder) + "/" + s.key;
    if (auto it = storages_.find(id); it != storages_.end()) return it->second;
    std::string entry_name = dir_ + "/" + folder + "/" + s.key;
    const ZipEntry* e = zip_->find(entry_name);
    if (!e) {
      e = zip_->find(dir_ + "/.data/" + s.key);
      if (e) entry_name = e->name;
    }
    if (!e)
      LAV2_THROW(load_error, ctx_, ": tensor ", detail::quoted(tensor), ": storage entry ", detail::quoted(entry_name),
                 " is missing");
    const unsigned char* p = storage_bytes(*zip_, *e, entry_name, s, ctx_, limits_,
                                           static_cast<Owned*>(const_cast<void*>(keep_.get()))->copies, copied_bytes_);
    storages_.emplace(id, p);
    return p;
  }

  // The view-extent check of io/torch_checkpoint.hpp: offset, sizes and strides >= 0 and the last
  // element inside the storage, all overflow-checked.
  void resolve_(PickledTensor& t, const std::string& name, const char* folder) {
    if (t.resolved) return;
    const PickledStorage& s = *t.storage;
    const std::string where = ctx_ + ": tensor " + detail::quoted(name);
    if (t.storage_offset < 0)
      LAV2_THROW(load_error, where, ": storage offset is ", t.storage_offset, ", expected >= 0");
    std::uint64_t numel = 1, last = std::uint64_t(t.storage_offset);
    for (int i = 0; i < t.shape.rank; ++i) {
      const std::int64_t d = t.shape[i], st = t.strides[std::size_t(i)];
      if (d < 0 || st < 0)
        LAV2_THROW(load_error, where, ": dimension ", i, " has size ", d, " and stride ", st, ", expected both >= 0");
      std::uint64_t step = 0;
      if (!detail::mul_ok(numel, std::uint64_t(d), numel) || numel > std::uint64_t(INT64_MAX) ||
          (d > 0 && (!detail::mul_ok(std::uint64_t(d - 1), std::uint64_t(st), step) ||
                     !detail::add_ok(last, step, last) || last >= std::uint64_t(INT64_MAX))))
        LAV2_THROW(load_error, where, ": the view's extent overflows 64 bits (shape ", t.shape.to_string(), ")");
    }
    const std::uint64_t needed = numel == 0 ? std::uint64_t(t.storage_offset) : last + 1;
    if (needed > std::uint64_t(s.numel))
      LAV2_THROW(load_error, where, ": storage '", s.key, "' holds ", s.numel, " elements, the view needs ", needed,
                 " (shape ", t.shape.to_string(), ", offset ", t.storage_offset, ")");
    const unsigned char* base = storage_data_(s, name, folder);
    t.view.dtype = s.dtype;
    t.view.data = base + std::uint64_t(t.storage_offset) * dtype_size(s.dtype);
    t.view.shape = t.shape;
    t.view.strides = t.strides;
    t.resolved = true;
  }

  CheckpointLimits limits_;
  std::string ctx_, dir_, version_;
  std::shared_ptr<ZipArchive> zip_;
  std::shared_ptr<const void> keep_;
  const ZipEntry* data_pkl_ = nullptr;
  const ZipEntry* constants_pkl_ = nullptr;
  Value root_, constants_;
  TensorMap tensors_, constants_map_;
  std::vector<std::string> skipped_;
  std::unordered_set<const void*> visited_;
  std::unordered_map<std::string, const unsigned char*> storages_;
  std::size_t count_ = 0;
  std::uint64_t copied_bytes_ = 0;
};

}  // namespace lav2::io
