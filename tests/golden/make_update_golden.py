#!/usr/bin/env python3
"""Golden fixtures for vr-update: VLM-R1's GRPO loss (and SFT, LoRA) in PyTorch on
transformers' Qwen2_5_VLForConditionalGeneration, fp32, eager attention. For each
variant: the loss, every parameter's gradient before clipping, the grad norm, and
the weights after clip_grad_norm_(1.0) + one torch.optim.AdamW step.
Run from the repository root after make:
    python3 tests/golden/make_update_golden.py

The vr commands (run in a scratch folder; tests for vr-update run the same ones,
with C = tests/golden/update/corpus.txt):
    vr-synth --out synth --seed 3 -n 2 --splits train
    vr-init --preset tiny --train-tokenizer C --vocab 256 --seed 21 --init-range 0.1 --dtype f32 -o policy
    vr-init --preset tiny --train-tokenizer C --vocab 256 --seed 22 --init-range 0.1 --dtype f32 -o ref
    vr-prep synth/train.json | vr-encode --cache cache \\
      | vr-rollout -m policy -G 4 --max-tokens 12 --seed 5 --temperature 0.9 \\
      | vr-reward --reward format,iou                      # -> the raw scored lines
    vr-tokenize -m policy --chat scored.jsonl              # prompt ids
    vr-tokenize -m policy --chat --assistant scored.jsonl  # SFT ids
The raw scored lines are edited here (see edit_lines) and committed as
tests/golden/update/scored.jsonl; a test runs `vr-encode --cache cache` on them in the
folder holding synth/ (image paths are relative to it).

Semantics (what vr-update must compute; T = 0.9, eps_low 0.2, eps_high 0.28, beta 0.04):
  logp = log_softmax(logits / T)[next token] at completion positions (policy, grad)
  ref  = the same with the ref checkpoint (no grad); old = the line's "logp"
  mask = 1 up to and including the first EOS (generation_config eos_token_id), 0 after
  kl = exp(ref - logp) - (ref - logp) - 1;  c1 = exp(logp - old);  c2 = clamp(c1, 0.8, 1.28)
  ptl = -min(c1 * A, c2 * A) + beta * kl
  grpo:    ((ptl*mask).sum(1) / mask.sum(1)).mean()
  bnpo:    (ptl*mask).sum() / mask.sum()          (= dapo)
  dr_grpo: (ptl*mask).sum() / (B * L), B = 8 completions, L = max mask.sum(1)
  then grad (recorded), clip_grad_norm_(1.0), AdamW(lr 1e-3, (0.9, 0.999), 1e-8, wd 0.1) on
  every trainable parameter (one group: biases and norms decay too).
  mu2: grpo, step 1, then logp again with the updated model (old, ref unchanged), step 2.
  sft: mean cross-entropy (no temperature) over the assistant tokens of --chat --assistant
       (after the --chat prefix, through the <|im_end|> closing the answer, not the "\\n").
  lora: PEFT r 4, alpha 8, dropout 0, targets every nn.Linear outside "visual" (lm_head
       included); A and B seeded normal(0, 0.05), saved to update/adapter/; grpo loss with
       the ref checkpoint as reference; only the adapter trains.

Files (tests/golden/update/; all tensors F32):
  scored.jsonl   the 2 edited scored lines (8 completions); corpus.txt the tokenizer corpus
  adapter/       the starting LoRA adapter (PEFT's adapter_config.json, adapter_model.safetensors)
  grpo, bnpo, dr_grpo, sft .safetensors: "loss" [1], "grad_norm" [1] (before clipping),
      "grad.<name>" for every parameter (before clipping); grpo also "after.<name>"
  mu2.safetensors: "loss" [2], "grad_norm" [2] (steps 1 and 2), "after.<name>" after step 2
  lora.safetensors: "loss", "grad_norm", "grad.<key>", "after.<key>" for the 30 adapter keys
  <name> is the checkpoint's spelling (model.embed_tokens.weight, model.layers.N.…, model.norm.weight,
  visual.…; no lm_head.weight: it is tied, its gradient is part of embed_tokens'); <key> is
  PEFT's, as in adapter_model.safetensors.
"""
import json, os, shutil, subprocess, tempfile
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file, load_file
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor

