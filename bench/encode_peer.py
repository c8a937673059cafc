#!/usr/bin/env python3
"""bench/encode's peer: transformers' Qwen2-VL image processor on each image,
one at a time, one thread, timed from inside the loop (imports and warm-up
excluded): Image.open(path).convert("RGB") then processor(images=[im]).

  encode_peer.py --processor slow|fast [--warmup N] FILE...

slow: the PIL/numpy processor (Qwen2VLImageProcessorPil in transformers 5.x,
Qwen2VLImageProcessor(use_fast=False) in 4.x); fast: the torchvision one.
min_pixels 3136, max_pixels 12845056 (VLM-R1's). Prints one JSON line:
{"images", "seconds", "images_per_s", "patches", "processor", "versions"}."""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
import transformers  # noqa: E402

torch.set_num_threads(1)


def processor(kind):
    kw = dict(min_pixels=3136, max_pixels=12845056)
    if kind == "slow":
        try:
            from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import \
                Qwen2VLImageProcessorPil
            return Qwen2VLImageProcessorPil(**kw), "np"
        except ImportError:
            from transformers import Qwen2VLImageProcessor
            return Qwen2VLImageProcessor(use_fast=False, **kw), "np"
    import torchvision  # noqa: F401  (fails clearly when it is missing)
    try:
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
        p = Qwen2VLImageProcessor(**kw)
        if getattr(p, "backend", "torchvision") != "torchvision":
            raise ImportError
        return p, "pt"
    except ImportError:
        from transformers import Qwen2VLImageProcessorFast
        return Qwen2VLImageProcessorFast(**kw), "pt"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--processor", choices=["slow", "fast"], required=True)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    p, rt = processor(a.processor)

    def one(f):
        out = p(images=[Image.open(f).convert("RGB")], return_tensors=rt)
        return int(out["pixel_values"].shape[0])

    for f in a.files[:a.warmup]:
        one(f)
    t = time.perf_counter()
    patches = sum(one(f) for f in a.files)
    dt = time.perf_counter() - t
    versions = {"transformers": transformers.__version__, "torch": torch.__version__,
                "pillow": Image.__version__, "numpy": np.__version__}
    if a.processor == "fast":
        import torchvision
        versions["torchvision"] = torchvision.__version__
    print(json.dumps({"images": len(a.files), "seconds": round(dt, 4),
                      "images_per_s": round(len(a.files) / dt, 2), "patches": patches,
                      "processor": type(p).__name__, "versions": versions}))


if __name__ == "__main__":
    sys.exit(main())
