#!/usr/bin/env python3
"""Check once that checkpoints written by vr-init load in transformers with no
missing or unexpected keys, and that vr's forward matches transformers' on them
(issue 4, Done when 4). Run from the repository root after `make`:
    python3 tests/golden/check_vr_init.py [--3b]
It writes under /tmp and runs build/tests/qwen.t on each checkpoint."""
import os, subprocess, sys, tempfile, torch
sys.path.insert(0, os.path.dirname(__file__))
from make_model_golden import run_golden
from transformers import Qwen2_5_VLForConditionalGeneration

TOK = "../shared/tokenizers/qwen2.5/tokenizer.json"
tmp = tempfile.mkdtemp(prefix="vr-init-check-")
cases = [("tiny", "f32", []), ("tiny", "bf16", ["--shard-size", "8M"])]
if "--3b" in sys.argv:
    cases.append(("3b", "bf16", []))
ok = True
for preset, dtype, extra in cases:
    d = os.path.join(tmp, f"{preset}-{dtype}")
    if preset == "3b" and os.path.isdir("bench/out/3b-bf16"):
        d = "bench/out/3b-bf16"  # already written by `vr-init --preset 3b -o bench/out/3b-bf16`
    else:
        subprocess.run(["bin/vr-init", "--preset", preset, "--dtype", dtype, "--seed", "3",
                        "--init-range", "0.2", "--tokenizer", TOK, "-o", d] + extra, check=True)
    model, info = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        d, output_loading_info=True, attn_implementation="eager",
        dtype=torch.bfloat16 if preset == "3b" else torch.float32)
    bad = {k: v for k, v in info.items() if v}
    print(f"{preset}/{dtype}: files {sorted(os.listdir(d))}")
    print(f"{preset}/{dtype}: loading info problems: {bad or 'none'}")
    ok &= not bad
    if preset == "3b":
        continue  # the 3B forward is measured by bench/forward, not compared here
    model.eval()
    io = os.path.join(d, "io.safetensors")
    with torch.no_grad():
        run_golden(model, io)
    r = subprocess.run(["build/tests/qwen.t", d, io], capture_output=True, text=True)
    print(r.stdout)
    ok &= r.returncode == 0
print("ALL OK" if ok else "FAILED")
sys.exit(0 if ok else 1)
