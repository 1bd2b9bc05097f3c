#!/usr/bin/env python3
"""Makes the hostile-input regression corpus tests/corpus/ (standard library only, no torch).

    python3 tools/reference/make_corpus.py [out_dir]

Layout: tests/corpus/<reader>/<case>.<ext>, and beside each file <case>.<ext>.expect naming the
outcome the reader must give (tests/corpus/test_corpus.cpp checks every one):
    accept                               the reader returns normally
    <error class>: <message substring>   it throws exactly that lav2 class (load_error,
                                         limit_error, input_error) with that text in its message
An optional second line `limits: key=value ...` tightens a limit (e.g. pickle.max_memo=16) so that
a small file can show a limit holding. Readers: torch (io::TorchCheckpoint + every tensor view),
torchscript, safetensors, npy, params (params.json), tokenizer (tokenizer.model / .json, then
encode/decode), image (decode_image + preprocess_clip).
Files of tests/data/io, tests/data/tiny_clip and tests/data/images made by the other fixture
scripts are copied in with their expected outcome, so the corpus is one self-contained list.
"""
import os
import shutil
import struct
import sys
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "corpus")
DATA = os.path.join(ROOT, "tests", "data")
count = 0


def case(reader, name, data, expect, limits=None):
    global count
    d = os.path.join(OUT, reader)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    with open(os.path.join(d, name + ".expect"), "w") as f:
        f.write(expect + "\n")
        if limits:
            f.write("limits: " + limits + "\n")
    count += 1


def copy(reader, src, expect, name=None, limits=None):
    with open(os.path.join(DATA, src), "rb") as f:
        case(reader, name or os.path.basename(src), f.read(), expect, limits)


# ---------------------------------------------------------------------------------------------
# zip writer (as make_io_fixtures.build_zip, plus knobs for broken archives)
# ---------------------------------------------------------------------------------------------
def build_zip(entries, size_override=None, method_override=None):
    """entries: list of (name, data[, method]); method 8 stores raw deflate."""
    out, central = bytearray(), []
    for e in entries:
        name, data = e[0], e[1]
        method = e[2] if len(e) > 2 else 0
        payload = data if method == 0 else zlib.compress(data, 9)[2:-4]
        nb = name.encode()
        crc = zlib.crc32(data) & 0xFFFFFFFF
        size = (size_override or {}).get(name, len(data))
        off = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(payload), size, len(nb), 0)
        out += nb + payload
        central.append((nb, method, crc, size, len(payload), off))
    cd_off = len(out)
    for nb, method, crc, size, csize, off in central:
        out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, csize, size,
                           len(nb), 0, 0, 0, 0, 0, off) + nb
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), len(out) - cd_off, cd_off, 0)
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# pickle protocol-2 pieces, written by hand (what torch.save's pickler emits)
# ---------------------------------------------------------------------------------------------
PROTO2 = b"\x80\x02"


def u(s):  # BINUNICODE
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def i(n):  # an int: BININT1 / BININT / LONG1
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if -2 ** 31 <= n < 2 ** 31:
        return b"J" + struct.pack("<i", n)
    b = n.to_bytes(9, "little", signed=True).rstrip(b"\x00" if n >= 0 else b"\xff")
    if n >= 0 and (not b or b[-1] & 0x80):
        b += b"\x00"
    if n < 0 and (not b or not b[-1] & 0x80):
        b += b"\xff"
    return b"\x8a" + bytes([len(b)]) + b


def tup(*items):
    return b"(" + b"".join(items) + b"t"


def tensor(key, numel, offset, size, stride, stype="FloatStorage"):
    pid = tup(u("storage"), b"ctorch\n" + stype.encode() + b"\n", u(key), u("cpu"), i(numel)) + b"Q"
    args = tup(pid, i(offset), tup(*[i(s) for s in size]), tup(*[i(s) for s in stride]), b"\x89",
               b"ccollections\nOrderedDict\n)R")
    return b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"R"


def state_dict(**tensors):
    body = b"".join(u(k) + v for k, v in tensors.items())
    return PROTO2 + b"ccollections\nOrderedDict\n)R(" + body + b"u."


def f32(n):
    return struct.pack("<%df" % n, *range(n))


def checkpoint(pkl, storages=(), dirname="archive"):
    entries = [(dirname + "/data.pkl", pkl)] + [(dirname + "/data/" + k, v) for k, v in storages]
    return build_zip(entries + [(dirname + "/version", b"3\n")])


def pickle_case(name, pkl, expect, limits=None):
    case("torch", name, checkpoint(pkl), expect, limits)


