#!/usr/bin/env python3
"""reward_golden.py: the golden corpus of vr-reward (tests/golden/reward/).

Writes, from the cases built below (seeded, so the output is always the same):
  tests/golden/reward/rollouts.jsonl  rollout lines (DESIGN.md §3.3), 8 completions each
  tests/golden/reward/expected.jsonl  per completion {"id","index", reward name: value}
computed by a Python reimplementation of VLM-R1's rewards (om-ai-lab/VLM-R1,
src/open-r1-multimodal/src/open_r1/): each function below names the function it
mirrors. tests/t0600-reward-golden.sh and tests/unit/reward.c compare vr to these
numbers (1e-9). CI never runs Python.

    python3 tests/golden/reward_golden.py                 # rewrite the corpus
    python3 tests/golden/reward_golden.py --check-vlmr1 DIR
        # DIR = a VLM-R1 checkout: run VLM-R1's own format_reward_rec, iou_reward
        # (vlm_modules/qwen_module.py) and format_reward (grpo_jsonl.py), taken
        # from its source, on the corpus and require the same numbers as here
    python3 tests/golden/reward_golden.py --tables        # the Unicode tables of lib/reward.c

Where vr departs from VLM-R1 (documented in vr-reward(1)), this script does what
vr does, in a function marked "vr:":
  - NaN IoU (only from numbers beyond 1e300 that overflow to inf) -> 0.0;
    VLM-R1 would put NaN into the group's advantages.
  - no model input size on the line (no "pixels") -> no rescale, the integers
    converted to float; VLM-R1 always has image_grid_thw.
  - repetition: json_repair's repair_json is not reproduced (a candidate that
    json.loads refuses is plain text); JSON that Python accepts but strict JSON
    refuses (NaN, Infinity, numbers beyond int64 or double) is plain text too; list items
    on which VLM-R1's code raises TypeError (numbers, null, booleans, strings or
    lists holding both "bbox_2d" and "label") are skipped instead of crashing;
    items are compared by value, where VLM-R1 compares f"{bbox}_{label}" texts
    (which differ only for contrived items, none in the corpus).
Python's \\d and \\s (str patterns) are Unicode-aware; vr uses the same sets,
printed by --tables from this Python's unicodedata (see lib/reward.c).
"""
import ast
import json
import math
import os
import random
import re
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "reward")

# ---------------------------------------------------------------- VLM-R1's rewards

FORMAT_REC = r"<think>.*?</think>\s*<answer>.*?\{.*\[\d+,\s*\d+,\s*\d+,\s*\d+\].*\}.*?</answer>"


def format_rec(content):
    # mirrors Qwen2VLModule.format_reward_rec (vlm_modules/qwen_module.py)
    return 1.0 if re.search(FORMAT_REC, content, re.DOTALL) is not None else 0.0


def format_strict(content):
    # mirrors format_reward (grpo_jsonl.py)
    return 1.0 if re.fullmatch(r"<think>.*?</think>\s*<answer>.*?</answer>", content, re.DOTALL) else 0.0


def iou(box1, box2):
    # mirrors iou() inside Qwen2VLModule.iou_reward (vlm_modules/qwen_module.py):
    # the intersection of inclusive pixel ranges (the -1/+1), the union of the
    # plain areas; ZeroDivisionError is caught by the caller
    inter_x1 = max(box1[0], box2[0])
    inter_y1 = max(box1[1], box2[1])
    inter_x2 = min(box1[2] - 1, box2[2] - 1)
    inter_y2 = min(box1[3] - 1, box2[3] - 1)
    if inter_x1 < inter_x2 and inter_y1 < inter_y2:
        inter = (inter_x2 - inter_x1 + 1) * (inter_y2 - inter_y1 + 1)
    else:
        inter = 0
    union = (box1[2] - box1[0]) * (box1[3] - box1[1]) + (box2[2] - box2[0]) * (box2[3] - box2[1]) - inter
    return float(inter) / union


def resize_bbox(bbox, input_height, input_width, image_height, image_width):
    # mirrors resize_bbox() inside Qwen2VLModule.iou_reward
    bbox[0] = bbox[0] / input_width * image_width
    bbox[1] = bbox[1] / input_height * image_height
    bbox[2] = bbox[2] / input_width * image_width
    bbox[3] = bbox[3] / input_height * image_height
    return bbox


