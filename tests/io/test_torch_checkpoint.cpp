// torch.save reader: real files written by torch 1.13 and hand-crafted hostile or broken ones
// (fixtures by tools/reference/make_io_fixtures.py).
#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "io/io_test_util.hpp"
#include "lav2/io/torch_checkpoint.hpp"

using lav2::AnyTensorView;
using lav2::DType;
using lav2::Shape;
using lav2::io::TorchCheckpoint;
using lav2_test::io_data;

namespace {
template <class T>
T at(const AnyTensorView& v, std::int64_t i, std::int64_t j = 0) {
  const T* p = static_cast<const T*>(v.data);
  return p[i * v.strides[0] + (v.shape.rank > 1 ? j * v.strides[1] : 0)];
}
}  // namespace

TEST_CASE("torch.save state_dict: every dtype, mapped without copies") {
  TorchCheckpoint ck(io_data("state_dict.pth"));
  CHECK(ck.archive_dir() == "state_dict");
  CHECK(ck.copied_bytes() == 0);
  const auto t = ck.tensors();
  REQUIRE(t.size() == 9);

  const auto& f32 = t.at("f32");
  CHECK(f32.dtype == DType::f32);
  CHECK(f32.shape == Shape{2, 3});
  const auto v = f32.as<float>();
  CHECK(v(1, 2) == 5.0f);
  CHECK(reinterpret_cast<std::uintptr_t>(f32.data) % 64 == 0);  // torch aligns storages

  const auto h = t.at("f16").as<lav2::f16_t>();
  CHECK(lav2::to_f32(h[0]) == 0.5f);
  CHECK(lav2::to_f32(h[3]) == 65504.0f);
  const auto b = t.at("bf16").as<lav2::bf16_t>();
  CHECK(lav2::to_f32(b(1, 0)) == 0.15625f);
  CHECK(lav2::to_f32(b(0, 1)) == -2.0f);
  CHECK(t.at("i64").as<std::int64_t>()[2] == (std::int64_t(1) << 40));
  CHECK(t.at("i64").as<std::int64_t>()[0] == -1);
  CHECK(t.at("i32").as<std::int32_t>()[1] == -7);
  CHECK(t.at("u8").as<std::uint8_t>()[1] == 255);
  CHECK(t.at("bool").dtype == DType::boolean);
  CHECK(static_cast<const std::uint8_t*>(t.at("bool").data)[3] == 1);
  CHECK(t.at("scalar").shape.rank == 0);
  CHECK(*static_cast<const float*>(t.at("scalar").data) == 3.5f);
  CHECK(t.at("empty").shape == Shape{0, 4});
  CHECK(t.at("empty").numel() == 0);
}

TEST_CASE("nested {'model', 'config'} checkpoint: value tree and flattened sub-dict") {
  TorchCheckpoint ck(io_data("nested.pth"));
  const auto& cfg = ck.root().at("config");
  CHECK(cfg.at("w_bias").as_bool() == true);
  CHECK(cfg.at("w_lora").as_bool() == false);
  CHECK(cfg.at("lora_rank").as_int() == 16);
  CHECK(cfg.at("lr").as_float() == 0.25);
  CHECK(cfg.at("name").as_str() == "BIAS-7B");
  CHECK(cfg.at("none").is_none());
  CHECK(cfg.at("dims").is_list());
  CHECK(cfg.at("dims").items()[1].as_int() == 2);
  CHECK(cfg.at("pair").is_tuple());
  CHECK(cfg.at("big").as_int() == (std::int64_t(1) << 40));
  CHECK(cfg.at("neg").as_int() == -3);
  CHECK(cfg.find("missing") == nullptr);
  CHECK_THROWS_AS(cfg.at("name").as_int(), lav2::input_error);

  const auto model = ck.tensors("model");
  REQUIRE(model.size() == 3);
  const auto w = model.at("llama.layers.0.attention.wq.weight").as<float>();  // an nn.Parameter
  CHECK(w.shape() == Shape{2, 3});
  CHECK(w(1, 0) == 4.0f);
  CHECK(model.at("llama.layers.0.attention.wq.bias").as<float>()[1] == -0.5f);
  CHECK(model.at("llama.layers.0.attention.gate").dtype == DType::f16);
  CHECK(ck.root().at("model").at("llama.layers.0.attention.wq.weight").tensor().requires_grad);

  // The root flattens with joined names and skips config values.
  const auto all = ck.tensors();
  CHECK(all.count("model.llama.layers.0.attention.gate") == 1);
  CHECK(all.size() == 3);
  LAV2_CHECK_THROWS_WITH_ALL(lav2::load_error, ck.tensors("optimizer"), "nested.pth", "no key 'optimizer'");
  CHECK(ck.tensors("config").empty());
}

TEST_CASE("views sharing one storage keep their offsets and strides") {
  TorchCheckpoint ck(io_data("views.pth"));
  const auto t = ck.tensors();
  const auto& base = t.at("base");
  CHECK(t.at("t").data == base.data);  // same storage, no copy
  CHECK(t.at("t").shape == Shape{6, 4});
  CHECK(t.at("t").strides[0] == 1);
  CHECK(t.at("t").strides[1] == 6);
  CHECK(at<float>(t.at("t"), 5, 3) == 23.0f);
  const auto& sl = t.at("slice");
  CHECK(sl.shape == Shape{2, 3});
  CHECK(static_cast<const float*>(sl.data) == static_cast<const float*>(base.data) + 8);
  CHECK(at<float>(sl, 1, 2) == 16.0f);
  CHECK(at<float>(t.at("col"), 3) == 19.0f);
  CHECK(t.at("bcast").strides[0] == 0);
  CHECK(at<float>(t.at("bcast"), 2, 1) == 0.0f);

  TorchCheckpoint off(io_data("offset_view.pth"));
  const auto tail = off.tensors().at("tail").as<float>();
  CHECK(tail.shape() == Shape{7});
  CHECK(tail[0] == 3.0f);
  CHECK(tail[6] == 9.0f);
}