OUT = "tests/golden/update"
B = os.path.abspath("bin")
CORPUS = os.path.abspath(f"{OUT}/corpus.txt")
T, EPS_LOW, EPS_HIGH, BETA = 0.9, 0.2, 0.28, 0.04
LR, BETAS, ADAM_EPS, WD, CLIP = 1e-3, (0.9, 0.999), 1e-8, 0.1, 1.0
ADV = [[1.2, -0.4, 0.7, -1.5], [-0.9, 0.3, 1.1, -0.5]]

torch.use_deterministic_algorithms(True)
work = tempfile.mkdtemp(prefix="vr-update-golden-")


def sh(cmd, inp=None):
    return subprocess.run(cmd, shell=True, check=True, cwd=work, capture_output=True, text=True,
                          input=inp).stdout


CMDS = [
    f"{B}/vr-synth --out synth --seed 3 -n 2 --splits train >/dev/null",
    f"{B}/vr-init --preset tiny --train-tokenizer {CORPUS} --vocab 256 --seed 21 --init-range 0.1 --dtype f32 -o policy",
    f"{B}/vr-init --preset tiny --train-tokenizer {CORPUS} --vocab 256 --seed 22 --init-range 0.1 --dtype f32 -o ref",
]
for c in CMDS:
    print("$", c.replace(B + "/", "").replace(os.getcwd() + "/", ""))
    sh(c)
ROLL = (f"{B}/vr-prep synth/train.json | {B}/vr-encode --cache cache | {B}/vr-rollout -m policy -G 4 "
        f"--max-tokens 12 --seed 5 --temperature 0.9 | {B}/vr-reward --reward format,iou")
print("$", ROLL.replace(B + "/", ""))
raw = [json.loads(l) for l in sh(ROLL).splitlines()]
assert len(raw) == 2 and all(len(l["completions"]) == 4 for l in raw)

gen = json.load(open(f"{work}/policy/generation_config.json"))
cfgj = json.load(open(f"{work}/policy/config.json"))
eos = gen.get("eos_token_id", cfgj.get("eos_token_id"))
EOS = set(eos if isinstance(eos, list) else [eos])
IMG = cfgj["image_token_id"]
VISION_IDS = {cfgj[k] for k in ("vision_start_token_id", "vision_end_token_id", "vision_token_id",
                                "image_token_id", "video_token_id")}
PAD = gen.get("pad_token_id", 0)
tokj = json.load(open(f"{work}/policy/tokenizer.json"))
IM_END = next(a["id"] for a in tokj["added_tokens"] if a["content"] == "<|im_end|>")
NTOK = max(list(tokj["model"]["vocab"].values()) + [a["id"] for a in tokj["added_tokens"]]) + 1
print("eos ids:", sorted(EOS), " image token:", IMG, " vision ids:", sorted(VISION_IDS), " pad:", PAD)


def load(path):
    m = Qwen2_5_VLForConditionalGeneration.from_pretrained(path, dtype=torch.float32,
                                                           attn_implementation="eager")
    m.train()
    return m


policy = load(work + "/policy")
refm = load(work + "/ref").eval()
for p in refm.parameters():
    p.requires_grad_(False)
proc = Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056)


def chat_ids(lines, assistant=False):
    flag = " --assistant" if assistant else ""
    out = sh(f"{B}/vr-tokenize -m policy --chat{flag}", "".join(json.dumps(l) + "\n" for l in lines))
    return [json.loads(l)["ids"] for l in out.splitlines()]


def images(lines):
    res = []
    for l in lines:
        path = l["images"][0] if os.path.isabs(l["images"][0]) else os.path.join(work, l["images"][0])
        res.append(proc(images=[Image.open(path).convert("RGB")], return_tensors="pt"))
    return res


def forward(model, ids, img):
    """Logits of one sequence [L, V] (no padding)."""
    x = torch.tensor([ids])
    return model(input_ids=x, attention_mask=torch.ones_like(x), pixel_values=img["pixel_values"],
                 image_grid_thw=img["image_grid_thw"], mm_token_type_ids=(x == IMG).int()).logits[0]


