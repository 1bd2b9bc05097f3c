#!/usr/bin/python3
"""Pillow's CLIP resize + centre crop of extreme aspect ratios, as checksums (Pillow 9.4, Debian 12).

Writes tests/data/images/crop_resize.json (a few KB): for each case the input size, its content
rule (below, reproduced by tests/vision/test_crop_resize_pillow.cpp, so no image is stored), the
resized size, the crop origin and the FNV-1a 64 of Pillow's 224 x 224 x 3 RGB result (HWC bytes).

Content, for sample i = (y * w + x) * 3 + c, in uint32 arithmetic:
  noise:  h = i * 0x9E3779B1 ^ seed; h ^= h >> 16; h *= 0x85EBCA6B; h ^= h >> 13; value = h >> 24
  bands:  value = ((x // 3 + y // 2) * 37 + c * 85) & 255   (hard full-range edges: clamped overshoot)

The reference is Pillow's: `Image.resize((rw, rh), BICUBIC)` then torchvision's CenterCrop(224).
Pillow cannot build 896000 x 224 or 224 x 4480000 images here (0.8 and 4 GB), so its two passes
are run apart, which is what ImagingResampleInner does inside one call: the horizontal pass
(`resize((rw, h))`, only that pass runs when the height is unchanged), the crop's columns, then the
vertical pass (`resize((224, rh))`, only that pass) a few columns at a time, and the crop's rows.
Each output column of a pass depends on its own coefficients only, and the intermediate is uint8
in both, so this is the same computation; wherever the whole resized image fits (up to 32 Mpx) the
script also runs the one-call resize and asserts that the bytes are equal (`--check-all`: for every
case, 4000 x 1 and 1 x 20000 included; that needs about 5 GB of memory).

Run from the repository root (about 15 s):  /usr/bin/python3 tools/reference/make_crop_resize_fixture.py
"""
import json
import os
import sys

import numpy as np
import PIL
from PIL import Image

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data",
                                    "images", "crop_resize.json"))
CLIP = 224
DIRECT_MAX_PIXELS = 32 << 20  # one-call resize as a cross-check up to this resized size
STRIP = 16                     # columns per vertical-pass call (16 x 4480000 x 4 bytes = 287 MB)

# (w, h, content, seed): the extremes, odd crop offsets, downscales, ordinary sizes.
CASES = [
    (4000, 1, "noise", 1), (1, 20000, "noise", 2), (3000, 7, "bands", 3), (5, 2000, "noise", 4),
    (7, 3000, "bands", 5), (2000, 5, "noise", 6), (3, 1001, "noise", 7), (1001, 3, "bands", 8),
    (1, 2, "noise", 9), (2, 1, "noise", 10), (8192, 300, "bands", 11), (300, 8192, "noise", 12),
    (1500, 225, "noise", 13), (225, 1500, "bands", 14), (640, 480, "noise", 15), (224, 224, "bands", 16),
    (225, 224, "noise", 17), (1, 1, "noise", 18), (449, 300, "bands", 19),
]


def content(w, h, kind, seed):
    """uint8 (h, w, 3) by the rule in the module docstring."""
    if kind == "noise":
        v = np.arange(w * h * 3, dtype=np.uint32) * np.uint32(0x9E3779B1) ^ np.uint32(seed)
        v ^= v >> np.uint32(16)
        v *= np.uint32(0x85EBCA6B)
        v ^= v >> np.uint32(13)
        return (v >> np.uint32(24)).astype(np.uint8).reshape(h, w, 3)
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    return (((x // 3 + y // 2) * 37 + c * 85) & 255).astype(np.uint8)


def clip_size(w, h):
    """torchvision _compute_resized_output_size for size=[224]."""
    short, long_ = (w, h) if w <= h else (h, w)
    new_short, new_long = CLIP, int(CLIP * long_ / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def crop_origin(rw, rh):
    """torchvision center_crop: round((H - 224) / 2), round((W - 224) / 2), half to even."""
    return int(round((rw - CLIP) / 2.0)), int(round((rh - CLIP) / 2.0))


def two_pass(arr, rw, rh, left, top):
    """Pillow's horizontal pass, the crop's columns, Pillow's vertical pass in strips, the crop's rows."""
    h, w = arr.shape[:2]
    im = Image.fromarray(arr, "RGB")
    if rw != w:
        im = im.resize((rw, h), Image.BICUBIC)  # horizontal pass only: the height is unchanged
    im = im.crop((left, 0, left + CLIP, h))
    if rh == h:
        return np.asarray(im.crop((0, top, CLIP, top + CLIP)))
    strips = []
    for x0 in range(0, CLIP, STRIP):
        strip = im.crop((x0, 0, x0 + STRIP, h)).resize((STRIP, rh), Image.BICUBIC)  # vertical pass only
        strips.append(np.asarray(strip.crop((0, top, STRIP, top + CLIP))))
    return np.concatenate(strips, axis=1)


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def main():
    assert PIL.__version__ == "9.4.0", "the checksums are defined by Pillow 9.4.0 (Debian 12); got " + PIL.__version__
    out = {"pillow": PIL.__version__, "numpy": np.__version__, "crop": CLIP, "cases": []}
    for w, h, kind, seed in CASES:
        arr = content(w, h, kind, seed)
        rw, rh = clip_size(w, h)
        left, top = crop_origin(rw, rh)
        got = two_pass(arr, rw, rh, left, top)
        assert got.shape == (CLIP, CLIP, 3)
        direct = rw * rh <= DIRECT_MAX_PIXELS or "--check-all" in sys.argv[1:]
        if direct:
            one = Image.fromarray(arr, "RGB").resize((rw, rh), Image.BICUBIC).crop((left, top, left + CLIP, top + CLIP))
            assert np.array_equal(np.asarray(one), got), (w, h)
        out["cases"].append({"width": w, "height": h, "content": kind, "seed": seed, "resized": [rw, rh],
                             "crop_origin": [left, top], "one_call_checked": direct,
                             "fnv1a64": fnv1a64(got.tobytes())})
        print("%5d x %-5d -> %7d x %-7d crop at (%d, %d)%s" % (w, h, rw, rh, left, top,
                                                               "" if direct else "  (two passes only)"))
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote %s (%d cases, %d bytes)" % (OUT, len(CASES), os.path.getsize(OUT)))


if __name__ == "__main__":
    main()
