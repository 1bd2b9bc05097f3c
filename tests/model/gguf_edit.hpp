// Edited copies of a GGUF file for the error tests: the metadata and tensors of `src`, with
// `edit` applied to the metadata, the keys in `drop_keys` and the tensors in `drop_tensors` left out.
#pragma once

#include <functional>
#include <set>
#include <string>

#include <lav2/io/gguf.hpp>
#include <lav2/io/gguf_writer.hpp>

namespace lav2::test {

inline void rewrite_gguf(const std::string& src, const std::string& dst,
                         const std::function<void(io::GgufWriter&)>& edit, const std::set<std::string>& drop_keys = {},
                         const std::set<std::string>& drop_tensors = {}) {
  const io::GgufFile in(src);
  io::GgufWriter w;  // no erase: a dropped key is never set
  for (const auto& [key, value] : in.metadata())
    if (!drop_keys.count(key)) w.set(key, value);
  edit(w);
  for (const auto& info : in.tensor_infos()) {
    if (drop_tensors.count(info.name)) continue;
    const AnyTensorView& v = in.tensors().at(info.name);
    w.add_tensor(info.name, v.dtype, v.shape, v.data);
  }
  w.write(dst);
}

}  // namespace lav2::test
