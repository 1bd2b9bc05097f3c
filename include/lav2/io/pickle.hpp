// A restricted unpickler for the data.pkl of torch.save archives.
//
// It runs the pickle stack machine (protocol 2 as torch.save writes it; protocols up to 5 are
// accepted) over an allow-list: the opcodes that build a state_dict and a nested dict of plain
// config values, and exactly these globals:
//   collections.OrderedDict           REDUCE with () -> an empty dict; BUILD with a dict state
//                                     (a state_dict's `_metadata`, which is dropped)
//   torch._utils._rebuild_tensor_v2   REDUCE (storage, storage_offset, size, stride,
//                                     requires_grad, backward_hooks={} [, metadata]) -> tensor
//   torch._utils._rebuild_parameter   REDUCE (tensor, requires_grad, backward_hooks={}) -> tensor
//   torch.Size                        REDUCE (tuple of ints,) -> that tuple
//   torch.{Float,Half,BFloat16,Long,Int,Short,Char,Byte,Bool}Storage
//                                     only as the type inside a persistent id
// torch.serialization._get_layout and torch.device are deliberately absent: a dense CPU or CUDA
// state_dict never pickles them (layouts appear only for sparse tensors, devices only as values
// of arbitrary objects), so allowing them would widen the surface for nothing.
// Persistent ids (BINPERSID) must be ('storage', <storage type>, key: str, location: str,
// numel: int); the location ('cpu', 'cuda:0') is kept but ignored.
// Anything else (another global such as os.system or builtins.eval, INST/OBJ/NEWOBJ, EXT*,
// bytes, sets, protocol-0 text opcodes, an unknown opcode) throws load_error naming the opcode
// or global and its byte offset. SETITEM(S) apply only to dicts, APPEND(S) only to lists, BUILD
// only to a dict made by OrderedDict, REDUCE only to the allowed callables.
//
// TorchScript mode (`Unpickler::allow_torchscript()`, used by io/torchscript.hpp only) accepts, in
// addition, what torch.jit.save's C++ pickler writes for a module graph, and nothing executable:
//   __torch__.<path> <Class>          (module and class names from the archive's code/, e.g.
//                                     __torch__.torch.nn.modules.conv.Conv2d) -> an opaque class;
//                                     only NEWOBJ with an empty tuple instantiates it, giving an
//                                     object: a dict with `class_name` set, keys = attribute names
//   BUILD on such an object           with a dict state of str keys, once: sets its attributes
//   torch.jit._pickle.restore_type_tag (value, type str) -> value
//   torch.jit._pickle.build_{int,float,double,bool,tensor}list (list,) -> that list, elements checked
//   torch.{Double,ComplexFloat,ComplexDouble}Storage
//                                     storages of dtypes lav2 does not hold (constants.pkl holds
//                                     double scalars); their storage is marked `lav2_dtype = false`
//                                     and the reader must not resolve such tensors
// A __torch__ class is data, never code: nothing of code/ is read, so no method can run.
//
// The result is a tree of Value (None, bool, int, float, str, list, tuple, dict, tensor). Every
// count is checked against PickleLimits before anything is allocated for it; the finished tree
// must be acyclic and no deeper than `max_depth`, so walking it cannot recurse without bound.
// Tensors are records (storage key, dtype, offset, shape, strides); the checkpoint reader checks
// them against the storages and attaches the data (io/torch_checkpoint.hpp).
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/io/bytes.hpp"
#include "lav2/io/limits.hpp"
#include "lav2/tensor/tensor.hpp"

namespace lav2::io {

/// \brief A storage named by a persistent id: ('storage', type, key, location, numel).
struct PickledStorage {
  std::string key;   ///< the archive entry is `<dir>/data/<key>`
  std::string type;  ///< "torch.HalfStorage", for messages
  DType dtype = DType::f32;
  std::int64_t numel = 0;  ///< elements (not bytes)
  std::string location;    ///< "cpu", "cuda:0", ...; ignored
  bool lav2_dtype =
      true;  ///< false: a torch dtype lav2 cannot hold (TorchScript mode only); `dtype` is then meaningless
};

/// \brief A tensor as `_rebuild_tensor_v2` describes it; `view` is filled by the checkpoint reader.
struct PickledTensor {
  std::shared_ptr<const PickledStorage> storage;
  std::int64_t storage_offset = 0;  ///< in elements
  Shape shape;
  Strides strides{};  ///< in elements
  bool requires_grad = false;
  bool resolved = false;  ///< `view` is valid
  AnyTensorView view;
};

/// \brief A node of an unpickled value tree. Cheap to copy: strings and containers are shared.
class Value {
 public:
  enum class Kind : std::uint8_t {
    none,
    boolean,
    integer,
    floating,
    string,
    list,
    tuple,
    dict,
    tensor,
    global_,
    storage_,
    mark_ /* the last three never leave the unpickler */
  };
  using List = std::vector<Value>;
  /// A dict in insertion order with an index; keys are str or int (all a state_dict needs).
  struct Dict {
    std::vector<std::pair<Value, Value>> items;
    std::unordered_map<std::string, std::size_t> str_index;
    std::unordered_map<std::int64_t, std::size_t> int_index;
    bool ordered_dict = false;  ///< made by collections.OrderedDict (BUILD allowed)
    std::string class_name;     ///< TorchScript mode: a __torch__ object (module); items are its attributes
    bool built = false;         ///< TorchScript mode: BUILD has set the attributes
  };

