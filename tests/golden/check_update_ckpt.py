#!/usr/bin/env python3
"""Check once that checkpoints written by vr-update load in transformers with no
missing, unexpected or mismatched keys and give the log-probs vr computes (issue
done-criterion for vr-update's checkpoints). Run from the repository root after `make`:
    python3 tests/golden/check_update_ckpt.py
In a temp folder it builds the setup of tests/t0900-update-golden.sh (vr-synth, vr-init
policy/ref on tests/golden/update/corpus.txt, vr-encode of the committed scored.jsonl),
takes one GRPO step with vr-update --save-every 1 for each case (saved f32 or bf16, tied
or untied embeddings: the untied models come from vr-init --config with
tie_word_embeddings false), and for run/ and run/checkpoint-1:
  1. from_pretrained(..., output_loading_info=True): no missing, unexpected or mismatched
     keys, no error messages, no warnings logged; dtype="auto" gives the saved dtype;
     the tensor names and shapes are those save_pretrained writes for the loaded model;
  2. model.safetensors equals optimizer.safetensors' master.<name> (f32) or its
     torch .to(torch.bfloat16) bit for bit, and --dump's after.<name> likewise;
  3. vr-rollout -m DIR --greedy -G 1 --max-tokens 8 on the encoded tasks: transformers'
     log_softmax(logits) (fp32, eager; prompt ids from vr-tokenize -m DIR --chat, pixels
     from Qwen2VLImageProcessor as make_rollout_golden.py) picks the same greedy tokens
     and gives their logp to TOL;
  4. checkpoint-1 holds the same files as run/, byte for byte; config.json differs from
     the policy's only in its dtype field.
Prints a report; exits 1 on any failure."""
import json, logging, os, subprocess, sys, tempfile, warnings
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file
import transformers
from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor

TOL = 1e-5
MAXTOK = 8
B = os.path.abspath("bin")
CORPUS = os.path.abspath("tests/golden/update/corpus.txt")
SCORED = os.path.abspath("tests/golden/update/scored.jsonl")
work = tempfile.mkdtemp(prefix="vr-update-ckpt-")
transformers.utils.logging.disable_progress_bar()
torch.manual_seed(0)

# everything transformers logs at WARNING and above while loading counts as a problem
logged = []
class Keep(logging.Handler):
    def emit(self, rec):
        logged.append(rec.getMessage())
transformers.utils.logging.set_verbosity_warning()
transformers.utils.logging.get_logger("transformers").addHandler(Keep())


def sh(cmd):
    return subprocess.run(cmd, shell=True, check=True, cwd=work, capture_output=True, text=True).stdout


def jl(text):
    return [json.loads(l) for l in text.splitlines()]


sh(f"{B}/vr-synth --out synth --seed 3 -n 2 --splits train >/dev/null")
sh(f"{B}/vr-encode --cache cache {SCORED} >scored.jsonl")
for tie in ("tied", "untied"):
    for who, seed in (("policy", 21), ("ref", 22)):
        if tie == "tied":
            src = "--preset tiny"
        else:
            cfg = json.load(open(os.path.join(work, f"{who}-tied/config.json")))  # the tiny preset's
            cfg["tie_word_embeddings"] = False
            json.dump(cfg, open(os.path.join(work, f"untied-{who}.json"), "w"), indent=2)
            src = f"--config untied-{who}.json"
        sh(f"{B}/vr-init {src} --train-tokenizer {CORPUS} --vocab 256 --seed {seed} --init-range 0.1 "
           f"--dtype f32 -o {who}-{tie}")

tasks = jl(open(os.path.join(work, "scored.jsonl")).read())
proc = Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056)
imgs = [proc(images=[Image.open(os.path.join(work, t["images"][0])).convert("RGB")], return_tensors="pt")
        for t in tasks]
for t, im in zip(tasks, imgs):
    assert im["image_grid_thw"][0].tolist() == t["pixels"]["grid_thw"], "image grid differs from vr-encode's"

