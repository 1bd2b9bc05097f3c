#!/usr/bin/python3
"""Writes tests/data/gguf/gguf_py.gguf with llama.cpp's own Python writer (gguf-py), as an
oracle for lav2's GGUF reader and writer: tests/io/test_gguf.cpp reads it, and writes the same
content with lav2's GgufWriter, which must give the same bytes.

gguf-py is not vendored: pass the gguf-py directory of a llama.cpp checkout.
  /usr/bin/python3 tools/reference/make_gguf_fixture.py /path/to/llama.cpp/gguf-py
Needs numpy (Debian's python3-numpy).
"""
import os
import sys

import numpy as np

sys.path.insert(0, sys.argv[1])
import gguf  # noqa: E402  (llama.cpp's gguf-py)

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "gguf", "gguf_py.gguf")

w = gguf.GGUFWriter(OUT, "llama")  # writes general.architecture = "llama" first
w.add_uint32("lav2.test.u32", 4000000000)
w.add_int32("lav2.test.i32", -7)
w.add_float32("lav2.test.f32", 1e-5)
w.add_bool("lav2.test.bool", True)
w.add_string("lav2.test.string", "héllo ▁")
w.add_array("lav2.test.strings", ["<s>", "</s>", "▁a"])
w.add_array("lav2.test.f32s", [0.0, -1.5, 2.25])
w.add_array("lav2.test.i32s", [1, 2, 3, 6])
# The C++ test rebuilds these values with the same formulas.
w.add_tensor("m.f32", (np.arange(6, dtype=np.float32) * 0.5 - 1.0).reshape(2, 3))
w.add_tensor("v.f16", (np.arange(5, dtype=np.float32) * 0.25).astype(np.float16))
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print("wrote", os.path.normpath(OUT), os.path.getsize(OUT), "bytes, gguf-py", getattr(gguf, "__version__", "?"))
