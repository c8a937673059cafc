#!/usr/bin/env python3
"""make_safetensors.py: golden safetensors fixtures, written by the reference
implementation (Python safetensors) and PyTorch, for tests/unit/safetensors.c,
tests/unit/tensor.c and tests/t0201-inspect.sh. CI never runs this; the
outputs in tests/golden/safetensors/ are committed.

  python3 tests/golden/make_safetensors.py
      (re)write tests/golden/safetensors/ (run from the repository root)
  python3 tests/golden/make_safetensors.py --check-vr DIR
      load with Python safetensors (and transformers' sharded loader) the files
      that `build/tests/safetensors.t --write DIR` wrote, and check names,
      dtypes, shapes, values and the index; exit 1 on any difference

Needs numpy, torch, safetensors; --check-vr also huggingface_hub/transformers.

Checksums: `wsum` of a byte string b is
    sum_i (b[i] + 1) * (((i + 1) * 0x9E3779B97F4A7C15 mod 2^64) | 1)  mod 2^64
printed as 16 hex digits; tests/unit/golden.h computes the same. Any one
changed byte changes it (the weight is odd)."""
import json
import os
import struct
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

OUT = "tests/golden/safetensors"
K = 0x9E3779B97F4A7C15
M64 = (1 << 64) - 1

DT = {  # safetensors name -> torch dtype
    "BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
    "I16": torch.int16, "U16": torch.uint16, "F16": torch.float16,
    "BF16": torch.bfloat16, "I32": torch.int32, "U32": torch.uint32,
    "F32": torch.float32, "F64": torch.float64, "I64": torch.int64,
    "U64": torch.uint64,
}
NAME = {v: k for k, v in DT.items()}
FLOAT = {"F8_E4M3", "F8_E5M2", "F16", "BF16", "F32", "F64"}