ok = True
def check(cond, what):
    global ok
    if not cond:
        ok = False
        print("  FAIL:", what)
    return cond


def bits(x):
    return x.view(torch.int16) if x.dtype in (torch.bfloat16, torch.float16) else x.view(torch.int32)


def check_dir(d, dtype, tie, dump):
    p = os.path.join(work, d)
    tdt = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype]
    print(f"{d}: files {sorted(f for f in os.listdir(p) if not os.path.isdir(os.path.join(p, f)))}")
    cfg = json.load(open(os.path.join(p, "config.json")))
    # 1. transformers loads it
    logged.clear()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        model, info = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            p, output_loading_info=True, dtype=torch.float32, attn_implementation="eager")
        auto = Qwen2_5_VLForConditionalGeneration.from_pretrained(p, dtype="auto")
        GenerationConfig.from_pretrained(p)
    model.eval()
    bad = {k: v for k, v in info.items() if v}
    print(f"  loading info problems: {bad or 'none'}; warnings: {logged + [str(x.message) for x in w] or 'none'}")
    check(not bad, "loading info")
    check(not logged and not w, "warnings while loading")
    check(auto.dtype == tdt, f"dtype='auto' loads {auto.dtype}, saved {dtype} (config torch_dtype "
                             f"{cfg.get('torch_dtype')!r}, dtype {cfg.get('dtype')!r})")
    check(model.config.tie_word_embeddings == (tie == "tied"), "tie_word_embeddings")
    f = safe_open(os.path.join(p, "model.safetensors"), "pt")
    names = set(f.keys())
    hf = tempfile.mkdtemp(dir=work)
    auto.save_pretrained(hf)
    saved = safe_open(os.path.join(hf, "model.safetensors"), "pt")
    check(names == set(saved.keys()), f"names differ from save_pretrained's: "
                                      f"{sorted(names ^ set(saved.keys()))}")
    mism = [k for k in names & set(saved.keys())
            if f.get_slice(k).get_shape() != saved.get_slice(k).get_shape()
            or f.get_slice(k).get_dtype() != saved.get_slice(k).get_dtype()]
    check(not mism, f"shape/dtype differ from save_pretrained's: {mism}")
    print(f"  {len(names)} tensors, metadata {f.metadata()} (save_pretrained: {saved.metadata()}), "
          f"names/shapes/dtypes as save_pretrained: {names == set(saved.keys()) and not mism}; "
          f"config torch_dtype {cfg.get('torch_dtype')!r}, 'auto' loads {auto.dtype}")
    # 2. weights = master (rounded), = the step's --dump
    W = load_file(os.path.join(p, "model.safetensors"))
    opt = load_file(os.path.join(p, "optimizer.safetensors"))
    dumped = load_file(os.path.join(work, dump))
    masters = {k[len("master."):] for k in opt if k.startswith("master.")}
    check(masters == set(W), f"master names differ: {sorted(masters ^ set(W))}")
    nm = nd = 0
    for k, v in W.items():
        check(v.dtype == tdt, f"{k} is {v.dtype}")
        if k in masters and torch.equal(bits(v), bits(opt["master." + k].to(tdt))):
            nm += 1
        if "after." + k in dumped and torch.equal(bits(v), bits(dumped["after." + k].to(tdt))):
            nd += 1
    check(nm == len(W), f"weights equal master: {nm}/{len(W)}")
    check(nd == len(W), f"weights equal --dump after.: {nd}/{len(W)}")
    # what transformers loaded (dtype="auto"), saved back by save_pretrained under the same names
    back = load_file(os.path.join(hf, "model.safetensors"))
    nl = sum(k in back and torch.equal(bits(back[k]), bits(v)) for k, v in W.items())
    lm = W["model.embed_tokens.weight"] if tie == "tied" else W["lm_head.weight"]
    check(nl == len(W) and torch.equal(model.get_output_embeddings().weight, lm.float())
          and torch.equal(model.get_input_embeddings().weight, W["model.embed_tokens.weight"].float()),
          "transformers' parameters")
    print(f"  weights = master{'' if dtype == 'f32' else ' rounded to bf16'} bit for bit: {nm}/{len(W)}; "
          f"= --dump after.: {nd}/{len(W)}; transformers' parameters = file: {nl}/{len(W)}, lm_head "
          f"{'= embed_tokens' if tie == 'tied' else '= lm_head.weight'}")
    # 3. vr's greedy log-probs vs transformers'
    roll = jl(sh(f"{B}/vr-rollout -m {d} --greedy -G 1 --max-tokens {MAXTOK} scored.jsonl"))
    chat = jl(sh(f"{B}/vr-tokenize -m {d} --chat scored.jsonl"))
    vision = {cfg[k] for k in ("vision_start_token_id", "vision_end_token_id", "vision_token_id",
                               "image_token_id", "video_token_id")}
    maxd, ntok, same = 0.0, 0, True
    for t, r, c, im in zip(tasks, roll, chat, imgs):
        assert r["id"] == t["id"] == c["id"]
        comp = r["completions"][0]
        toks, lp = comp["tokens"], comp["logp"]
        k = next((j for j, x in enumerate(toks) if x in vision), len(toks))
        check(k == len(toks), f"{t['id']}: greedy token {toks[k] if k < len(toks) else ''} is a vision "
                              f"token; compared the first {k}")
        prompt = c["ids"]
        x = torch.tensor([prompt + toks[:k]])
        with torch.no_grad():
            logits = model(input_ids=x, attention_mask=torch.ones_like(x), pixel_values=im["pixel_values"],
                           image_grid_thw=im["image_grid_thw"],
                           mm_token_type_ids=(x == cfg["image_token_id"]).int()).logits[0]
        ls = logits[len(prompt) - 1:len(prompt) - 1 + k].double().log_softmax(-1)
        greedy = ls.argmax(-1).tolist()
        same &= greedy == toks[:k]
        check(greedy == toks[:k], f"{t['id']}: greedy tokens vr {toks[:k]} transformers {greedy}")
        mine = ls.gather(1, torch.tensor(toks[:k])[:, None])[:, 0]
        maxd = max(maxd, (mine - torch.tensor(lp[:k], dtype=torch.float64)).abs().max().item())
        ntok += k
    check(maxd <= TOL, f"logp max abs diff {maxd:.2e} > {TOL}")
    print(f"  vr-rollout --greedy: {ntok} tokens over {len(tasks)} prompts; same greedy tokens: {same}; "
          f"logp max abs diff {maxd:.2e}")
    return cfg


