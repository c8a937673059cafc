#!/usr/bin/env python3
"""make_bad_safetensors.py: the malformed-safetensors corpus, tests/bad/safetensors/.
Each file (or folder, for sharded checkpoints) has exactly one defect, named
after it; everything else is the valid two-tensor file `base` below. Run from
the repository root; the outputs are committed and tests/t0200-bad-safetensors.sh
feeds each to vr-inspect (exit 1, one line on stderr naming the file).

With Python safetensors installed it also reports which files the reference
reader accepts: vr is stricter on a few (duplicate keys, unknown entry fields,
more than 5 dimensions), by design (lib/safetensors.h)."""
import json
import os
import shutil
import struct

OUT = "tests/bad/safetensors"
DATA = struct.pack("<4f", 1, 2, 3, 4) + bytes([5, 6, 7, 8])  # a: F32 [2,2]; b: U8 [4]

A = '"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}'
B = '"b":{"dtype":"U8","shape":[4],"data_offsets":[16,20]}'


def st(header, data=DATA, hlen=None, pad=True):
    """A safetensors file: u64 header length, header (str or bytes, padded
    with spaces to 8 unless pad is False), data."""
    h = header.encode() if isinstance(header, str) else header
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data


def hdr(*entries):
    return "{" + ",".join(entries) + "}"


base = st(hdr(A, B))

FILES = {
    "zero-byte": b"",
    "7-bytes": base[:7],
    "header-length-truncated": base[:4],
    "header-length-zero": struct.pack("<Q", 0),
    "header-length-past-eof": st(hdr(A, B), hlen=4096),
    "header-length-100MB-plus-1": st(hdr(A, B), hlen=100_000_001),
    "header-length-max-u64": st(hdr(A, B), hlen=2 ** 64 - 1),
    "header-not-json": st("{a: F32, b: U8}"),
    "header-json-array": st('[{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}]'),
    "header-not-starting-with-brace": st(" " + hdr(A, B)),
    "header-trailing-garbage": st(hdr(A, B) + "}"),
    "header-nul-padding": st(hdr(A, B).encode() + b"\0" * (-len(hdr(A, B)) % 8 or 8), pad=False),
    "header-invalid-utf8": st(hdr(A, B).replace('"b"', '"b\xff"').encode("latin-1")),
    "duplicate-keys": st(hdr(A, B, B)),
    "unknown-dtype": st(hdr(A.replace("F32", "F33"), B)),
    "dtype-lowercase": st(hdr(A.replace("F32", "f32"), B)),
    "dtype-not-string": st(hdr(A.replace('"F32"', "11"), B)),
    "shape-negative": st(hdr(A.replace("[2,2]", "[-2,-2]"), B)),
    "shape-not-ints": st(hdr(A.replace("[2,2]", "[2.0,2]"), B)),
    "shape-not-list": st(hdr(A.replace("[2,2]", '"2x2"'), B)),
    "shape-6d": st(hdr(A.replace("[2,2]", "[1,1,1,1,2,2]"), B)),
    "shape-int-too-big": st(hdr(A.replace("[2,2]", "[2,99999999999999999999]"), B)),
    "shape-product-overflows-u64": st(hdr(A.replace("[2,2]", "[4294967296,4294967296,16]"), B)),
    "offsets-reversed": st(hdr(A.replace("[0,16]", "[16,0]"), B)),
    "offsets-negative": st(hdr(A.replace("[0,16]", "[-16,0]"), B)),
    "offsets-past-end": st(hdr(A, B), data=DATA[:-1]),
    "offsets-huge": st(hdr(A, B.replace("[16,20]", "[16,9223372036854775807]"))),
    "offsets-overlap": st(hdr(A, B.replace("[16,20]", "[12,16]")), data=DATA[:16]),
    "offsets-gap": st(hdr(A, B.replace("[16,20]", "[17,21]")), data=DATA[:16] + b"\0" + DATA[16:]),
    "offsets-not-from-zero": st(hdr(A.replace("[0,16]", "[4,20]"), B.replace("[16,20]", "[20,24]")),
                                data=b"\0" * 4 + DATA),
    "trailing-bytes": st(hdr(A, B), data=DATA + b"\0"),
    "size-not-dtype-times-shape": st(hdr(A.replace("[2,2]", "[2,3]"), B)),
    "data-offsets-3-ints": st(hdr(A.replace("[0,16]", "[0,8,16]"), B)),
    "data-offsets-missing": st(hdr(A.replace(',"data_offsets":[0,16]', ""), B)),
    "entry-missing-dtype": st(hdr(A.replace('"dtype":"F32",', ""), B)),
    "entry-missing-shape": st(hdr(A.replace('"shape":[2,2],', ""), B)),
    "entry-extra-field": st(hdr(A.replace("}", ',"extra":1}'), B)),
    "entry-not-object": st(hdr('"a":[0,16]', B)),
    "metadata-non-string-value": st(hdr('"__metadata__":{"format":1}', A, B)),
    "metadata-not-object": st(hdr('"__metadata__":"pt"', A, B)),
}


