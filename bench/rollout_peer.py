#!/usr/bin/env python3
"""The transformers side of bench/rollout.sh: generate(num_return_sequences=G,
do_sample=True) on the same checkpoint, prompt ids and image, same threads.
Prints one JSON line."""
import json, statistics, sys, time, torch
from PIL import Image
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor

model_dir, chat_line, image, threads, G, new, reps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
torch.set_num_threads(threads)
model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
ids = torch.tensor([json.loads(open(chat_line).read())["ids"]])
px = Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056)(images=[Image.open(image).convert("RGB")], return_tensors="pt")
c = model.config
times = []
with torch.inference_mode():
    for r in range(reps + 1):
        t0 = time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=px["pixel_values"],
                             image_grid_thw=px["image_grid_thw"], mm_token_type_ids=(ids == c.image_token_id).int(),
                             do_sample=True, num_return_sequences=G, max_new_tokens=new, min_new_tokens=new,
                             temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0)
        if r:
            times.append(time.perf_counter() - t0)
        assert out.shape[1] - ids.shape[1] == new
t = statistics.median(times)
print(json.dumps({"impl": "transformers", "threads": threads, "G": G, "new_tokens": new, "prompt_tokens": ids.shape[1],
                  "seconds": round(t, 3), "completion_tokens_per_s": round(G * new / t, 1)}))