def wsum(b):
    a = np.frombuffer(bytes(b), np.uint8).astype(np.uint64)
    i = np.arange(1, len(a) + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        w = (i * np.uint64(K)) | np.uint64(1)
        return "%016x" % int(((a + np.uint64(1)) * w).sum(dtype=np.uint64))


def raw(t):
    """The little-endian bytes of a contiguous tensor."""
    t = t.contiguous()
    if t.numel() == 0:
        return b""
    return t.reshape(-1).view(torch.uint8).numpy().tobytes()


def from_bits(bits, dtype):
    """Tensor of dtype whose bit patterns are bits (u16 or u32 list)."""
    w = {2: np.uint16, 4: np.uint32}[torch.tensor([], dtype=dtype).element_size()]
    a = np.asarray(bits, dtype=np.uint64).astype(w)
    it = {2: torch.int16, 4: torch.int32}[a.itemsize]
    return torch.from_numpy(a.view({2: np.int16, 4: np.int32}[a.itemsize]).copy()).view(it).view(dtype)


def bits16(t):
    return t.contiguous().view(torch.int16).numpy().view(np.uint16)


def bits32(t):
    return t.contiguous().view(torch.int32).numpy().view(np.uint32)


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = f.read(n)
    return n, json.loads(h)  # keeps the file's key order


def describe(path, hex_limit=512):
    """What the C test checks about a file: header length, metadata and, in
    file order, each tensor's name, dtype, shape, offsets, checksum (and
    bytes in hex when small)."""
    n, h = read_header(path)
    data = open(path, "rb").read()[8 + n:]
    ents = []
    for k, v in h.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        ent = {"name": k, "dtype": v["dtype"], "shape": v["shape"], "data_offsets": [b, e],
               "wsum": wsum(data[b:e])}
        if e - b <= hex_limit:
            ent["hex"] = data[b:e].hex()
        ents.append(ent)
    ents.sort(key=lambda x: x["data_offsets"])
    return {"header_len": n, "metadata": h.get("__metadata__"), "tensors": ents}


# ---- (a) every dtype, odd shapes, metadata ----

def dtypes_file():
    g = torch.Generator().manual_seed(1234)
    t = {}
    t["f32.scalar"] = torch.tensor(3.5, dtype=torch.float32)
    t["f32.empty"] = torch.zeros(2, 0, 3, dtype=torch.float32)
    t["f32.5d"] = (torch.arange(12, dtype=torch.float32) * 0.5 - 1.0).reshape(2, 1, 3, 1, 2)
    t["f32.vec"] = from_bits([0x3f800000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000,
                              0x00000001, 0x7f7fffff, 0x3eaaaaab], torch.float32)
    t["bf16.vec"] = torch.tensor([1.5, -0.0, 3.0e38, 1e-40, float("inf"), -2.25, 0.1],
                                 dtype=torch.float32).to(torch.bfloat16)
    t["bf16.mat"] = torch.randn(5, 3, generator=g).to(torch.bfloat16)
    t["f16.mat"] = torch.tensor([[0.5, -1, 65504, 6e-8], [1e-4, 3.14159, -0.0, 2048],
                                 [float("-inf"), 0.1, 7, -7]], dtype=torch.float32).to(torch.float16)
    t["f64.vec"] = torch.tensor([3.141592653589793, -1e-300, 2.0 ** 60, 5e-324], dtype=torch.float64)
    t["i32.mat"] = torch.tensor([[-2 ** 31, 2 ** 31 - 1, 0], [-1, 7, 123456]], dtype=torch.int32)
    t["i64.vec"] = torch.tensor([-2 ** 63, 2 ** 63 - 1, -1, 2 ** 53 + 1], dtype=torch.int64)
    t["u8.img"] = torch.arange(0, 252, 21, dtype=torch.uint8).reshape(2, 2, 3)
    t["u8.zero-dim"] = torch.zeros(0, dtype=torch.uint8)
    t["bool.mask"] = torch.tensor([True, False, False, True, True])
    t["i8.vec"] = torch.tensor([-128, 127, 0, -1], dtype=torch.int8)
    t["i16.vec"] = torch.tensor([-32768, 32767, 5], dtype=torch.int16)
    t["u16.vec"] = torch.tensor([0, 65535, 258], dtype=torch.uint16)
    t["u32.vec"] = torch.tensor([0, 2 ** 32 - 1], dtype=torch.uint32)
    t["u64.vec"] = torch.tensor([0, 2 ** 63 - 1, 12345678901234], dtype=torch.uint64)
    t["f8e4m3.vec"] = torch.tensor([0.5, -448, 1.75, 0.015625], dtype=torch.float32).to(torch.float8_e4m3fn)
    t["f8e5m2.vec"] = torch.tensor([0.5, -57344, 1.5, float("inf")], dtype=torch.float32).to(torch.float8_e5m2)
    t['odd "name"\\ \u00fc\u2713'] = torch.tensor([1, 2], dtype=torch.int32)
    meta = {"format": "pt", "source": "tests/golden/make_safetensors.py", "unicode": "h\u00e9llo \u2713"}
    save_file(t, f"{OUT}/dtypes.safetensors", metadata=meta)


# ---- (b) float conversions against PyTorch ----

def tricky_f32():
    b = [0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000]
    # NaNs: quiet, signalling, with payloads, both signs; some that a naive
    # truncation would turn into inf
    b += [0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fbfffff, 0x7fc00001, 0x7fffffff,
          0xffffffff, 0x7fa5a5a5, 0xffc12345, 0x7f80ffff, 0x7f807fff, 0x7f808000, 0x7f810000,
          0x7fa00000, 0xffbfe000]
    # largest finite, the values that round to inf in bf16 / f16
    b += [0x7f7fffff, 0xff7fffff, 0x7f7f7fff, 0x7f7f8000, 0x7f7e8000, 0x7f7effff]
    b += [0x477fe000, 0x477fefff, 0x477ff000, 0x477ff001, 0x47800000, 0xc77ff000, 0x477fd000]
    # denormals and the normal boundary
    b += [0x00000001, 0x80000001, 0x007fffff, 0x00400000, 0x00008000, 0x00018000, 0x00010000,
          0x00017fff, 0x00800000, 0x807fffff, 0x0000ffff, 0x00007fff]
    # f16 subnormal range and its edges: 2^-24, 2^-25 (tie to 0), just above
    b += [0x33800000, 0x33000000, 0x33000001, 0x32ffffff, 0x33400000, 0x33c00000, 0x33a00000,
          0x38800000, 0x387fffff, 0x387fe000, 0x387fc000, 0x387ff000, 0x38000000, 0xb3000001]
    # ties: bf16 (low 16 bits 0x8000) and f16 (low 13 bits 0x1000)
    b += [0x3f808000, 0x3f818000, 0xbf808000, 0xbf818000, 0x3f808001, 0x3f807fff, 0x40490fdb]
    b += [0x3f801000, 0x3f803000, 0xbf801000, 0x3f801001, 0x3f800fff, 0x3dcccccd, 0x3eaaaaab]
    # midpoints between neighbouring f16 values across the whole range, and 1 ulp either side
    for p in list(range(0, 0x7c00, 97)) + [0x3ff, 0x400, 0x7bfe, 0x7bff]:
        lo = float(from_bits([p], torch.float16).float())
        hi = float(from_bits([p + 1], torch.float16).float())
        m = int(bits32(torch.tensor([(lo + hi) / 2], dtype=torch.float32))[0])
        for s in (0, 0x80000000):
            b += [m | s, (m + 1) | s, (m - 1) | s]
    rng = np.random.default_rng(20240601)
    b += [int(x) for x in rng.integers(0, 2 ** 32, 512, dtype=np.uint64)]
    b += [int(x) for x in bits32(torch.from_numpy(rng.standard_normal(256).astype(np.float32) * 10))]
    b += [int(x) for x in bits32(torch.from_numpy((rng.random(128) * 2 ** -14).astype(np.float32)))]
    return b


def pattern_sample(expbits, mantbits):
    """All 16-bit patterns with exponent all-0 or all-1 (zeros, subnormals,
    inf, NaN), and every 61st of the rest."""
    out = []
    for p in range(1 << 16):
        e = (p >> mantbits) & ((1 << expbits) - 1)
        if e == 0 or e == (1 << expbits) - 1 or p % 61 == 0:
            out.append(p)
    return out


def rand_f32_bits():
    """The stream of f32 bit patterns that tensor.c regenerates: 2^20
    multiplicative-hash values, then 2^18 forced to bf16 ties and 2^18 to f16
    ties. Keep in step with rand_f32_bits in tests/unit/tensor.c."""
    i = np.arange(1 << 20, dtype=np.uint64)
    u = ((i * np.uint64(2654435761) + np.uint64(12345)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    t_bf = (u[: 1 << 18] & np.uint32(0xFFFF0000)) | np.uint32(0x8000)
    t_h = (u[1 << 18: 1 << 19] & np.uint32(0xFFFFE000)) | np.uint32(0x1000)
    return np.concatenate([u, t_bf, t_h])


def conversions():
    x = from_bits(tricky_f32(), torch.float32)
    bi = from_bits(pattern_sample(8, 7), torch.bfloat16)
    hi = from_bits(pattern_sample(5, 10), torch.float16)
    t = {"f32": x, "f32.bf16": x.to(torch.bfloat16), "f32.f16": x.to(torch.float16),
         "bf16.in": bi, "bf16.in.f32": bi.to(torch.float32),
         "f16.in": hi, "f16.in.f32": hi.to(torch.float32)}
    save_file(t, f"{OUT}/floats.safetensors", metadata={"format": "pt"})

    # exhaustive and random tables, NaN outputs canonicalised (torch's NaN
    # bits depend on the code path: see "nan" below)
    u = torch.from_numpy(rand_f32_bits().view(np.float32).copy())
    res = {}
    for name, dt in (("bf16", torch.bfloat16), ("f16", torch.float16)):
        y = u.to(dt)
        yb = bits16(y).copy()
        yb[torch.isnan(y).numpy()] = 0x7fff
        res[f"f32_to_{name}_random"] = {"n": int(len(yb)), "wsum": wsum(yb.tobytes())}
        allp = from_bits(list(range(1 << 16)), dt).to(torch.float32)
        ab = bits32(allp).copy()
        ab[torch.isnan(allp).numpy()] = 0x7fffffff
        res[f"{name}_to_f32_all"] = {"n": 65536, "wsum": wsum(ab.tobytes())}
    nan = {}
    for v in (0x7fc00000, 0xffc00000, 0x7f800001, 0xffc12345, 0x7fa00000):
        xx = from_bits([v] * 64, torch.float32)
        nan["%08x" % v] = {"bf16": "%04x" % bits16(xx.to(torch.bfloat16))[0],
                           "f16": "%04x" % bits16(xx.to(torch.float16))[0]}
    for v in (0x7c01, 0xfe00, 0x7d55):
        nan["f16:%04x" % v] = {"f32": "%08x" % bits32(from_bits([v] * 64, torch.float16).float())[0]}
    res["nan"] = nan
    res["torch"] = torch.__version__
    res["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return res


# ---- (c) a sharded checkpoint as transformers writes it ----

def qwen_tiny_state_dict(seed):
    g = torch.Generator().manual_seed(seed)
    V, D, F, KV = 32, 8, 16, 4
    sd = {"model.embed_tokens.weight": (V, D)}
    for i in range(2):
        p = f"model.layers.{i}."
        sd.update({p + "input_layernorm.weight": (D,), p + "post_attention_layernorm.weight": (D,),
                   p + "self_attn.q_proj.weight": (D, D), p + "self_attn.q_proj.bias": (D,),
                   p + "self_attn.k_proj.weight": (KV, D), p + "self_attn.k_proj.bias": (KV,),
                   p + "self_attn.v_proj.weight": (KV, D), p + "self_attn.v_proj.bias": (KV,),
                   p + "self_attn.o_proj.weight": (D, D), p + "mlp.gate_proj.weight": (F, D),
                   p + "mlp.up_proj.weight": (F, D), p + "mlp.down_proj.weight": (D, F)})
    sd.update({"model.norm.weight": (D,), "lm_head.weight": (V, D)})
    return {k: (torch.randn(*s, generator=g) * 0.1).to(torch.bfloat16) for k, s in sd.items()}


def write_sharded(sd, folder, max_shard_size):
    from huggingface_hub import split_torch_state_dict_into_shards
    split = split_torch_state_dict_into_shards(sd, max_shard_size=max_shard_size)
    os.makedirs(folder, exist_ok=True)
    for fn, names in split.filename_to_tensors.items():
        save_file({k: sd[k].contiguous() for k in names}, os.path.join(folder, fn),
                  metadata={"format": "pt"})
    # transformers' save_pretrained: metadata + weight_map, indent 2, sorted keys
    index = {"metadata": {"total_parameters": sum(t.numel() for t in sd.values()),
                          **split.metadata},
             "weight_map": split.tensor_to_filename}
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return split


def unaligned_file(path):
    """Valid per the format (the reference reads it) but an F32 tensor starts
    at an odd offset: vr_safetensors_view must refuse it, _read copy it."""
    hdr = {"a.u8": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
           "b.f32": {"dtype": "F32", "shape": [2], "data_offsets": [1, 9]}}
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    data = b"\x2a" + struct.pack("<2f", 1.5, -2.0)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)
    with safe_open(path, "pt") as f:  # the reference accepts it
        assert f.get_tensor("b.f32").tolist() == [1.5, -2.0]


# ---- expected vr-inspect output (emulates lib/jsonl.c's writer) ----

def fmt_real(x):
    import math
    if not math.isfinite(x):
        return "null"
    f = np.float32(x) if abs(x) <= 3.4028234663852886e38 else None
    if f is not None and float(f) == x:
        for p in range(6, 10):
            s = "%.*g" % (p, x)
            if np.float32(float(s)) == f:
                break
    else:
        for p in range(15, 18):
            s = "%.*g" % (p, x)
            if float(s) == x:
                break
    if not any(c in s for c in ".eEn"):
        s += ".0"
    return s


def jstr(s):
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif c < 0x20:
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}.get(ch, "\\u%04x" % c))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def jdump(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return fmt_real(v)
    if isinstance(v, str):
        return jstr(v)
    if isinstance(v, list):
        return "[" + ",".join(jdump(x) for x in v) + "]"
    return "{" + ",".join(jstr(k) + ":" + jdump(x) for k, x in v.items()) + "}"


def f8e4m3_to_f32(b):
    s = -1.0 if b & 0x80 else 1.0
    e, m = (b >> 3) & 15, b & 7
    if e == 15 and m == 7:
        return float("nan")
    if e == 0:
        return s * m * 2.0 ** -9
    return s * (1 + m / 8) * 2.0 ** (e - 7)


def values_f64(path, name, dtype):
    with safe_open(path, "pt") as f:
        t = f.get_tensor(name)
    if dtype == "F8_E4M3":  # decode by the spec, as vr does
        return [f8e4m3_to_f32(int(b)) for b in t.reshape(-1).view(torch.uint8).tolist()]
    return [float(v) for v in t.reshape(-1).to(torch.float64).tolist()]


def inspect_lines(rel, root, stats=False):
    path = os.path.join(root, rel)
    n, h = read_header(path)
    ents = sorted(((k, v) for k, v in h.items() if k != "__metadata__"),
                  key=lambda kv: kv[1]["data_offsets"])
    lines = []
    import math
    for k, v in ents:
        b, e = v["data_offsets"]
        o = {"file": rel, "name": k, "dtype": v["dtype"], "shape": v["shape"], "offset": 8 + n + b,
             "bytes": e - b}
        if stats and v["dtype"] in FLOAT:
            xs = values_f64(path, k, v["dtype"])
            fin = [x for x in xs if math.isfinite(x)]
            s = 0.0
            for x in fin:  # the same order and precision as vr-inspect
                s += x
            o["min"] = min(fin) if fin else None
            o["max"] = max(fin) if fin else None
            o["mean"] = s / len(fin) if fin else None
            o["nan"] = sum(1 for x in xs if math.isnan(x))
            o["inf"] = sum(1 for x in xs if math.isinf(x))
        lines.append(jdump(o))
    return lines


def header_line(rel, root):
    path = os.path.join(root, rel)
    n, h = read_header(path)
    size = os.path.getsize(path)
    o = {"file": rel, "header_bytes": n, "data_bytes": size - 8 - n,
         "tensors": sum(1 for k in h if k != "__metadata__"), "metadata": h.get("__metadata__")}
    return jdump(o)


def make():
    os.makedirs(OUT, exist_ok=True)
    dtypes_file()
    conv = conversions()
    sd = qwen_tiny_state_dict(7)
    split = write_sharded(sd, f"{OUT}/sharded", 2000)
    assert len(split.filename_to_tensors) == 2, split.filename_to_tensors.keys()
    one = qwen_tiny_state_dict(8)
    os.makedirs(f"{OUT}/single", exist_ok=True)
    save_file({k: one[k] for k in ("model.norm.weight", "lm_head.weight")},
              f"{OUT}/single/model.safetensors", metadata={"format": "pt"})
    unaligned_file(f"{OUT}/unaligned.safetensors")

    files = ["dtypes.safetensors", "floats.safetensors", "unaligned.safetensors",
             "single/model.safetensors"] + [f"sharded/{fn}" for fn in sorted(split.filename_to_tensors)]
    exp = {"generated_by": "tests/golden/make_safetensors.py", "torch": torch.__version__,
           "files": {}, "conversions": conv}
    for rel in files:
        exp["files"][rel] = describe(f"{OUT}/{rel}", hex_limit=0 if rel == "floats.safetensors" else 512)
    with open(f"{OUT}/sharded/model.safetensors.index.json") as f:
        exp["sharded_index"] = json.load(f)
    with open(f"{OUT}/expected.json", "w") as f:
        json.dump(exp, f, indent=1, ensure_ascii=False)
        f.write("\n")

    # expected vr-inspect output, run from tests/golden with paths relative to it
    root = "tests/golden"
    st = "safetensors"
    with open(f"{OUT}/inspect.dtypes.jsonl", "w") as f:
        f.write("\n".join(inspect_lines(f"{st}/dtypes.safetensors", root)) + "\n")
    with open(f"{OUT}/inspect.stats.jsonl", "w") as f:
        lines = inspect_lines(f"{st}/dtypes.safetensors", root, True)
        lines += inspect_lines(f"{st}/floats.safetensors", root, True)
        f.write("\n".join(lines) + "\n")
    with open(f"{OUT}/inspect.sharded.jsonl", "w") as f:
        lines = []
        for fn in sorted(split.filename_to_tensors):  # vr-inspect lists shards by name
            lines += inspect_lines(f"{st}/sharded/{fn}", root)
        f.write("\n".join(lines) + "\n")
    with open(f"{OUT}/inspect.header.jsonl", "w") as f:
        rels = [f"{st}/dtypes.safetensors", f"{st}/single/model.safetensors"]
        rels += [f"{st}/sharded/{fn}" for fn in sorted(split.filename_to_tensors)]
        f.write("\n".join(header_line(r, root) for r in rels) + "\n")
    total = 0
    for dp, _, fns in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(dp, fn)) for fn in fns)
    print(f"wrote {OUT}: {total} bytes")