# ---- torch: copies of the io fixtures --------------------------------------------------------
for f, e in [
    ("state_dict.pth", "accept"), ("nested.pth", "accept"), ("views.pth", "accept"), ("offset_view.pth", "accept"),
    ("fake_ok.pth", "accept"), ("zip64.pth", "accept"), ("protocol5.pth", "accept"),
    ("evil_os_system.pth", "load_error: global 'posix.system' is not allowed"),
    ("evil_builtins_eval.pth", "load_error: global 'builtins.eval' is not allowed"),
    ("forbidden_opcode.pth", "load_error: global 'posix.system' is not allowed"),
    ("inst_opcode.pth", "load_error: opcode INST (0x69) is not allowed"),
    ("unknown_opcode.pth", "load_error: unknown opcode 0xff"),
    ("setitem_on_list.pth", "load_error: SETITEM on a list; only dicts take items"),
    ("cycle.pth", "load_error: reference cycle"),
    ("deep.pth", "limit_error: value tree is deeper than 64 levels"),
    ("truncated_pickle.pth", "load_error: stream ends"),
    ("short_storage.pth", "load_error: storage holds 100 elements, the view needs 4096"),
    ("stride_out_of_range.pth", "load_error: storage holds 16 elements, the view needs 19"),
    ("huge_stride.pth", "load_error: overflows 64 bits"),
    ("unknown_storage.pth", "load_error: storage type 'torch.ComplexFloatStorage' is not supported"),
    ("storage_file_short.pth", "load_error: holds 32 bytes, expected 16 x 4"),
    ("missing_storage.pth", "load_error: storage entry 'archive/data/7' is missing"),
    ("dotdot.pth", "load_error: contains a '..' component"),
    ("no_data_pkl.pth", "load_error: no '<dir>/data.pkl' entry"),
    ("deflated.pth", "load_error: is compressed (method 8)"),
    ("bad_crc.pth", "load_error: CRC-32 is"),
    ("overlap.pth", "load_error: overlap"),
    ("truncated.pth", "load_error: no end-of-central-directory record"),
    ("empty.pth", "load_error: too short for a zip archive"),
    ("legacy.pth", "load_error: legacy torch.save format"),
]:
    copy("torch", "io/" + f, e)

# ---- torch: hostile pickles ----------------------------------------------------------------------
pickle_case("global_subprocess_popen.pth",
            PROTO2 + b"csubprocess\nPopen\n" + tup(u("sh")) + b"R.", "load_error: global 'subprocess.Popen' is not allowed")
pickle_case("global_builtins_exec.pth", PROTO2 + b"cbuiltins\nexec\n" + tup(u("1")) + b"R.",
            "load_error: global 'builtins.exec' is not allowed")
pickle_case("global_torch_load.pth", PROTO2 + b"ctorch\nload\n.", "load_error: global 'torch.load' is not allowed")
pickle_case("stack_global_os_system.pth", b"\x80\x04" + b"\x8c\x02os\x8c\x06system\x93" + tup(u("id")) + b"R.",
            "load_error: global 'os.system' is not allowed")
pickle_case("stack_global_non_string.pth", b"\x80\x04" + b"K\x01K\x02\x93.", "load_error: STACK_GLOBAL of non-strings")
pickle_case("inst.pth", PROTO2 + b"(X\x02\x00\x00\x00idios\nsystem\n.", "load_error: opcode INST (0x69) is not allowed")
pickle_case("obj.pth", PROTO2 + b"(cos\nsystem\nX\x02\x00\x00\x00ido.", "load_error: global 'os.system' is not allowed")
pickle_case("obj_after_allowed_global.pth", PROTO2 + b"(ccollections\nOrderedDict\no.",
            "load_error: opcode OBJ (0x6f) is not allowed")
pickle_case("newobj.pth", PROTO2 + b"ccollections\nOrderedDict\n)\x81.", "load_error: NEWOBJ of 'collections.OrderedDict'")
pickle_case("reduce_storage_type.pth", PROTO2 + b"ctorch\nFloatStorage\n)R.", "load_error: this global is not callable")
pickle_case("reduce_ordereddict_args.pth", PROTO2 + b"ccollections\nOrderedDict\n" + tup(u("x")) + b"R.",
            "load_error: only OrderedDict() with no arguments")
pickle_case("build_on_list.pth", PROTO2 + b"]}b.", "load_error: BUILD on a list")
pickle_case("ext1.pth", PROTO2 + b"\x82\x01.", "load_error: opcode EXT1 (0x82) is not allowed")
pickle_case("persid_text.pth", PROTO2 + b"P0\n.", "load_error: opcode PERSID (0x50) is not allowed")
pickle_case("bad_persistent_id.pth", PROTO2 + tup(u("storage")) + b"Q.", "load_error: persistent id is not ('storage'")
pickle_case("negative_storage_numel.pth", PROTO2 + tup(u("storage"), b"ctorch\nFloatStorage\n", u("0"), u("cpu"), i(-1)) + b"Q.",
            "load_error: has numel -1")
pickle_case("deep_mark_nesting.pth", PROTO2 + b"(" * 100000 + b".", "limit_error: nested MARKs (the depth limit)")
pickle_case("deep_list_nesting.pth", PROTO2 + b"]" * 100 + b"a" * 99 + b".",
            "limit_error: value tree is deeper than 64 levels")
pickle_case("stack_flood.pth", PROTO2 + b"N" * 5000 + b".", "limit_error: stack depth exceeds the limit 4096",
            limits="pickle.max_stack=4096")
pickle_case("huge_memo_index_get.pth", PROTO2 + b"}r\xff\xff\xff\xffj\xfe\xff\xff\xff.",
            "load_error: LONG_BINGET of memo entry 4294967294, which was never stored")
pickle_case("huge_memo_index_put.pth", PROTO2 + b"}r\xff\xff\xff\xff.", "accept")
pickle_case("memo_flood.pth", PROTO2 + b"N" + b"\x94" * 64 + b".", "limit_error: memo size exceeds the limit 16",
            limits="pickle.max_memo=16")
