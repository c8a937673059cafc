#!/usr/bin/env python3
"""make_images.py: golden images and fixtures for vr-encode's decoding,
resampling and Qwen2-VL preprocessing (tests/unit/preprocess.c). CI never
runs this; everything it writes is committed.

  python3 tests/golden/make_images.py        (from the repository root)

Writes
  tests/golden/images/           the test images (JPEG: RGB 4:2:0, 4:4:4,
                                 progressive, grey, CMYK, wide; PNG: RGB, grey,
                                 1/2-bit grey, palette, 4-bit palette + tRNS,
                                 RGBA, grey+alpha, 16-bit grey/RGB/RGBA,
                                 Adam7-interlaced, tiny 10x40, large 3000x2000)
  tests/golden/preprocess/       per image and config, what transformers' slow
                                 (PIL) Qwen2VLImageProcessor returns
  tests/golden/resample/         PIL.Image.resize outputs for the resampler
  tests/golden/smart_resize.txt  transformers' smart_resize on many sizes
  tests/golden/images/index.json per image: PIL's convert("RGB") size and
                                 checksum (the decoder must match it exactly)
  tests/bad/images/              the bad-image corpus, one defect per file
                                 (PIL refuses each one too)

Reference semantics. Images go through Image.open(path).convert("RGB") before
the processor: that is what transformers <= 4.5x did inside the processor and
what VLM-R1 (our compatibility target) fed it; newer transformers composite
alpha onto white instead, which convert("RGB") does not. The processor is
Qwen2VLImageProcessorPil (transformers 5.x) or Qwen2VLImageProcessor with
use_fast=False (4.x), called with min_pixels/max_pixels of each config:
  vlmr1    3136 .. 12845056 (VLM-R1's defaults)
  small    3136 .. 10000    (so that most images are shrunk: antialiasing)
  minside  vlmr1, after VLM-R1's trainer step that enlarges an image whose
           short side is under 28 px (LANCZOS) - tiny images only

A preprocess fixture holds grid_thw (I64 [1,3]); u8 (U8 [k, 3*14*14]): the
byte values of the first frame of rows 0, s, 2s, ... of pixel_values (each
float is mapped back through the processor's own per-channel table of the 256
possible values; the script checks that this is exact and that every frame
equals the first); head (F32 [2, 1176]): rows 0 and N-1 verbatim. Its entry in
preprocess/index.json has the config, the row stride s, N, and wsum checksums
of the whole pixel_values (float32 bytes) and of the whole u8 array. wsum is
tests/unit/golden.h's checksum (sum (b[i]+1) * (((i+1)*K) | 1) mod 2^64).
"""
import json
import math
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image
from safetensors.numpy import save_file

try:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil as Proc, smart_resize)
    PROC_KW = {}
except ImportError:  # transformers 4.x: the slow processor is the PIL one
    from transformers import Qwen2VLImageProcessor as Proc
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize
    PROC_KW = {"use_fast": False}
import transformers
import PIL

G = "tests/golden"
IMG = f"{G}/images"
K = 0x9E3779B97F4A7C15
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
CONFIGS = {"vlmr1": (3136, 12845056, 0), "small": (3136, 10000, 0),
           "minside": (3136, 12845056, 28)}


def wsum(b):
    a = np.frombuffer(bytes(b), np.uint8).astype(np.uint64)
    i = np.arange(1, len(a) + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        w = (i * np.uint64(K)) | np.uint64(1)
        return "%016x" % int(((a + np.uint64(1)) * w).sum(dtype=np.uint64))


# ---- a PNG writer for what PIL cannot write (16-bit RGB, low bit depths,
# palettes with tRNS, Adam7) ----

def _chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)


