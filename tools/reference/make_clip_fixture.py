#!/usr/bin/python3
"""Writes the tiny CLIP and adapter visual modules that lav2's vision tests load, plus goldens.

    tests/data/tiny_clip/ViT-tiny.pt          TorchScript (torch.jit.trace + torch.jit.save, fp16), a
                                              CLIP with OpenAI's module names: visual tower width 128
                                              (heads 2), 2 resblocks, patch 14, 224 px (257 tokens),
                                              out dim 32, and a small text tower (skipped by lav2)
    tests/data/tiny_clip/state_dict.pth       the same weights as torch.save(model.state_dict()), fp16
    tests/data/tiny_adapter/visual_only.pth   {'model': clip_proj, clip_proj_norm, visual_query (Q=10),
                                              visual_blocks.{0,1} (width 32, 16 heads, mlp 64), visual_proj (-> 64),
                                              visual_proj_norm; 'config': {...}} fp32, official layout
    tests/data/tiny_clip/golden/
        image_preprocessed.npy  (3, 224, 224) the fixture image through the official preprocessing
        clip_features_{image,zero}.npy  (1, 257, 32)   clip_encode_image, float64 reference -> f32
        visual_query_{image,zero}.npy   (1, 10, 64)    forward_visual, float64 reference -> f32
    "zero" is the all-zero normalised image (text-only samples in the official code).
    tests/data/tiny_clip/ts_small.pt          a traced module: lin = nn.Linear(2, 3) plus a constant tensor (reader unit test)
    tests/data/tiny_clip/ts_evil_os_system.pt        ts_small.pt with GLOBAL os.system in data.pkl
    tests/data/tiny_clip/ts_evil_builtins_eval.pt    ... with GLOBAL builtins.eval in constants.pkl

Deviations from ViT-L/14's layout, for fixture size (< 2 MB in total): the CLIP MLP hidden width is
width / 2 (64), not 4 x width, and the adapter blocks' MLP is 2 x width, not 4 x; lav2 reads both
from the tensors. Every weight is rounded to fp16 so the
TorchScript and state_dict files hold identical values.

Importable: clip_state_dict(seed), adapter_visual_state_dict(seed) return the state dicts (the
model engineer extends the adapter checkpoint with LLaMA-side tensors).
Run with Debian's python3-torch: /usr/bin/python3 tools/reference/make_clip_fixture.py
"""
import os
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from clip_ref import clip_encode_image, forward_visual  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLIP_DIR = os.path.join(ROOT, "tests", "data", "tiny_clip")
ADAPTER_DIR = os.path.join(ROOT, "tests", "data", "tiny_adapter")
IMAGE = os.path.join(ROOT, "tests", "data", "images", "resize", "021_449x300_mixed.png")

WIDTH, LAYERS, HIDDEN, PATCH, RES, OUT_DIM = 128, 2, 64, 14, 224, 32
TEXT_WIDTH, TEXT_LAYERS, VOCAB, CONTEXT = 16, 1, 16, 4
V_WIDTH, V_DEPTH, V_HEADS, V_MLP, QUERY_LEN, LLAMA_DIM = 32, 2, 16, 64, 10, 64
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


# ---- a CLIP with OpenAI's attribute names (clip/model.py), small dims ----------------------------
class LayerNorm(nn.LayerNorm):
    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d, n_head, hidden, attn_mask=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, n_head)
        self.ln_1 = LayerNorm(d)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(d, hidden)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(hidden, d))]))
        self.ln_2 = LayerNorm(d)
        self.attn_mask = attn_mask  # a plain tensor attribute: a constant in the traced archive

    def forward(self, x):
        m = self.attn_mask.to(dtype=x.dtype) if self.attn_mask is not None else None
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=m)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, hidden, attn_mask=None):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, hidden, attn_mask) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        grid = RES // PATCH
        self.conv1 = nn.Conv2d(3, WIDTH, PATCH, PATCH, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(WIDTH))
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, WIDTH))
        self.ln_pre = LayerNorm(WIDTH)
        self.transformer = Transformer(WIDTH, LAYERS, WIDTH // 64, HIDDEN)
        self.ln_post = LayerNorm(WIDTH)
        self.proj = nn.Parameter(torch.zeros(WIDTH, OUT_DIM))

    def forward(self, x):  # stock CLIP: ln_post on [CLS] only
        x = self.conv1(x).reshape(x.shape[0], WIDTH, -1).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, WIDTH, dtype=x.dtype)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.transformer(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class CLIP(nn.Module):
    def __init__(self):
        super().__init__()
        self.visual = VisionTransformer()
        mask = torch.full((CONTEXT, CONTEXT), float("-inf")).triu_(1)
        self.transformer = Transformer(TEXT_WIDTH, TEXT_LAYERS, 1, TEXT_WIDTH, mask)
        self.token_embedding = nn.Embedding(VOCAB, TEXT_WIDTH)
        self.positional_embedding = nn.Parameter(torch.zeros(CONTEXT, TEXT_WIDTH))
        self.ln_final = LayerNorm(TEXT_WIDTH)
        self.text_projection = nn.Parameter(torch.zeros(TEXT_WIDTH, OUT_DIM))
        self.logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))

    def forward(self, image, text):
        img = self.visual(image)
        x = self.token_embedding(text) + self.positional_embedding
        x = self.ln_final(self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2))
        txt = x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection
        return self.logit_scale.exp() * img @ txt.t()