pickle_case("memo_mark.pth", PROTO2 + b"(q\x00.", "load_error: BINPUT on an empty stack")
pickle_case("op_flood.pth", PROTO2 + b"N" + b"q\x00" * 1000 + b".", "limit_error: opcodes (the limit)", limits="pickle.max_ops=1000")
pickle_case("frame_ok.pth", b"\x80\x04\x95" + struct.pack("<Q", 3) + b"}q\x00.", "accept")
pickle_case("frame_past_end.pth", b"\x80\x04\x95" + struct.pack("<Q", 1 << 62) + b"}.", "load_error: FRAME of")
pickle_case("unknown_opcode_0xa0.pth", PROTO2 + b"\xa0.", "load_error: unknown opcode 0xa0")
pickle_case("protocol_0_text_int.pth", b"I1\n.", "load_error: opcode INT (0x49) is not allowed")
pickle_case("protocol_6.pth", b"\x80\x06}.", "load_error: pickle protocol 6")
pickle_case("setitem_on_list.pth", PROTO2 + b"]" + u("k") + i(1) + b"s.", "load_error: SETITEM on a list")
pickle_case("setitems_on_tuple.pth", PROTO2 + b")(" + u("k") + i(1) + b"u.", "load_error: SETITEMS on a tuple")
pickle_case("append_on_dict.pth", PROTO2 + b"}N" + b"a.", "load_error: APPEND to a dict")
pickle_case("dict_key_list.pth", PROTO2 + b"}]Ns.", "load_error: dict key of type list")
pickle_case("long4_huge.pth", PROTO2 + b"\x8b" + struct.pack("<I", 1 << 31) + b".", "load_error: LONG4 of 2147483648 bytes")
pickle_case("binunicode8_huge.pth", PROTO2 + b"\x8d" + struct.pack("<Q", 1 << 60) + b".",
            "limit_error: string of 1152921504606846976 bytes exceeds the limit")
pickle_case("binunicode_past_end.pth", PROTO2 + b"X" + struct.pack("<I", 100) + b"ab.", "load_error: stream ends inside an argument")
pickle_case("global_no_newline.pth", PROTO2 + b"cos", "load_error: GLOBAL name has no newline")
pickle_case("stop_with_two_values.pth", PROTO2 + b"NN.", "load_error: STOP with 2 values")
pickle_case("bytes_after_stop.pth", PROTO2 + b"N.junk", "load_error: 4 bytes after STOP")
pickle_case("empty_pickle.pth", b"", "load_error: stream ends without STOP")

# ---- torch: tensor records ---------------------------------------------------------------------------
def tensor_case(name, size, stride, offset, numel, data_elems, expect):
    pkl = state_dict(w=tensor("0", numel, offset, size, stride))
    case("torch", name, checkpoint(pkl, [("0", f32(data_elems))]), expect)


tensor_case("tensor_ok.pth", (2, 3), (3, 1), 0, 6, 6, "accept")
tensor_case("tensor_scalar.pth", (), (), 5, 6, 6, "accept")
tensor_case("tensor_zero_size.pth", (0, 5), (5, 1), 6, 6, 6, "accept")
tensor_case("storage_shorter_than_numel.pth", (4, 4), (4, 1), 0, 8, 8, "load_error: storage holds 8 elements, the view needs 16")
tensor_case("storage_file_shorter_than_numel.pth", (4,), (1,), 0, 8, 4, "load_error: holds 16 bytes, expected 8 x 4")
tensor_case("negative_size.pth", (-1, 4), (4, 1), 0, 8, 8, "load_error: dimension 0 has size -1, expected >= 0")
tensor_case("negative_stride.pth", (2, 2), (-2, 1), 2, 8, 8, "load_error: dimension 0 has stride -2, expected >= 0")
tensor_case("negative_offset.pth", (2,), (1,), -1, 8, 8, "load_error: storage offset is -1")
tensor_case("offset_beyond_storage.pth", (2,), (1,), 7, 8, 8, "load_error: storage holds 8 elements, the view needs 9")
tensor_case("offset_beyond_storage_empty_view.pth", (0,), (1,), 9, 8, 8, "load_error: storage holds 8 elements, the view needs 9")
tensor_case("size_overflow.pth", (2 ** 62, 2 ** 62), (1, 1), 0, 8, 8, "load_error: overflows 64 bits")
tensor_case("stride_overflow.pth", (3,), (2 ** 63 - 1,), 0, 8, 8, "load_error: overflows 64 bits")
tensor_case("numel_overflow_storage.pth", (1,), (1,), 0, 2 ** 62, 8, "load_error: holds 32 bytes, expected")
tensor_case("stride_mismatch_rank.pth", (2, 2), (1,), 0, 8, 8, "load_error: stride is not a tuple of ints as long as size")
tensor_case("rank_7.pth", (1,) * 7, (1,) * 7, 0, 8, 8, "load_error: size is not a tuple of at most 6 ints")
case("torch", "storage_over_tensor_limit.pth",
     checkpoint(state_dict(w=tensor("0", 1024, 0, (1024,), (1,))), [("0", f32(1024))]),
     "limit_error: exceeds the tensor limit 1024", limits="checkpoint.max_tensor_bytes=1024")
case("torch", "storage_named_twice.pth",
     checkpoint(state_dict(a=tensor("0", 4, 0, (4,), (1,)), b=tensor("0", 8, 0, (4,), (1,))), [("0", f32(8))]),
     "load_error: is named twice with different types or sizes")

# ---- torch: zip containers ---------------------------------------------------------------------------
good_pkl = state_dict(w=tensor("0", 6, 0, (2, 3), (3, 1)))
good = checkpoint(good_pkl, [("0", f32(6))])
case("torch", "zip_truncated_central_directory.pth", good[:-30], "load_error: no end-of-central-directory record")
eocd = good.rfind(b"PK\x05\x06")
cd = struct.unpack("<I", good[eocd + 16:eocd + 20])[0]
case("torch", "zip_central_directory_cut.pth", good[:cd] + good[cd + 10:], "load_error")
case("torch", "zip_cd_offset_past_end.pth", good[:eocd + 16] + struct.pack("<I", 1 << 30) + good[eocd + 20:],
     "load_error: is outside the file before its end records")