  Value() = default;
  static Value none() { return Value(); }
  static Value boolean(bool b) {
    Value v(Kind::boolean);
    v.i_ = b;
    return v;
  }
  static Value integer(std::int64_t i) {
    Value v(Kind::integer);
    v.i_ = i;
    return v;
  }
  static Value floating(double f) {
    Value v(Kind::floating);
    v.f_ = f;
    return v;
  }
  static Value string(std::string s) {
    Value v(Kind::string);
    v.p_ = std::make_shared<std::string>(std::move(s));
    return v;
  }

  /// A dict with string keys, built in code (the adapter config that a GGUF's lav2.adapter.*
  /// keys carry, read by the same code as a checkpoint's pickled 'config'). Keys must be unique.
  static Value str_dict(std::vector<std::pair<std::string, Value>> entries) {
    Value v(Kind::dict);
    auto d = std::make_shared<Dict>();
    for (auto& [key, value] : entries) {
      if (!d->str_index.emplace(key, d->items.size()).second) LAV2_THROW(input_error, "dict: key '", key, "' twice");
      d->items.emplace_back(string(key), std::move(value));
    }
    v.p_ = std::move(d);
    return v;
  }

  Kind kind() const { return kind_; }
  bool is_none() const { return kind_ == Kind::none; }
  bool is_bool() const { return kind_ == Kind::boolean; }
  bool is_int() const { return kind_ == Kind::integer; }
  bool is_float() const { return kind_ == Kind::floating; }
  bool is_str() const { return kind_ == Kind::string; }
  bool is_list() const { return kind_ == Kind::list; }
  bool is_tuple() const { return kind_ == Kind::tuple; }
  bool is_dict() const { return kind_ == Kind::dict; }
  bool is_tensor() const { return kind_ == Kind::tensor; }

  /// Accessors throw input_error naming the actual kind when the kind differs.
  bool as_bool() const {
    expect_(Kind::boolean);
    return i_ != 0;
  }
  std::int64_t as_int() const {
    expect_(Kind::integer);
    return i_;
  }
  /// A float, or an int converted to double.
  double as_float() const {
    if (kind_ == Kind::integer) return double(i_);
    expect_(Kind::floating);
    return f_;
  }
  const std::string& as_str() const {
    expect_(Kind::string);
    return *static_cast<const std::string*>(p_.get());
  }
  /// Items of a list or a tuple.
  const List& items() const {
    if (kind_ != Kind::list && kind_ != Kind::tuple) expect_(Kind::list);
    return *static_cast<const List*>(p_.get());
  }
  const Dict& dict() const {
    expect_(Kind::dict);
    return *static_cast<const Dict*>(p_.get());
  }
  const PickledTensor& tensor() const {
    expect_(Kind::tensor);
    return *static_cast<const PickledTensor*>(p_.get());
  }
  /// The tensor's data view (set once the checkpoint reader has checked it).
  const AnyTensorView& as_tensor() const {
    const PickledTensor& t = tensor();
    if (!t.resolved) LAV2_THROW(input_error, "tensor value has no data attached");
    return t.view;
  }
  /// In a dict: the value under string key `key`, or nullptr (also when this is not a dict).
  const Value* find(std::string_view key) const {
    if (kind_ != Kind::dict) return nullptr;
    const Dict& d = dict();
    const auto it = d.str_index.find(std::string(key));
    return it == d.str_index.end() ? nullptr : &d.items[it->second].second;
  }
  /// In a dict: the value under `key`; throws input_error when absent.
  const Value& at(std::string_view key) const {
    const Value* v = find(key);
    if (!v) LAV2_THROW(input_error, "key '", key, "' not found in ", kind_name(kind_));
    return *v;
  }

  static const char* kind_name(Kind k) {
    switch (k) {
      case Kind::none: return "None";
      case Kind::boolean: return "bool";
      case Kind::integer: return "int";
      case Kind::floating: return "float";
      case Kind::string: return "str";
      case Kind::list: return "list";
      case Kind::tuple: return "tuple";
      case Kind::dict: return "dict";
      case Kind::tensor: return "tensor";
      case Kind::global_: return "global";
      case Kind::storage_: return "storage";
      case Kind::mark_: return "mark";
    }
    return "?";
  }

 private:
  friend class Unpickler;
  explicit Value(Kind k) : kind_(k) {}
  void expect_(Kind k) const {
    if (kind_ != k) LAV2_THROW(input_error, "value is a ", kind_name(kind_), ", expected a ", kind_name(k));
  }
  template <class T>
  T& mut_() const {
    return *static_cast<T*>(const_cast<void*>(p_.get()));
  }