def _rows(a, bit_depth):
    out = []
    for row in a:
        if bit_depth == 16:
            b = row.astype(">u2").tobytes()
        elif bit_depth == 8:
            b = row.astype(np.uint8).tobytes()
        else:
            v = row.reshape(-1).astype(np.uint32)
            per = 8 // bit_depth
            acc = bytearray((len(v) * bit_depth + 7) // 8)
            for i, x in enumerate(v):
                acc[i // per] |= int(x) << (8 - bit_depth * (i % per + 1))
            b = bytes(acc)
        out.append(b"\0" + b)
    return b"".join(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def write_png(path, arr, color_type, bit_depth, palette=None, trns=None, interlace=False):
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[:, :, None]
    h, w = a.shape[:2]
    if interlace:
        raw = b"".join(_rows(a[y0::dy, x0::dx], bit_depth)
                       for x0, y0, dx, dy in ADAM7 if a[y0::dy, x0::dx].size)
    else:
        raw = _rows(a, bit_depth)
    d = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth,
                                                           color_type, 0, 0, int(interlace)))
    if palette is not None:
        d += _chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).reshape(-1)))
    if trns is not None:
        d += _chunk(b"tRNS", trns)
    d += _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")
    open(path, "wb").write(d)


# ---- image content: smooth, photo-like, deterministic ----

