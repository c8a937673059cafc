#!/usr/bin/env python3
"""Greedy golden for vr-rollout (issue 5, Done when 1): transformers'
generate(do_sample=False) on a checkpoint and prompts that vr builds the same
way in CI (vr-init and vr-synth are deterministic), in batches of 1, 3 and 8
(left padding); all three must agree. Writes tests/golden/rollout/greedy.jsonl:
one line per task {"id", "tokens"}. Run from the repository root after make:
    python3 tests/golden/make_rollout_golden.py
The commands below are the ones tests/t0700-rollout.sh runs."""
import json, os, subprocess, sys, tempfile, torch
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor

TOK = os.path.abspath("../shared/tokenizers/qwen2.5/tokenizer.json")
NEW = 16
B = os.path.abspath("bin")
work = tempfile.mkdtemp(prefix="vr-rollout-golden-")
def sh(cmd):
    return subprocess.run(cmd, shell=True, check=True, cwd=work, capture_output=True, text=True).stdout
sh(f"{B}/vr-synth --out synth --seed 1 -n 8 --splits train >/dev/null")
sh(f"{B}/vr-init --preset tiny --tokenizer {TOK} --seed 11 --init-range 0.3 --dtype f32 -o policy")
tasks = [json.loads(l) for l in sh(f"{B}/vr-prep synth/train.json").splitlines()]
chat = [json.loads(l) for l in sh(f"{B}/vr-prep synth/train.json | {B}/vr-tokenize -m policy --chat").splitlines()]
model = Qwen2_5_VLForConditionalGeneration.from_pretrained(work + "/policy", dtype=torch.float32,
                                                           attn_implementation="eager").eval()
proc = Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056)
from PIL import Image
imgs = [proc(images=[Image.open(t["images"][0]).convert("RGB")], return_tensors="pt") for t in tasks]
cfg = model.config
pad = 151643

def run(batch):
    out = []
    for s in range(0, len(tasks), batch):
        idx = list(range(s, min(s + batch, len(tasks))))
        L = max(len(chat[i]["ids"]) for i in idx)
        ids = torch.full((len(idx), L), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), L), dtype=torch.long)
        for r, i in enumerate(idx):
            n = len(chat[i]["ids"])
            ids[r, L - n:] = torch.tensor(chat[i]["ids"])
            mask[r, L - n:] = 1
        pv = torch.cat([imgs[i]["pixel_values"] for i in idx])
        grid = torch.cat([imgs[i]["image_grid_thw"] for i in idx])
        with torch.no_grad():
            g = model.generate(input_ids=ids, attention_mask=mask, pixel_values=pv, image_grid_thw=grid,
                               mm_token_type_ids=(ids == cfg.image_token_id).int(), do_sample=False,
                               max_new_tokens=NEW, repetition_penalty=1.05, top_k=None, top_p=None,
                               temperature=None, pad_token_id=pad)
        for r, i in enumerate(idx):
            new = g[r, L:].tolist()
            eos = [j for j, t in enumerate(new) if t in (151645, 151643)]
            out.append(new[: eos[0] + 1] if eos else new)
    return out

res = {b: run(b) for b in (1, 3, 8)}
agree = res[1] == res[3] == res[8]
print("batches 1, 3, 8 agree:", agree)
if not agree:
    sys.exit("transformers gives different greedy tokens for different batch sizes")
os.makedirs("tests/golden/rollout", exist_ok=True)
with open("tests/golden/rollout/greedy.jsonl", "w") as f:
    for t, toks in zip(tasks, res[1]):
        f.write(json.dumps({"id": t["id"], "tokens": toks}) + "\n")
print("wrote", len(tasks), "tasks")