def seq_logps(model, prompt, toks, img):
    """log_softmax(logits/T) of each completion token given the prompt and earlier tokens."""
    P, n = len(prompt), len(toks)
    lg = forward(model, prompt + toks, img)[P - 1:P + n - 1] / T
    return lg.log_softmax(-1).gather(1, torch.tensor(toks)[:, None])[:, 0]


# ---- edit the raw scored lines -------------------------------------------------------------
def edit_lines(raw):
    """Advantages fixed; vision special tokens the random policy sampled replaced by plain
    tokens (a completion holding <|image_pad|> cannot go through transformers' forward: the
    image features would not match the placeholders); completion 2 of task 0 gets <|im_end|>
    at position 8 followed by its 3 remaining tokens; completion 1 of task 1 ends at position 6
    with <|endoftext|> (finish "eos", 7 tokens). From the first edited position on, logp is the
    policy's sampling log-prob recomputed here. Pixels/vision/degenerate dropped; image paths
    made relative to the scratch folder."""
    prompts = chat_ids(raw)
    imgs = images(raw)
    plain = json.loads(sh(f"{B}/vr-tokenize -m policy --json", json.dumps("abcdefghijklmnopqrstuvwxyz") + "\n"))
    assert len(plain) == 26
    lines, maxdiff, nrep = [], 0.0, 0
    for li, l in enumerate(raw):
        l = json.loads(json.dumps(l))
        for k in ("pixels", "vision", "degenerate"):
            l.pop(k, None)
        l["images"] = [os.path.relpath(p, work) for p in l["images"]]
        for ci, c in enumerate(l["completions"]):
            toks, lp = list(c["tokens"]), list(c["logp"])
            k = next((j for j, t in enumerate(toks) if t in VISION_IDS), len(toks))
            with torch.no_grad():  # transformers cannot take a vision token in the completion
                mine = seq_logps(policy, prompts[li], toks[:k], imgs[li])
            maxdiff = max(maxdiff, (mine - torch.tensor(lp[:k])).abs().max().item())
            first = len(toks)
            for j, t in enumerate(toks):
                if t in VISION_IDS:
                    toks[j] = plain[(t * 7 + j) % len(plain)]
                    first = min(first, j)
                    nrep += 1
            if (li, ci) == (0, 2):
                toks[8] = IM_END
                first = min(first, 8)
            if (li, ci) == (1, 1):
                toks = toks[:7]
                toks[6] = max(EOS - {IM_END})  # <|endoftext|>, the other EOS id
                first = min(first, 6)
                c["finish"] = "eos"
            if first < len(toks):
                with torch.no_grad():
                    new = seq_logps(policy, prompts[li], toks, imgs[li])
                lp = lp[:first] + [float(f"{v:.9g}") for v in new[first:].tolist()]
            c["logp"] = lp[:len(toks)]
            c["tokens"] = toks
            c["advantage"] = ADV[li][ci]
            if first < len(toks):  # vr-tokenize --decode refuses the ids past the tokenizer
                known = [t for t in toks if t < NTOK]
                c["text"] = json.loads(sh(f"{B}/vr-tokenize -m policy --decode --skip-special --json",
                                          json.dumps(known) + "\n"))
        lines.append(l)
    print(f"vr-rollout logp vs torch: max abs diff {maxdiff:.2e}; {nrep} vision-token samples replaced")
    assert maxdiff < 1e-4, "vr-rollout's logp are not the policy's"
    return lines


lines = edit_lines(raw)
with open(f"{OUT}/scored.jsonl", "w") as f:
    for l in lines:
        f.write(json.dumps(l, ensure_ascii=False) + "\n")
shutil.copy(f"{OUT}/scored.jsonl", f"{work}/scored.jsonl")
lines = [json.loads(l) for l in open(f"{OUT}/scored.jsonl")]  # use exactly what is committed

prompts = chat_ids(lines)
assert [len(p) for p in prompts] == [l["prompt_tokens"] for l in lines]
imgs = images(lines)
print("image grids:", [im["image_grid_thw"].tolist()[0] for im in imgs], " prompt tokens:",
      [len(p) for p in prompts])