def iou_reward(content, sol, input_wh, image_wh):
    # mirrors the loop body of Qwen2VLModule.iou_reward: first <answer> block,
    # first [int, int, int, int] in it, rescaled from the model input size
    # (image_grid_thw * 14) to the image size, IoU; any exception gives 0.0
    reward = 0.0
    try:
        m = re.search(r"<answer>(.*?)</answer>", content, re.DOTALL)
        if m:
            content_answer = m.group(1).strip()
            b = re.search(r"\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)]", content_answer)
            if b:
                bbox = [int(b.group(1)), int(b.group(2)), int(b.group(3)), int(b.group(4))]
                if input_wh is not None and image_wh is not None:
                    bbox = resize_bbox(bbox, input_wh[1], input_wh[0], image_wh[1], image_wh[0])
                else:
                    bbox = [float(v) for v in bbox]  # vr: no input size, no rescale
                reward = iou(bbox, sol)
    except Exception:
        pass
    if reward != reward:  # vr: NaN -> 0.0
        reward = 0.0
    return reward


def iou50(content, sol, input_wh, image_wh):
    # VLM-R1's commented-out variant in iou_reward ("if iou(bbox, sol) > 0.5")
    return 1.0 if iou_reward(content, sol, input_wh, image_wh) > 0.5 else 0.0


class _NoRepair(Exception):
    pass


def _loads_strict(s):
    # vr: json.loads less what strict JSON (jansson) refuses
    def bad_constant(name):
        raise json.JSONDecodeError("constant", s, 0)

    def int_in_range(t):
        v = int(t)
        if not -(2**63) <= v < 2**63:
            raise json.JSONDecodeError("big integer", s, 0)
        return v

    def float_in_range(t):
        v = float(t)
        if math.isinf(v):
            raise json.JSONDecodeError("real overflow", s, 0)
        return v

    return json.loads(s, parse_constant=bad_constant, parse_int=int_in_range, parse_float=float_in_range)


def repetition_reward(content):
    # mirrors repetition_reward (grpo_jsonl.py), with the vr: notes above
    max_penalty = -1.0
    if content == "":
        return 0.0
    json_match = re.search(r"```json(.*?)```", content, re.DOTALL)
    if json_match:
        bbox_json = json_match.group(1).strip()
    else:
        json_match = re.search(r"```(.*?)```", content, re.DOTALL)
        bbox_json = json_match.group(1).strip() if json_match else None
        if not bbox_json:
            json_match = re.search(r'\[\s*{.*?"bbox_2d".*?"label".*?}\s*\]', content, re.DOTALL)
            bbox_json = json_match.group(0) if json_match else None
    if bbox_json:
        try:
            data = _loads_strict(bbox_json)
        except json.JSONDecodeError:
            data = None  # vr: VLM-R1 tries json_repair.repair_json here
        if data and isinstance(data, list):
            items = []
            for item in data:
                if isinstance(item, dict):
                    if "bbox_2d" in item and "label" in item:
                        items.append(f"{item['bbox_2d']}_{item['label']}")
                # vr: other items skipped (VLM-R1 raises TypeError on some)
            ngrams = set()
            total = 0
            for ng in zip(*[items[i:] for i in range(1)]):
                ngrams.add(ng)
                total += 1
            if total == 0:
                return 0.0
            scaling = 1 - len(ngrams) / total
            return scaling * max_penalty
    ngram_size = 6
    if len(content.split()) < ngram_size:
        return 0.0
    words = content.lower().split()
    ngrams = set()
    total = 0
    for ng in zip(*[words[i:] for i in range(ngram_size)]):
        ngrams.add(ng)
        total += 1
    scaling = 1 - len(ngrams) / total
    return scaling * max_penalty


def rewards_of(line, text):
    px = line.get("pixels")
    input_wh = None
    if px is not None:
        input_wh = px["input_size"] if "input_size" in px else [px["grid_thw"][2] * 14, px["grid_thw"][1] * 14]
    image_wh = line["image_sizes"][0] if line.get("image_sizes") else None
    sol = line["solution"]
    return {
        "format": format_rec(text),
        "format-strict": format_strict(text),
        "iou": iou_reward(text, sol, input_wh, image_wh),
        "iou50": iou50(text, sol, input_wh, image_wh),
        "repetition": repetition_reward(text),
    }


