#!/usr/bin/python3
"""Draws docs/img/vision_flow.png: the data flow from pixels to the adapter prompts (Pillow only)."""
import os

from PIL import Image, ImageDraw, ImageFont

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "img", "vision_flow.png")
STEPS = [
    ("image file", "PNG / JPEG", "load_image(): cv2.imread semantics, BGR, EXIF"),
    ("uint8 H x W x 3", "BGR", "preprocess_clip(): Pillow bicubic resize (short side 224), center crop"),
    ("float [3, 224, 224]", "normalised", "ClipVisionModel::encode(): conv1 as GEMM over 256 patches of 14x14x3"),
    ("[257, 1024]", "[CLS] + 16x16 patches", "+ positional_embedding, ln_pre, 24 resblocks (MHA 16 heads, QuickGELU MLP)"),
    ("[257, 1024]", "residual stream", "ln_post and @ proj on ALL 257 tokens (clip_encode_image)"),
    ("[257, 768]", "clip features", "VisualProjector::encode(): clip_proj + LN; prepend 10 visual_query rows"),
    ("[267, 768]", "queries first", "8 timm blocks (MHA 16 heads of 48, GELU-erf MLP 3072)"),
    ("[10, 768]", "first 10 rows", "visual_proj (768 -> 4096) + visual_proj_norm LN"),
    ("[10, 4096]", "visual query", "added to adapter_query prompts of every adapter layer (1..31)"),
]


def main():
    w, row_h, pad = 1100, 64, 16
    h = pad * 2 + row_h * len(STEPS) + 30
    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 15)
        bold = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 15)
    except OSError:
        font = bold = ImageFont.load_default()
    d.text((pad, 6), "lav2 visual branch: pixels -> visual prompts (ViT-L/14 + adapter projector)", fill="black", font=bold)
    colors = ["#dbeafe"] * 2 + ["#fde68a"] * 3 + ["#bbf7d0"] * 3 + ["#fecaca"]
    for i, (shape, what, op) in enumerate(STEPS):
        y = 30 + pad + i * row_h
        d.rounded_rectangle((pad, y, pad + 250, y + 40), radius=8, fill=colors[i], outline="black")
        d.text((pad + 10, y + 3), shape, fill="black", font=bold)
        d.text((pad + 10, y + 21), what, fill="#333333", font=font)
        if i + 1 < len(STEPS):
            x = pad + 125
            d.line((x, y + 40, x, y + row_h), fill="black", width=2)
            d.polygon([(x - 6, y + row_h - 8), (x + 6, y + row_h - 8), (x, y + row_h)], fill="black")
            d.text((pad + 270, y + 40), op, fill="black", font=font)
    legend = [("#dbeafe", "preprocessing"), ("#fde68a", "CLIP tower (frozen)"), ("#bbf7d0", "adapter projector"),
              ("#fecaca", "to the LLaMA adapter")]
    x = pad + 270
    for c, t in legend:
        d.rectangle((x, h - 26, x + 14, h - 12), fill=c, outline="black")
        d.text((x + 20, h - 28), t, fill="black", font=font)
        x += 200
    im = im.convert("P", palette=Image.ADAPTIVE, colors=32)
    im.save(OUT, optimize=True)
    print(OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