def _fill(module, seed):
    """Random weights of O(1) activations, rounded to fp16."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or "ln_" in name and name.endswith("weight"):
                v = 1.0 + 0.1 * torch.randn(p.shape, generator=g)
            elif name.endswith("bias"):
                v = 0.1 * torch.randn(p.shape, generator=g)
            elif p.dim() >= 2:
                fan_in = p[0].numel() if not name.endswith("proj") else p.shape[0]
                v = torch.randn(p.shape, generator=g) / fan_in ** 0.5
            else:
                v = 0.5 * torch.randn(p.shape, generator=g)
            p.copy_(v.half().float())
    return module


def clip_model(seed=20240601):
    return _fill(CLIP(), seed).eval()


def clip_state_dict(seed=20240601):
    """CLIP's state_dict (names 'visual.conv1.weight', ...), fp32 values exactly representable in fp16."""
    return {k: v.detach().clone() for k, v in clip_model(seed).state_dict().items()}


def adapter_visual_state_dict(seed=20240602, clip_dim=OUT_DIM, width=V_WIDTH, depth=V_DEPTH, mlp=V_MLP,
                              query_len=QUERY_LEN, llama_dim=LLAMA_DIM):
    """The adapter checkpoint's visual tensors (the official checkpoint names), fp32."""
    g = torch.Generator().manual_seed(seed)
    lin = lambda o, i: torch.randn(o, i, generator=g) / i ** 0.5  # noqa: E731
    vec = lambda n, s=0.1: s * torch.randn(n, generator=g)  # noqa: E731
    sd = OrderedDict()
    sd["clip_proj.weight"], sd["clip_proj.bias"] = lin(width, clip_dim), vec(width)
    sd["clip_proj_norm.weight"], sd["clip_proj_norm.bias"] = 1 + vec(width), vec(width)
    sd["visual_query.weight"] = torch.randn(query_len, width, generator=g)
    for i in range(depth):
        p = "visual_blocks.%d." % i
        sd[p + "norm1.weight"], sd[p + "norm1.bias"] = 1 + vec(width), vec(width)
        sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"] = lin(3 * width, width), vec(3 * width)
        sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"] = lin(width, width), vec(width)
        sd[p + "norm2.weight"], sd[p + "norm2.bias"] = 1 + vec(width), vec(width)
        sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"] = lin(mlp, width), vec(mlp)
        sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"] = lin(width, mlp), vec(width)
    sd["visual_proj.weight"], sd["visual_proj.bias"] = lin(llama_dim, width), vec(llama_dim)
    sd["visual_proj_norm.weight"], sd["visual_proj_norm.bias"] = 1 + vec(llama_dim), vec(llama_dim)
    return sd


def preprocess(path):
    """The official path: cv2.imread (BGR) -> PIL -> Resize(224, bicubic) -> CenterCrop -> ToTensor -> Normalize."""
    rgb = np.asarray(Image.open(path).convert("RGB"))
    im = Image.fromarray(np.ascontiguousarray(rgb[:, :, ::-1]))  # cv2.imread gives BGR
    w, h = im.size
    short, long_ = min(w, h), max(w, h)
    size = (RES, int(RES * long_ / short)) if w <= h else (int(RES * long_ / short), RES)
    im = im.resize(size, Image.BICUBIC)
    top, left = int(round((size[1] - RES) / 2.0)), int(round((size[0] - RES) / 2.0))
    im = im.crop((left, top, left + RES, top + RES))
    x = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float().div(255)
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    return x.sub_(mean).div_(std)