pol_cfg = {}
cases = [("f32", "tied"), ("bf16", "tied"), ("f32", "untied"), ("bf16", "untied")]
for dtype, tie in cases:
    run = f"run-{dtype}-{tie}"
    print(f"== vr-update -m policy-{tie} --ref ref-{tie} --dtype {dtype} --save-every 1 -o {run}")
    m = jl(sh(f"{B}/vr-update -m policy-{tie} --ref ref-{tie} --beta 0.04 --lr 1e-3 --temperature 0.9 "
              f"--dtype {dtype} --save-every 1 -o {run} --dump dump-{dtype}-{tie} scored.jsonl"))
    print(f"  step {m[0]['step']}: loss {m[0]['loss']:.9g}, grad_norm {m[0]['grad_norm']:.6g}")
    pcfg = json.load(open(os.path.join(work, f"policy-{tie}/config.json")))
    for d in (run, run + "/checkpoint-1"):
        cfg = check_dir(d, dtype, tie, f"dump-{dtype}-{tie}")
        diff = {k for k in set(cfg) | set(pcfg) if cfg.get(k) != pcfg.get(k)}
        want = {"f32": "float32", "bf16": "bfloat16"}[dtype]
        check(diff <= {"torch_dtype"} and cfg.get("torch_dtype") == want,
              f"config.json differs from the policy's in {sorted(diff)}")
    a, b = os.path.join(work, run), os.path.join(work, run, "checkpoint-1")
    fa = sorted(f for f in os.listdir(a) if os.path.isfile(os.path.join(a, f)))
    fb = sorted(os.listdir(b))
    same = fa == fb and all(open(os.path.join(a, f), "rb").read() == open(os.path.join(b, f), "rb").read()
                            for f in fa)
    check(same, f"{run} and checkpoint-1 differ: {fa} vs {fb}")
    print(f"  {run}/ and checkpoint-1/: same files, byte for byte: {same}")
    if (dtype, tie) == ("f32", "tied"):  # without --save-every: the same final checkpoint
        sh(f"{B}/vr-update -m policy-tied --ref ref-tied --beta 0.04 --lr 1e-3 --temperature 0.9 "
           f"--dtype f32 -o plain scored.jsonl")
        fp = sorted(os.listdir(os.path.join(work, "plain")))
        same = fp == fa and all(open(os.path.join(work, "plain", f), "rb").read() ==
                                open(os.path.join(a, f), "rb").read() for f in fa)
        check(same, "a run without --save-every writes other files")
        print(f"  without --save-every: {fp}, byte-identical to {run}/: {same}")

