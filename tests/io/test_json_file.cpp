// JSON file helper: size limit, parse errors naming the file, typed fields.
#include <doctest/doctest.h>

#include "io/io_test_util.hpp"
#include "lav2/io/json_file.hpp"

using lav2_test::io_data;

TEST_CASE("json file: typed fields and errors naming the file and field") {
  const auto j = lav2::io::read_json_file(io_data("params.json"));
  CHECK(j.get<int>("dim") == 4096);
  CHECK(j.get<double>("norm_eps") == doctest::Approx(1e-6));
  CHECK(j.get<int>("vocab_size") == -1);
  CHECK(j.get_or<bool>("w_bias", false) == false);
  LAV2_CHECK_THROWS_WITH_ALL(lav2::load_error, j.get<int>("n_kv_heads"), "params.json", "'n_kv_heads' is missing");
  LAV2_CHECK_THROWS_WITH_ALL(lav2::load_error, j.get<std::string>("dim"), "params.json", "'dim' is 4096");
  LAV2_CHECK_THROWS_WITH_ALL(lav2::load_error, lav2::io::read_json_file(io_data("bad.json")), "bad.json",
                             "not valid JSON", "line 2");
  LAV2_CHECK_THROWS_WITH_ALL(lav2::limit_error, lav2::io::read_json_file(io_data("params.json"), 10), "params.json",
                             "exceed the limit 10");
}