# ---------------------------------------------------------------- the corpus

HAND = [
    # well-formed
    '<think>The lady in blue is on the left.</think><answer>{"bbox_2d": [100, 290, 240, 480], "label": "lady"}</answer>',
    '<think>x</think>\n<answer>{"bbox_2d": [10, 20, 300, 400]}</answer>',
    '<think>\nreasoning\n</think>\n\n<answer>\n{"bbox_2d": [0,0,640,427], "label": "all"}\n</answer>',
    '<think></think><answer>{[1,2,3,4]}</answer>',
    '<think>a</think> \t <answer>{"b": [5, 6, 7, 8]}</answer> trailing text',
    'preamble <think>a</think><answer>{"bbox_2d": [50, 60, 70, 80]}</answer>',
    '<think>a</think><answer>[{"bbox_2d": [100, 290, 240, 480], "label": "lady"}]</answer>',
    '<think>a</think><answer>{"bbox_2d":[103,299,238,477],"label":"x"}</answer>',
    '<think>a</think><answer>{"bbox_2d": [103,  299,\n 238,\t477]}</answer>',
    # nested and repeated tags
    '<think><think>a</think></think><answer>{"bbox_2d": [1, 2, 3, 4]}</answer>',
    '<think>a</think><answer><answer>{"bbox_2d": [100, 290, 240, 480]}</answer></answer>',
    '<think>a</think><answer>{"bbox_2d": [1, 2, 3, 4]}</answer><answer>{"bbox_2d": [100, 290, 240, 480]}</answer>',
    '<answer>{"bbox_2d": [100, 290, 240, 480]}</answer><think>a</think><answer>{"bbox_2d": [1, 2, 3, 4]}</answer>',
    '<think>a</think><answer>no box here</answer><answer>{"bbox_2d": [100, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [1, 2, 3, 4]}<answer>{"bbox_2d": [100, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, 240, 480]}',
    '<think>a<answer>{"bbox_2d": [100, 290, 240, 480]}</answer>',
    '<think>a</think>text<answer>{"bbox_2d": [100, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, 240, 480]}</answer></think>',
    '<THINK>a</THINK><ANSWER>{"bbox_2d": [100, 290, 240, 480]}</ANSWER>',
    '<think>a</think><answer >{"bbox_2d": [100, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, 240, 480]}</answer >',
    '<think>a</think><answer>{"a": [1, 2, 3, 4]} {"bbox_2d": [100, 290, 240, 480]}</answer>',
    '<think>a</think><answer>[1, 2, 3, 4] {"bbox_2d": [100, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, 240, 480, 500]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, 240]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [[100, 290, 240, 480]]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100,290,240,480] }</answer>',
    '<think>a</think><answer>{"bbox_2d": [ 100, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100 , 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, 240, 480 ]}</answer>',
    # floats and negatives
    '<think>a</think><answer>{"bbox_2d": [100.5, 290.2, 240.7, 480.1]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100.0, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, 240, 480.0]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [1.5, 2, 3, 4], "alt": [100, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [-10, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, -290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [+100, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [1e2, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [0x10, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [1_000, 290, 240, 480]}</answer>',
    # boxes that are odd but parse
    '<think>a</think><answer>{"bbox_2d": [240, 480, 100, 290]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, 100, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [300, 290, 100, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 480, 240, 290]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [0, 0, 0, 0]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [0, 0, 1, 1]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [101, 291, 102, 292]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [0, 0, 5000, 5000]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [700, 500, 900, 600]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [007, 0290, 00240, 480]}</answer>',
    # fenced JSON
    '<think>a</think><answer>```json\n{"bbox_2d": [100, 290, 240, 480], "label": "lady"}\n```</answer>',
    '<think>a</think><answer>```json\n[{"bbox_2d": [100, 290, 240, 480], "label": "lady"}]\n```</answer>',
    '<think>a</think>```json\n{"bbox_2d": [100, 290, 240, 480]}\n```',
    '```json\n[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [1, 2, 3, 4], "label": "a"}]\n```',
    '```json\n[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [1, 2, 3, 4], "label": "b"}, {"bbox_2d": [1, 2, 3, 4], "label": "a"}]\n```',
    '```\n[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [5, 6, 7, 8], "label": "a"}]\n```',
    '```json\n```\n```[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [1, 2, 3, 4], "label": "a"}]```',
    '```\n\n```[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [1, 2, 3, 4], "label": "a"}]',
    'text [ {"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [1, 2, 3, 4], "label": "a"} ] text',
    '[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [9, 9, 9, 9], "label": "z"}]',
    '```json\n[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [1.0, 2, 3, 4], "label": "a"}]\n```',
    '```json\n[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, 5, null, "bbox_2d", {"label": "a"}]\n```',
    '```json\n[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [1, 2, 3, 4], "label": "a"}, NaN]\n```',
    '```json\n[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [1, 2, 3, 4], "label": "a"}, 123456789012345678901234567890]\n```',
    '```json\n[]\n```',
    '```json\n{"bbox_2d": [1, 2, 3, 4], "label": "a"}\n```',
    '```json\n[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [1, 2, 3, 4], "label": "a"}\n```',
    '```json [{"bbox_2d": [1, 2, 3, 4], "label": "a"}] ``` extra',
    '```json\n[{"bbox_2d": [1, 2, 3, 4], "label": {"x": 1, "y": [2, 3]}}, {"bbox_2d": [1, 2, 3, 4], "label": {"x": 1, "y": [2, 3]}}]\n```',
    # missing braces and brackets
    '<think>a</think><answer>"bbox_2d": [100, 290, 240, 480]</answer>',
    '<think>a</think><answer>[100, 290, 240, 480]</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, 240, 480]</answer>',
    '<think>a</think><answer>"bbox_2d": [100, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": 100, 290, 240, 480}</answer>',
    '<think>a</think><answer>{"bbox_2d": (100, 290, 240, 480)}</answer>',
    '<think>a</think><answer>}{"bbox_2d": [100, 290, 240, 480]</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, 240, 480]}}</answer>',
    '<think>a</think><answer>{{"bbox_2d": [100, 290, 240, 480]</answer>}',
    # huge numbers
    '<think>a</think><answer>{"bbox_2d": [12345678901234567890, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, 99999999999999999999999999999, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [9007199254740993, 9007199254740995, 9007199254740997, 9007199254740999]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [0, 0, 18446744073709551617, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, 1' + '0' * 300 + ', 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [1' + '0' * 307 + ', 290, 1' + '0' * 307 + ', 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [1' + '0' * 308 + ', 290, 2' + '0' * 308 + ', 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, 1' + '0' * 400 + ', 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, ' + '7' * 4300 + ', 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, ' + '7' * 4301 + ', 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, ' + '0' * 4298 + '240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, 240, ' + '0' * 4299 + '480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [' + '9' * 17 + ', ' + '9' * 18 + ', ' + '9' * 19 + ', ' + '9' * 25 + ']}</answer>',
    # empty and near-empty
    '',
    ' ',
    '\n',
    '<think></think><answer></answer>',
    '<think></think>\n<answer>\n</answer>',
    '<think>',
    '</answer>',
    '<answer>{"bbox_2d": [100, 290, 240, 480]}</answer>',
    '{"bbox_2d": [100, 290, 240, 480]}',
    '<think>a</think><answer></answer>{"bbox_2d": [100, 290, 240, 480]}',
    # unicode digits and spaces
    '<think>a</think><answer>{"bbox_2d": [١٠٠, ٢٩٠, ٢٤٠, ٤٨٠]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [１００, ２９０, ２４０, ４８０]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [१००, 290, २४०, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [𝟏𝟎𝟎, 𝟐𝟗𝟎, 𝟸𝟺𝟶, 𝟺𝟾𝟶]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100,\u3000290,\u00a0240,\u2003480]}</answer>',
    '<think>a</think>\u3000\u2028<answer>{"bbox_2d": [100, 290, 240, 480]}</answer>',
    '<think>a</think>\x1c\x1d\x1e\x1f\x85<answer>{"bbox_2d": [100, 290, 240, 480]}</answer>',
    '<think>a</think>\u180e<answer>{"bbox_2d": [100, 290, 240, 480]}</answer>',
    '<think>a</think>\u200b<answer>{"bbox_2d": [100, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100,\u180e290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100,\x0b290,\x0c240,\r480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [²⁰⁰, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [Ⅴ, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, 240, 480], "label": "女士 👩"}</answer>',
    '<think>这位女士在左边。</think><answer>{"bbox_2d": [100, 290, 240, 480], "label": "女士"}</answer>',
    '<think>a</think><answer>{"bbox_2d": [᠑᠐᠐, 290, 240, 480]}</answer>',
    # newlines everywhere
    '<think>\n\nline one\nline two\n</think>\n<answer>\n{\n  "bbox_2d": [\n100,\n290,\n240,\n480\n]\n}\n</answer>\n',
    '<think>a\r\nb</think>\r\n<answer>{"bbox_2d": [100, 290, 240, 480]}</answer>\r\n',
    '<think>a</think><answer>{"bbox_2d": [100,\n\n\n290, 240, 480]}</answer>',
    '<think>a</think>\n\n\n\n<answer>\n\n{"bbox_2d":\n[100, 290, 240, 480]}\n\n</answer>',
    # repetition
    'the red car behind the bus the red car behind the bus the red car behind the bus',
    'The Red car behind THE bus the red CAR behind the BUS',
    'one two three four five',
    'one two three four five six',
    'a a a a a a a a a a a a',
    '<think>I see it I see it I see it I see it I see it</think><answer>{"bbox_2d": [100, 290, 240, 480]}</answer>',
    'İstanbul is big and İstanbul is big and istanbul is big and',
    'Straße STRASSE straße Straße STRASSE straße Straße STRASSE',
    'x\u3000y\u3000z x y z x\u2028y z x y z x y z',
    'ÀÉÎ õü àéî ÕÜ ÀÉÎ õü àéî ÕÜ ÀÉÎ õü',
]