# ---- --check-vr: files vr wrote, read by the reference ----

def vr_value_bytes(dtype, shape, k):
    """The bytes tests/unit/safetensors.c (fill_pattern) puts in tensor k:
    element i is v = ((i * 37 + k * 11) % 251) - 125; floats hold v / 8,
    unsigned ints v + 125, signed ints v (widened), BOOL v & 1, and the F8
    types the raw byte (i * 7 + k) & 0x7f."""
    n = int(np.prod(shape)) if shape else 1
    i = np.arange(n, dtype=np.int64)
    v = (i * 37 + k * 11) % 251 - 125
    if dtype in ("F8_E4M3", "F8_E5M2"):
        return ((i * 7 + k) & 0x7F).astype(np.uint8).tobytes()
    if dtype == "BOOL":
        return (v & 1).astype(np.uint8).tobytes()
    if dtype in ("F16", "BF16", "F32", "F64"):
        return raw(torch.from_numpy(v / 8.0).to(DT[dtype]))
    if dtype.startswith("U"):
        return raw(torch.from_numpy(v + 125).to(DT[dtype]))
    return raw(torch.from_numpy(v).to(DT[dtype]))


def check_vr(d):
    errors = []

    def fail(msg):
        errors.append(msg)
        print("FAIL", msg)

    man = json.load(open(os.path.join(d, "manifest.json")))
    print(f"manifest: {len(man['files'])} files")
    for rel, spec in man["files"].items():
        path = os.path.join(d, rel)
        n, h = read_header(path)
        if n % 8:
            fail(f"{rel}: header length {n} not a multiple of 8")
        with safe_open(path, "pt") as f:
            keys = sorted(f.keys())
            if keys != sorted(t["name"] for t in spec["tensors"]):
                fail(f"{rel}: names {keys}")
            if (f.metadata() or None) != (spec.get("metadata") or None):
                fail(f"{rel}: metadata {f.metadata()} != {spec.get('metadata')}")
            for t in spec["tensors"]:
                x = f.get_tensor(t["name"])
                if NAME[x.dtype] != t["dtype"] or list(x.shape) != t["shape"]:
                    fail(f"{rel}: {t['name']}: {NAME[x.dtype]} {list(x.shape)} != {t['dtype']} {t['shape']}")
                    continue
                want = vr_value_bytes(t["dtype"], t["shape"], t["k"])
                if raw(x) != want:
                    fail(f"{rel}: {t['name']}: values differ")
                if t["dtype"] in ("F16", "BF16", "F32", "F64") and x.numel():
                    v = (torch.arange(x.numel(), dtype=torch.int64) * 37 + t["k"] * 11) % 251 - 125
                    if not torch.equal(x.reshape(-1).double(), v.double() / 8):
                        fail(f"{rel}: {t['name']}: float values differ")
        # the reference writer's layout: same tensors through save_file
        with safe_open(path, "pt") as f:
            ref = {k: f.get_tensor(k) for k in f.keys()}
            meta = f.metadata()
        tmp = path + ".ref"
        save_file(ref, tmp, metadata=meta)
        same = open(tmp, "rb").read() == open(path, "rb").read()
        rn, rh = read_header(tmp)
        rdata = open(tmp, "rb").read()[8 + rn:]
        os.unlink(tmp)
        order = [(k, v) for k, v in h.items() if k != "__metadata__"]
        if order != [(k, v) for k, v in rh.items() if k != "__metadata__"] or n != rn or \
                rdata != open(path, "rb").read()[8 + n:]:
            fail(f"{rel}: layout differs from safetensors.save_file's")
        print(f"ok {rel}: {len(spec['tensors'])} tensors, header {n} bytes, same tensor order, "
              f"offsets and data as safetensors.save_file; byte-identical: {'yes' if same else 'no'}")
    for rel in man.get("sets", []):
        folder = os.path.join(d, rel)
        idx = json.load(open(os.path.join(folder, "model.safetensors.index.json")))
        wm = idx["weight_map"]
        total = 0
        for fn in sorted(set(wm.values())):
            with safe_open(os.path.join(folder, fn), "pt") as f:
                for k in f.keys():
                    if wm.get(k) != fn:
                        fail(f"{rel}/{fn}: {k} not mapped to this shard")
                    total += f.get_tensor(k).numel() * f.get_tensor(k).element_size()
                for k, v in wm.items():
                    if v == fn and k not in f.keys():
                        fail(f"{rel}: index maps {k} to {fn}, which lacks it")
        if idx.get("metadata", {}).get("total_size") != total:
            fail(f"{rel}: total_size {idx.get('metadata')} != {total}")
        # transformers' own sharded loader, into a module with these parameters
        from transformers.trainer_utils import load_sharded_checkpoint
        spec = man["set_tensors"][rel]
        mod = torch.nn.Module()
        for t in spec:
            parts = t["name"].split(".")
            m = mod
            for p in parts[:-1]:
                if not hasattr(m, p):
                    m.add_module(p, torch.nn.Module())
                m = getattr(m, p)
            m.register_parameter(parts[-1], torch.nn.Parameter(
                torch.zeros(t["shape"], dtype=DT[t["dtype"]]), requires_grad=False))
        load_sharded_checkpoint(mod, folder, strict=True)
        sd = mod.state_dict()
        for t in spec:
            if raw(sd[t["name"]]) != vr_value_bytes(t["dtype"], t["shape"], t["k"]):
                fail(f"{rel}: {t['name']}: values differ after load_sharded_checkpoint")
        print(f"ok {rel}: {len(set(wm.values()))} shards, {len(wm)} tensors, total_size {total}, "
              f"transformers load_sharded_checkpoint(strict=True) loaded all")
    print("FAILED: %d" % len(errors) if errors else "all vr-written files check out")
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check-vr":
        sys.exit(check_vr(sys.argv[2]))
    if len(sys.argv) != 1:
        sys.exit(__doc__)
    make()