# vr-encode takes the committed lines; its cache holds the (here unresized) image and the grid
enc = [json.loads(l) for l in sh(f"{B}/vr-encode --cache cache scored.jsonl").splitlines()]
for e, l, im in zip(enc, lines, imgs):
    cached = load_file(os.path.join(work, e["pixels"]["file"]))
    assert cached["grid_thw"].tolist() == im["image_grid_thw"].tolist()
    pil = torch.frombuffer(bytearray(Image.open(os.path.join(work, l["images"][0])).convert("RGB").tobytes()),
                           dtype=torch.uint8)
    assert torch.equal(cached["image"].flatten(), pil), "vr-encode's image differs from PIL's"

# the batch: 8 completions, row r = task r // 4, completion r % 4
rows = [(li, ci) for li in range(len(lines)) for ci in range(4)]
comp = [lines[li]["completions"][ci] for li, ci in rows]
NB = len(rows)
LMAX = max(len(c["tokens"]) for c in comp)


def mask_of(toks):
    m = []
    for j, t in enumerate(toks):
        m.append(1.0)
        if t in EOS:
            break
    return m + [0.0] * (len(toks) - len(m))


def padded(vals):
    out = torch.zeros(NB, LMAX)
    for r, v in enumerate(vals):
        out[r, :len(v)] = v if torch.is_tensor(v) else torch.tensor(v, dtype=torch.float32)
    return out


MASK = padded([mask_of(c["tokens"]) for c in comp])
OLD = padded([c["logp"] for c in comp])
ADVT = torch.tensor([c["advantage"] for c in comp], dtype=torch.float32)
assert not any(t in VISION_IDS for c in comp for t in c["tokens"])
assert MASK.sum() < sum(len(c["tokens"]) for c in comp), "no token after an EOS"
print("completion lengths:", [len(c["tokens"]) for c in comp], " mask sums:", MASK.sum(1).tolist())


def all_logps(model, subset=None):
    subset = range(NB) if subset is None else subset
    return {r: seq_logps(model, prompts[rows[r][0]], comp[r]["tokens"], imgs[rows[r][0]]) for r in subset}


def stack(d):
    out = []
    for r in range(NB):
        v = d[r]
        out.append(F.pad(v, (0, LMAX - v.numel())))
    return torch.stack(out)


with torch.no_grad():
    REF = stack(all_logps(refm)) * MASK


def grpo_loss(logp, agg, old=OLD, rows_=None, mask=MASK, ref=REF, adv=ADVT):
    kl = torch.exp(ref - logp) - (ref - logp) - 1
    c1 = torch.exp(logp - old)
    c2 = torch.clamp(c1, 1 - EPS_LOW, 1 + EPS_HIGH)
    a = adv[:, None]
    ptl = -torch.min(c1 * a, c2 * a) + BETA * kl
    if agg == "grpo":
        return ((ptl * mask).sum(1) / mask.sum(1)).mean()
    if agg == "bnpo":
        return (ptl * mask).sum() / mask.sum()
    if agg == "dr_grpo":
        return (ptl * mask).sum() / (mask.shape[0] * mask.sum(1).max())
    raise ValueError(agg)


def clip_stats(logp):
    """Fraction of masked tokens where the clipped term wins (TRL's clip_ratio), ratio range."""
    c1 = torch.exp(logp - OLD)
    a = ADVT[:, None]
    clipped = ((c1 < 1 - EPS_LOW) & (a < 0)) | ((c1 > 1 + EPS_HIGH) & (a > 0))
    sel = MASK > 0
    edge = min((c1[sel] - (1 - EPS_LOW)).abs().min().item(), (c1[sel] - (1 + EPS_HIGH)).abs().min().item())
    print(f"    nearest ratio to a clip edge: {edge:.2e} away")
    return clipped[sel].float().mean().item(), (c1[sel].min().item(), c1[sel].max().item())


# ---- names -----------------------------------------------------------------------------------
CKPT = set(load_file(f"{work}/policy/model.safetensors").keys())