# Invalid UTF-8 out of a tokenizer: Hugging Face's batch_decode gives
# bytes.decode("utf-8", errors="replace"), and that string is what the rollout
# line's "text" holds (JSON cannot hold the raw bytes).
BYTES = [
    b'<think>\xff\xfe</think><answer>{"bbox_2d": [100, 290, 240, 480]}</answer>',
    b'<think>a</think><answer>{"bbox_2d": [100, 290, 240, 480], "label": "\xe4\xb8"}</answer>',
    b'<think>a</think><answer>{"bbox_2d": [1\xc0\x8000, 290, 240, 480]}</answer>',
    b'<think>a</think>\xed\xa0\x80<answer>{"bbox_2d": [100, 290, 240, 480]}</answer>',
    b'\xf0\x9f\x98<think>a</think><answer>{"bbox_2d": [100, 290, 240, 480]}</answer>\xf0\x9f',
    b'<think>a\x80\x80\x80</think><answer>[100, 290, 240, 480]</answer>',
]


# Boxes whose IoU depends on the geometry (overflow to inf and NaN when the
# image is larger than the model input, a union of 0): every geometry gets them.
EDGE = [
    '<think>a</think><answer>{"bbox_2d": [1' + '0' * 308 + ', 290, 2' + '0' * 308 + ', 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [0, 0, 1' + '0' * 308 + ', 1' + '0' * 308 + ']}</answer>',
    '<think>a</think><answer>{"bbox_2d": [1' + '0' * 306 + ', 1' + '0' * 306 + ', 1' + '0' * 307 + ', 1' + '0' * 307 + ']}</answer>',
    '<think>a</think><answer>{"bbox_2d": [240, 290, 100, 440]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, 240, 440]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [100, 290, 240, 480]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [0, 0, 99999999999999999999, 1]}</answer>',
    '<think>a</think><answer>{"bbox_2d": [9007199254740993, 0, 9007199254740995, 1]}</answer>',
]