  Kind kind_ = Kind::none;
  std::int64_t i_ = 0;  // bool, int, global id
  double f_ = 0;
  std::shared_ptr<const void> p_;  // string, List, Dict, PickledTensor, PickledStorage, global name
};

/// \brief The restricted unpickler. One use: construct, then `load()`.
class Unpickler {
 public:
  /// \param source prefixes every message, e.g. "checkpoint 'x.pth': archive/data.pkl".
  Unpickler(const unsigned char* data, std::size_t size, std::string source, const PickleLimits& limits = {})
      : p_(data), n_(size), src_(std::move(source)), lim_(limits) {
    if (std::uint64_t(size) > lim_.max_bytes)
      LAV2_THROW(limit_error, src_, ": pickle of ", size, " bytes exceeds the limit ", lim_.max_bytes);
  }

  /// Additionally accepts TorchScript module objects (see the file comment); call before `load()`.
  Unpickler& allow_torchscript(bool on = true) {
    torchscript_ = on;
    return *this;
  }

  /// Runs the stream to STOP and returns the value; throws load_error / limit_error.
  Value load() {
    try {
      Value v = run_();
      check_tree_(v);
      return v;
    } catch (...) {
      // Break any reference cycles a hostile stream built, so nothing leaks.
      for (auto& l : lists_) l->clear();
      for (auto& d : dicts_) d->items.clear();
      throw;
    }
  }

 private:
  enum Global : std::int64_t {
    kOrderedDict,
    kRebuildTensorV2,
    kRebuildParameter,
    kSize,
    kTsClass,
    kTsRestoreTypeTag,
    kTsBuildList,  // TorchScript mode only
    kStorageType
  };

  [[noreturn]] void fail_(std::size_t at, const std::string& what) const {
    LAV2_THROW(load_error, src_, ": at byte ", at, ": ", what);
  }
  static const char* opcode_name_(unsigned char op) {
    switch (op) {
      case '(': return "MARK";
      case '.': return "STOP";
      case '0': return "POP";
      case '1': return "POP_MARK";
      case '2': return "DUP";
      case 'F': return "FLOAT";
      case 'I': return "INT";
      case 'J': return "BININT";
      case 'K': return "BININT1";
      case 'L': return "LONG";
      case 'M': return "BININT2";
      case 'N': return "NONE";
      case 'P': return "PERSID";
      case 'Q': return "BINPERSID";
      case 'R': return "REDUCE";
      case 'S': return "STRING";
      case 'T': return "BINSTRING";
      case 'U': return "SHORT_BINSTRING";
      case 'V': return "UNICODE";
      case 'X': return "BINUNICODE";
      case 'a': return "APPEND";
      case 'b': return "BUILD";
      case 'c': return "GLOBAL";
      case 'd': return "DICT";
      case '}': return "EMPTY_DICT";
      case 'e': return "APPENDS";
      case 'g': return "GET";
      case 'h': return "BINGET";
      case 'i': return "INST";
      case 'j': return "LONG_BINGET";
      case 'l': return "LIST";
      case ']': return "EMPTY_LIST";
      case 'o': return "OBJ";
      case 'p': return "PUT";
      case 'q': return "BINPUT";
      case 'r': return "LONG_BINPUT";
      case 's': return "SETITEM";
      case 't': return "TUPLE";
      case ')': return "EMPTY_TUPLE";
      case 'u': return "SETITEMS";
      case 'G': return "BINFLOAT";
      case 'B': return "BINBYTES";
      case 'C': return "SHORT_BINBYTES";
      case 0x80: return "PROTO";
      case 0x81: return "NEWOBJ";
      case 0x82: return "EXT1";
      case 0x83: return "EXT2";
      case 0x84: return "EXT4";
      case 0x85: return "TUPLE1";
      case 0x86: return "TUPLE2";
      case 0x87: return "TUPLE3";
      case 0x88: return "NEWTRUE";
      case 0x89: return "NEWFALSE";
      case 0x8a: return "LONG1";
      case 0x8b: return "LONG4";
      case 0x8c: return "SHORT_BINUNICODE";
      case 0x8d: return "BINUNICODE8";
      case 0x8e: return "BINBYTES8";
      case 0x8f: return "EMPTY_SET";
      case 0x90: return "ADDITEMS";
      case 0x91: return "FROZENSET";
      case 0x92: return "NEWOBJ_EX";
      case 0x93: return "STACK_GLOBAL";
      case 0x94: return "MEMOIZE";
      case 0x95: return "FRAME";
      case 0x96: return "BYTEARRAY8";
      case 0x97: return "NEXT_BUFFER";
      case 0x98: return "READONLY_BUFFER";
      default: return nullptr;
    }
  }

  // ---- reading the stream ----
  const unsigned char* need_(std::uint64_t k) {
    if (k > n_ - pos_)
      fail_(pos_, lav2::detail::str_cat("stream ends inside an argument (", k, " bytes needed, ", n_ - pos_, " left)"));
    const unsigned char* q = p_ + pos_;
    pos_ += std::size_t(k);
    return q;
  }
  std::string read_str_(std::uint64_t len) {
    if (len > lim_.max_string_bytes)
      LAV2_THROW(limit_error, src_, ": at byte ", pos_, ": string of ", len, " bytes exceeds the limit ",
                 lim_.max_string_bytes);
    const unsigned char* q = need_(len);
    return std::string(reinterpret_cast<const char*>(q), std::size_t(len));
  }
  std::string read_line_() {  // GLOBAL's "module\n" and "name\n"
    const std::size_t start = pos_;
    const std::size_t max = std::min<std::size_t>(n_ - pos_, lim_.max_string_bytes);
    const void* nl = std::memchr(p_ + pos_, '\n', max);
    if (!nl && max < n_ - pos_)
      LAV2_THROW(limit_error, src_, ": at byte ", start, ": GLOBAL name longer than the string limit ",
                 lim_.max_string_bytes);
    if (!nl) fail_(start, "GLOBAL name has no newline before the stream end");
    const std::size_t len = std::size_t(static_cast<const unsigned char*>(nl) - (p_ + pos_));
    pos_ += len + 1;
    return std::string(reinterpret_cast<const char*>(p_ + start), len);
  }