case("torch", "zip_entry_count_lie.pth", good[:eocd + 8] + struct.pack("<HH", 60000, 60000) + good[eocd + 12:],
     "load_error: entries cannot fit a central directory of")
case("torch", "zip_dotdot.pth", checkpoint(good_pkl, [("../../etc/passwd", f32(6))]), "load_error: contains a '..' component")
case("torch", "zip_absolute_name.pth", build_zip([("/archive/data.pkl", good_pkl)]), "load_error: is an absolute path")
case("torch", "zip_backslash_name.pth", build_zip([("archive\\..\\data.pkl", good_pkl)]), "load_error: contains a NUL or backslash")
case("torch", "zip_duplicate_name.pth", build_zip([("archive/data.pkl", good_pkl), ("archive/data.pkl", good_pkl)]),
     "load_error: duplicate entry name")
case("torch", "zip_two_pickles.pth", build_zip([("a/data.pkl", good_pkl), ("b/data.pkl", good_pkl)]), "load_error: two pickles")
case("torch", "zip_missing_data_pkl.pth", build_zip([("archive/data/0", f32(6)), ("archive/version", b"3\n")]),
     "load_error: no '<dir>/data.pkl' entry")
case("torch", "zip_deflate_bomb.pth", build_zip([("archive/data.pkl", b"\0" * (1 << 20), 8)]),
     "load_error: is compressed (method 8)")
case("torch", "zip_deflate_bomb_claimed_size.pth",
     build_zip([("archive/data.pkl", b"\0" * 4096, 8)], size_override={"archive/data.pkl": 0xFFFFFFF0}),
     "limit_error: bytes exceed the pickle limit")
case("torch", "zip_deflated_storage.pth", build_zip([("archive/data.pkl", good_pkl), ("archive/data/0", f32(6), 8)]),
     "load_error: is compressed (method 8)")
case("torch", "zip_stored_size_mismatch.pth", build_zip([("archive/data.pkl", good_pkl)], size_override={"archive/data.pkl": 9999}),
     "load_error: has compressed size")
case("torch", "zip_torchscript_as_checkpoint.pth",
     build_zip([("archive/data.pkl", good_pkl), ("archive/constants.pkl", PROTO2 + b").")]), "load_error: a TorchScript archive")
case("torch", "zip_big_endian.pth", build_zip([("archive/data.pkl", good_pkl), ("archive/byteorder", b"big")]),
     "load_error: is 'big', expected 'little'")
case("torch", "zip_entry_limit.pth", build_zip([("archive/data.pkl", good_pkl)] + [("archive/x%d" % k, b"") for k in range(20)]),
     "limit_error: 21 entries exceed the limit 16", limits="zip.max_entries=16")
case("torch", "legacy_pickle_stream.pth", PROTO2 + b"\x8a\x0a" + b"l\xfc\x9cF\xf9 j\xa8P\x19.", "load_error: legacy torch.save format")
case("torch", "not_a_zip.pth", b"This is just text, not a checkpoint at all.\n", "load_error: no end-of-central-directory record")

# ---- torch: zip consistency: every end-record and local-header field must agree with the file ------
def zip_layout(z):
    """Offsets of a zip's records: (eocd, ZIP64 record or None, {name: central record}, {name: local header})."""
    eocd = z.rfind(b"PK\x05\x06")
    z64 = struct.unpack("<Q", z[eocd - 12:eocd - 4])[0] if z[eocd - 20:eocd - 16] == b"PK\x06\x07" else None
    pos = struct.unpack("<Q", z[z64 + 48:z64 + 56])[0] if z64 is not None else struct.unpack("<I", z[eocd + 16:eocd + 20])[0]
    central, local = {}, {}
    while z[pos:pos + 4] == b"PK\x01\x02":
        n, x, c = struct.unpack("<HHH", z[pos + 28:pos + 34])
        central[z[pos + 46:pos + 46 + n]] = pos
        pos += 46 + n + x + c
    for nb in central:  # the local header that names the entry
        p = z.find(b"PK\x03\x04")
        while z[p + 30:p + 30 + len(nb)] != nb or struct.unpack("<H", z[p + 26:p + 28])[0] != len(nb):
            p = z.find(b"PK\x03\x04", p + 1)
        local[nb.decode()] = p
    return eocd, z64, {k.decode(): v for k, v in central.items()}, local


def patch(z, *edits):
    """edits: (offset, struct format, values...) written over the bytes of z."""
    b = bytearray(z)
    for off, fmt, *vals in edits:
        struct.pack_into(fmt, b, off, *vals)
    return bytes(b)


def zip_case(name, data, expect):
    case("torch", name, data, "load_error: " + expect)


# Names long enough that a directory of 3 records could hold 6: an entry count that is too high
# then passes the "fits the directory" bound and meets the record count itself.
D = "a_checkpoint_whose_directory_name_is_long"
zb = checkpoint(good_pkl, [("0", f32(6))], dirname=D)
E, _, C, L = zip_layout(zb)
pkl, st0, ver = D + "/data.pkl", D + "/data/0", D + "/version"
zip_case("zip_cd_size_past_end.pth", patch(zb, (E + 12, "<I", 1 << 30)), "is outside the file before its end records")
zip_case("zip_cd_short_of_end_record.pth", zb[:E] + b"\0" * 8 + zb[E:],
         "expected at %d where the end records begin (8 bytes belong to no record)" % (E + 8))
zip_case("zip_total_entries_too_many.pth", patch(zb, (E + 8, "<HH", 4, 4)), "end record field 'total entries' is 4, expected 3")
zip_case("zip_total_entries_too_few.pth", patch(zb, (E + 8, "<HH", 2, 2)), "end record field 'total entries' is 2, expected 3")
zip_case("zip_disk_entries_differ.pth", patch(zb, (E + 8, "<H", 2)),
         "end record field 'entries on this disk' is 2, expected 3")
