#!/usr/bin/python3
"""Generates the image fixtures of tests/vision (Pillow 9.4 + numpy; Debian's python3-pil).

Writes tests/data/images/:
  resize/NNN.png       deterministic 8-bit RGB inputs of varied sizes and aspect ratios
  resize_ref/NNN.png   Pillow's result for each input (lossless PNG), either
                         op "clip":   Image.resize(clip size, BICUBIC) then torchvision's CenterCrop(224)
                         op "resize": Image.resize((w, h), BICUBIC) to an arbitrary size
  jpeg/*.jpg           small JPEGs: EXIF orientations 1..8 (little- and big-endian TIFF), gray,
                       progressive, 4:4:4
  jpeg_ref/*.png       Pillow's (libjpeg-turbo) decode of each, after ImageOps.exif_transpose
  special/*.png        16-bit, RGBA, gray, gray+alpha, palette, 1-bit PNGs written by hand below
  special_ref/*.png    what cv2.imread(IMREAD_COLOR) yields for them, as 8-bit RGB: alpha dropped,
                       gray replicated, 16-bit samples >> 8
  norm_lut.bin         3 x 256 float32 (little-endian): (float32(v) / 255 - mean[c]) / std[c] computed
                       with numpy in torchvision's order (ToTensor div(255), Normalize sub_ then div_)
  manifest.json        every case above

Run from the repository root:  /usr/bin/python3 tools/reference/make_image_fixtures.py
"""
import io
import json
import os
import struct
import zlib

import numpy as np
import PIL
from PIL import Image, ImageOps

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "images")
OUT = os.path.normpath(OUT)
CLIP = 224
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


