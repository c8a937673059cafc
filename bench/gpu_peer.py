#!/usr/bin/env python3
"""The transformers side of bench/gpu.sh: generate(num_return_sequences=G,
do_sample=True) in bf16 with sdpa attention on the GPU, on the same checkpoint
and prompt ids (one vr-tokenize --chat line per prompt), one prompt at a time,
the generate calls alone timed after a warm-up. Prints one JSON line."""
import json, sys, time, torch
from transformers import Qwen2_5_VLForConditionalGeneration

model_dir, chat, G, new = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.bfloat16,
                                                           attn_implementation="sdpa").to("cuda").eval()
prompts = [torch.tensor([json.loads(l)["ids"]], device="cuda") for l in open(chat)]
torch.cuda.reset_peak_memory_stats()


def run():
    n = 0
    for ids in prompts:
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                             num_return_sequences=G, max_new_tokens=new, min_new_tokens=new,
                             temperature=1.0, top_k=0, top_p=1.0)
        n += (out.shape[1] - ids.shape[1]) * G
    torch.cuda.synchronize()
    return n


with torch.inference_mode():
    run()
    t0 = time.perf_counter()
    n = run()
    t = time.perf_counter() - t0
print(json.dumps({"what": "rollout", "impl": "transformers", "prompts": len(prompts), "G": G, "tokens": n,
                  "seconds": round(t, 3), "tokens_per_s": round(n / t, 1),
                  "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20)}))