zip_case("zip_local_name_differs.pth", patch(zb, (L[st0] + 30 + len(st0) - 1, "<c", b"1")),
         "local header field 'name' is '%s/data/1', expected '%s'" % (D, st0))
zip_case("zip_local_method_differs.pth", patch(zb, (L[st0] + 8, "<H", 8)),
         "local header field 'compression method' is 8, expected 0")
zip_case("zip_local_compressed_size_differs.pth", patch(zb, (L[st0] + 18, "<I", 20)),
         "local header field 'compressed size' is 20, expected 24")
zip_case("zip_local_size_differs.pth", patch(zb, (L[st0] + 22, "<I", 20)), "local header field 'size' is 20, expected 24")
zip_case("zip_local_header_past_end.pth", patch(zb, (C[st0] + 42, "<I", len(zb) + 100)),
         "central record field 'local header offset' is %d" % (len(zb) + 100))
big = len(zb) - L[ver]  # D/version's data then reaches past the start of the central directory
zip_case("zip_data_into_central_directory.pth",
         patch(zb, (L[ver] + 18, "<II", big, big), (C[ver] + 20, "<II", big, big)),
         "data [%d, +%d) runs past %d, where the central directory begins" % (L[ver] + 30 + len(ver), big, C[pkl]))
zip_case("zip_data_past_end.pth", patch(zb, (L[ver] + 18, "<II", 1 << 31, 1 << 31), (C[ver] + 20, "<II", 1 << 31, 1 << 31)),
         "+2147483648) runs past")
zip_case("zip_data_overlaps_next_entry.pth", patch(zb, (L[st0] + 18, "<II", 32, 32), (C[st0] + 20, "<II", 32, 32)),
         "entries '%s' and '%s' overlap" % (st0, ver))
gap = 16  # bytes inserted before D/version: every later offset moves by 16
zip_case("zip_bytes_between_entries.pth",
         patch(zb[:L[ver]] + b"\0" * gap + zb[L[ver]:], (C[ver] + gap + 42, "<I", L[ver] + gap), (E + gap + 16, "<I", C[pkl] + gap)),
         "bytes [%d, %d) between entries '%s' and '%s' belong to no entry" % (L[ver], L[ver] + gap, st0, ver))

# ZIP64: the same checks on the ZIP64 end record, its locator and the ZIP64 extra fields.
z6 = open(os.path.join(DATA, "io", "zip64.pth"), "rb").read()
E6, R6, C6, L6 = zip_layout(z6)
s6 = "z64/data/0"
x6, lx6 = C6[s6] + 46 + len(s6), L6[s6] + 30 + len(s6)  # the ZIP64 extra fields: id, length, u64 values
zip_case("zip64_cd_offset_past_end.pth", patch(z6, (R6 + 48, "<Q", 1 << 40)), "is outside the file before its end records")
zip_case("zip64_cd_size_past_end.pth", patch(z6, (R6 + 40, "<Q", 1 << 40)), "is outside the file before its end records")
zip_case("zip64_total_entries_too_many.pth", patch(z6, (R6 + 24, "<QQ", 4, 4)), "ZIP64 end record field 'total entries' is 4, expected 3")
zip_case("zip64_total_entries_too_few.pth", patch(z6, (R6 + 24, "<QQ", 2, 2)), "ZIP64 end record field 'total entries' is 2, expected 3")
zip_case("zip64_disk_entries_differ.pth", patch(z6, (R6 + 24, "<Q", 2)), "ZIP64 end record field 'entries on this disk' is 2, expected 3")
zip_case("zip64_locator_offset_past_end.pth", patch(z6, (E6 - 12, "<Q", 1 << 40)),
         "ZIP64 locator field 'record offset' is %d, expected at most %d" % (1 << 40, E6 - 20 - 56))
zip_case("zip64_record_size_differs.pth", patch(z6, (R6 + 4, "<Q", 100)), "ZIP64 end record field 'record size' is 100, expected 44")
zip_case("zip64_end_record_disagrees.pth", patch(z6, (E6 + 10, "<H", 7)),
         "end record field 'total entries' is 7, expected 3 as in the ZIP64 end record")
zip_case("zip64_extra_offset_past_end.pth", patch(z6, (x6 + 20, "<Q", 1 << 40)),
         "central record field 'local header offset' is %d" % (1 << 40))
zip_case("zip64_extra_sizes_differ.pth", patch(z6, (x6 + 4, "<QQ", 32, 32)),
         "local header field 'compressed size' is 24, expected 32 as in the central directory (ZIP64 extra field)")
zip_case("zip64_local_extra_sizes_differ.pth", patch(z6, (lx6 + 4, "<QQ", 16, 16)),
         "local header field 'compressed size' is 16, expected 24 as in the central directory (ZIP64 extra field)")

# Data descriptors (flag bit 3), on a file torch 1.13 wrote: local sizes 0, the descriptor has them.
zt = open(os.path.join(DATA, "io", "state_dict.pth"), "rb").read()
_, _, Ct, Lt = zip_layout(zt)
t0 = "state_dict/data/0"
dd = Lt[t0] + 30 + len(t0) + struct.unpack("<H", zt[Lt[t0] + 28:Lt[t0] + 30])[0] + 24  # its 24 data bytes end here
zip_case("zip_descriptor_sizes_differ.pth", patch(zt, (dd + 8, "<II", 20, 20)),
         "local header flag bit 3 announces a data descriptor at offset %d, expected crc" % dd)
