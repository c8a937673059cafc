#!/usr/bin/env python3
"""Golden fixtures for the Qwen2.5-VL forward pass (issue 4, Done when 3).

A tiny random Qwen2.5-VL (2 vision blocks, one with full attention; 2 decoder
layers with GQA) runs in transformers, fp32, eager attention, on a batch of 2
left-padded sequences holding three images of two sizes (each image spans at
least 2x2 attention windows). Writes tests/golden/model/:
  ckpt/            the checkpoint (config.json + model.safetensors), old-style names
  io.safetensors   inputs (input_ids, attention_mask, pixel_values, image_grid_thw)
                   and outputs (vision_embeds, position_ids, rope_deltas, logits,
                   next_ids, next_logits = logits of one more token per sequence)
Run from the repository root:  python3 tests/golden/make_model_golden.py
"""
import json, os, torch
from safetensors.torch import save_file
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

OUT = "tests/golden/model"
V = 320
IMG, VSTART, VEND, VIDEO = 300, 298, 299, 301
def run_golden(model, io_path, seed=1234):
    """Run model on a fixed batch (2 left-padded sequences, 3 images of two
    sizes) and write inputs and outputs to io_path."""
    torch.manual_seed(seed)
    cfg = model.config
    IMG, VSTART, VEND = cfg.image_token_id, cfg.vision_start_token_id, cfg.vision_end_token_id
    low, high = 1, min(290, cfg.text_config.vocab_size)
    grids = [(1, 12, 16), (1, 8, 10), (1, 8, 10)]
    npatch = sum(t * h * w for t, h, w in grids)
    pixel_values = torch.randn(npatch, 3 * 2 * 14 * 14)

    def text(n):
        return torch.randint(low, high, (n,)).tolist()

    def image(g):
        return [VSTART] + [IMG] * (g[1] * g[2] // 4) + [VEND]

    seq0 = text(5) + image(grids[0]) + text(3) + image(grids[1]) + text(4)
    seq1 = text(3) + image(grids[2]) + text(6)
    T = max(len(seq0), len(seq1))
    ids = torch.zeros(2, T, dtype=torch.long)
    mask = torch.zeros(2, T, dtype=torch.long)
    for b, s in enumerate([seq0, seq1]):
        ids[b, T - len(s):] = torch.tensor(s)
        mask[b, T - len(s):] = 1
    mm = (ids == IMG).int()
    grid_t = torch.tensor(grids)

    with torch.no_grad():
        vis = model.model.get_image_features(pixel_values, grid_t).pooler_output
        vis = torch.cat(vis, 0)
        pos, deltas = model.model.get_rope_index(ids, mm_token_type_ids=mm, image_grid_thw=grid_t,
                                                 attention_mask=mask)
        out = model(input_ids=ids, attention_mask=mask, pixel_values=pixel_values,
                    image_grid_thw=grid_t, mm_token_type_ids=mm)
        logits = out.logits
        nxt = torch.tensor([[17], [211]])
        ids2 = torch.cat([ids, nxt], 1)
        mask2 = torch.cat([mask, torch.ones(2, 1, dtype=torch.long)], 1)
        out2 = model(input_ids=ids2, attention_mask=mask2, pixel_values=pixel_values,
                     image_grid_thw=grid_t, mm_token_type_ids=(ids2 == IMG).int())
        next_logits = out2.logits[:, -1]
        # sanity: the extra token does not change earlier logits
        assert torch.allclose(out2.logits[:, :-1][mask.bool()], logits[mask.bool()], atol=1e-5)

    save_file({
        "input_ids": ids.to(torch.int64).contiguous(),
        "attention_mask": mask.to(torch.int64).contiguous(),
        "pixel_values": pixel_values.contiguous(),
        "image_grid_thw": grid_t.to(torch.int64).contiguous(),
        "vision_embeds": vis.contiguous(),
        "position_ids": pos.to(torch.int64).contiguous(),
        "rope_deltas": deltas.to(torch.int64).reshape(-1).contiguous(),
        "logits": logits.float().contiguous(),
        "next_ids": nxt.reshape(-1).to(torch.int64).contiguous(),
        "next_logits": next_logits.float().contiguous(),
    }, io_path)
    return T, npatch, tuple(logits.shape)



if __name__ == "__main__":
    torch.manual_seed(1234)
    cfg = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=V, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
                         max_position_embeddings=4096, tie_word_embeddings=False,
                         rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                          "mrope_section": [2, 3, 3]},
                         bos_token_id=302, eos_token_id=303),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=48, num_heads=2,
                           out_hidden_size=64, fullatt_block_indexes=[1], window_size=112,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                           tokens_per_second=2, hidden_act="silu"),
        image_token_id=IMG, video_token_id=VIDEO, vision_start_token_id=VSTART,
        vision_end_token_id=VEND, tie_word_embeddings=False,
    )
    cfg._attn_implementation = "eager"
    model = Qwen2_5_VLForConditionalGeneration(cfg).eval()
    with torch.no_grad():  # larger than the default init so every op matters
        for n, p in model.named_parameters():
            if n.endswith("norm.weight") or "norm1" in n or "norm2" in n or "ln_q" in n or "layernorm" in n:
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
    model.config._attn_implementation = "eager"
    for m in model.modules():
        if hasattr(m, "config"):
            m.config._attn_implementation = "eager"

    os.makedirs(OUT + "/ckpt", exist_ok=True)
    model.save_pretrained(OUT + "/ckpt", safe_serialization=True)
    # keep the checkpoint lean: the loader test needs only these two files
    for f in os.listdir(OUT + "/ckpt"):
        if f not in ("config.json", "model.safetensors"):
            os.remove(os.path.join(OUT, "ckpt", f))
    print("T, patches, logits:", run_golden(model, OUT + "/io.safetensors"))
