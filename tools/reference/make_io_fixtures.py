#!/usr/bin/env python3
"""Makes the io test fixtures in tests/data/io/ (run with Debian's /usr/bin/python3, torch 1.13).

    /usr/bin/python3 tools/reference/make_io_fixtures.py [out_dir]

Real torch.save files (fp32/fp16/bf16/int/bool tensors, a {'model','config'} checkpoint, views
sharing a storage, a view with a storage offset), numpy.save files, hand-written safetensors, and
hand-crafted hostile or broken archives. Every file is tiny; CI has no torch, so the tests read
only these committed files.
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile
import zlib

import numpy as np
import torch

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "io")
os.makedirs(OUT, exist_ok=True)


def path(name):
    return os.path.join(OUT, name)


# ---------------------------------------------------------------------------------------------
# A minimal zip writer with full control (sizes, offsets, CRCs, ZIP64, alignment).
# ---------------------------------------------------------------------------------------------
def build_zip(entries, align=0, zip64=False, crc_override=None, offset_override=None):
    """entries: list of (name, data_bytes[, method]). Returns the archive bytes.
    align: pad local extra fields so data starts at a multiple of `align` (torch uses 64).
    zip64: write every size/offset through ZIP64 extra fields and ZIP64 end records.
    crc_override / offset_override: {name: value} written into the central directory."""
    out = bytearray()
    central = []
    for e in entries:
        name, data = e[0], e[1]
        method = e[2] if len(e) > 2 else 0
        payload = data if method == 0 else zlib.compress(data)[2:-4]  # raw deflate
        nb = name.encode()
        crc = zlib.crc32(data) & 0xFFFFFFFF
        off = len(out)
        extra = b""
        if zip64:
            extra += struct.pack("<HHQQ", 1, 16, len(data), len(payload))
        if align:
            base = off + 30 + len(nb) + len(extra)
            pad = (-(base + 4)) % align
            extra += struct.pack("<HH", 0x4246, pad) + b"Z" * pad  # 'FB' padding, as torch
        sz = 0xFFFFFFFF if zip64 else len(data)
        csz = 0xFFFFFFFF if zip64 else len(payload)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if zip64 else 20, 0, method, 0, 0x21, crc, csz, sz, len(nb), len(extra))
        out += nb + extra + payload
        central.append((nb, method, crc, len(data), len(payload), off))
    cd_off = len(out)
    for nb, method, crc, size, csize, off in central:
        name = nb.decode()
        if crc_override and name in crc_override:
            crc = crc_override[name]
        if offset_override and name in offset_override:
            off = offset_override[name]
        if zip64:
            extra = struct.pack("<HHQQQ", 1, 24, size, csize, off)
            out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, method, 0, 0x21, crc,
                               0xFFFFFFFF, 0xFFFFFFFF, len(nb), len(extra), 0, 0, 0, 0, 0xFFFFFFFF)
            out += nb + extra
        else:
            out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc,
                               csize, size, len(nb), 0, 0, 0, 0, 0, off)
            out += nb
    cd_size = len(out) - cd_off
    n = len(central)
    if zip64:
        z64 = len(out)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, cd_size, cd_off)
        out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    else:
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, cd_size, cd_off, 0)
    return bytes(out)


def write(name, data):
    with open(path(name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------------------------
# A pickler that writes torch's tensor records with chosen (possibly wrong) numbers.
# ---------------------------------------------------------------------------------------------
class FakeStorage:
    def __init__(self, stype, key, numel, location="cpu"):
        self.stype, self.key, self.numel, self.location = stype, key, numel, location


class FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, self.offset, tuple(self.size), tuple(self.stride), False, collections.OrderedDict()))


class FakePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", obj.stype, obj.key, obj.location, obj.numel)
        return None


def fake_pickle(obj):
    buf = io.BytesIO()
    FakePickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def fake_checkpoint(name, obj, storages, dirname="archive", **kw):
    """storages: {key: bytes}."""
    entries = [(dirname + "/data.pkl", fake_pickle(obj))]
    entries += [(dirname + "/data/" + k, v) for k, v in storages.items()]
    entries.append((dirname + "/version", b"3\n"))
    write(name, build_zip(entries, **kw))


def f32_bytes(n):
    return np.arange(n, dtype="<f4").tobytes()



# ---- real torch.save files ------------------------------------------------------------------
sd = collections.OrderedDict()
sd["f32"] = torch.arange(6, dtype=torch.float32).reshape(2, 3)
sd["f16"] = torch.tensor([0.5, -1.0, 2.0, 65504.0], dtype=torch.float16)
sd["bf16"] = torch.tensor([[1.0, -2.0], [0.15625, 3.0]], dtype=torch.bfloat16)
sd["i64"] = torch.tensor([-1, 0, 2 ** 40], dtype=torch.int64)
sd["i32"] = torch.tensor([7, -7], dtype=torch.int32)
sd["u8"] = torch.tensor([0, 255], dtype=torch.uint8)
sd["bool"] = torch.tensor([True, False, True, True, False])
sd["scalar"] = torch.tensor(3.5)
sd["empty"] = torch.zeros(0, 4)
torch.save(sd, path("state_dict.pth"))

lin = torch.nn.Linear(3, 2)
with torch.no_grad():
    lin.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    lin.bias.copy_(torch.tensor([0.5, -0.5]))
model = collections.OrderedDict()
for k, v in lin.state_dict(keep_vars=True).items():  # nn.Parameter -> _rebuild_parameter
    model["llama.layers.0.attention.wq." + k] = v
model["llama.layers.0.attention.gate"] = torch.tensor([0.25, -0.25], dtype=torch.float16)
nested = {"model": model,
          "config": {"w_bias": True, "w_lora": False, "lora_rank": 16, "lr": 0.25, "name": "BIAS-7B",
                     "none": None, "dims": [1, 2], "pair": (3, 4), "big": 2 ** 40, "neg": -3}}
torch.save(nested, path("nested.pth"))

base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
views = collections.OrderedDict(base=base, t=base.t(), slice=base[1:3, 2:5], col=base[:, 1],
                                bcast=base[0:1, 0:1].expand(3, 2))
torch.save(views, path("views.pth"))
torch.save({"tail": torch.arange(10, dtype=torch.float32)[3:]}, path("offset_view.pth"))
torch.save(sd, path("legacy.pth"), _use_new_zipfile_serialization=False)

# ---- hand-crafted torch-format archives -----------------------------------------------------
FS = torch.FloatStorage
ok = collections.OrderedDict(w=FakeTensor(FakeStorage(FS, "0", 6), 0, (2, 3), (3, 1)))
fake_checkpoint("fake_ok.pth", ok, {"0": f32_bytes(6)})  # misaligned data: exercises the copy path
fake_checkpoint("zip64.pth", ok, {"0": f32_bytes(6)}, dirname="z64", zip64=True, align=64)
fake_checkpoint("short_storage.pth",
                collections.OrderedDict([("layers.3.attention.wq.weight",
                                          FakeTensor(FakeStorage(FS, "0", 100), 0, (64, 64), (64, 1)))]),
                {"0": f32_bytes(100)}, align=64)
fake_checkpoint("stride_out_of_range.pth",
                collections.OrderedDict(w=FakeTensor(FakeStorage(FS, "0", 16), 0, (4, 4), (5, 1))),
                {"0": f32_bytes(16)}, align=64)
fake_checkpoint("huge_stride.pth",
                collections.OrderedDict(w=FakeTensor(FakeStorage(FS, "0", 16), 0, (4, 4), (2 ** 62, 1))),
                {"0": f32_bytes(16)}, align=64)
fake_checkpoint("unknown_storage.pth",
                collections.OrderedDict(w=FakeTensor(FakeStorage(torch.ComplexFloatStorage, "0", 2), 0, (2,), (1,))),
                {"0": f32_bytes(4)}, align=64)
fake_checkpoint("storage_file_short.pth",
                collections.OrderedDict(w=FakeTensor(FakeStorage(FS, "0", 16), 0, (16,), (1,))),
                {"0": f32_bytes(8)}, align=64)
fake_checkpoint("missing_storage.pth",
                collections.OrderedDict(w=FakeTensor(FakeStorage(FS, "7", 4), 0, (4,), (1,))),
                {}, align=64)


class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def pickle_checkpoint(name, data_pkl, extra=()):
    write(name, build_zip([("archive/data.pkl", data_pkl), *extra, ("archive/version", b"3\n")]))


pickle_checkpoint("evil_os_system.pth", pickle.dumps({"w": Evil(os.system, "echo pwned")}, protocol=2))
pickle_checkpoint("evil_builtins_eval.pth", pickle.dumps({"w": Evil(eval, "1+1")}, protocol=2, fix_imports=False))
pickle_checkpoint("unknown_opcode.pth", b"\x80\x02}q\x00\xff.")
pickle_checkpoint("forbidden_opcode.pth", b"\x80\x02(cposix\nsystem\nX\x02\x00\x00\x00lsi.")
pickle_checkpoint("inst_opcode.pth", b"\x80\x02(X\x02\x00\x00\x00lsiposix\nsystem\n.")
pickle_checkpoint("setitem_on_list.pth", b"\x80\x02]q\x00X\x01\x00\x00\x00aK\x01s.")
cyc = []
cyc.append(cyc)
pickle_checkpoint("cycle.pth", pickle.dumps({"c": cyc}, protocol=2))
deep = []
for _ in range(200):
    deep = [deep]
pickle_checkpoint("deep.pth", pickle.dumps(deep, protocol=2))
pickle_checkpoint("protocol5.pth", pickle.dumps({"a": 1, "b": [1.5, "x"]}, protocol=5))
pickle_checkpoint("truncated_pickle.pth", pickle.dumps({"a": "hello"}, protocol=2)[:-5])

good_pkl = fake_pickle(ok)
write("dotdot.pth", build_zip([("archive/../data.pkl", good_pkl), ("archive/data/0", f32_bytes(6))]))
write("no_data_pkl.pth", build_zip([("archive/version", b"3\n"), ("archive/data/0", f32_bytes(6))]))
write("deflated.pth", build_zip([("archive/data.pkl", good_pkl, 8), ("archive/data/0", f32_bytes(6))]))
write("bad_crc.pth", build_zip([("archive/data.pkl", good_pkl), ("archive/data/0", f32_bytes(6))],
                               crc_override={"archive/data.pkl": 0x12345678}))
# Overlap: archive/data/0's data contains a complete local header + data for archive/data.pkl,
# and the central directory points there, so the two entries share bytes.
nb = b"archive/data.pkl"
inner = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, zlib.crc32(good_pkl) & 0xFFFFFFFF,
                    len(good_pkl), len(good_pkl), len(nb), 0) + nb + good_pkl
z = build_zip([("archive/data/0", inner), ("archive/data.pkl", good_pkl)],
              offset_override={"archive/data.pkl": 30 + len(b"archive/data/0")})
write("overlap.pth", z)
good = open(path("state_dict.pth"), "rb").read()
write("truncated.pth", good[: len(good) // 2])
write("empty.pth", b"")

# ---- safetensors ----------------------------------------------------------------------------
def safetensors(name, tensors, metadata=None, header_override=None, data_override=None, misalign=0):
    """tensors: list of (name, dtype, shape, bytes)."""
    hdr, data = {}, b""
    for n, dt, shape, b in tensors:
        hdr[n] = {"dtype": dt, "shape": list(shape), "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    if metadata is not None:
        hdr["__metadata__"] = metadata
    if header_override:
        header_override(hdr)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((-(8 + len(h))) % 8 + misalign)  # data 8-byte aligned, then shifted by `misalign`
    if data_override is not None:
        data = data_override
    write(name, struct.pack("<Q", len(h)) + h + data)


st_good = [("f32", "F32", (2, 3), np.arange(6, dtype="<f4").tobytes()),
           ("f16", "F16", (2,), np.array([1.5, -2], dtype="<f2").tobytes()),
           ("bf16", "BF16", (2,), struct.pack("<HH", 0x3F80, 0xC000)),
           ("i64", "I64", (1,), struct.pack("<q", -5)),
           ("empty", "F32", (0, 3), b"")]
safetensors("good.safetensors", st_good, metadata={"format": "pt"})
safetensors("misaligned.safetensors", st_good[:2], misalign=1)
safetensors("st_bad_dtype.safetensors", [("x", "Q4", (2,), b"\0\0")])
safetensors("st_f64.safetensors", [("x", "F64", (1,), b"\0" * 8)])
safetensors("st_shape_mismatch.safetensors", [("x", "F32", (3,), b"\0" * 8)])
safetensors("st_overlap.safetensors", [("a", "F32", (2,), b"\0" * 8), ("b", "F32", (2,), b"\0" * 8)],
            header_override=lambda h: h["b"].__setitem__("data_offsets", [4, 12]))
safetensors("st_hole.safetensors", [("a", "F32", (1,), b"\0" * 4)], data_override=b"\0" * 8)
safetensors("st_out_of_range.safetensors", [("a", "F32", (2,), b"\0" * 8)],
            header_override=lambda h: h["a"].__setitem__("data_offsets", [8, 16]))
safetensors("st_bad_metadata.safetensors", [("a", "F32", (1,), b"\0" * 4)], metadata={"n": 3})
write("st_header_too_long.safetensors", struct.pack("<Q", 1000) + b"{}")
write("st_not_json.safetensors", struct.pack("<Q", 8) + b"{'a': 1}")
write("st_duplicate.safetensors", struct.pack("<Q", 122) +
      b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'.ljust(122) +
      b"\0" * 4)

# ---- npy ------------------------------------------------------------------------------------
np.save(path("f32_2x3.npy"), np.arange(6, dtype=np.float32).reshape(2, 3) / 4)
np.save(path("f16_4.npy"), np.array([0.5, -1, 2, 65504], dtype=np.float16))
np.save(path("i64_3.npy"), np.array([-1, 0, 2 ** 40], dtype=np.int64))
np.save(path("i32_scalar.npy"), np.array(-7, dtype=np.int32))
np.save(path("i64_1000.npy"), np.arange(1000, dtype=np.int64))
np.save(path("npy_fortran.npy"), np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
np.save(path("npy_big_endian.npy"), np.arange(3, dtype=">f4"))
np.save(path("npy_f64.npy"), np.arange(3, dtype=np.float64))
raw = open(path("f32_2x3.npy"), "rb").read()
write("npy_truncated.npy", raw[:-4])

# ---- json -----------------------------------------------------------------------------------
write("params.json", b'{"dim":4096,"multiple_of":256,"n_heads":32,"n_layers":32,"norm_eps":1e-06,"vocab_size":-1}\n')
write("bad.json", b'{"dim": 4096,\n "n_heads": }\n')

total = sum(os.path.getsize(path(f)) for f in os.listdir(OUT))
print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {OUT}")