zip_case("zip_descriptor_local_size_differs.pth", patch(zt, (Lt[t0] + 22, "<I", 5)), "local header field 'size' is 5, expected 24")

# ---- torchscript -------------------------------------------------------------------------------------
copy("torchscript", "tiny_clip/ts_small.pt", "accept")
copy("torchscript", "tiny_clip/ts_evil_os_system.pt", "load_error: is not allowed")
copy("torchscript", "tiny_clip/ts_evil_builtins_eval.pt", "load_error: is not allowed")
copy("torchscript", "io/state_dict.pth", "load_error", name="state_dict_not_torchscript.pt")

# ---- safetensors -------------------------------------------------------------------------------------
for f, e in [("good.safetensors", "accept"), ("misaligned.safetensors", "accept"),
             ("st_bad_dtype.safetensors", "load_error: dtype 'Q4' is not supported"),
             ("st_f64.safetensors", "load_error: dtype 'F64' is not supported"),
             ("st_shape_mismatch.safetensors", "load_error: data_offsets span 8 bytes"),
             ("st_overlap.safetensors", "load_error: overlaps the previous tensor"),
             ("st_hole.safetensors", "load_error: belong to no tensor"),
             ("st_out_of_range.safetensors", "load_error: are not ordered within the data section"),
             ("st_bad_metadata.safetensors", "load_error: __metadata__ 'n' is a JSON number"),
             ("st_header_too_long.safetensors", "load_error: runs past the file end"),
             ("st_not_json.safetensors", "load_error: header is not valid JSON"),
             ("st_duplicate.safetensors", "load_error: header names 'a' twice")]:
    copy("safetensors", "io/" + f, e)


def st(hdr, data=b""):
    h = hdr.encode()
    return struct.pack("<Q", len(h)) + h + data


case("safetensors", "huge_header_length.safetensors", struct.pack("<Q", 1 << 63) + b"{}", "limit_error: header length 9223372036854775808 exceeds the limit")
case("safetensors", "header_length_past_eof.safetensors", struct.pack("<Q", 64) + b"{}", "load_error: runs past the file end")
case("safetensors", "short_file.safetensors", b"\x02\x00\x00", "load_error: too short")
case("safetensors", "deep_json.safetensors", st("[" * 10000 + "]" * 10000), "limit_error: header nests deeper than 64 levels")
case("safetensors", "overlapping_offsets.safetensors",
     st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', b"\0" * 8),
     "load_error: overlaps the previous tensor")
case("safetensors", "offsets_reversed.safetensors", st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}', b"\0" * 4),
     "load_error: are not ordered")
case("safetensors", "shape_overflow.safetensors",
     st('{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}'), "load_error: shape overflows int64")
case("safetensors", "negative_shape.safetensors", st('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}'),
     "load_error: shape[0] is -1, expected an int >= 0")
case("safetensors", "offset_u64_max.safetensors",
     st('{"a":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,18446744073709551615]}}'), "load_error: are not ordered")
case("safetensors", "extra_field.safetensors", st('{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4],"x":1}}', b"\0" * 4),
     "load_error: unknown field 'x'")
case("safetensors", "header_not_object.safetensors", st("[1,2]"), "load_error: header is a JSON array, expected an object")
case("safetensors", "tensor_over_limit.safetensors", st('{"a":{"dtype":"U8","shape":[4096],"data_offsets":[0,4096]}}', b"\0" * 4096),
     "limit_error: exceed the tensor limit 1024", limits="safetensors.max_tensor_bytes=1024")
case("safetensors", "empty_ok.safetensors", st("{}"), "accept")

# ---- npy ---------------------------------------------------------------------------------------------
for f, e in [("f32_2x3.npy", "accept"), ("i64_3.npy", "accept"), ("npy_truncated.npy", "load_error"),
             ("npy_big_endian.npy", "load_error"), ("npy_fortran.npy", "load_error"), ("npy_f64.npy", "load_error")]:
    copy("npy", "io/" + f, e)
case("npy", "not_npy.npy", b"\x93NUMPX\x01\x00", "load_error")

# ---- params.json -------------------------------------------------------------------------------------
P = '{"dim":64,"multiple_of":32,"n_heads":4,"n_layers":2,"norm_eps":1e-06,"vocab_size":-1%s}'
copy("params", "io/params.json", "accept")
case("params", "ok.json", (P % "").encode(), "accept")
case("params", "negative_dim.json", b'{"dim":-4096,"n_heads":32,"n_layers":32}', "load_error: field 'dim' is -4096, expected 1..65536")
case("params", "absurd_dim.json", b'{"dim":1000000000000,"n_heads":32,"n_layers":32}', "load_error: field 'dim' is 1000000000000")
case("params", "absurd_layers.json", b'{"dim":4096,"n_heads":32,"n_layers":100000}', "load_error: field 'n_layers' is 100000")
case("params", "zero_heads.json", b'{"dim":4096,"n_heads":0,"n_layers":32}', "load_error: field 'n_heads' is 0")
case("params", "dim_not_divisible.json", b'{"dim":4096,"n_heads":3,"n_layers":32}', "load_error: dim 4096 is not divisible by n_heads 3")
case("params", "float_dim.json", b'{"dim":4096.5,"n_heads":32,"n_layers":32}', "load_error: field 'dim' must be an integer")
case("params", "string_dim.json", b'{"dim":"4096","n_heads":32,"n_layers":32}', "load_error: field 'dim' must be an integer")
case("params", "missing_dim.json", b'{"n_heads":32,"n_layers":32}', "load_error: field 'dim' is missing")
case("params", "negative_vocab.json", (P % ',"vocab_size":-7').replace('"vocab_size":-1,', '').encode(),
     "load_error: field 'vocab_size' is -7")