def generated(rng, sol, n):
    """n completions around the gold box: well-formed answers with boxes near
    and far, and the same answers broken in one of many ways."""
    out = []
    x1, y1, x2, y2 = sol
    for _ in range(n):
        j = [rng.randint(-40, 40) for _ in range(4)]
        b = [max(0, int(x1) + j[0]), max(0, int(y1) + j[1]), max(0, int(x2) + j[2]), max(0, int(y2) + j[3])]
        if rng.random() < 0.2:
            b = [rng.randint(0, 2000) for _ in range(4)]
        box = "[%d, %d, %d, %d]" % tuple(b)
        sep = rng.choice([", ", ",", ",  ", ",\n", " , "])
        box2 = "[" + sep.join(str(v) for v in b) + "]"
        think = rng.choice(["", "a", "The object is near the centre.", "\n step 1\n step 2\n", "<think>"])
        body = rng.choice(['{"bbox_2d": %s, "label": "thing"}', '{"bbox_2d": %s}', "%s", '[{"bbox_2d": %s, "label": "x"}]',
                           '```json\n{"bbox_2d": %s}\n```', '{"bbox": %s, "score": 0.9}']) % rng.choice([box, box2])
        gap = rng.choice(["", "\n", " ", "\n\n", "  \t"])
        form = rng.choice(["ok", "ok", "ok", "no_think_close", "no_answer_close", "swap", "trail", "lead", "double"])
        if form == "ok":
            t = "<think>%s</think>%s<answer>%s</answer>" % (think, gap, body)
        elif form == "no_think_close":
            t = "<think>%s%s<answer>%s</answer>" % (think, gap, body)
        elif form == "no_answer_close":
            t = "<think>%s</think>%s<answer>%s" % (think, gap, body)
        elif form == "swap":
            t = "<answer>%s</answer>%s<think>%s</think>" % (body, gap, think)
        elif form == "trail":
            t = "<think>%s</think>%s<answer>%s</answer> done." % (think, gap, body)
        elif form == "lead":
            t = "Sure. <think>%s</think>%s<answer>%s</answer>" % (think, gap, body)
        else:
            t = "<think>%s</think><answer>%s</answer><think>again</think><answer>[%d, %d, %d, %d]</answer>" % (
                think, body, b[2], b[3], b[2] + 10, b[3] + 10)
        out.append(t)
    return out