def vr_name(n):
    if n.startswith("model.language_model."):
        return "model." + n[len("model.language_model."):]
    if n.startswith("model.visual."):
        return "visual." + n[len("model.visual."):]
    return n


def named(model):
    d = {}
    for n, p in model.named_parameters():
        v = vr_name(n)
        assert v in CKPT and v not in d, f"{n} -> {v}: not one checkpoint tensor"
        d[v] = p
    assert set(d) == CKPT, f"unmapped: {sorted(CKPT - set(d))}"
    return d


# ---- one optimizer step ------------------------------------------------------------------------
def step(params, loss, opt):
    opt.zero_grad(set_to_none=True)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in params.items()}
    norm = torch.nn.utils.clip_grad_norm_(list(params.values()), CLIP)
    opt.step()
    return grads, norm.item()


def adamw(params):
    return torch.optim.AdamW(list(params.values()), lr=LR, betas=BETAS, eps=ADAM_EPS, weight_decay=WD)


def fresh_policy():
    m = load(work + "/policy")
    return m, named(m)


def check_grads(tag, grads):
    bad = [n for n, g in grads.items() if not torch.isfinite(g).all()]
    assert not bad, f"{tag}: non-finite gradients in {bad}"
    zero = [n for n, g in grads.items() if g.abs().max() == 0]
    vis = sum(g.abs().sum().item() for n, g in grads.items() if "visual" in n)
    lang = sum(g.abs().sum().item() for n, g in grads.items() if "visual" not in n)
    tiny = sum(((g.abs() < 1e-7) & (g != 0)).sum().item() for g in grads.values())
    nz = sum((g == 0).sum().item() for g in grads.values())
    n = sum(g.numel() for g in grads.values())
    print(f"  {tag}: sum|g| vision {vis:.4g}, language {lang:.4g}; all-zero tensors {zero or 'none'}; "
          f"{nz}/{n} elements exactly 0, {tiny} with 0 < |g| < 1e-7")
    assert lang > 0 and (vis > 0 or tag.startswith("lora")), f"{tag}: zero gradients"


written = {}


def save(name, d):
    d = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in d.items()}
    save_file(d, f"{OUT}/{name}.safetensors")
    os.chmod(f"{OUT}/{name}.safetensors", 0o644)
    written[name] = os.path.getsize(f"{OUT}/{name}.safetensors")


results = {}
# ---- grpo, bnpo, dr_grpo -----------------------------------------------------------------------
for agg in ("grpo", "bnpo", "dr_grpo"):
    m, params = fresh_policy()
    logp = stack(all_logps(m))
    loss = grpo_loss(logp, agg)
    assert torch.isfinite(loss)
    frac, (cmin, cmax) = clip_stats(logp.detach())
    grads, norm = step(params, loss, adamw(params))
    print(f"{agg}: loss {loss.item():.9g}, grad norm {norm:.6g} (clipping {'active' if norm > CLIP else 'inactive'}), "
          f"ratio in [{cmin:.6f}, {cmax:.6f}], clipped-token fraction {frac}")
    check_grads(agg, grads)
    out = {"loss": loss.detach().reshape(1), "grad_norm": torch.tensor([norm])}
    out.update({"grad." + n: g for n, g in grads.items()})
    if agg == "grpo":
        out.update({"after." + n: p for n, p in params.items()})
        # VLM-R1's mu=1 form: old = logp.detach()
        alt = grpo_loss(logp.detach(), "grpo", old=logp.detach()).item()
        rel = abs(alt - loss.item()) / abs(loss.item())
        print(f"  grpo with old = logp.detach(): {alt:.9g}, relative difference {rel:.2e}")
        assert rel < 1e-5
        g_full = grads
    save(agg, out)
    results[agg] = (loss.item(), norm)