case("params", "huge_vocab.json", (P % ',"vocab_size":1e300').replace('"vocab_size":-1,', '').encode(),
     "load_error: field 'vocab_size' is 1e+300")
case("params", "nan_eps.json", b'{"dim":64,"n_heads":4,"n_layers":2,"norm_eps":-0.0}', "load_error: field 'norm_eps' is")
case("params", "gqa.json", (P % ',"n_kv_heads":2').encode(), "load_error: field 'n_kv_heads' is 2")
case("params", "absurd_ffn_multiplier.json", (P % ',"ffn_dim_multiplier":1e308').encode(), "load_error: field 'ffn_dim_multiplier'")
case("params", "absurd_rope_theta.json", (P % ',"rope_theta":1e400').encode(), "load_error: not valid JSON")
case("params", "array.json", b"[1,2,3]", "load_error: expected a JSON object, got array")
case("params", "deep.json", b"[" * 100000 + b"]" * 100000, "limit_error: nests deeper than 64 levels")
case("params", "not_json.json", b"dim = 4096\n", "load_error: not valid JSON")
case("params", "empty.json", b"", "load_error: not valid JSON")
case("params", "too_big.json", b" " * 2048 + (P % "").encode(), "limit_error: bytes exceed the limit 1024", limits="json.max_bytes=1024")

# ---- tokenizer ---------------------------------------------------------------------------------------
def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def fields(data):
    """Top-level protobuf fields: list of (number, wire type, raw bytes of the whole field)."""
    pos, out = 0, []
    while pos < len(data):
        start, key, shift = pos, 0, 0
        while True:
            b = data[pos]; pos += 1; key |= (b & 0x7F) << shift; shift += 7
            if not b & 0x80:
                break
        wt = key & 7
        if wt == 0:
            while data[pos] & 0x80:
                pos += 1
            pos += 1
        elif wt == 1:
            pos += 8
        elif wt == 5:
            pos += 4
        elif wt == 2:
            n, shift = 0, 0
            while True:
                b = data[pos]; pos += 1; n |= (b & 0x7F) << shift; shift += 7
                if not b & 0x80:
                    break
            pos += n
        out.append((key >> 3, wt, data[start:pos]))
    return out


tiny = open(os.path.join(DATA, "tokenizer", "tiny.model"), "rb").read()
copy("tokenizer", "tokenizer/tiny.model", "accept")
copy("tokenizer", "tokenizer/tiny_user.model", "accept")
fs = fields(tiny)
case("tokenizer", "no_pieces.model", b"".join(f[2] for f in fs if f[0] != 1), "load_error: pieces: the model has no pieces")
bad_piece = b"\x0a" + varint(2 + 4) + b"\x0a\x02\xff\xfe" + b"\x18\x01"
first = next(k for k, f in enumerate(fs) if f[0] == 1)
pieces = [f[2] for f in fs]
case("tokenizer", "invalid_utf8_piece.model", b"".join(pieces[:first + 5]) + bad_piece + b"".join(pieces[first + 5:]),
     "load_error: piece is not valid UTF-8")
case("tokenizer", "empty_piece.model", b"".join(pieces[:first + 5]) + b"\x0a\x02\x18\x01" + b"".join(pieces[first + 5:]),
     "load_error: empty piece")
