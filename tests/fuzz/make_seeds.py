#!/usr/bin/env python3
"""Write the binary seeds of tests/fuzz/corpus (safetensors files, tiny PNGs):
small valid inputs, one feature each, for libFuzzer to mutate. Standard
library only. Run from the top: python3 tests/fuzz/make_seeds.py. The text
seeds are committed as written by hand; the pixel cache entry
(safetensors_header/pixel-entry-8x8.safetensors) is vr-encode's output for
tests/fuzz/corpus/image_decode/rgb-8x8.jpg (see tests/fuzz/README.md)."""
import json
import os
import struct
import zlib

C = "tests/fuzz/corpus"


def safetensors(path, tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, bytes), laid out in that order."""
    header, off, data = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    with open(os.path.join(C, "safetensors_header", path), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def png(path, w, h, colour, depth, rows, interlace=0):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    raw = b"".join(b"\0" + r for r in rows)
    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, interlace))
    body += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    with open(os.path.join(C, "image_decode", path), "wb") as f:
        f.write(body)


def main():
    os.makedirs(os.path.join(C, "safetensors_header"), exist_ok=True)
    os.makedirs(os.path.join(C, "image_decode"), exist_ok=True)
    f32 = struct.pack("<4f", 1.0, -2.5, 0.0, 3.25)
    safetensors("empty-header.safetensors", [])
    safetensors("one-f32.safetensors", [("w", "F32", [2, 2], f32)])
    safetensors("metadata.safetensors", [("b", "BF16", [3], b"\x80\x3f\x00\x40\x00\xc0")],
                {"format": "pt", "note": "x"})
    safetensors("zero-elements.safetensors", [("e", "F16", [0, 4], b""), ("s", "F32", [], f32[:4])])
    safetensors("unpadded-unaligned.safetensors", [("u8", "U8", [3], b"abc"), ("f", "F32", [1], f32[:4])],
                pad=False)
    safetensors("all-int-dtypes.safetensors",
                [(n, d, [1], b"\1" * s) for n, d, s in
                 [("a", "I64", 8), ("b", "U64", 8), ("c", "F64", 8), ("d", "I32", 4), ("e", "U32", 4),
                  ("f", "I16", 2), ("g", "U16", 2), ("h", "I8", 1), ("i", "BOOL", 1)]])
    safetensors("five-dims.safetensors", [("x", "F32", [1, 1, 1, 2, 2], f32)])
    png("grey-1x1.png", 1, 1, 0, 8, [b"\x80"])
    png("rgba-3x2.png", 3, 2, 6, 8, [bytes(range(12)), bytes(range(12, 24))])
    png("grey16-2x2.png", 2, 2, 0, 16, [b"\x00\x01\xff\xfe", b"\x12\x34\x56\x78"])
    png("palette-interlaced-4x4.png", 4, 4, 0, 1, [b"\xa0", b"\x50", b"\xa0", b"\x50"], interlace=1)


if __name__ == "__main__":
    main()