  // ---- the stack ----
  void push_(Value v) {
    if (stack_.size() >= lim_.max_stack)
      LAV2_THROW(limit_error, src_, ": at byte ", op_pos_, ": stack depth exceeds the limit ", lim_.max_stack);
    stack_.push_back(std::move(v));
  }
  Value pop_() {
    if (stack_.size() <= mark_floor_()) fail_(op_pos_, lav2::detail::str_cat(op_name_, " on an empty stack"));
    Value v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  Value& top_() {
    if (stack_.size() <= mark_floor_()) fail_(op_pos_, lav2::detail::str_cat(op_name_, " on an empty stack"));
    return stack_.back();
  }
  std::size_t mark_floor_() const { return marks_.empty() ? 0 : marks_.back(); }
  /// Pops everything above the innermost MARK, and the MARK.
  std::vector<Value> pop_mark_() {
    if (marks_.empty()) fail_(op_pos_, lav2::detail::str_cat(op_name_, " without a MARK"));
    const std::size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Value> items(std::make_move_iterator(stack_.begin() + std::ptrdiff_t(m)),
                             std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }
  Value make_list_(Value::Kind k, std::vector<Value> items) {
    Value v(k);
    auto l = std::make_shared<Value::List>(std::move(items));
    if (k == Value::Kind::list) lists_.push_back(l);
    v.p_ = std::move(l);
    return v;
  }
  Value make_dict_(bool ordered) {
    Value v(Value::Kind::dict);
    auto d = std::make_shared<Value::Dict>();
    d->ordered_dict = ordered;
    dicts_.push_back(d);
    v.p_ = std::move(d);
    return v;
  }
  void set_item_(Value& dict, Value key, Value val) {
    if (!dict.is_dict())
      fail_(op_pos_,
            lav2::detail::str_cat(op_name_, " on a ", Value::kind_name(dict.kind()), "; only dicts take items"));
    auto& d = dict.mut_<Value::Dict>();
    std::size_t* slot = nullptr;
    if (key.is_str()) {
      auto it = d.str_index.find(key.as_str());
      if (it != d.str_index.end()) slot = &it->second;
      else d.str_index.emplace(key.as_str(), d.items.size());
    } else if (key.is_int()) {
      auto it = d.int_index.find(key.as_int());
      if (it != d.int_index.end()) slot = &it->second;
      else d.int_index.emplace(key.as_int(), d.items.size());
    } else {
      fail_(op_pos_, lav2::detail::str_cat("dict key of type ", Value::kind_name(key.kind()),
                                           " (only str and int keys are accepted)"));
    }
    if (slot) d.items[*slot].second = std::move(val);  // Python semantics: a repeated key replaces
    else d.items.emplace_back(std::move(key), std::move(val));
  }
  void memo_put_(std::uint64_t idx) {
    const Value& v = top_();
    if (v.kind() == Value::Kind::mark_) fail_(op_pos_, "memoizing a MARK");
    auto it = memo_.find(idx);
    if (it != memo_.end()) {
      it->second = v;
      return;
    }
    if (memo_.size() >= lim_.max_memo)
      LAV2_THROW(limit_error, src_, ": at byte ", op_pos_, ": memo size exceeds the limit ", lim_.max_memo);
    memo_.emplace(idx, v);
  }
  void memo_get_(std::uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end())
      fail_(op_pos_, lav2::detail::str_cat(op_name_, " of memo entry ", idx, ", which was never stored"));
    push_(it->second);
  }

  // ---- globals, persistent ids and calls ----
  Value global_(const std::string& module, const std::string& name) {
    static const char* const kStorages[][2] = {
        {"FloatStorage", "f32"}, {"HalfStorage", "f16"}, {"BFloat16Storage", "bf16"},
        {"LongStorage", "i64"},  {"IntStorage", "i32"},  {"ShortStorage", "i16"},
        {"CharStorage", "i8"},   {"ByteStorage", "u8"},  {"BoolStorage", "bool"}};
    static const DType kStorageTypes[] = {DType::f32, DType::f16, DType::bf16, DType::i64,    DType::i32,
                                          DType::i16, DType::i8,  DType::u8,   DType::boolean};
    Value v(Value::Kind::global_);
    const std::string full = module + "." + name;
    v.p_ = std::make_shared<std::string>(full);
    if (module == "collections" && name == "OrderedDict") v.i_ = kOrderedDict;
    else if (module == "torch._utils" && name == "_rebuild_tensor_v2") v.i_ = kRebuildTensorV2;
    else if (module == "torch._utils" && name == "_rebuild_parameter") v.i_ = kRebuildParameter;
    else if (module == "torch" && name == "Size") v.i_ = kSize;
    else if (torchscript_ && (module == "__torch__" || module.rfind("__torch__.", 0) == 0)) v.i_ = kTsClass;
    else if (torchscript_ && module == "torch.jit._pickle" && name == "restore_type_tag") v.i_ = kTsRestoreTypeTag;
    else if (torchscript_ && module == "torch.jit._pickle" &&
             (name == "build_intlist" || name == "build_floatlist" || name == "build_doublelist" ||
              name == "build_boollist" || name == "build_tensorlist"))
      v.i_ = kTsBuildList;
    else {
      if (module == "torch")
        for (std::size_t k = 0; k < sizeof(kStorageTypes) / sizeof(kStorageTypes[0]); ++k)
          if (name == kStorages[k][0]) {
            v.i_ = kStorageType + std::int64_t(k);
            storage_dtype_[v.i_] = kStorageTypes[k];
            return v;
          }
      if (torchscript_ && module == "torch" &&
          (name == "DoubleStorage" || name == "ComplexFloatStorage" || name == "ComplexDoubleStorage")) {
        v.i_ = kStorageType + 64 + std::int64_t(name.size());  // distinct ids; no lav2 dtype
        opaque_storage_types_.insert(v.i_);
        storage_dtype_[v.i_] = DType::u8;
        return v;
      }
      if (module == "torch" && name.size() > 7 && name.compare(name.size() - 7, 7, "Storage") == 0)
        fail_(op_pos_, lav2::detail::str_cat("storage type 'torch.", name,
                                             "' is not supported (supported: Float, Half, "
                                             "BFloat16, Long, Int, Short, Char, Byte, Bool)"));
      fail_(op_pos_, lav2::detail::str_cat("global ", detail::quoted(full),
                                           " is not allowed (a state_dict needs only "
                                           "collections.OrderedDict, torch._utils._rebuild_tensor_v2, "
                                           "torch._utils._rebuild_parameter, torch.Size and torch.*Storage",
                                           torchscript_ ? "; a TorchScript module graph adds __torch__.* classes and "
                                                          "torch.jit._pickle list builders"
                                                        : "",
                                           ")"));
    }
    return v;
  }

  static bool int_tuple_(const Value& v, int max_rank) {
    if (!v.is_tuple() && !v.is_list()) return false;
    if (v.items().size() > std::size_t(max_rank)) return false;
    for (const Value& x : v.items())
      if (!x.is_int()) return false;
    return true;
  }

  Value persistent_load_(const Value& pid) {
    if (!pid.is_tuple())
      fail_(op_pos_, lav2::detail::str_cat("persistent id is a ", Value::kind_name(pid.kind()), ", expected a tuple"));
    const auto& t = pid.items();
    if (t.size() != 5 || !t[0].is_str() || t[0].as_str() != "storage")
      fail_(op_pos_, "persistent id is not ('storage', type, key, location, numel)");
    if (t[1].kind() != Value::Kind::global_ || t[1].i_ < kStorageType)
      fail_(op_pos_, "persistent id: the storage type is not a torch.*Storage global");
    if (!t[2].is_str() || !t[3].is_str() || !t[4].is_int())
      fail_(op_pos_, "persistent id: key and location must be str, numel an int");
    if (t[4].as_int() < 0)
      fail_(op_pos_, lav2::detail::str_cat("persistent id: storage '", t[2].as_str(), "' has numel ", t[4].as_int()));
    const std::string& key = t[2].as_str();
    const DType dt = storage_dtype_.at(t[1].i_);
    auto it = storages_.find(key);
    if (it != storages_.end()) {
      if (it->second->dtype != dt || it->second->numel != t[4].as_int())
        fail_(op_pos_,
              lav2::detail::str_cat("storage '", key, "' is named twice with different types or sizes (",
                                    it->second->type, " of ", it->second->numel, " vs ",
                                    *static_cast<const std::string*>(t[1].p_.get()), " of ", t[4].as_int(), ")"));
    } else {
      auto s = std::make_shared<PickledStorage>();
      s->key = key;
      s->type = *static_cast<const std::string*>(t[1].p_.get());
      s->dtype = dt;
      s->numel = t[4].as_int();
      s->location = t[3].as_str();
      s->lav2_dtype = opaque_storage_types_.count(t[1].i_) == 0;
      it = storages_.emplace(key, std::move(s)).first;
    }
    Value v(Value::Kind::storage_);
    v.p_ = it->second;
    return v;
  }

  Value reduce_(const Value& fn, const Value& args) {
    if (fn.kind() != Value::Kind::global_)
      fail_(op_pos_,
            lav2::detail::str_cat("REDUCE on a ", Value::kind_name(fn.kind()), "; only allowed globals may be called"));
    const std::string& fname = *static_cast<const std::string*>(fn.p_.get());
    if (!args.is_tuple()) fail_(op_pos_, lav2::detail::str_cat("REDUCE ", fname, ": arguments are not a tuple"));
    const auto& a = args.items();
    auto bad = [&](const char* why) { fail_(op_pos_, lav2::detail::str_cat("REDUCE ", fname, ": ", why)); };
    switch (fn.i_) {
      case kOrderedDict:
        if (!a.empty()) bad("only OrderedDict() with no arguments is accepted");
        return make_dict_(true);
      case kSize:
        if (a.size() != 1 || !int_tuple_(a[0], kMaxRank)) bad("expected one tuple of at most 6 ints");
        return make_list_(Value::Kind::tuple, a[0].items());
      case kRebuildTensorV2: {
        if (a.size() != 6 && a.size() != 7)
          bad("expected 6 or 7 arguments (storage, offset, size, stride, requires_grad, hooks[, metadata])");
        if (a[0].kind() != Value::Kind::storage_) bad("argument 1 is not a storage (persistent id)");
        if (!a[1].is_int()) bad("storage_offset is not an int");
        if (!int_tuple_(a[2], kMaxRank)) bad("size is not a tuple of at most 6 ints");
        if (!int_tuple_(a[3], kMaxRank) || a[3].items().size() != a[2].items().size())
          bad("stride is not a tuple of ints as long as size");
        if (!a[4].is_bool()) bad("requires_grad is not a bool");
        if (!a[5].is_dict() || !a[5].dict().items.empty()) bad("backward_hooks is not an empty dict");
        if (a.size() == 7 && !a[6].is_none() && !(a[6].is_dict() && a[6].dict().items.empty()))
          bad("metadata is neither None nor an empty dict");
        auto t = std::make_shared<PickledTensor>();
        t->storage = std::static_pointer_cast<const PickledStorage>(a[0].p_);
        t->storage_offset = a[1].as_int();
        const auto& sz = a[2].items();
        const auto& st = a[3].items();
        t->shape.rank = int(sz.size());
        for (std::size_t i = 0; i < sz.size(); ++i) {
          t->shape.dims[i] = sz[i].as_int();
          t->strides[i] = st[i].as_int();
        }
        t->requires_grad = a[4].as_bool();
        Value v(Value::Kind::tensor);
        v.p_ = std::move(t);
        return v;
      }
      case kRebuildParameter: {
        if (a.size() != 3) bad("expected 3 arguments (data, requires_grad, hooks)");
        if (!a[0].is_tensor()) bad("data is not a tensor");
        if (!a[1].is_bool()) bad("requires_grad is not a bool");
        if (!a[2].is_dict() || !a[2].dict().items.empty()) bad("backward_hooks is not an empty dict");
        auto t = std::make_shared<PickledTensor>(a[0].tensor());
        t->requires_grad = a[1].as_bool();
        Value v(Value::Kind::tensor);
        v.p_ = std::move(t);
        return v;
      }
      case kTsRestoreTypeTag:  // the type string is informational
        if (a.size() != 2 || !a[1].is_str()) bad("expected (value, type string)");
        return a[0];
      case kTsBuildList: {
        if (a.size() != 1 || !a[0].is_list()) bad("expected one list");
        for (const Value& x : a[0].items())
          if (!x.is_int() && !x.is_float() && !x.is_bool() && !x.is_tensor())
            bad("list element is not a number or tensor");
        return a[0];
      }
      case kTsClass: bad("a __torch__ class is instantiated only by NEWOBJ with no arguments"); break;
      default: bad("this global is not callable (storage types appear only in persistent ids)");
    }
    return Value();
  }

  // ---- the machine ----
  Value run_() {
    int proto = 0;
    while (true) {
      if (pos_ >= n_) fail_(pos_, "stream ends without STOP");
      if (++ops_ > lim_.max_ops)
        LAV2_THROW(limit_error, src_, ": at byte ", pos_, ": more than ", lim_.max_ops, " opcodes (the limit)");
      op_pos_ = pos_;
      const unsigned char op = p_[pos_++];
      const char* nm = opcode_name_(op);
      op_name_ = nm ? nm : "?";
      if (!nm) {
        static const char* hex = "0123456789abcdef";
        fail_(op_pos_, lav2::detail::str_cat("unknown opcode 0x", hex[op >> 4], hex[op & 15]));
      }
      using K = Value::Kind;
      switch (op) {
        case 0x80: {  // PROTO
          proto = *need_(1);
          if (proto < 2 || proto > 5)
            fail_(op_pos_, lav2::detail::str_cat("pickle protocol ", proto, " (accepted: 2 to 5)"));
          break;
        }
        case 0x95: {  // FRAME: a length hint; frames are contiguous in memory already
          const std::uint64_t len = detail::le64(need_(8));
          if (len > n_ - pos_) fail_(op_pos_, lav2::detail::str_cat("FRAME of ", len, " bytes past the stream end"));
          break;
        }
        case '.': {  // STOP
          if (!marks_.empty() || stack_.size() != 1)
            fail_(op_pos_, lav2::detail::str_cat("STOP with ", stack_.size(), " values and ", marks_.size(),
                                                 " open MARKs on the stack (expected 1 and 0)"));
          if (pos_ != n_) fail_(op_pos_, lav2::detail::str_cat(n_ - pos_, " bytes after STOP"));
          return pop_();
        }
        case '(':
          if (marks_.size() >= lim_.max_depth)
            LAV2_THROW(limit_error, src_, ": at byte ", op_pos_, ": more than ", lim_.max_depth,
                       " nested MARKs (the depth limit)");
          marks_.push_back(stack_.size());
          break;
        case '}': push_(make_dict_(false)); break;
        case ']': push_(make_list_(K::list, {})); break;
        case ')': push_(make_list_(K::tuple, {})); break;
        case 't': push_(make_list_(K::tuple, pop_mark_())); break;
        case 'l': push_(make_list_(K::list, pop_mark_())); break;
        case 0x85:
        case 0x86:
        case 0x87: {
          const std::size_t k = std::size_t(op - 0x84);
          if (stack_.size() < mark_floor_() + k)
            fail_(op_pos_, lav2::detail::str_cat(op_name_, " needs ", k, " values on the stack"));
          std::vector<Value> items(std::make_move_iterator(stack_.end() - std::ptrdiff_t(k)),
                                   std::make_move_iterator(stack_.end()));
          stack_.resize(stack_.size() - k);
          push_(make_list_(K::tuple, std::move(items)));
          break;
        }
        case 'd': {
          std::vector<Value> items = pop_mark_();
          if (items.size() % 2) fail_(op_pos_, "DICT with an odd number of values");
          Value d = make_dict_(false);
          for (std::size_t i = 0; i < items.size(); i += 2) set_item_(d, std::move(items[i]), std::move(items[i + 1]));
          push_(std::move(d));
          break;
        }
        case 'a': {
          Value v = pop_();
          Value& l = top_();
          if (!l.is_list()) fail_(op_pos_, lav2::detail::str_cat("APPEND to a ", Value::kind_name(l.kind())));
          l.mut_<Value::List>().push_back(std::move(v));
          break;
        }
        case 'e': {
          std::vector<Value> items = pop_mark_();
          Value& l = top_();
          if (!l.is_list()) fail_(op_pos_, lav2::detail::str_cat("APPENDS to a ", Value::kind_name(l.kind())));
          auto& dst = l.mut_<Value::List>();
          for (auto& x : items) dst.push_back(std::move(x));
          break;
        }
        case 's': {
          Value v = pop_();
          Value k = pop_();
          set_item_(top_(), std::move(k), std::move(v));
          break;
        }
        case 'u': {
          std::vector<Value> items = pop_mark_();
          if (items.size() % 2) fail_(op_pos_, "SETITEMS with an odd number of values");
          Value& d = top_();
          for (std::size_t i = 0; i < items.size(); i += 2) set_item_(d, std::move(items[i]), std::move(items[i + 1]));
          break;
        }
        case 'q': memo_put_(*need_(1)); break;
        case 'r': memo_put_(detail::le32(need_(4))); break;
        case 0x94: memo_put_(memo_.size()); break;  // MEMOIZE: next index
        case 'h': memo_get_(*need_(1)); break;
        case 'j': memo_get_(detail::le32(need_(4))); break;
        case 'J': push_(Value::integer(std::int32_t(detail::le32(need_(4))))); break;
        case 'K': push_(Value::integer(*need_(1))); break;
        case 'M': push_(Value::integer(detail::le16(need_(2)))); break;
        case 0x8a:
        case 0x8b: {  // LONG1 / LONG4: little-endian two's complement of n bytes
          const std::uint64_t len = op == 0x8a ? *need_(1) : detail::le32(need_(4));
          if (len > 8) fail_(op_pos_, lav2::detail::str_cat(op_name_, " of ", len, " bytes does not fit int64"));
          const unsigned char* b = need_(len);
          std::uint64_t u = 0;
          for (std::uint64_t i = 0; i < len; ++i) u |= std::uint64_t(b[i]) << (8 * i);
          if (len > 0 && len < 8 && (b[len - 1] & 0x80)) u |= ~std::uint64_t(0) << (8 * len);  // sign-extend
          push_(Value::integer(std::int64_t(u)));
          break;
        }
        case 'G': {  // BINFLOAT: big-endian IEEE double
          const unsigned char* b = need_(8);
          std::uint64_t u = 0;
          for (int i = 0; i < 8; ++i) u = (u << 8) | b[i];
          double d;
          std::memcpy(&d, &u, 8);
          push_(Value::floating(d));
          break;
        }
        case 'N': push_(Value()); break;
        case 0x88: push_(Value::boolean(true)); break;
        case 0x89: push_(Value::boolean(false)); break;
        case 'X': push_(Value::string(read_str_(detail::le32(need_(4))))); break;
        case 0x8c: push_(Value::string(read_str_(*need_(1)))); break;
        case 0x8d: push_(Value::string(read_str_(detail::le64(need_(8))))); break;
        case 'c': {
          std::string module = read_line_();
          std::string name = read_line_();
          push_(global_(module, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          Value name = pop_();
          Value module = pop_();
          if (!name.is_str() || !module.is_str()) fail_(op_pos_, "STACK_GLOBAL of non-strings");
          push_(global_(module.as_str(), name.as_str()));
          break;
        }
        case 'Q': {
          Value pid = pop_();
          push_(persistent_load_(pid));
          break;
        }
        case 'R': {
          Value args = pop_();
          Value fn = pop_();
          push_(reduce_(fn, args));
          break;
        }
        case 0x81: {  // NEWOBJ (TorchScript mode): cls() for a __torch__ class -> an empty object
          Value args = pop_();
          Value cls = pop_();
          if (!torchscript_ || cls.kind() != K::global_ || cls.i_ != kTsClass)
            fail_(op_pos_, lav2::detail::str_cat("NEWOBJ of ",
                                                 cls.kind() == K::global_
                                                     ? detail::quoted(*static_cast<const std::string*>(cls.p_.get()))
                                                     : std::string(Value::kind_name(cls.kind())),
                                                 "; only TorchScript __torch__ classes may be instantiated"));
          if (!args.is_tuple() || !args.items().empty())
            fail_(op_pos_, "NEWOBJ with arguments (expected an empty tuple)");
          Value obj = make_dict_(false);
          obj.mut_<Value::Dict>().class_name = *static_cast<const std::string*>(cls.p_.get());
          push_(std::move(obj));
          break;
        }
        case 'b': {  // BUILD: an OrderedDict's attribute dict (state_dict._metadata), dropped;
                     // in TorchScript mode also a __torch__ object's attributes
          Value state = pop_();
          Value& target = top_();
          if (torchscript_ && target.is_dict() && !target.dict().class_name.empty()) {
            if (target.dict().built) fail_(op_pos_, "BUILD twice on one object");
            if (!state.is_dict())
              fail_(op_pos_,
                    lav2::detail::str_cat("BUILD of ", target.dict().class_name, " with a ",
                                          Value::kind_name(state.kind()), " state (expected an attribute dict)"));
            for (const auto& kv : state.dict().items) {
              if (!kv.first.is_str()) fail_(op_pos_, "BUILD: an attribute name is not a str");
              set_item_(target, kv.first, kv.second);
            }
            target.mut_<Value::Dict>().built = true;
            break;
          }
          if (!target.is_dict() || !target.dict().ordered_dict)
            fail_(op_pos_, lav2::detail::str_cat("BUILD on a ", Value::kind_name(target.kind()),
                                                 "; only an OrderedDict accepts state"));
          if (!state.is_dict() && !state.is_none()) fail_(op_pos_, "BUILD with a state that is not a dict");
          break;
        }
        default:
          fail_(op_pos_, lav2::detail::str_cat("opcode ", op_name_, " (0x", "0123456789abcdef"[op >> 4],
                                               "0123456789abcdef"[op & 15], ") is not allowed in a state_dict pickle"));
      }
    }
  }

  // The finished tree must be acyclic, no deeper than max_depth and hold only public kinds.
  // Depth is memoised per container so shared sub-trees are walked once.
  void check_tree_(const Value& root) {
    std::unordered_map<const void*, std::size_t> depth;
    std::unordered_set<const void*> on_path;
    walk_(root, 1, depth, on_path);
  }
  std::size_t walk_(const Value& v, std::size_t level, std::unordered_map<const void*, std::size_t>& depth,
                    std::unordered_set<const void*>& on_path) {
    using K = Value::Kind;
    if (level > lim_.max_depth)
      LAV2_THROW(limit_error, src_, ": value tree is deeper than ", lim_.max_depth, " levels (the limit)");
    if (v.kind() == K::global_ || v.kind() == K::storage_ || v.kind() == K::mark_)
      LAV2_THROW(load_error, src_, ": a bare ", Value::kind_name(v.kind()), " remains in the result");
    if (v.kind() != K::list && v.kind() != K::tuple && v.kind() != K::dict) return 1;
    const void* id = v.p_.get();
    if (auto it = depth.find(id); it != depth.end()) {
      if (level - 1 + it->second > lim_.max_depth)
        LAV2_THROW(limit_error, src_, ": value tree is deeper than ", lim_.max_depth, " levels (the limit)");
      return it->second;
    }
    if (!on_path.insert(id).second) LAV2_THROW(load_error, src_, ": the value tree contains a reference cycle");
    std::size_t d = 0;
    if (v.kind() == K::dict) {
      for (const auto& kv : v.dict().items) d = std::max(d, walk_(kv.second, level + 1, depth, on_path));
    } else {
      for (const Value& x : v.items()) d = std::max(d, walk_(x, level + 1, depth, on_path));
    }
    on_path.erase(id);
    depth.emplace(id, d + 1);
    return d + 1;
  }

  const unsigned char* p_;
  std::size_t n_;
  std::size_t pos_ = 0;
  std::string src_;
  PickleLimits lim_;
  std::uint64_t ops_ = 0;
  std::size_t op_pos_ = 0;
  const char* op_name_ = "";
  std::vector<Value> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, Value> memo_;
  std::unordered_map<std::string, std::shared_ptr<PickledStorage>> storages_;
  std::unordered_map<std::int64_t, DType> storage_dtype_;
  std::unordered_set<std::int64_t> opaque_storage_types_;
  bool torchscript_ = false;
  std::vector<std::shared_ptr<Value::List>> lists_;
  std::vector<std::shared_ptr<Value::Dict>> dicts_;
};

}  // namespace lav2::io
