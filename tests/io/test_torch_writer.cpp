// io/torch_writer.hpp: a tree of dicts, ints, bools, strings and tensors of every storage dtype
// written by save_torch() reads back through lav2's torch checkpoint reader with the same values,
// dtypes and shapes; the data is 64-byte aligned and CRCs hold; writes are atomic (no temporary
// file is left, an existing file is replaced whole); what torch cannot store is refused by name.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include <lav2/io/torch_checkpoint.hpp>
#include <lav2/io/torch_writer.hpp>

using namespace lav2;
namespace fs = std::filesystem;

TEST_CASE("save_torch: values, dtypes and shapes read back through the torch checkpoint reader") {
  const fs::path dir = fs::temp_directory_path() / "lav2_test_torch_writer";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "x.pth").string();
  std::vector<float> a(3 * 5);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = float(i) * 0.25f - 1.0f;
  std::vector<std::uint16_t> h = {0x3c00, 0xc000, 0x7bff};  // f16 1, -2, 65504
  std::vector<std::int64_t> l = {-5, 1ll << 40};
  std::vector<std::uint8_t> b = {1, 0, 1, 1};
  float scalar = 7.5f;
  for (int round = 0; round < 2; ++round) {  // the second replaces the first
    io::SaveValue root = io::SaveValue::dict();
    io::SaveValue& m = root.set("model", io::SaveValue::dict());
    m.set("a.weight", io::SaveValue::tensor(AnyTensorView{DType::f32, a.data(), Shape{3, 5}, {}}));
    m.set("gate", io::SaveValue::tensor(AnyTensorView{DType::f16, h.data(), Shape{1, 3, 1, 1}, {}}));
    m.set("ids", io::SaveValue::tensor(AnyTensorView{DType::i64, l.data(), Shape{2}, {}}));
    m.set("mask", io::SaveValue::tensor(AnyTensorView{DType::boolean, b.data(), Shape{2, 2}, {}}));
    m.set("scalar", io::SaveValue::tensor(AnyTensorView{DType::f32, &scalar, Shape{}, {}}));
    io::SaveValue& c = root.set("config", io::SaveValue::dict());
    c.set("w_bias", io::SaveValue::boolean(true));
    c.set("w_lora", io::SaveValue::boolean(false));
    c.set("lora_rank", io::SaveValue::integer(16 + round));
    c.set("big", io::SaveValue::integer(-(1ll << 40)));
    c.set("mid", io::SaveValue::integer(40000));
    c.set("neg", io::SaveValue::integer(-3));
    c.set("name", io::SaveValue::string("paper_early ü"));
    c.set("nothing", io::SaveValue());
    root.set("empty", io::SaveValue::dict());
    io::save_torch(path, root);
  }
  CHECK_FALSE(fs::exists(path + ".tmp"));
  const io::TorchCheckpoint ck(path);
  CHECK(ck.copied_bytes() == 0);  // every storage aligned for its dtype
  const io::TensorMap t = ck.tensors("model");
  REQUIRE(t.size() == 5);
  const AnyTensorView& w = t.at("a.weight");
  CHECK(w.dtype == DType::f32);
  CHECK(w.shape == Shape{3, 5});
  CHECK(std::memcmp(w.data, a.data(), a.size() * 4) == 0);
  CHECK(t.at("gate").dtype == DType::f16);
  CHECK(t.at("gate").shape == Shape{1, 3, 1, 1});
  CHECK(std::memcmp(t.at("gate").data, h.data(), 6) == 0);
  CHECK(std::memcmp(t.at("ids").data, l.data(), 16) == 0);
  CHECK(t.at("mask").dtype == DType::boolean);
  CHECK(t.at("scalar").shape.rank == 0);
  CHECK(*static_cast<const float*>(t.at("scalar").data) == 7.5f);
  const io::Value& c = *ck.root().find("config");
  CHECK(c.find("w_bias")->as_bool());
  CHECK_FALSE(c.find("w_lora")->as_bool());
  CHECK(c.find("lora_rank")->as_int() == 17);
  CHECK(c.find("big")->as_int() == -(1ll << 40));
  CHECK(c.find("mid")->as_int() == 40000);
  CHECK(c.find("neg")->as_int() == -3);
  CHECK(c.find("name")->as_str() == "paper_early ü");
  CHECK(c.find("nothing")->is_none());
  CHECK(ck.root().find("empty")->is_dict());
  // Every entry's CRC-32 matches its data.
  const io::ZipArchive& zip = ck.archive();
  for (const io::ZipEntry& e : zip.entries())
    if (e.name.rfind("archive/data/", 0) == 0) CHECK(e.data_offset % 64 == 0);
  for (const io::ZipEntry& e : zip.entries()) CHECK_NOTHROW(zip.verify_crc(e));
  CHECK(zip.find("archive/version") != nullptr);

  // Refusals name what they refuse; a failed write leaves the old file.
  io::SaveValue bad = io::SaveValue::dict();
  std::vector<std::uint8_t> q(34);
  bad.set("q", io::SaveValue::tensor(AnyTensorView{DType::q8_0, q.data(), Shape{32}, {}}));
  CHECK_THROWS_WITH_AS(io::save_torch(path, bad), doctest::Contains("tensor 'q' is q8_0"), input_error);
  CHECK_THROWS_WITH_AS(bad.set("q", io::SaveValue()), doctest::Contains("key 'q' set twice"), input_error);
  CHECK_THROWS_AS(io::save_torch((dir / "no/such/dir/x.pth").string(), bad), input_error);
  CHECK(io::TorchCheckpoint(path).tensors("model").size() == 5);
  CHECK_FALSE(fs::exists(path + ".tmp"));
}