# (image size [w, h], pixels or None, solution)
GEOMS = [
    ([640, 427], {"grid_thw": [1, 30, 46], "input_size": [644, 420]}, [103.93, 299.99, 238.15, 477.41]),
    ([640, 427], {"grid_thw": [1, 30, 46], "input_size": [644, 420]}, [100.0, 290.0, 240.0, 480.0]),
    ([1280, 960], {"grid_thw": [1, 68, 92], "input_size": [1288, 952]}, [200.5, 580.25, 480.75, 940.0]),
    ([333, 500], {"grid_thw": [1, 36, 24]}, [12.0, 40.5, 300.0, 480.0]),
    ([448, 448], {"grid_thw": [1, 32, 32], "input_size": [448, 448]}, [100, 290, 240, 440]),
    ([640, 427], None, [103.93, 299.99, 238.15, 477.41]),
    ([2000, 1500], {"grid_thw": [1, 22, 30], "input_size": [420, 308]}, [1.0, 2.0, 1999.0, 1499.0]),
    ([64, 48], {"grid_thw": [1, 4, 4], "input_size": [56, 56]}, [8.5, 6.25, 40.0, 30.0]),
]


def build():
    rng = random.Random(20261125)
    texts = list(HAND) + [b.decode("utf-8", errors="replace") for b in BYTES]
    # every hand case meets two geometries; generated ones fill the groups
    lines = []
    k = 0
    n_lines = (2 * len(texts) + 96 + 7) // 8 + len(GEOMS)
    for li in range(n_lines):
        img, px, sol = GEOMS[li % len(GEOMS)]
        comps = []
        for _ in range(8):
            if k < 2 * len(texts):
                comps.append(texts[(k * 7) % len(texts)] if k >= len(texts) else texts[k])
                k += 1
            else:
                comps.append(generated(rng, sol, 1)[0])
        line = {"id": "golden/%d" % li, "split": "golden", "task": "rec",
                "images": ["/golden/%d.jpg" % li], "image_sizes": [img],
                "problem": "Please provide the bounding box coordinate of the region this sentence describes: the thing.",
                "solution": sol, "label": "the thing"}
        if px is not None:
            line["pixels"] = dict({"file": "cache/golden%d.safetensors" % li}, **px)
        if li >= n_lines - len(GEOMS):
            comps = list(EDGE)
        line["prompt_tokens"] = 100 + li
        line["completions"] = [{"text": t, "tokens": list(range(1, 2 + i)), "logp": [-0.5] * (1 + i),
                                "finish": "eos"} for i, t in enumerate(comps)]
        lines.append(line)
    return lines


