#!/usr/bin/env python3
"""The transformers/PyTorch side of bench/forward.sh: the same prompt (one
image of SIDE px square + text) on the same checkpoint, same thread count.
Prints one JSON line like build/bench/forward."""
import json, statistics, sys, time, torch
from transformers import Qwen2_5_VLForConditionalGeneration

model_dir, threads = sys.argv[1], int(sys.argv[2])
side, ntext, ndec, reps = 448, 64, 32, 3
torch.set_num_threads(threads)
t0 = time.perf_counter()
model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
t_load = time.perf_counter() - t0
c = model.config
g = side // 14
grid = torch.tensor([[1, g, g]])
npatch, nimg = g * g, g * g // 4
pix = torch.rand(npatch, 3 * 2 * 14 * 14) * 2 - 1
T = ntext + nimg + 2
ids = list(range(100, 115)) + [c.vision_start_token_id] + [c.image_token_id] * nimg + [c.vision_end_token_id]
ids += [200 + k % 1000 for k in range(len(ids), T)]
ids = torch.tensor([ids])
mm = (ids == c.image_token_id).int()

def timed(f):
    a = time.perf_counter(); out = f(); return time.perf_counter() - a, out

tv, tp, td = [], [], []
with torch.inference_mode():
    for rep in range(reps + 1):
        dv, vis = timed(lambda: torch.cat(model.model.get_image_features(pix, grid).pooler_output, 0))
        emb = model.model.get_input_embeddings()(ids)
        emb = emb.masked_scatter((ids == c.image_token_id).unsqueeze(-1), vis)
        pos, _ = model.model.get_rope_index(ids, mm_token_type_ids=mm, image_grid_thw=grid)
        def prefill():
            h = model.model.language_model(inputs_embeds=emb, position_ids=pos).last_hidden_state
            return model.lm_head(h[:, -1])
        dp, _ = timed(prefill)
        kw = dict(input_ids=ids, pixel_values=pix, image_grid_thw=grid, mm_token_type_ids=mm,
                  do_sample=False, attention_mask=torch.ones_like(ids))
        d1, _ = timed(lambda: model.generate(**kw, max_new_tokens=1, min_new_tokens=1))
        dn, _ = timed(lambda: model.generate(**kw, max_new_tokens=ndec + 1, min_new_tokens=ndec + 1))
        if rep:
            tv.append(dv); tp.append(dp); td.append((dn - d1) / ndec)
mv, mp, md = (statistics.median(x) for x in (tv, tp, td))
print(json.dumps({"impl": "transformers", "model": model_dir, "dtype": "F32", "image_side": side,
                  "patches": npatch, "prompt_tokens": T, "decode_tokens": ndec, "threads": threads,
                  "torch": torch.__version__, "load_s": round(t_load, 3), "vision_s": round(mv, 4),
                  "images_per_s": round(1 / mv, 3), "prefill_s": round(mp, 4),
                  "prefill_tokens_per_s": round(T / mp, 1), "decode_ms_per_token": round(1000 * md, 2)}))
