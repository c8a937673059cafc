#!/usr/bin/env python3
"""The PyTorch side of bench/update.sh: one GRPO optimizer step (VLM-R1's loss,
as tests/golden/make_update_golden.py) on transformers' Qwen2.5-VL, fp32, default
(sdpa) attention, on the same scored lines, checkpoints and thread count as
vr-update. The batch is laid out as TRL/VLM-R1 do: prompts left-padded,
completions right-padded, logits only for the completion positions
(logits_to_keep), TRL's selective_log_softmax. The timed span is what
vr-update's "seconds" covers: reference forward (no grad), policy forward, loss,
backward, clip_grad_norm_, AdamW step.
    update_peer.py POLICY REF SCORED CHAT THREADS REPS CKPT VISION
CHAT: vr-tokenize -m POLICY --chat SCORED (the prompt ids); CKPT: 1 for
gradient checkpointing; VISION: "once" runs each prompt's image through the
vision tower once and shares the features among its G completions (what
vr-update does), "repeat" gives every completion its own copy of the pixels
(what VLM-R1's trainer does). Prints one JSON line."""
import json, resource, statistics, sys, time
import torch
from PIL import Image
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor
from transformers.modeling_outputs import BaseModelOutputWithPooling

policy_dir, ref_dir, scored, chat = sys.argv[1:5]
threads, reps, ckpt, vision = int(sys.argv[5]), int(sys.argv[6]), sys.argv[7] == "1", sys.argv[8]
assert vision in ("once", "repeat")
T, EPS_LOW, EPS_HIGH, BETA, LR, CLIP = 1.0, 0.2, 0.2, 0.04, 1e-6, 1.0  # vr-update's defaults
torch.set_num_threads(threads)


def status(key):  # kB
    for l in open("/proc/self/status"):
        if l.startswith(key + ":"):
            return int(l.split()[1])


def load(d):
    return Qwen2_5_VLForConditionalGeneration.from_pretrained(d, dtype=torch.float32)


policy = load(policy_dir).train()
if ckpt:
    policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
refm = load(ref_dir).eval()
for p in refm.parameters():
    p.requires_grad_(False)
params = [p for p in policy.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

gen = json.load(open(f"{policy_dir}/generation_config.json"))
eos = gen["eos_token_id"]
EOS = set(eos if isinstance(eos, list) else [eos])
PAD = gen.get("pad_token_id", 0)
IMG = policy.config.image_token_id
lines = [json.loads(l) for l in open(scored)]
prompts = [json.loads(l)["ids"] for l in open(chat)]
proc = Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056)
imgs = [proc(images=[Image.open(l["images"][0]).convert("RGB")], return_tensors="pt") for l in lines]

rows = []  # (group, prompt ids, completion ids up to and including the first EOS, old logp, advantage)
for g, l in enumerate(lines):
    for c in l["completions"]:
        toks = c["tokens"]
        n = next((j + 1 for j, t in enumerate(toks) if t in EOS), len(toks))
        rows.append((g, prompts[g], toks[:n], c["logp"][:n], c["advantage"]))
B = len(rows)
P = max(len(r[1]) for r in rows)
C = max(len(r[2]) for r in rows)
ids = torch.full((B, P + C), PAD, dtype=torch.long)
am = torch.zeros((B, P + C), dtype=torch.long)
cmask = torch.zeros((B, C))
old = torch.zeros((B, C))
for i, (g, p, toks, lp, a) in enumerate(rows):
    ids[i, P - len(p):P] = torch.tensor(p)
    ids[i, P:P + len(toks)] = torch.tensor(toks)
    am[i, P - len(p):P + len(toks)] = 1
    cmask[i, :len(toks)] = 1
    old[i, :len(toks)] = torch.tensor(lp)
adv = torch.tensor([r[4] for r in rows], dtype=torch.float32)
mm = (ids == IMG).int()
grid_rows = torch.cat([imgs[r[0]]["image_grid_thw"] for r in rows])
tokens = int(am.sum())  # prompt + completion tokens through the model (padding not counted)
scored_tokens = int(cmask.sum())
patches = sum(int(imgs[r[0]]["image_grid_thw"].prod()) for r in rows) if vision == "repeat" else \
    sum(int(im["image_grid_thw"].prod()) for im in imgs)


def selective_log_softmax(logits, index):  # TRL's, fp32 branch
    sel = torch.gather(logits, dim=-1, index=index.unsqueeze(-1)).squeeze(-1)
    return sel - torch.stack([torch.logsumexp(lg, dim=-1) for lg in logits])


def logps(model):
    if vision == "repeat":
        kw = dict(pixel_values=torch.cat([imgs[r[0]]["pixel_values"] for r in rows]))
    else:
        feats = [model.model.get_image_features(im["pixel_values"], im["image_grid_thw"], return_dict=True).pooler_output
                 for im in imgs]
        po = [f for r in rows for f in feats[r[0]]]
        kw = dict(mm_encoder_outputs={"image": BaseModelOutputWithPooling(pooler_output=po)})
    out = model(input_ids=ids, attention_mask=am, image_grid_thw=grid_rows, mm_token_type_ids=mm,
                logits_to_keep=C + 1, use_cache=False, **kw)
    logits = out.logits[:, :-1, :] / T
    return selective_log_softmax(logits, ids[:, -C:])


def grpo_loss(logp, ref):
    kl = torch.exp(ref - logp) - (ref - logp) - 1
    c1 = torch.exp(logp - old)
    c2 = torch.clamp(c1, 1 - EPS_LOW, 1 + EPS_HIGH)
    a = adv[:, None]
    ptl = -torch.min(c1 * a, c2 * a) + BETA * kl
    return ((ptl * cmask).sum(1) / cmask.sum(1)).mean()


def step():
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    with torch.no_grad():
        ref = logps(refm)
    loss = grpo_loss(logps(policy), ref)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(params, CLIP)
    opt.step()
    opt.zero_grad(set_to_none=True)
    dt = time.perf_counter() - t0
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return dt, loss.item(), norm.item()


load_peak = status("VmHWM")
times, faults = [], []
for r in range(reps + 1):
    dt, loss, norm = step()
    if r == 0:
        first = (dt, loss, norm)
    else:
        times.append(dt)
t = statistics.median(times)
peak = status("VmHWM")
a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)  # a practical fp32 GEMM peak on these threads
torch.mm(a, b)
g0 = time.perf_counter()
for _ in range(5):
    torch.mm(a, b)
gemm = 5 * 2 * 2048 ** 3 / (time.perf_counter() - g0) / 1e9
print(json.dumps({"impl": "pytorch", "checkpoint": ckpt, "vision": vision, "threads": threads,
                  "torch": torch.__version__, "sequences": B, "tokens": tokens, "scored_tokens": scored_tokens,
                  "vision_patches": patches, "loss": first[1], "grad_norm": first[2],
                  "first_step_s": round(first[0], 3), "seconds": round(t, 3), "seconds_all": [round(x, 3) for x in times],
                  "tokens_per_s": round(tokens / t, 1), "load_peak_mb": round(load_peak / 1024),
                  "max_rss_mb": round(peak / 1024), "step_rss_mb": round((peak - load_peak) / 1024),
                  "gemm_2048_gflop_per_s": round(gemm, 1),
                  "minor_faults": faults}))