def write_torchscript_reader_fixtures():
    """A small traced module, and two hostile copies whose pickles name executable globals."""
    import zipfile
    import re
    torch.manual_seed(7)

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 3)
            self.offset = torch.tensor([1.0, 2.0, 3.0])  # not a buffer: a constant in the archive

        def forward(self, x):
            return self.lin(x) + self.offset

    m = Small().eval()
    path = os.path.join(CLIP_DIR, "ts_small.pt")
    torch.jit.save(torch.jit.trace(m, torch.randn(1, 2)), path)
    with open(os.path.join(CLIP_DIR, "ts_small_expected.txt"), "w") as f:
        for k, v in m.state_dict().items():
            f.write("%s %s\n" % (k, " ".join("%.9g" % x for x in v.flatten().tolist())))

    def rewrite(dst, member_suffix, old, new):
        zin = zipfile.ZipFile(path)
        with zipfile.ZipFile(os.path.join(CLIP_DIR, dst), "w", zipfile.ZIP_STORED) as zout:
            for info in zin.infolist():
                data = zin.read(info.filename)
                if info.filename.endswith(member_suffix):
                    data, n = re.subn(old, new, data, count=1)
                    assert n == 1, (member_suffix, old)
                zout.writestr(info.filename, data)

    rewrite("ts_evil_os_system.pt", "/data.pkl", rb"c__torch__[^\n]*\n[^\n]*\n", b"cos\nsystem\n")
    rewrite("ts_evil_builtins_eval.pt", "/constants.pkl", rb"ctorch\._utils\n_rebuild_tensor_v2\n", b"cbuiltins\neval\n")


def main():
    os.makedirs(os.path.join(CLIP_DIR, "golden"), exist_ok=True)
    os.makedirs(ADAPTER_DIR, exist_ok=True)
    model = clip_model()
    sd = clip_state_dict()
    image = torch.randn(1, 3, RES, RES)
    text = torch.tensor([[1, 5, 7, 15]])
    traced = torch.jit.trace(model, (image, text))  # OpenAI's archives are traced
    traced = traced.half()
    torch.jit.save(traced, os.path.join(CLIP_DIR, "ViT-tiny.pt"))
    torch.save(OrderedDict((k, v.half()) for k, v in sd.items()), os.path.join(CLIP_DIR, "state_dict.pth"))

    write_torchscript_reader_fixtures()
    vsd = adapter_visual_state_dict()
    ckpt = {"model": vsd, "config": {"w_bias": True, "w_lora": False, "lora_rank": 16}}
    torch.save(ckpt, os.path.join(ADAPTER_DIR, "visual_only.pth"))

    img = preprocess(IMAGE)
    np.save(os.path.join(CLIP_DIR, "golden", "image_preprocessed.npy"), img.numpy().astype(np.float32))
    for case, x in (("image", img), ("zero", torch.zeros(3, RES, RES))):
        feats = clip_encode_image(sd, x)
        vq = forward_visual(vsd, feats, V_HEADS)
        np.save(os.path.join(CLIP_DIR, "golden", "clip_features_%s.npy" % case), feats[None].float().numpy())
        np.save(os.path.join(CLIP_DIR, "golden", "visual_query_%s.npy" % case), vq[None].float().numpy())
        print(case, "features", tuple(feats.shape), "std %.3f" % feats.std().item(), "vq", tuple(vq.shape))

    # Cross-check the reference against the torch modules (stock forward differs only after ln_post).
    with torch.no_grad():
        v = clip_model().visual
        ref_cls = clip_encode_image(sd, img, dtype=torch.float32)
        x = v.conv1(img[None]).reshape(1, WIDTH, -1).permute(0, 2, 1)
        x = torch.cat([v.class_embedding.expand(1, 1, WIDTH), x], 1) + v.positional_embedding
        x = v.transformer(v.ln_pre(x).permute(1, 0, 2)).permute(1, 0, 2)
        mod = v.ln_post(x[0]) @ v.proj
        print("reference vs torch modules, max diff %.2e" % (ref_cls - mod).abs().max().item())
    total = 0
    for d in (CLIP_DIR, os.path.join(CLIP_DIR, "golden"), ADAPTER_DIR):
        for f in os.listdir(d):
            if os.path.isfile(os.path.join(d, f)):
                total += os.path.getsize(os.path.join(d, f))
    print("fixture bytes", total)


if __name__ == "__main__":
    main()