TEST_CASE("views outlive the checkpoint through keep_alive()") {
  std::shared_ptr<const void> keep;
  AnyTensorView v;
  {
    TorchCheckpoint ck(io_data("state_dict.pth"));
    keep = ck.keep_alive();
    v = ck.tensors().at("f32");
  }
  CHECK(v.as<float>()(1, 1) == 4.0f);
}

TEST_CASE("hand-made archives: unaligned storages are copied, ZIP64 records are read") {
  TorchCheckpoint ck(io_data("fake_ok.pth"));
  CHECK(ck.copied_bytes() == 24);
  CHECK(ck.tensors().at("w").as<float>()(1, 2) == 5.0f);
  TorchCheckpoint z(io_data("zip64.pth"));
  CHECK(z.archive_dir() == "z64");
  CHECK(z.copied_bytes() == 0);
  CHECK(z.tensors().at("w").as<float>()(1, 0) == 3.0f);
  TorchCheckpoint p5(io_data("protocol5.pth"));
  CHECK(p5.root().at("b").items()[1].as_str() == "x");
}

TEST_CASE("hostile pickles are rejected naming the file and the global or opcode") {
  using lav2::load_error;
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("evil_os_system.pth")), "evil_os_system.pth",
                             "archive/data.pkl", "'posix.system' is not allowed");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("evil_builtins_eval.pth")), "evil_builtins_eval.pth",
                             "'builtins.eval' is not allowed");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("forbidden_opcode.pth")), "forbidden_opcode.pth",
                             "'posix.system' is not allowed");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("inst_opcode.pth")), "inst_opcode.pth",
                             "opcode INST (0x69) is not allowed");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("unknown_opcode.pth")), "unknown_opcode.pth",
                             "at byte 5", "unknown opcode 0xff");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("setitem_on_list.pth")), "SETITEM on a list");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("cycle.pth")), "cycle.pth", "reference cycle");
  LAV2_CHECK_THROWS_WITH_ALL(lav2::limit_error, TorchCheckpoint(io_data("deep.pth")), "deep.pth", "deeper than 64");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("truncated_pickle.pth")), "truncated_pickle.pth");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("unknown_storage.pth")), "unknown_storage.pth",
                             "'torch.ComplexFloatStorage' is not supported");
}

TEST_CASE("tensor records that do not fit their storage are rejected naming the tensor") {
  using lav2::load_error;
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("short_storage.pth")), "checkpoint '",
                             "short_storage.pth': tensor 'layers.3.attention.wq.weight': "
                             "storage holds 100 elements, the view needs 4096");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("stride_out_of_range.pth")), "stride_out_of_range.pth",
                             "tensor 'w'", "storage holds 16 elements, the view needs 19", "strides (5, 1)");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("huge_stride.pth")), "huge_stride.pth", "tensor 'w'",
                             "overflows 64 bits");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("storage_file_short.pth")), "storage_file_short.pth",
                             "'archive/data/0' holds 32 bytes, expected 16 x 4");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("missing_storage.pth")), "missing_storage.pth",
                             "tensor 'w'", "'archive/data/7' is missing");
}

TEST_CASE("broken or hostile zip containers are rejected naming the file and the entry") {
  using lav2::load_error;
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("truncated.pth")), "truncated.pth",
                             "no end-of-central-directory record");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("empty.pth")), "empty.pth", "too short");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("dotdot.pth")), "dotdot.pth",
                             "'archive/../data.pkl' contains a '..' component");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("no_data_pkl.pth")), "no_data_pkl.pth",
                             "no '<dir>/data.pkl' entry");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("deflated.pth")), "deflated.pth",
                             "'archive/data.pkl' is compressed (method 8)");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("bad_crc.pth")), "bad_crc.pth",
                             "'archive/data.pkl': CRC-32 is", "expected 0x12345678");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("overlap.pth")), "overlap.pth",
                             "'archive/data/0' and 'archive/data.pkl' overlap");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("legacy.pth")), "legacy.pth", "legacy");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, TorchCheckpoint(io_data("does_not_exist.pth")), "does_not_exist.pth",
                             "cannot open");
}

TEST_CASE("limits are enforced before allocation") {
  lav2::io::CheckpointLimits lim;
  lim.pickle.max_ops = 10;
  LAV2_CHECK_THROWS_WITH_ALL(lav2::limit_error, TorchCheckpoint(io_data("state_dict.pth"), lim), "state_dict.pth",
                             "opcodes");
  lim = {};
  lim.pickle.max_memo = 3;
  LAV2_CHECK_THROWS_WITH_ALL(lav2::limit_error, TorchCheckpoint(io_data("state_dict.pth"), lim), "memo");
  lim = {};
  lim.pickle.max_string_bytes = 4;
  LAV2_CHECK_THROWS_WITH_ALL(lav2::limit_error, TorchCheckpoint(io_data("state_dict.pth"), lim), "limit 4");
  lim = {};
  lim.max_tensors = 2;
  LAV2_CHECK_THROWS_WITH_ALL(lav2::limit_error, TorchCheckpoint(io_data("state_dict.pth"), lim), "more than 2 tensors");
  lim = {};
  lim.zip.max_entries = 2;
  LAV2_CHECK_THROWS_WITH_ALL(lav2::limit_error, TorchCheckpoint(io_data("state_dict.pth"), lim), "entries exceed");
}