# ---- micro-batches with right padding (one group each, weights 4/8) equal the full batch -------
m, params = fresh_policy()
tot = 0.0
for li in range(len(lines)):
    rs = [r for r in range(NB) if rows[r][0] == li]
    seqs = [prompts[li] + comp[r]["tokens"] for r in rs]
    L = max(map(len, seqs))
    x = torch.full((len(rs), L), PAD, dtype=torch.long)
    am = torch.zeros((len(rs), L), dtype=torch.long)
    for k, s in enumerate(seqs):
        x[k, :len(s)] = torch.tensor(s)
        am[k, :len(s)] = 1
    im = imgs[li]
    lg = m(input_ids=x, attention_mask=am, pixel_values=im["pixel_values"].repeat(len(rs), 1),
           image_grid_thw=im["image_grid_thw"].repeat(len(rs), 1), mm_token_type_ids=(x == IMG).int()).logits
    P = len(prompts[li])
    lp = []
    for k, r in enumerate(rs):
        toks = comp[r]["tokens"]
        v = (lg[k, P - 1:P + len(toks) - 1] / T).log_softmax(-1).gather(1, torch.tensor(toks)[:, None])[:, 0]
        lp.append(F.pad(v, (0, LMAX - v.numel())))
    lp = torch.stack(lp)
    part = grpo_loss(lp, "grpo", old=OLD[rs], mask=MASK[rs], ref=REF[rs], adv=ADVT[rs]) * len(rs) / NB
    part.backward()
    tot += part.item()
worst = max(((p.grad - g_full[n]).abs().max() / g_full[n].abs().max().clamp_min(1e-30)).item()
            for n, p in params.items())
print(f"2 right-padded micro-batches: loss {tot:.9g} (full {results['grpo'][0]:.9g}), "
      f"max grad difference / tensor max {worst:.2e}")
assert abs(tot - results["grpo"][0]) < 1e-5 * abs(results["grpo"][0]) and worst < 1e-4

# ---- mu2 ---------------------------------------------------------------------------------------
m, params = fresh_policy()
opt = adamw(params)
losses, norms = [], []
for it in range(2):
    logp = stack(all_logps(m))
    loss = grpo_loss(logp, "grpo")
    frac, (cmin, cmax) = clip_stats(logp.detach())
    print(f"  mu2 step {it + 1}: ratio in [{cmin:.6f}, {cmax:.6f}], clipped-token fraction {frac}")
    _, norm = step(params, loss, opt)
    losses.append(loss.item())
    norms.append(norm)
print(f"mu2: losses {losses}, grad norms {norms}")
assert abs(losses[0] - results["grpo"][0]) <= 1e-6 * abs(losses[0]) and losses[1] != losses[0]
out = {"loss": torch.tensor(losses), "grad_norm": torch.tensor(norms)}
out.update({"after." + n: p for n, p in params.items()})
save("mu2", out)

# ---- sft ---------------------------------------------------------------------------------------
full = chat_ids(lines, assistant=True)
labels = []
for p, f in zip(prompts, full):
    assert f[:len(p)] == p
    end = len(f) - 1
    assert f[end - 1] == IM_END and json.loads(sh(f"{B}/vr-tokenize -m policy --decode --json", json.dumps(f[end:]) + "\n")) == "\n"
    labels.append(list(range(len(p), end)))  # positions through <|im_end|>
m, params = fresh_policy()
tot, ntok = 0.0, sum(map(len, labels))
for li, (f, lab) in enumerate(zip(full, labels)):
    lg = forward(m, f, imgs[li])
    tgt = torch.tensor([f[j] for j in lab])
    tot = tot + F.cross_entropy(lg[[j - 1 for j in lab]], tgt, reduction="sum")
loss = tot / ntok
grads, norm = step(params, loss, adamw(params))
print(f"sft: {ntok} label tokens {[len(l) for l in labels]}, loss {loss.item():.9g}, grad norm {norm:.6g} "
      f"(clipping {'active' if norm > CLIP else 'inactive'})")
check_grads("sft", grads)
out = {"loss": loss.detach().reshape(1), "grad_norm": torch.tensor([norm])}
out.update({"grad." + n: g for n, g in grads.items()})
save("sft", out)
results["sft"] = (loss.item(), norm)

# ---- lora --------------------------------------------------------------------------------------
from peft import LoraConfig, get_peft_model