def write():
    os.makedirs(OUT, exist_ok=True)
    lines = build()
    n = 0
    with open(os.path.join(OUT, "rollouts.jsonl"), "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
    with open(os.path.join(OUT, "expected.jsonl"), "w", encoding="utf-8") as f:
        for line in lines:
            for i, c in enumerate(line["completions"]):
                rec = {"id": line["id"], "index": i}
                rec.update(rewards_of(line, c["text"]))
                f.write(json.dumps(rec) + "\n")
                n += 1
    print("%d lines, %d completions -> %s" % (len(lines), n, OUT))


# ---------------------------------------------------------------- checks against VLM-R1


def _vlmr1_funcs(root):
    """VLM-R1's own reward functions, taken from its source with ast (its
    modules import torch, transformers and trl, which this check does without)."""
    base = os.path.join(root, "src/open-r1-multimodal/src/open_r1")
    found = {}
    for rel, names in (("vlm_modules/qwen_module.py", ("format_reward_rec", "iou_reward")),
                       ("grpo_jsonl.py", ("format_reward",))):
        src = open(os.path.join(base, rel), encoding="utf-8").read()
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.FunctionDef) and node.name in names:
                node.decorator_list = []
                found[node.name] = ast.unparse(node)

    class FakeImage:
        size = (0, 0)

        @staticmethod
        def open(path):
            return FakeImage

    import datetime as _dt
    ns = {"Image": FakeImage, "re": re, "os": os, "datetime": _dt.datetime}
    for name, code in found.items():
        exec(code, ns)
    return ns, FakeImage


def check_vlmr1(root):
    ns, fake = _vlmr1_funcs(root)
    os.environ.pop("DEBUG_MODE", None)
    bad = 0
    n = 0
    for line in build():
        px = line.get("pixels")
        img = line["image_sizes"][0]
        fake.size = tuple(img)
        texts = [c["text"] for c in line["completions"]]
        comps = [[{"role": "assistant", "content": t}] for t in texts]
        got_f = ns["format_reward_rec"](comps)
        got_s = ns["format_reward"](comps)
        got_i = None
        if px is not None:
            grid = px["grid_thw"]  # every corpus line has input_size == grid * 14
            sol = "<answer>" + json.dumps(line["solution"]) + "</answer>"
            got_i = ns["iou_reward"](comps, [sol] * len(comps), image_grid_thw=[grid] * len(comps),
                                     image_path=[["x"]] * len(comps))
        for i, t in enumerate(texts):
            want = rewards_of(line, t)
            n += 1
            if got_f[i] != want["format"] or got_s[i] != want["format-strict"]:
                bad += 1
                print("format mismatch", line["id"], i, repr(t[:80]))
            if got_i is not None:
                g = got_i[i]
                if g != g:
                    g = 0.0  # vr: NaN -> 0
                if g != want["iou"]:
                    bad += 1
                    print("iou mismatch", line["id"], i, g, want["iou"], repr(t[:80]))
    print("checked %d completions against VLM-R1's code: %d mismatches" % (n, bad))
    return 1 if bad else 0


def tables():
    """Python's \\d and \\s for str patterns, as lib/reward.c holds them."""
    d = [c for c in range(0x110000) if re.match(r"\d", chr(c))]
    runs = []
    for c in d:
        if runs and runs[-1][1] == c - 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    assert all((b - a + 1) % 10 == 0 for a, b in runs)
    assert all(unicodedata.decimal(chr(c)) == (c - a) % 10 for a, b in runs for c in range(a, b + 1))
    s = [c for c in range(0x110000) if re.match(r"\s", chr(c))]
    assert all(chr(c).isspace() for c in s) and len(s) == sum(chr(c).isspace() for c in range(0x110000))
    print("/* Python %s, Unicode %s */" % (sys.version.split()[0], unicodedata.unidata_version))
    print("decimal runs (%d):" % len(runs), ", ".join("{0x%x, 0x%x}" % (a, b) for a, b in runs))
    print("spaces (%d):" % len(s), ", ".join("0x%x" % c for c in s))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--check-vlmr1":
        sys.exit(check_vlmr1(sys.argv[2]))
    if len(sys.argv) > 1 and sys.argv[1] == "--tables":
        tables()
        sys.exit(0)
    write()