def write_shards(folder, index, shards):
    os.makedirs(folder)
    for fn, data in shards.items():
        with open(os.path.join(folder, fn), "wb") as f:
            f.write(data)
    if index is not None:
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            f.write(index if isinstance(index, str) else json.dumps(index, indent=2, sort_keys=True) + "\n")


S1, S2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
SH1 = st(hdr(A), data=DATA[:16])
SH2 = st(hdr(B.replace("[16,20]", "[0,4]")), data=DATA[16:])


def index(wm):
    return {"metadata": {"total_size": 20}, "weight_map": wm}


FOLDERS = {
    "sharded-missing-shard": (index({"a": S1, "b": S2}), {S1: SH1}),
    "sharded-tensor-not-in-shard": (index({"a": S1, "b": S2, "c": S2}), {S1: SH1, S2: SH2}),
    "sharded-tensor-in-other-shard": (index({"a": S2, "b": S2}), {S1: SH1, S2: SH2}),
    "sharded-bad-shard": (index({"a": S1, "b": S2}), {S1: SH1, S2: SH2[:12]}),
    "sharded-index-not-json": ('{"weight_map": {"a": "' + S1 + '",}}\n', {S1: SH1}),
    "sharded-index-no-weight-map": ({"metadata": {"total_size": 16}}, {S1: SH1}),
    "sharded-index-value-not-string": (index({"a": 1}), {S1: SH1}),
    "sharded-shard-outside-folder": (index({"a": "../" + S1}), {S1: SH1}),
    "folder-without-weights": (None, {"config.json": b"{}\n"}),
}


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    for name, data in FILES.items():
        with open(f"{OUT}/{name}.safetensors", "wb") as f:
            f.write(data)
    for name, (idx, shards) in FOLDERS.items():
        write_shards(f"{OUT}/{name}", idx, shards)
    print(f"{len(FILES)} files, {len(FOLDERS)} folders in {OUT}")
    try:
        from safetensors import safe_open
    except ImportError:
        return
    # the valid base really is valid, for the reference too
    with open("/tmp/base.safetensors", "wb") as f:
        f.write(base)
    with safe_open("/tmp/base.safetensors", "np") as f:
        assert f.get_tensor("a").tolist() == [[1, 2], [3, 4]]
    os.unlink("/tmp/base.safetensors")
    for name in FILES:
        try:
            with safe_open(f"{OUT}/{name}.safetensors", "np") as f:
                for k in f.keys():
                    f.get_tensor(k)
            print(f"  reference accepts {name}")
        except Exception as e:
            print(f"  reference rejects {name}: {str(e).splitlines()[0][:90]}")


if __name__ == "__main__":
    main()
