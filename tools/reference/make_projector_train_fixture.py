#!/usr/bin/python3
"""Writes tests/data/train/projector/: the gradients of the visual projector (clip_ref.forward_visual,
in float32 with autograd) of tests/data/tiny_adapter/visual_only.pth (width 32, 2 blocks, 16 heads,
Q 10, dim 64), for a batch of two images' CLIP features (tests/data/tiny_clip/golden
clip_features_image.npy and clip_features_zero.npy, 257 tokens each), under the loss
sum(c * vq) with a fixed random cotangent c [2, 10, 64] (cotangent.npy): grad_<key>.npy for
every projector tensor (all trainable in the official pretrain stage) and vq.npy (the forward).
Run with Debian's python3-torch:  /usr/bin/python3 tools/reference/make_projector_train_fixture.py
"""
import os

import numpy as np
import torch

from clip_ref import forward_visual

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "tests", "data")
OUT = os.path.join(DATA, "train", "projector")


def main():
    sd = torch.load(os.path.join(DATA, "tiny_adapter", "visual_only.pth"))["model"]
    leaves = {k: v.float().clone().requires_grad_(True) for k, v in sd.items()}
    golden = os.path.join(DATA, "tiny_clip", "golden")
    feats = [torch.from_numpy(np.load(os.path.join(golden, f)))[0] for f in
             ("clip_features_image.npy", "clip_features_zero.npy")]
    vq = torch.stack([forward_visual(leaves, f, heads=16, dtype=torch.float32) for f in feats])
    c = torch.from_numpy(np.random.RandomState(5).uniform(-1, 1, vq.shape).astype(np.float32))
    (vq * c).sum().backward()
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    np.save(os.path.join(OUT, "cotangent.npy"), c.numpy())
    np.save(os.path.join(OUT, "vq.npy"), vq.detach().numpy())
    for k, t in leaves.items():
        np.save(os.path.join(OUT, f"grad_{k}.npy"), t.grad.numpy().astype(np.float32))
    print(OUT, len(leaves), "gradients")


if __name__ == "__main__":
    main()