# ---- deterministic content -----------------------------------------------------------------------
def content(w, h, kind, seed):
    """uint8 (h, w, 3). Large images get smooth content so the PNGs stay small."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    fx, fy = x / max(w - 1, 1), y / max(h - 1, 1)
    if kind == "noise":  # worst case for ringing and clamping
        return rng.randint(0, 256, size=(h, w, 3)).astype(np.uint8)
    img = np.stack([
        255 * fx,
        255 * fy,
        127.5 + 127.5 * np.sin(2 * np.pi * (fx * rng.uniform(0.5, 3) + fy * rng.uniform(0.5, 3))),
    ], axis=-1)
    if kind in ("blocks", "mixed"):  # sharp edges with full-range steps: bicubic overshoot clamps
        bs = max(1, min(w, h) // rng.randint(3, 9))
        by, bx = (y // bs).astype(int), (x // bs).astype(int)
        mask = ((by + bx) % 2 == 0)[..., None]
        img = np.where(mask, img, 255 - img)
        img[(by * 7 + bx * 3) % 5 == 0] = 0
        img[(by * 5 + bx * 11) % 7 == 0] = 255
    if kind == "mixed":  # sparse full-range impulses: cheap to store, hard on the kernel
        hit = rng.random_sample((h, w)) < 0.02
        img[hit] = rng.randint(0, 256, size=(int(hit.sum()), 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def clip_size(w, h):
    """torchvision _compute_resized_output_size for size=[224]."""
    short, long_ = (w, h) if w <= h else (h, w)
    new_short, new_long = CLIP, int(CLIP * long_ / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def center_crop(im, size):
    """torchvision.transforms.functional.center_crop on a PIL image (no padding needed here)."""
    w, h = im.size
    assert w >= size and h >= size
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return im.crop((left, top, left + size, top + size))


def save_png(path, arr):
    Image.fromarray(arr, "RGB").save(path, optimize=True)


# ---- hand-written PNGs (modes Pillow cannot write, e.g. 16-bit RGB) ----------------------------------
def png_bytes(width, height, depth, ctype, rows, plte=None, trns=None):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + r for r in rows)  # filter type 0 on every row
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0))
    if plte is not None:
        out += chunk(b"PLTE", plte)
    if trns is not None:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def special_pngs(rng):
    w, h = 37, 23
    cases = []
    rgb16 = rng.randint(0, 65536, size=(h, w, 3)).astype(">u2")
    cases.append(("rgb16", png_bytes(w, h, 16, 2, [r.tobytes() for r in rgb16]), (rgb16 >> 8).astype(np.uint8)))
    rgba16 = rng.randint(0, 65536, size=(h, w, 4)).astype(">u2")
    cases.append(("rgba16", png_bytes(w, h, 16, 6, [r.tobytes() for r in rgba16]),
                  (rgba16[..., :3] >> 8).astype(np.uint8)))
    rgba8 = rng.randint(0, 256, size=(h, w, 4)).astype(np.uint8)
    cases.append(("rgba8", png_bytes(w, h, 8, 6, [r.tobytes() for r in rgba8]), rgba8[..., :3].copy()))
    gray8 = rng.randint(0, 256, size=(h, w)).astype(np.uint8)
    cases.append(("gray8", png_bytes(w, h, 8, 0, [r.tobytes() for r in gray8]), np.repeat(gray8[..., None], 3, -1)))
    gray16 = rng.randint(0, 65536, size=(h, w)).astype(">u2")
    cases.append(("gray16", png_bytes(w, h, 16, 0, [r.tobytes() for r in gray16]),
                  np.repeat((gray16 >> 8).astype(np.uint8)[..., None], 3, -1)))
    graya8 = rng.randint(0, 256, size=(h, w, 2)).astype(np.uint8)
    cases.append(("graya8", png_bytes(w, h, 8, 4, [r.tobytes() for r in graya8]),
                  np.repeat(graya8[..., :1], 3, -1)))
    pal = rng.randint(0, 256, size=(16, 3)).astype(np.uint8)
    idx = rng.randint(0, 16, size=(h, w)).astype(np.uint8)
    cases.append(("palette", png_bytes(w, h, 8, 3, [r.tobytes() for r in idx], plte=pal.tobytes(),
                                       trns=bytes(range(0, 256, 16))), pal[idx]))
    bits = rng.randint(0, 2, size=(h, w)).astype(np.uint8)
    cases.append(("gray1", png_bytes(w, h, 1, 0, [np.packbits(r).tobytes() for r in bits]),
                  np.repeat((bits * 255)[..., None], 3, -1)))
    return cases


# ---- JPEG with a hand-made EXIF APP1 --------------------------------------------------------------
def exif_app1(orientation, big_endian):
    """APP1 'Exif\\0\\0' + TIFF header + IFD0 holding Orientation (0x0112, SHORT, 1) and one more tag."""
    e = ">" if big_endian else "<"
    tiff = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    entries = [
        struct.pack(e + "HHI", 0x010F, 2, 4) + b"lav\x00",                 # Make, ASCII, inline
        struct.pack(e + "HHIH", 0x0112, 3, 1, orientation) + b"\x00\x00",  # Orientation
    ]
    ifd = struct.pack(e + "H", len(entries)) + b"".join(entries) + struct.pack(e + "I", 0)
    payload = b"Exif\x00\x00" + tiff + ifd
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def jpeg_bytes(arr, **kw):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", **kw)
    return buf.getvalue()


def pillow_decode(data):
    im = Image.open(io.BytesIO(data))
    im = ImageOps.exif_transpose(im)
    return np.asarray(im.convert("RGB"))


def main():
    assert PIL.__version__ == "9.4.0", "fixtures are defined by Pillow 9.4.0 (Debian 12); got " + PIL.__version__
    for d in ("resize", "resize_ref", "jpeg", "jpeg_ref", "special", "special_ref"):
        os.makedirs(os.path.join(OUT, d), exist_ok=True)
    manifest = {"pillow": PIL.__version__, "numpy": np.__version__, "clip": [], "resize": [], "jpeg": [],
                "special": []}

    # -- CLIP resize + crop: (w, h, content) --
    sizes = [
        (1, 1, "noise"), (1, 2, "noise"), (2, 1, "noise"), (2, 2, "noise"), (3, 5, "noise"), (5, 3, "noise"),
        (7, 300, "mixed"), (300, 7, "mixed"), (1, 500, "smooth"), (500, 1, "smooth"),
        (224, 224, "mixed"), (225, 224, "mixed"), (224, 225, "mixed"), (223, 223, "mixed"),
        (226, 226, "blocks"), (227, 300, "blocks"), (20, 30, "noise"), (30, 20, "noise"),
        (1000, 700, "smooth"), (700, 1000, "blocks"), (448, 448, "blocks"), (449, 300, "mixed"),
        (333, 111, "mixed"), (111, 333, "blocks"), (500, 375, "smooth"), (375, 500, "blocks"),
        (640, 480, "smooth"), (37, 53, "noise"), (99, 101, "mixed"), (157, 211, "mixed"),
        (255, 383, "blocks"), (399, 397, "smooth"), (12, 224, "noise"), (224, 12, "noise"),
        (896, 224, "blocks"), (250, 224, "mixed"), (224, 400, "mixed"), (112, 112, "blocks"),
        (113, 224, "mixed"), (300, 300, "blocks"), (64, 48, "mixed"), (48, 64, "noise"),
        (160, 90, "mixed"), (90, 160, "mixed"), (350, 351, "blocks"), (17, 17, "noise"),
    ]
    rng = np.random.RandomState(20240505)
    while len(sizes) < 60:  # random odd shapes fill the rest
        w, h = int(rng.randint(1, 400)), int(rng.randint(1, 400))
        kind = ["noise", "mixed", "blocks", "smooth"][len(sizes) % 4]
        if kind == "noise" and w * h > 4096:
            kind = "blocks"
        sizes.append((w, h, kind if w * h < 40000 else "smooth"))
    for i, (w, h, kind) in enumerate(sizes):
        arr = content(w, h, kind, seed=1000 + i)
        name = "%03d_%dx%d_%s" % (i, w, h, kind)
        save_png(os.path.join(OUT, "resize", name + ".png"), arr)
        rw, rh = clip_size(w, h)
        ref = center_crop(Image.fromarray(arr, "RGB").resize((rw, rh), Image.BICUBIC), CLIP)
        save_png(os.path.join(OUT, "resize_ref", name + ".png"), np.asarray(ref))
        manifest["clip"].append({"input": "resize/%s.png" % name, "ref": "resize_ref/%s.png" % name,
                                 "width": w, "height": h, "resized": [rw, rh]})

    # -- arbitrary resizes: (input index, w, h); includes one-pass cases (one side unchanged) --
    targets = [(16, 20, 45), (16, 20, 7), (16, 55, 30), (16, 3, 30), (27, 37, 200), (27, 100, 53),
               (28, 50, 50), (28, 99, 1), (28, 1, 101), (29, 300, 12), (40, 1, 1), (41, 64, 200),
               (0, 5, 9), (6, 7, 31), (7, 299, 8), (33, 224, 100)]
    for j, (i, w, h) in enumerate(targets):
        sw, sh, kind = sizes[i]
        arr = content(sw, sh, kind, seed=1000 + i)
        name = "r%02d_from%03d_to%dx%d" % (j, i, w, h)
        out = np.asarray(Image.fromarray(arr, "RGB").resize((w, h), Image.BICUBIC))
        save_png(os.path.join(OUT, "resize_ref", name + ".png"), out)
        manifest["resize"].append({"input": manifest["clip"][i]["input"], "ref": "resize_ref/%s.png" % name,
                                   "width": w, "height": h})

    # -- JPEG: stb vs libjpeg-turbo, EXIF orientation --
    base = content(67, 45, "mixed", seed=7)
    jpegs = []
    plain = jpeg_bytes(base, quality=92)
    for o in range(1, 9):
        be = o % 2 == 0
        data = plain[:2] + exif_app1(o, be) + plain[2:]
        jpegs.append(("exif%d_%s" % (o, "be" if be else "le"), data, o))
    jpegs.append(("noexif", plain, 1))
    jpegs.append(("gray", jpeg_bytes(content(41, 29, "mixed", seed=8)[..., 1], quality=90), 1))
    jpegs.append(("progressive", jpeg_bytes(content(120, 80, "blocks", seed=9), quality=85, progressive=True), 1))
    jpegs.append(("q95_444", jpeg_bytes(content(96, 64, "mixed", seed=10), quality=95, subsampling=0), 1))
    jpegs.append(("q75_422", jpeg_bytes(content(100, 70, "smooth", seed=11), quality=75, subsampling=1), 1))
    big = content(320, 240, "smooth", seed=12)
    jpegs.append(("smooth_320x240", jpeg_bytes(big, quality=90), 1))
    for name, data, o in jpegs:
        with open(os.path.join(OUT, "jpeg", name + ".jpg"), "wb") as f:
            f.write(data)
        ref = pillow_decode(data)
        save_png(os.path.join(OUT, "jpeg_ref", name + ".png"), ref)
        manifest["jpeg"].append({"input": "jpeg/%s.jpg" % name, "ref": "jpeg_ref/%s.png" % name,
                                 "orientation": o, "width": int(ref.shape[1]), "height": int(ref.shape[0])})

    # -- PNG bit depths / colour types --
    for name, data, expect in special_pngs(np.random.RandomState(99)):
        with open(os.path.join(OUT, "special", name + ".png"), "wb") as f:
            f.write(data)
        save_png(os.path.join(OUT, "special_ref", name + ".png"), expect)
        manifest["special"].append({"input": "special/%s.png" % name, "ref": "special_ref/%s.png" % name})

    # -- ToTensor + Normalize table, torchvision's float32 order --
    v = np.arange(256, dtype=np.uint8).astype(np.float32) / np.float32(255)
    lut = np.stack([(v - np.float32(m)) / np.float32(s) for m, s in zip(MEAN, STD)]).astype("<f4")
    with open(os.path.join(OUT, "norm_lut.bin"), "wb") as f:
        f.write(lut.tobytes())

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(OUT) for fn in fns)
    print("wrote %d clip, %d resize, %d jpeg, %d special cases; %.2f MB" % (
        len(manifest["clip"]), len(manifest["resize"]), len(manifest["jpeg"]), len(manifest["special"]), total / 1e6))


if __name__ == "__main__":
    main()