def find_all_linear_names(model, multimodal_keywords):
    """VLM-R1's (src/open-r1-multimodal/src/open_r1/trainer/grpo_trainer.py)."""
    names = set()
    for name, module in model.named_modules():
        if any(k in name for k in multimodal_keywords):
            continue
        if isinstance(module, torch.nn.Linear):
            names.add(name)
    for n in list(names):
        if "embed_tokens" in n:
            names.remove(n)
    return sorted(names)


m = load(work + "/policy")
targets = find_all_linear_names(m, ["visual"])
print("lora targets:", targets)
pm = get_peft_model(m, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0,
                                  target_modules=targets, bias="none"))
torch.manual_seed(0)
lp = {n: p for n, p in pm.named_parameters() if "lora_" in n}
with torch.no_grad():
    for n in sorted(lp):
        lp[n].normal_(0.0, 0.05)
assert all(p.requires_grad for p in lp.values())
assert not any(p.requires_grad for n, p in pm.named_parameters() if "lora_" not in n)
adir = f"{OUT}/adapter"
shutil.rmtree(adir, ignore_errors=True)
pm.save_pretrained(adir, save_embedding_layers=False)
cfg = json.load(open(f"{adir}/adapter_config.json"))
cfg["base_model_name_or_path"] = "policy"  # was the scratch folder
cfg["target_modules"] = sorted(cfg["target_modules"])  # PEFT writes a set's order
os.remove(f"{adir}/README.md")  # PEFT's model card
json.dump(cfg, open(f"{adir}/adapter_config.json", "w"), indent=2, sort_keys=True)
os.chmod(f"{adir}/adapter_model.safetensors", 0o644)
saved = load_file(f"{adir}/adapter_model.safetensors")


def peft_key(n):  # internal name -> the key save_pretrained wrote
    return n.replace(".default.", ".")


params = {peft_key(n): p for n, p in lp.items()}
# save_embedding_layers=False: with the default "auto" (what VLM-R1's trainer.save_model
# gets) PEFT would also write the frozen, tied base weight as lm_head.base_layer.weight
assert set(params) == set(saved), sorted(set(params) ^ set(saved))
for k in params:
    assert torch.equal(saved[k], params[k].detach())
print(f"adapter_model.safetensors: {len(params)} LoRA tensors")
for k in sorted(params):
    print("  ", k, list(params[k].shape))
pm.train()
logp = stack(all_logps(pm))
loss = grpo_loss(logp, "grpo")
frac, (cmin, cmax) = clip_stats(logp.detach())
grads, norm = step(params, loss, adamw(params))
print(f"lora: loss {loss.item():.9g}, grad norm {norm:.6g} (clipping {'active' if norm > CLIP else 'inactive'}), "
      f"ratio in [{cmin:.6f}, {cmax:.6f}], clipped-token fraction {frac}")
check_grads("lora", grads)
for kind in ("lora_A", "lora_B"):
    assert all(grads[k].abs().max() > 0 for k in grads if kind in k), f"a zero {kind} gradient"
out = {"loss": loss.detach().reshape(1), "grad_norm": torch.tensor([norm])}
out.update({"grad." + n: g for n, g in grads.items()})
out.update({"after." + n: p for n, p in params.items()})
save("lora", out)
results["lora"] = (loss.item(), norm)

# ---- the losses and grad norms as JSON, for the shell test (jq reads them) -----------------------
with open(f"{OUT}/losses.json", "w") as f:
    json.dump({k: {"loss": load_file(f"{OUT}/{k}.safetensors")["loss"].tolist(),
                   "grad_norm": load_file(f"{OUT}/{k}.safetensors")["grad_norm"].tolist()}
               for k in ("grpo", "bnpo", "dr_grpo", "mu2", "sft", "lora")}, f, indent=1)
    f.write("\n")

# ---- sizes ---------------------------------------------------------------------------------------
total = 0
for root, _, files in os.walk(OUT):
    for f in files:
        total += os.path.getsize(os.path.join(root, f))
print("fixtures:", {k: v for k, v in written.items()}, f"total of {OUT}: {total} bytes")
assert total <= 4.5e6, "over the 4.5 MB budget"
shutil.rmtree(work)