# ---- LoRA: the adapter vr-update writes loads in PEFT and gives vr's log-probs ----------------------
from peft import PeftModel
from transformers import Qwen2_5_VLForConditionalGeneration as QW
for tie in ("tied", "untied"):
    run = f"lora-{tie}"
    print(f"== vr-update -m policy-{tie} --lora-r 4 --lora-alpha 8 --ref ref-{tie} -o {run}")
    sh(f"{B}/vr-update -m policy-{tie} --ref ref-{tie} --beta 0.04 --lr 1e-2 --temperature 0.9 --lora-r 4 "
       f"--lora-alpha 8 --seed 3 -o {run} scored.jsonl")
    sh(f"{B}/vr-update -m {run} --merge -o {run}-merged < /dev/null")
    base = QW.from_pretrained(os.path.join(work, f"policy-{tie}"), dtype=torch.float32,
                              attn_implementation="eager")
    pm = PeftModel.from_pretrained(base, os.path.join(work, run)).eval()
    pcfg_t = json.load(open(os.path.join(work, f"policy-{tie}/config.json")))
    nlora = sum("lora_" in n for n, _ in pm.named_parameters())
    check(nlora == 30, f"PEFT loaded {nlora} LoRA tensors, expected 30")
    for d in (run, run + "-merged"):
        roll = jl(sh(f"{B}/vr-rollout -m {d} --greedy -G 1 --max-tokens {MAXTOK} scored.jsonl"))
        chat = jl(sh(f"{B}/vr-tokenize -m policy-{tie} --chat scored.jsonl"))
        maxd, same = 0.0, True
        for t, r, c, im in zip(tasks, roll, chat, imgs):
            toks, lp = r["completions"][0]["tokens"], r["completions"][0]["logp"]
            x = torch.tensor([c["ids"] + toks])
            with torch.no_grad():
                logits = pm(input_ids=x, attention_mask=torch.ones_like(x), pixel_values=im["pixel_values"],
                            image_grid_thw=im["image_grid_thw"],
                            mm_token_type_ids=(x == pcfg_t["image_token_id"]).int()).logits[0]
            n0 = len(c["ids"])
            ls = logits[n0 - 1:n0 - 1 + len(toks)].double().log_softmax(-1)
            same &= ls.argmax(-1).tolist() == toks
            maxd = max(maxd, (ls.gather(1, torch.tensor(toks)[:, None])[:, 0] -
                              torch.tensor(lp, dtype=torch.float64)).abs().max().item())
        check(same and maxd <= TOL, f"{d}: PEFT greedy tokens equal: {same}, logp max abs diff {maxd:.2e}")
        print(f"  {d}: PeftModel.from_pretrained (30 LoRA tensors) against vr-rollout -m {d}: same greedy "
              f"tokens: {same}; logp max abs diff {maxd:.2e}")

print("work folder:", work)
print("ALL OK" if ok else "FAILED")
sys.exit(0 if ok else 1)