def scene(w, h, seed):
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        a, b, p = r.uniform(-1, 1, 3)
        img[..., c] = 128 + 90 * np.sin(a * x / 23 + b * y / 17 + p * 6)
    for _ in range(6):
        cx, cy = r.uniform(0, w), r.uniform(0, h)
        rx, ry = r.uniform(3, w / 3 + 3), r.uniform(3, h / 3 + 3)
        m = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1
        img[m] = r.uniform(0, 255, 3)
    img += r.normal(0, 6, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make_images():
    os.makedirs(IMG, exist_ok=True)
    made = []

    def jpg(name, arr, mode="RGB", **kw):
        Image.fromarray(arr).convert(mode).save(f"{IMG}/{name}", **kw)
        made.append(name)

    def png(name, arr, mode=None, **kw):
        im = Image.fromarray(arr) if mode is None else Image.fromarray(arr).convert(mode)
        im.save(f"{IMG}/{name}", **kw)
        made.append(name)

    def raw(name, *a, **kw):
        write_png(f"{IMG}/{name}", *a, **kw)
        made.append(name)

    r = np.random.default_rng(1)
    jpg("rgb420_640x480.jpg", scene(640, 480, 1), quality=85)
    jpg("rgb444_301x199.jpg", scene(301, 199, 2), quality=92, subsampling=0)
    jpg("progressive_257x263.jpg", scene(257, 263, 3), quality=80, progressive=True,
        subsampling=1)
    jpg("grey_333x217.jpg", scene(333, 217, 4), mode="L", quality=88)
    jpg("cmyk_120x90.jpg", scene(120, 90, 5), mode="CMYK", quality=90)
    jpg("wide_1000x50.jpg", scene(1000, 50, 6), quality=85)
    png("rgb_211x143.png", scene(211, 143, 7))
    png("grey_199x101.png", scene(199, 101, 8), mode="L")
    png("palette_150x97.png", scene(150, 97, 9), mode="P")
    pal = r.integers(0, 256, (16, 3))
    raw("palette4_trns_73x61.png", r.integers(0, 16, (61, 73)), 3, 4, palette=pal,
        trns=bytes(r.integers(0, 256, 16).astype(np.uint8)))
    rgba = np.concatenate([scene(97, 131, 10), r.integers(0, 256, (131, 97, 1))], 2)
    png("rgba_97x131.png", rgba.astype(np.uint8))
    la = np.stack([scene(89, 67, 11)[..., 0], r.integers(0, 256, (67, 89))], 2)
    png("la_89x67.png", la.astype(np.uint8), mode="LA")
    g16 = (scene(123, 77, 12)[..., 1].astype(np.int64) * 3).clip(0, 65535)  # 0..765: PIL clips
    raw("grey16_123x77.png", g16, 0, 16)
    raw("rgb16_143x111.png", scene(143, 111, 13).astype(np.int64) * 257 + r.integers(0, 257, (111, 143, 3)), 2, 16)
    raw("rgba16_64x64.png", np.concatenate([scene(64, 64, 14).astype(np.int64) * 256,
                                            r.integers(0, 65536, (64, 64, 1))], 2), 6, 16)
    raw("grey2_45x33.png", r.integers(0, 4, (33, 45)), 0, 2)
    raw("grey1_40x20.png", r.integers(0, 2, (20, 40)), 0, 1)
    raw("interlaced_77x55.png", scene(77, 55, 15), 2, 8, interlace=True)
    png("tiny_10x40.png", scene(10, 40, 16))
    # large, and small on disk: flat bands and a few rectangles compress well
    big = np.zeros((2000, 3000, 3), np.uint8)
    big[..., 0] = (np.arange(3000) * 255 // 2999)[None, :]
    big[..., 1] = (np.arange(2000) * 255 // 1999)[:, None]
    big[..., 2] = 90
    for i in range(12):
        x0, y0 = (i * 617) % 2700, (i * 389) % 1800
        big[y0:y0 + 150 + 13 * i, x0:x0 + 200 + 7 * i] = ((i * 53) % 256, (i * 97) % 256, (i * 31) % 256)
    png("large_3000x2000.png", big, optimize=True)
    return made


# ---- preprocessing fixtures ----

def lut():
    """The processor's values for the 256 bytes, per channel: rescale in float64
    then float32, normalise in float32 (transformers' rescale and normalize)."""
    x = (np.arange(256, dtype=np.float64) * (1 / 255)).astype(np.float32)
    return np.stack([(x - np.float32(m)) / np.float32(s) for m, s in zip(MEAN, STD)])


def min_side(im, n=28):
    """VLM-R1's trainer (resize_image_min_size) on the RGB image."""
    w, h = im.size
    if w >= n and h >= n:
        return im
    if w < h:
        nw, nh = n, int(h * (n / w))
    else:
        nh, nw = n, int(w * (n / h))
    return im.resize((nw, nh), Image.Resampling.LANCZOS)


def make_preprocess(images):
    out = f"{G}/preprocess"
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        os.unlink(f"{out}/{f}")
    table = lut()
    index = []
    for name in images:
        stem = os.path.splitext(name)[0]
        for cname, (mn, mx, ms) in CONFIGS.items():
            if ms and "tiny" not in name:
                continue
            im = Image.open(f"{IMG}/{name}").convert("RGB")
            if ms:
                im = min_side(im, ms)
            proc = Proc(min_pixels=mn, max_pixels=mx, **PROC_KW)
            o = proc(images=[im], return_tensors="np")
            pv, grid = o["pixel_values"].astype(np.float32), o["image_grid_thw"].astype(np.int64)
            n = pv.shape[0]
            assert pv.shape[1] == 1176 and n == int(np.prod(grid))
            # (n, c, t, 196): the frames must be equal, and every value one of the table's
            v = pv.reshape(n, 3, 2, 196)
            assert (v[:, :, 0] == v[:, :, 1]).all()
            u8 = np.empty((n, 3, 196), np.uint8)
            for c in range(3):
                idx = np.searchsorted(table[c], v[:, c, 0])
                idx = idx.clip(0, 255)
                assert (table[c][idx] == v[:, c, 0]).all(), "value not in the processor's table"
                u8[:, c] = idx
            u8 = u8.reshape(n, 588)
            stride = max(1, math.ceil(n / 200))
            fn = f"{stem}.{cname}.safetensors"
            save_file({"grid_thw": grid, "u8": np.ascontiguousarray(u8[::stride]),
                       "head": np.ascontiguousarray(pv[[0, n - 1]])}, f"{out}/{fn}")
            index.append({"file": fn, "image": name, "config": cname, "min_pixels": mn,
                          "max_pixels": mx, "min_side": ms, "grid_thw": grid[0].tolist(),
                          "rows": n, "row_stride": stride, "wsum_f32": wsum(pv.tobytes()),
                          "wsum_u8": wsum(u8.tobytes())})
            print(f"  {fn}: grid {grid[0].tolist()}, {n} rows, stride {stride}")
    json.dump(index, open(f"{out}/index.json", "w"), indent=1)


def make_decode_index(images):
    idx = []
    for name in images:
        a = np.asarray(Image.open(f"{IMG}/{name}").convert("RGB"))
        m = Image.open(f"{IMG}/{name}").mode
        idx.append({"file": name, "pil_mode": m, "width": a.shape[1], "height": a.shape[0],
                    "wsum_rgb": wsum(a.tobytes())})
    json.dump(idx, open(f"{IMG}/index.json", "w"), indent=1)


# ---- resampler fixtures ----

def make_resample():
    out = f"{G}/resample"
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        os.unlink(f"{out}/{f}")
    r = np.random.default_rng(3)
    inputs = {"noise_37x23": r.integers(0, 256, (23, 37, 3)).astype(np.uint8),
              "scene_64x48": scene(64, 48, 20),
              "scene_150x20": scene(150, 20, 21),
              "grey_31x41": scene(31, 41, 22)[..., 0].copy()}
    cases = [  # input, ow, oh, filter
        ("noise_37x23", 74, 46, 3), ("noise_37x23", 20, 11, 3), ("noise_37x23", 41, 19, 3),
        ("noise_37x23", 30, 40, 3), ("noise_37x23", 37, 5, 3), ("noise_37x23", 3, 23, 3),
        ("scene_64x48", 644 // 7, 476 // 7, 3), ("scene_64x48", 28, 28, 3),
        ("scene_64x48", 130, 90, 3), ("scene_64x48", 63, 12, 3), ("scene_64x48", 56, 84, 1),
        ("scene_64x48", 17, 9, 1), ("scene_64x48", 70, 40, 2), ("scene_64x48", 33, 66, 4),
        ("scene_64x48", 80, 30, 5), ("scene_150x20", 28, 56, 3), ("scene_150x20", 112, 28, 3),
        ("scene_150x20", 1, 1, 3), ("grey_31x41", 56, 28, 3), ("grey_31x41", 14, 80, 1),
    ]
    tensors = {f"in.{k}": v for k, v in inputs.items()}
    index = []
    for i, (src, ow, oh, fl) in enumerate(cases):
        a = inputs[src]
        im = Image.fromarray(a)
        new = np.asarray(im.resize((ow, oh), resample=fl))
        # Pillow <= 12: always horizontal then vertical; each pass alone is
        # the same arithmetic in every version, so the composition is exact
        ih, iw = a.shape[:2]
        old = np.asarray(im.resize((ow, ih), resample=fl).resize((ow, oh), resample=fl))
        tensors[f"out{i}.pillow13"] = new
        tensors[f"out{i}.pillow12"] = old
        index.append({"case": i, "input": src, "width": ow, "height": oh, "filter": fl,
                      "orders_differ": bool((new != old).any())})
    save_file(tensors, f"{out}/cases.safetensors")
    json.dump(index, open(f"{out}/index.json", "w"), indent=1)


def make_smart_resize():
    r = np.random.default_rng(4)
    lines = ["# height width min_pixels max_pixels -> h_bar w_bar (or 'error'), from transformers "
             + transformers.__version__ + " smart_resize, factor 28"]
    cases = [(480, 640, 3136, 12845056), (1080, 1920, 3136, 12845056), (1080, 1920, 3136, 1003520),
             (40, 10, 3136, 12845056), (10, 40, 3136, 12845056), (1, 1, 3136, 12845056),
             (1, 200, 3136, 12845056), (1, 201, 3136, 12845056), (200, 1, 3136, 12845056),
             (14, 14, 3136, 12845056), (42, 42, 3136, 12845056), (70, 70, 3136, 12845056),
             (2000, 3000, 3136, 12845056), (2000, 3000, 3136, 40000), (50, 1000, 3136, 40000),
             (28, 5600, 3136, 40000), (5600, 28, 3136, 200704), (4000, 20, 3136, 12845056),
             (10000, 10000, 3136, 12845056), (30000, 30000, 3136, 12845056), (3, 600, 3136, 4000)]
    for _ in range(400):
        h, w = (int(v) for v in np.exp(r.uniform(0, 9, 2)).round().clip(1, 20000))
        mx = int(r.choice([12845056, 1003520, 200704, 40000, 3136 * 4]))
        cases.append((h, w, 3136, mx))
    for h, w, mn, mx in cases:
        try:
            hb, wb = smart_resize(h, w, 28, mn, mx)
            res = f"{hb} {wb}"
        except ValueError:
            res = "error"
        lines.append(f"{h} {w} {mn} {mx} {res}")
    open(f"{G}/smart_resize.txt", "w").write("\n".join(lines) + "\n")


# ---- the bad-image corpus (tests/bad/images/): one defect per file ----

def make_bad():
    out = "tests/bad/images"
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        os.unlink(f"{out}/{f}")
    good_jpg = open(f"{IMG}/rgb444_301x199.jpg", "rb").read()
    good_png = open(f"{IMG}/rgb_211x143.png", "rb").read()

    def put(name, data):
        open(f"{out}/{name}", "wb").write(data)

    put("zero_byte.jpg", b"")
    put("not_an_image.png", b"this is a text file, not an image\n")
    put("truncated.jpg", good_jpg[:len(good_jpg) * 6 // 10])
    put("truncated_header.jpg", good_jpg[:100])
    put("corrupt_marker.jpg", b"\xff\xd8\xff" + bytes(np.random.default_rng(5).integers(0, 256, 200, np.uint8)))
    # a valid small JPEG whose frame header claims 65000 x 65000
    j = bytearray(good_jpg)
    sof = j.index(b"\xff\xc0")
    j[sof + 5:sof + 9] = struct.pack(">HH", 65000, 65000)
    put("huge_65000x65000.jpg", bytes(j))
    put("truncated.png", good_png[:len(good_png) // 2])
    b = bytearray(good_png)
    b[29] ^= 0xff  # last byte of IHDR's CRC
    put("bad_crc.png", bytes(b))
    sig = b"\x89PNG\r\n\x1a\n"
    put("bad_bit_depth.png", sig + _chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 7, 0, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(b"\0" * 72)) + _chunk(b"IEND", b""))
    put("no_idat.png", sig + _chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
        + _chunk(b"IEND", b""))
    put("zero_width.png", sig + _chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 8, 8, 2, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(b"\0" * 8)) + _chunk(b"IEND", b""))
    put("corrupt_idat.png", sig + _chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
        + _chunk(b"IDAT", b"\x78\x9c" + bytes(range(40))) + _chunk(b"IEND", b""))
    # 100000 x 100000 1-bit grey: the header alone says 10^10 pixels
    put("huge_100000x100000.png", sig + _chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 1, 0, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(b"\0" * 12501 * 16)) + _chunk(b"IEND", b""))
    # a good PNG that the processor refuses: aspect ratio 201 > 200
    write_png(f"{out}/aspect_201x1.png", np.zeros((1, 201, 3), np.uint8), 2, 8)
    # what PIL and the processor say about each (the C side must refuse every one)
    Image.MAX_IMAGE_PIXELS = 178956970 // 2
    for f in sorted(os.listdir(out)):
        try:
            Proc(min_pixels=3136, max_pixels=12845056, **PROC_KW)(
                images=[Image.open(f"{out}/{f}").convert("RGB")], return_tensors="np")
            print(f"  {f}: PIL and the processor take it!")
            sys.exit(1)
        except Exception as e:
            print(f"  bad/{f}: {type(e).__name__}: {str(e)[:70]}")


def main():
    print(f"transformers {transformers.__version__}, Pillow {PIL.__version__}, "
          f"processor {Proc.__name__}")
    images = make_images()
    make_decode_index(images)
    make_preprocess(images)
    make_resample()
    make_smart_resize()
    make_bad()
    total = 0
    for d in ("images", "preprocess", "resample"):
        for f in os.listdir(f"{G}/{d}"):
            total += os.path.getsize(f"{G}/{d}/{f}")
    print(f"{len(images)} images; fixtures and images {total / 1e6:.2f} MB")


if __name__ == "__main__":
    sys.exit(main())