case("tokenizer", "piece_length_past_end.model", b"\x0a" + varint(1 << 30) + b"\x0a\x01a", "load_error: ModelProto.pieces[0]: truncated: needs 1073741824 bytes")
case("tokenizer", "varint_too_long.model", b"\x0a" + b"\xff" * 20, "load_error: ModelProto")
case("tokenizer", "wrong_wire_type.model", b"\x08\x01", "load_error: ModelProto.pieces[0]: wire type 0, expected 2")
case("tokenizer", "unigram.model", b"".join(f[2] for f in fs if f[0] != 2) + b"\x12\x02\x18\x01", "load_error: lav2 supports 2 (BPE) only")
case("tokenizer", "empty.model", b"", "load_error: empty file")
case("tokenizer", "truncated.model", tiny[: len(tiny) // 2], "load_error: truncated: needs")
HF = ('{"added_tokens": [{"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true}, '
      '{"id": 2, "content": "</s>", "special": true}], "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": false, '
      '"vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "a": 3, "b": 4, "ab": 5, "\\u2581": 6}, "merges": ["a b"]}}')
case("tokenizer", "hf_ok.json", HF.encode(), "accept")
case("tokenizer", "hf_deep.json", b'{"model":' + b"[" * 100000 + b"]" * 100000 + b"}", "load_error: nesting too deep")
case("tokenizer", "hf_merge_unknown.json", HF.replace('"a b"', '"a z"').encode(), "load_error: model.merges[0]: 'a' + 'z' uses a piece not in the vocabulary")
case("tokenizer", "hf_id_out_of_range.json", HF.replace('"ab": 5', '"ab": 500').encode(), "load_error: model.vocab['ab']: id is not an integer in [0, vocab size)")
case("tokenizer", "hf_negative_id.json", HF.replace('"ab": 5', '"ab": -5').encode(), "load_error: model.vocab['ab']: id is not an integer in [0, vocab size)")
case("tokenizer", "hf_not_json.json", b'{"model": ', "load_error: invalid JSON at byte 10")

# ---- images ------------------------------------------------------------------------------------------
def png_chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


def png(w, h, depth=8, color=2, rows=None):
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    if rows is None:
        ch = {0: 1, 2: 3, 4: 2, 6: 4}[color]
        rows = b"".join(b"\0" + bytes((x * 7 + y) & 255 for x in range(w * ch * depth // 8)) for y in range(h))
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(rows, 9)) + png_chunk(b"IEND", b"")


case("image", "one_by_one.png", png(1, 1), "accept")
copy("image", "images/special/rgb16.png", "accept", name="rgb16.png")
copy("image", "images/special/rgba16.png", "accept", name="rgba16.png")
copy("image", "images/special/gray16.png", "accept", name="gray16.png")
copy("image", "images/special/palette.png", "accept", name="palette.png")
copy("image", "images/jpeg/noexif.jpg", "accept", name="noexif.jpg")
copy("image", "images/jpeg/progressive.jpg", "accept", name="progressive.jpg")
copy("image", "images/jpeg/exif6_be.jpg", "accept", name="exif6_be.jpg")
case("image", "claims_2p24_square.png", png(1, 1)[:16] + struct.pack(">II", 1 << 24, 1 << 24) + png(1, 1)[24:],
     "limit_error: PNG declares 16777216 x 16777216 pixels")
case("image", "claims_2p31_wide.png", png(1, 1)[:16] + struct.pack(">II", 1 << 31, 1) + png(1, 1)[24:], "limit_error: PNG declares 2147483648 x 1")
case("image", "claims_zero_width.png", png(1, 1)[:16] + struct.pack(">II", 0, 1) + png(1, 1)[24:], "load_error: declares no valid dimensions")
full = png(32, 32)
case("image", "truncated.png", full[: len(full) // 2], "load_error: past the end of the file (truncated or corrupt)")
bomb_rows = b"\0" * (64 * 1024 * 1024)  # 64 MiB of zeros in a 64 KiB file, for a 16 x 16 image
case("image", "deflate_bomb.png", png(16, 16, rows=bomb_rows),
     "load_error: PNG image data inflates past 2592 bytes, twice what its 16 x 16 header allows (a deflate bomb)")
case("image", "no_iend.png", full[:-12], "load_error: PNG ends before its IEND chunk")
case("image", "idat_claims_2gib.png", full[:33] + struct.pack(">I", 0x7FFFFFF0) + full[37:],
     "load_error: PNG chunk at byte 33 declares 2147483632 bytes, past the end of the file")
case("image", "truncated_header.png", full[:20], "load_error: PNG header declares no valid dimensions")
jpg = open(os.path.join(DATA, "images", "jpeg", "noexif.jpg"), "rb").read()
case("image", "truncated.jpg", jpg[: len(jpg) // 2], "load_error: JPEG ends before its EOI marker")
case("image", "jpeg_soi_only.jpg", b"\xff\xd8\xff\xd9", "load_error: JPEG header declares no valid dimensions")
sof = jpg.find(b"\xff\xc0")
if sof < 0:
    sof = jpg.find(b"\xff\xc2")
case("image", "jpeg_claims_65535_square.jpg", jpg[:sof + 5] + struct.pack(">HH", 65535, 65535) + jpg[sof + 9:],
     "limit_error: JPEG declares 65535 x 65535 pixels")
# Resizes to 224 x 29360128 for CLIP (20 GB if built); only the 224 x 224 centre is computed.
case("image", "thin_1x131072.png", png(1, 131072, rows=b"\0\0\0\0" * 131072), "accept")
dht = jpg.find(b"\xff\xc4")
case("image", "dht_over_256_codes.jpg", jpg[:dht + 5] + b"\x20" * 16 + jpg[dht + 21:],
     "load_error: JPEG Huffman table segment (DHT) at byte %d declares more than 256 codes" % dht)
no_dht, pos = bytearray(), 0
while True:  # drop every DHT segment of a baseline JPEG: its scan then names undefined tables
    k = jpg.find(b"\xff\xc4", pos)
    if k < 0 or k > jpg.find(b"\xff\xda"):
        break
    no_dht += jpg[pos:k]
    pos = k + 2 + struct.unpack(">H", jpg[k + 2:k + 4])[0]
no_dht += jpg[pos:]
case("image", "no_huffman_tables.jpg", bytes(no_dht),
     "load_error: decodes with a Huffman table that no earlier DHT segment defines")
case("image", "bad_crc_ok.png", full[:-4] + b"\0\0\0\0", "accept")  # stb ignores chunk CRCs, as cv2 does
case("image", "gif.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "load_error: not a PNG or JPEG file")
case("image", "pixels_over_limit.png", png(64, 64), "limit_error: over the limit of 1024 pixels", limits="image.max_pixels=1024")
case("image", "empty.png", b"", "load_error: not a PNG or JPEG file")

# ---- inputs the fuzzers found (tests/fuzz/regressions/<target>/<name>), each with its outcome ----------
FOUND = os.path.join(ROOT, "tests", "fuzz", "regressions")
for reader, name, expect in [
    ("image", "stb_dht_over_256_codes.jpg", "load_error: declares more than 256 codes"),
    ("image", "stb_idat_realloc_1gib.png", "load_error: past the end of the file"),
    ("image", "stb_jpeg_undefined_huffman_table.jpg", "load_error: decodes with a Huffman table that no earlier DHT segment defines"),
    ("image", "stb_jpeg_negative_shift.jpg", "load_error: decodes with a Huffman table that no earlier DHT segment defines"),
    ("tokenizer", "added_token_id_3.9e19.json", "load_error: added_tokens['<unk>']: id is not an integer in [0, vocab size]"),
]:
    with open(os.path.join(FOUND, reader, name), "rb") as f:
        case(reader, "fuzz_" + name, f.read(), expect)

print(f"wrote {count} cases to {os.path.normpath(OUT)}")
