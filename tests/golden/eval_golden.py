#!/usr/bin/env python3
"""eval_golden.py: the golden corpus of vr-eval (tests/golden/eval/).

vr-eval must score model outputs exactly as VLM-R1's evaluation scripts do
(om-ai-lab/VLM-R1, src/eval/test_rec_r1.py and src/eval/test_rec_baseline.py).
This file holds a transcription of their scoring (each function names the
VLM-R1 function it mirrors), a seeded generator of inputs, and the verdicts
the transcription gives for them. Standard library only; CI never runs Python.

    python3 tests/golden/eval_golden.py                  # rewrite tests/golden/eval/
    python3 tests/golden/eval_golden.py --check-vlmr1 [GITDIR]
        # GITDIR: a VLM-R1 git directory (default: the local mirror
        # /work/.mirror/om-ai-lab+VLM-R1/repo). Takes extract_bbox_answer, iou
        # and resize_bbox out of `git show HEAD:src/eval/test_rec_{r1,baseline}.py`,
        # runs them on every scored output of the files on disk and requires
        # the verdicts there, except where VLM-R1 raises (below); also checks
        # that the files on disk are what this script writes, and that the
        # linear-time scanners below agree with the regular expressions.

What is scored (VLM-R1's order of operations, vr's [w, h] size order on the lines):
  r1        the first <answer>(.*?)</answer> block (DOTALL), stripped, then
            \\{.*\\[(\\d+),\\s*(\\d+),\\s*(\\d+),\\s*(\\d+)]\\s*.*\\} (DOTALL) in it:
            four Python ints; else [0, 0, 0, 0]
  baseline  the leftmost \\[(\\s*-?\\d*\\.?\\d+\\s*),\\s* ... \\] (four groups) anywhere:
            four Python floats; else [0, 0, 0, 0]
  resize    x / input_width * image_width, y / input_height * image_height
            (r1's int / int is Python's correctly rounded true division)
  iou       inclusive-pixel intersection (the -1 / +1), plain-area union
  correct   iou > 0.5 (0.5 itself is not correct; NaN is not correct)
Python's \\d (Unicode Nd) and \\s (str.isspace) are Unicode-aware; int() and
float() read every Nd digit, also mixed scripts within one number.

Where VLM-R1 would raise, the verdict is vr's defined behaviour ("vr:" below):
  - ZeroDivisionError in iou (union == 0, also -0.0): iou 0.0, not correct.
  - r1, int() refuses a group (more than 4300 digits, leading zeros counted:
    ValueError), or int / int exceeds the double range (OverflowError; or
    float(int) for a line without sizes): parse "bad_number", pred null,
    iou 0.0, not correct.
  - baseline, float() refuses a group: Python's float() strips whitespace but
    not U+001C..U+001F, which \\s matches, so "[\\x1c12, ...", or "[12\\x1c, ..."
    (the group holds the whitespace after '[' and before ',' or ']') raises
    ValueError: parse "bad_number", pred null, iou 0.0, not correct. (Whitespace
    after a ',' is outside the groups and harmless.)
Not raising, followed as Python does it:
  - baseline, a literal beyond the double range: float() gives +-inf, resized
    +-inf; iou may be NaN (inf - inf); correct = NaN > 0.5 = false.
    JSON cannot hold these: an iou NaN is written null, a pred coordinate
    +-inf is written null.
  - a line without a model input size (plain.jsonl only): no rescale, the
    numbers as Python floats (VLM-R1 always has image_grid_thw).
Parse status (vr-eval's field): r1 "no_answer" | "no_box" | "bad_number" | "ok";
baseline "no_box" | "bad_number" | "ok". When it is not "ok", VLM-R1 scores the
box [0, 0, 0, 0] (IoU 0.0 or ZeroDivisionError -> 0.0); the verdict's pred is null.
"""
import ast
import json
import math
import os
import random
import re
import subprocess
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "eval")
MIRROR = "/work/.mirror/om-ai-lab+VLM-R1/repo"
SEED = 20261126

# ---------------------------------------------------------------- the scoring

ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
# test_rec_r1.py's bbox pattern: a '{', anything, four bare integers, anything, a '}'
R1_BOX = re.compile(r"\{.*\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)]\s*.*\}", re.DOTALL)
# test_rec_baseline.py's bbox pattern: four signed decimals, whitespace kept in the groups
_NUM = r"(\s*-?\d*\.?\d+\s*)"
BASELINE_BOX = re.compile(r"\[" + _NUM + r",\s*" + _NUM + r",\s*" + _NUM + r",\s*" + _NUM + r"\]")


def read_r1(text):
    """Mirrors extract_bbox_answer() of src/eval/test_rec_r1.py.

    Returns (status, numbers): numbers are the four Python ints when status
    is "ok", else None (VLM-R1 returns [0, 0, 0, 0] for both failures)."""
    block = ANSWER_BLOCK.search(text)
    if block is None:
        return "no_answer", None
    box = R1_BOX.search(block.group(1).strip())
    if box is None:
        return "no_box", None
    try:
        numbers = [int(g) for g in box.groups()]
    except ValueError:  # vr: more than 4300 digits; VLM-R1's script dies here
        return "bad_number", None
    return "ok", numbers


def read_baseline(text):
    """Mirrors extract_bbox_answer() of src/eval/test_rec_baseline.py.

    Returns (status, numbers): four Python floats when "ok"."""
    box = BASELINE_BOX.search(text)
    if box is None:
        return "no_box", None
    try:
        numbers = [float(g) for g in box.groups()]
    except ValueError:  # vr: U+001C..U+001F inside a group; VLM-R1's script dies here
        return "bad_number", None
    return "ok", numbers


READERS = {"r1": read_r1, "baseline": read_baseline}


def rescale(numbers, input_wh, image_wh):
    """Mirrors resize_bbox() of test_rec_r1.py / test_rec_baseline.py (the same
    code in both): x / input_width * image_width, y / input_height * image_height,
    divided first. Sizes here in vr's [w, h] order (VLM-R1 passes h before w).
    Without a model input size (vr: plain lines only) the numbers are taken as
    image pixels, converted to float. May raise OverflowError for huge ints."""
    if input_wh is None:
        return [float(v) for v in numbers]
    in_w, in_h = input_wh
    im_w, im_h = image_wh
    return [numbers[0] / in_w * im_w, numbers[1] / in_h * im_h,
            numbers[2] / in_w * im_w, numbers[3] / in_h * im_h]


def _py_max(a, b):
    # Python's max(a, b) keeps a unless b > a (matters only for NaN)
    return b if b > a else a


def _py_min(a, b):
    # Python's min(a, b) keeps a unless b < a
    return b if b < a else a


def box_iou(p, g):
    """Mirrors iou() of test_rec_r1.py / test_rec_baseline.py (the same code in both).

    The intersection spans inclusive pixel ranges: right/bottom edges less 1,
    counted only if left < right and top < bottom (strictly), then +1 on each
    side, so an overlap of width <= 1 counts 0 and wider ones count their plain
    width. The union is area(p) + area(g) - intersection with signed plain
    areas (an inverted box has a negative or positive area and never
    intersects). Returns None where Python raises ZeroDivisionError (union == 0)."""
    left = _py_max(p[0], g[0])
    top = _py_max(p[1], g[1])
    right = _py_min(p[2] - 1, g[2] - 1)
    bottom = _py_min(p[3] - 1, g[3] - 1)
    if left < right and top < bottom:
        inter = (right - left + 1) * (bottom - top + 1)
    else:
        inter = 0
    union = (p[2] - p[0]) * (p[3] - p[1]) + (g[2] - g[0]) * (g[3] - g[1]) - inter
    if union == 0:
        return None
    return float(inter) / union


def score(mode, text, gold, input_wh, image_wh):
    """One output, as the scripts' final loop treats it (model_answer ->
    resized_model_answer -> iou > 0.5), with the vr: rules for the raises.

    Returns the verdict dict (pred, [iou, correct,] parse) and, apart, the
    name of the exception VLM-R1's code would raise on it (or None)."""
    status, numbers = READERS[mode](text)
    raised = "ValueError" if status == "bad_number" else None
    pred = None
    if status == "ok":
        try:
            pred = rescale(numbers, input_wh, image_wh)
        except OverflowError:  # vr: int / int (or float(int)) beyond the double range
            status, raised = "bad_number", "OverflowError"
    v = {"pred": pred}
    if gold is not None:
        if status == "bad_number":
            iou = 0.0
        else:
            scored = pred if pred is not None else rescale([0, 0, 0, 0], input_wh, image_wh)
            iou = box_iou(scored, gold)
            if iou is None:  # vr: ZeroDivisionError -> 0.0
                iou, raised = 0.0, "ZeroDivisionError"
        v["iou"] = iou
        v["correct"] = iou > 0.5
    v["parse"] = status
    return v, raised


def verdict_json(v):
    """The verdict as JSON text: NaN iou and +-inf pred coordinates as null."""
    out = {"pred": None if v["pred"] is None else [x if math.isfinite(x) else None for x in v["pred"]]}
    if "iou" in v:
        out["iou"] = None if v["iou"] != v["iou"] else v["iou"]
        out["correct"] = v["correct"]
    out["parse"] = v["parse"]
    return json.dumps(out, allow_nan=False)


# ---------------------------------------------------------------- linear-time scanners
# The same results without backtracking, as a C program would find them; checked
# against the regular expressions on the whole corpus by --check-vlmr1.


def _is_digit(ch):
    return unicodedata.category(ch) == "Nd"  # Python's \d for str patterns


def _is_space(ch):
    return ch.isspace()  # Python's \s for str patterns


def _r1_box_at(s, p):
    """[d+,\\s*d+,\\s*d+,\\s*d+] at s[p] == '[': (group texts, index after ']') or None."""
    i, groups = p + 1, []
    for k in range(4):
        j = i
        while j < len(s) and _is_digit(s[j]):
            j += 1
        if j == i:
            return None
        groups.append(s[i:j])
        if k < 3:
            if j >= len(s) or s[j] != ",":
                return None
            j += 1
            while j < len(s) and _is_space(s[j]):
                j += 1
        elif j >= len(s) or s[j] != "]":
            return None
        i = j
    return groups, i + 1


def scan_r1(text):
    """r1's box: the first <answer>, the first </answer> after it; in between,
    the first '{' and the last '}'; the rightmost '[' between them that starts
    a box whose ']' comes before that last '}'."""
    a = text.find("<answer>")
    if a < 0:
        return "no_answer", None
    e = text.find("</answer>", a + 8)
    if e < 0:
        return "no_answer", None
    s = text[a + 8:e]
    first, last = s.find("{"), s.rfind("}")
    if first < 0 or last < first:
        return "no_box", None
    p = s.rfind("[", first + 1, last)
    while p > first:
        m = _r1_box_at(s, p)
        if m is not None and m[1] <= last:
            groups = m[0]
            if any(len(g) > 4300 for g in groups):
                return "bad_number", None
            return "ok", [int("".join(str(unicodedata.decimal(c)) for c in g)) for g in groups]
        p = s.rfind("[", first + 1, p)
    return "no_box", None


def _baseline_box_at(s, p):
    """The baseline groups at s[p] == '[' or None. A group: whitespace (only the
    first group: what follows ',' is eaten by ',\\s*'), '-'?, a run of digits and
    dots that is D+ or D*.D+, whitespace."""
    i, groups = p + 1, []
    for k in range(4):
        start = i
        if k == 0:
            while i < len(s) and _is_space(s[i]):
                i += 1
        if i < len(s) and s[i] == "-":
            i += 1
        j = i
        while j < len(s) and (_is_digit(s[j]) or s[j] == "."):
            j += 1
        run = s[i:j]
        if not run or not _is_digit(run[-1]) or run.count(".") > 1:
            return None
        while j < len(s) and _is_space(s[j]):
            j += 1
        groups.append(s[start:j])
        if j >= len(s) or s[j] != ("," if k < 3 else "]"):
            return None
        j += 1
        if k < 3:
            while j < len(s) and _is_space(s[j]):
                j += 1
        i = j
    return groups


def _float_of_group(g):
    """float() of a baseline group: Unicode spaces stripped, but U+001C..U+001F
    refused; Nd digits read as their values."""
    if any(c in "\x1c\x1d\x1e\x1f" for c in g):
        return None
    t = "".join(str(unicodedata.decimal(c)) if _is_digit(c) else c for c in g.strip())
    return float(t)


def scan_baseline(text):
    """The leftmost '[' that starts a baseline box."""
    p = text.find("[")
    while p >= 0:
        groups = _baseline_box_at(text, p)
        if groups is not None:
            values = [_float_of_group(g) for g in groups]
            if None in values:
                return "bad_number", None
            return "ok", values
        p = text.find("[", p + 1)
    return "no_box", None


# ---------------------------------------------------------------- the corpus

LABELS = ["the red circle", "blue square", "the green triangle on the right", "the small yellow star",
          "purple ellipse", "the largest shape", "orange rectangle near the top", "the dark cross at the bottom"]
WHERE = ["upper left", "lower right", "centre", "left half", "right edge", "top", "bottom"]
THOUGHTS = [
    "The {lab} is located in the {where} of the image.",
    "I need to find {lab}. Looking at the image, it is in the {where}; its edges are clear.",
    "The question asks for {lab}. There is only one such object, in the {where}.",
    "Looking for {lab}... found it in the {where}. Estimating the corners from the pixel grid.",
    "There are several shapes. Comparing colours, {lab} is the one in the {where}.",
]

BIG = "1" + "0" * 400  # beyond the double range: float() -> inf; r1: int / int -> OverflowError


def L(b, sep=", "):
    return "[" + sep.join(str(v) for v in b) + "]"


def digits_in(s, zero):
    """s with its ASCII digits written in the script whose zero is code point zero."""
    return "".join(chr(zero + ord(c) - 48) if "0" <= c <= "9" else c for c in s)


def mixed_digits(s):
    """Each digit from another script in turn: ASCII, Devanagari, Thai, Arabic-Indic."""
    zeros = [0x30, 0x966, 0xE50, 0x660]
    out, k = [], 0
    for c in s:
        if "0" <= c <= "9":
            out.append(chr(zeros[k % 4] + ord(c) - 48))
            k += 1
        else:
            out.append(c)
    return "".join(out)


A = '<think>a</think><answer>'  # short prefixes for the hand cases
Z = '</answer>'

# (name, where it goes: "all" | "rollout" | "plain", text from (b: a box near the
# gold one in model-input pixels, f: a far box, lab: the expression)).
HAND = [
    # realistic R1 answers and their variants
    ("r1 plain", "all", lambda b, f, lab: '<think>It is %s, near the top left of the image.</think>\n<answer>{"bbox_2d": %s, "label": "%s"}</answer>' % (lab, L(b), lab)),
    ("r1 list of dicts", "all", lambda b, f, lab: '<think>\nStep 1: find it.\nStep 2: box it.\n</think>\n<answer>\n[{"bbox_2d": %s, "label": "%s"}]\n</answer>' % (L(b), lab)),
    ("r1 no think", "all", lambda b, f, lab: '<answer>{"bbox_2d": %s}</answer>' % L(b)),
    ("r1 fenced", "all", lambda b, f, lab: A + '```json\n{"bbox_2d": %s, "label": "%s"}\n```' % (L(b), lab) + Z),
    ("r1 compact", "all", lambda b, f, lab: '<think>x</think>\n<answer>{"bbox_2d":%s,"label":"%s"}</answer>' % (L(b, ","), lab)),
    ("r1 far box", "all", lambda b, f, lab: A + '{"bbox_2d": %s}' % L(f) + Z),
    ("r1 chinese", "all", lambda b, f, lab: '<think>红色圆圈在左上角。</think>\n<answer>{"bbox_2d": %s, "label": "红色圆圈 🔴"}</answer>' % L(b)),
    # tags
    ("empty", "all", lambda b, f, lab: ""),
    ("no answer tags", "all", lambda b, f, lab: '<think>It is %s.</think>\n{"bbox_2d": %s, "label": "%s"}' % (lab, L(b), lab)),
    ("first answer has no box", "all", lambda b, f, lab: A + "I cannot see it." + Z + '<answer>{"bbox_2d": %s}</answer>' % L(b)),
    ("two answers, first far", "all", lambda b, f, lab: A + '{"bbox_2d": %s}' % L(f) + Z + '\n<answer>{"bbox_2d": %s}</answer>' % L(b)),
    ("no </answer>", "all", lambda b, f, lab: A + '{"bbox_2d": %s, "label": "%s"}' % (L(b), lab)),
    ("uppercase tags", "all", lambda b, f, lab: '<THINK>a</THINK><ANSWER>{"bbox_2d": %s}</ANSWER>' % L(b)),
    ("nested answer", "all", lambda b, f, lab: A + '<answer>{"bbox_2d": %s}</answer></answer>' % L(b)),
    ("stray close first", "all", lambda b, f, lab: '</answer><answer>{"bbox_2d": %s}</answer>' % L(b)),
    ("close before open", "all", lambda b, f, lab: '</answer>{"bbox_2d": %s}<answer>' % L(b)),
    ("empty answer", "all", lambda b, f, lab: A + Z),
    ("box in think", "all", lambda b, f, lab: '<think>First guess %s, no.</think><answer>{"bbox_2d": %s}</answer>' % (L(f), L(b))),
    # braces
    ("box outside braces", "all", lambda b, f, lab: A + L(b) + Z),
    ("no closing brace", "all", lambda b, f, lab: A + '{"bbox_2d": %s' % L(b) + Z),
    ("no opening brace", "all", lambda b, f, lab: A + '"bbox_2d": %s}' % L(b) + Z),
    ("two boxes in one dict", "all", lambda b, f, lab: A + '{"first": %s, "bbox_2d": %s}' % (L(f), L(b)) + Z),
    ("box after the dict", "all", lambda b, f, lab: A + '{"bbox_2d": %s} %s' % (L(b), L(f)) + Z),
    ("two dicts", "all", lambda b, f, lab: A + '{"bbox_2d": %s}, {"bbox_2d": %s}' % (L(b), L(f)) + Z),
    ("list of two dicts", "all", lambda b, f, lab: A + '[{"bbox_2d": %s, "label": "a"}, {"bbox_2d": %s, "label": "b"}]' % (L(f), L(b)) + Z),
    ("second dict unclosed", "all", lambda b, f, lab: A + '{"a": %s} {"b": %s' % (L(f), L(b)) + Z),
    ("brace only before", "all", lambda b, f, lab: A + '{"label": "x"} %s' % L(b) + Z),
    ("brace only after", "all", lambda b, f, lab: A + '%s {"label": "x"}' % L(b) + Z),
    ("box between dicts", "all", lambda b, f, lab: A + '{"label": "x"} %s }' % L(b) + Z),
    ("double brackets", "all", lambda b, f, lab: A + '{"bbox_2d": [%s]}' % L(b) + Z),
    ("extra bracket", "all", lambda b, f, lab: A + '{"bbox_2d": %s]}' % L(b) + Z),
    # counts and number forms
    ("three numbers", "all", lambda b, f, lab: A + '{"bbox_2d": %s}' % L(b[:3]) + Z),
    ("five numbers", "all", lambda b, f, lab: A + '{"bbox_2d": %s}' % L(b + [7]) + Z),
    ("floats in r1", "all", lambda b, f, lab: A + '{"bbox_2d": [%d.5, %d.0, %d.25, %d.75]}' % tuple(b) + Z),
    ("floats then ints", "all", lambda b, f, lab: A + '{"bbox_2d": [%d.5, %d.0, %d.25, %d.75], "int_box": %s}' % (tuple(f) + (L(b),)) + Z),
    ("negative in r1", "all", lambda b, f, lab: A + '{"bbox_2d": [-%d, %d, %d, %d]}' % tuple(b) + Z),
    ("parentheses", "all", lambda b, f, lab: A + '{"bbox_2d": (%d, %d, %d, %d)}' % tuple(b) + Z),
    ("leading zeros", "all", lambda b, f, lab: A + '{"bbox_2d": [00%d, 0%d, %s%d, %d]}' % (b[0], b[1], "0" * 30, b[2], b[3]) + Z),
    ("superscripts", "all", lambda b, f, lab: A + '{"bbox_2d": [²⁰, ³⁵, %d, %d]}' % (b[2], b[3]) + Z),
    ("zeros", "all", lambda b, f, lab: A + '{"bbox_2d": [0, 0, 0, 0]}' + Z),
    ("inverted", "all", lambda b, f, lab: A + '{"bbox_2d": %s}' % L([b[2], b[3], b[0], b[1]]) + Z),
    ("inverted x", "all", lambda b, f, lab: A + '{"bbox_2d": %s}' % L([b[2], b[1], b[0], b[3]]) + Z),
    ("zero width", "all", lambda b, f, lab: A + '{"bbox_2d": %s}' % L([b[0], b[1], b[0], b[3]]) + Z),
    ("one pixel wide", "all", lambda b, f, lab: A + '{"bbox_2d": %s}' % L([b[0], b[1], b[0] + 1, b[3]]) + Z),
    # Unicode digits and spaces
    ("arabic-indic digits", "all", lambda b, f, lab: A + digits_in('{"bbox_2d": %s}' % L(b), 0x660) + Z),
    ("fullwidth digits", "all", lambda b, f, lab: A + digits_in('{"bbox_2d": %s}' % L(b), 0xFF10) + Z),
    ("math bold digits", "all", lambda b, f, lab: A + digits_in('{"bbox_2d": %s}' % L(b), 0x1D7CE) + Z),
    ("mixed scripts in a number", "all", lambda b, f, lab: A + mixed_digits('{"bbox_2d": %s}' % L(b)) + Z),
    ("unicode spaces", "all", lambda b, f, lab: A + '{"bbox_2d": [%d,\u00a0%d,\u2003%d,\u3000%d]}' % tuple(b) + Z),
    ("U+001C after commas", "all", lambda b, f, lab: A + '{"bbox_2d": [%d,\x1c%d,\x1d%d,\x1f%d]}' % tuple(b) + Z),
    ("U+001C before a comma", "all", lambda b, f, lab: A + '{"bbox_2d": [%d\x1c, %d, %d, %d]}' % tuple(b) + Z),
    ("U+001E after the bracket", "all", lambda b, f, lab: 'Box: [\x1e%d, %d, %d, %d]' % tuple(b)),
    ("U+00A0 before the bracket", "all", lambda b, f, lab: 'Box: [%d, %d, %d, %d\u00a0]' % tuple(b)),
    ("tab, U+2028, U+0085", "all", lambda b, f, lab: A + '{"bbox_2d": [%d,\t%d,\u2028%d,\x85%d]}' % tuple(b) + Z),
    ("space before commas", "all", lambda b, f, lab: A + '{"bbox_2d": [%d , %d , %d , %d ]}' % tuple(b) + Z),
    ("space after bracket", "all", lambda b, f, lab: A + '{"bbox_2d": [ %d, %d, %d, %d]}' % tuple(b) + Z),
    ("pretty-printed", "all", lambda b, f, lab: A + '\n{\n  "bbox_2d": [\n    %d,\n    %d,\n    %d,\n    %d\n  ]\n}\n' % tuple(b) + Z),
    ("newlines after commas", "all", lambda b, f, lab: A + '{"bbox_2d": [%d,\n%d,\n\t%d,\r\n%d]}' % tuple(b) + Z),
    # long runs
    ("1500 '['", "all", lambda b, f, lab: A + '{"bbox_2d": ' + "[" * 1500 + "%d, %d, %d, %d" % tuple(b) + "]]]}" + Z),
    ("2000 '{'", "all", lambda b, f, lab: A + "{" * 2000 + '"bbox_2d": %s}' % L(b) + Z),
    ("3000 '[' no box", "all", lambda b, f, lab: A + "{" + "[" * 3000 + "}" + Z),
    ("1500 '{' no '}'", "all", lambda b, f, lab: A + "{" * 1500 + L(b) + Z),
    # integers between 2^53 and 10^25 (r1 divides them correctly rounded)
    ("2^53+1", "all", lambda b, f, lab: A + '{"bbox_2d": [0, 0, 9007199254740993, 9007199254740995]}' + Z),
    ("2^54+3", "all", lambda b, f, lab: A + '{"bbox_2d": [9007199254740993, 1, 18014398509481987, 36028797018963971]}' + Z),
    ("10^23-ish", "all", lambda b, f, lab: A + '{"bbox_2d": [1, 2, 99999999999999999999999, 1234567890123456789012345]}' + Z),
    # baseline-style answers
    ("qwen json", "all", lambda b, f, lab: '```json\n[\n\t{"bbox_2d": %s, "label": "%s"}\n]\n```' % (L(b), lab)),
    ("sentence", "all", lambda b, f, lab: "The bounding box of %s is %s." % (lab, L(b))),
    ("baseline floats", "all", lambda b, f, lab: "[%d.5, %d.25, %d.0, %d.75]" % tuple(b)),
    ("negatives", "all", lambda b, f, lab: "Coordinates: [-5, -10.5, %d, %d]" % (b[2], b[3])),
    ("minus zero", "all", lambda b, f, lab: "[-0, -0.0, %d, %d]" % (b[2], b[3])),
    (".5", "all", lambda b, f, lab: "[.5, %d, %d.5, %d]" % (b[1], b[2], b[3])),
    ("5. rejected", "all", lambda b, f, lab: A + '{"bbox_2d": [%d., %d, %d, %d]}' % tuple(b) + Z),
    ("5. then a box", "all", lambda b, f, lab: "[%d., %d, %d, %d] or rather %s" % (tuple(f) + (L(b),))),
    ("1.5.5", "all", lambda b, f, lab: "[1.5.5, %d, %d, %d] [-%d.%d, -.%d, %d, %d]" % (b[1], b[2], b[3], b[0], b[1], b[2], b[2], b[3])),
    ("extra spaces", "all", lambda b, f, lab: "[  %d.5 ,   %d ,%d ,  %d.25  ]" % tuple(b)),
    ("arabic decimal", "all", lambda b, f, lab: digits_in("[%d.5, %d, %d, %d]" % tuple(b), 0x660)),
    ("nested list", "all", lambda b, f, lab: "[%d, [%d, %d, %d, %d]]" % ((f[0],) + tuple(b))),
    ("tiny", "all", lambda b, f, lab: "[0.%s1, -0.%s1, %d, %d]" % ("0" * 350, "0" * 350, b[2], b[3])),
    # beyond the double range
    ("inf x2 (baseline)", "all", lambda b, f, lab: "The box is [0, 0, %s, %d]." % (BIG, b[3])),
    ("inf - inf (baseline)", "all", lambda b, f, lab: "Box: [%s, %d, %s, %d]" % (BIG, b[1], BIG, b[3])),
    ("-inf (baseline)", "all", lambda b, f, lab: "Box: [-%s, %d, %d, -%s]" % (BIG, b[1], b[2], BIG)),
    ("r1 overflow", "rollout", lambda b, f, lab: A + '{"bbox_2d": [%d, %d, %s, %d]}' % (b[0], b[1], BIG, b[3]) + Z),
    ("r1 4301 digits", "plain", lambda b, f, lab: A + '{"bbox_2d": [%d, %d, %s%d, %d]}' % (b[0], b[1], "0" * (4301 - len(str(b[2]))), b[2], b[3]) + Z),
]


def jitter_box(rng, T, s):
    w, h = max(T[2] - T[0], 2), max(T[3] - T[1], 2)
    return [max(0, T[0] + round(rng.gauss(0, w * s))), max(0, T[1] + round(rng.gauss(0, h * s))),
            max(0, T[2] + round(rng.gauss(0, w * s))), max(0, T[3] + round(rng.gauss(0, h * s)))]


def far_box(rng, in_w, in_h):
    x1, y1 = rng.randint(0, in_w // 2), rng.randint(0, in_h // 2)
    return [x1, y1, x1 + rng.randint(4, in_w // 2), y1 + rng.randint(4, in_h // 2)]


def realistic(rng, T, in_wh, lab):
    """A model output around the box T (model-input pixels): R1-style (think +
    answer JSON) or baseline-style (a list somewhere), near or far."""
    q = rng.random()
    if q < 0.45:
        b = jitter_box(rng, T, 0.04)
    elif q < 0.85:
        b = jitter_box(rng, T, 0.18)
    else:
        b = far_box(rng, *in_wh)
    thought = rng.choice(THOUGHTS).format(lab=lab, where=rng.choice(WHERE))
    if rng.random() < 0.7:
        box = L(b, rng.choice([", ", ",", ", ", ",  "]))
        form = rng.randrange(4)
        if form == 0:
            return '<think>%s</think>\n<answer>{"bbox_2d": %s, "label": "%s"}</answer>' % (thought, box, lab)
        if form == 1:
            return '<think>\n%s\n</think>\n<answer>\n{"bbox_2d": %s, "label": "%s"}\n</answer>' % (thought, box, lab)
        if form == 2:
            return '<think>%s</think><answer>[{"bbox_2d": %s, "label": "%s"}]</answer>' % (thought, box, lab)
        return '<think>%s</think>\n<answer>```json\n{"bbox_2d": %s}\n```</answer>' % (thought, box)
    if rng.random() < 0.4:
        box = "[" + ", ".join("%g" % (v + rng.choice([0, 0.5, 0.25, 0.75])) for v in b) + "]"
    else:
        box = L(b)
    form = rng.randrange(3)
    if form == 0:
        return '```json\n[\n\t{"bbox_2d": %s, "label": "%s"}\n]\n```' % (box, lab)
    if form == 1:
        return "The bounding box of %s is %s." % (lab, box)
    return '{"bbox_2d": %s}' % box


def make_geom(rng):
    """(image [W, H], model input [w, h]): chosen independently, input in multiples of 28."""
    return [rng.randint(56, 1000), rng.randint(56, 1000)], [28 * rng.randint(2, 36), 28 * rng.randint(2, 36)]


def make_gold(rng, image_wh):
    W, H = image_wh
    bw, bh = rng.uniform(0.1, 0.6) * W, rng.uniform(0.1, 0.6) * H
    x1, y1 = rng.uniform(0, W - bw), rng.uniform(0, H - bh)
    g = [x1, y1, x1 + bw, y1 + bh]
    if rng.random() < 0.5:
        return [round(v) for v in g]
    return [round(v, 2) for v in g]


def to_input(gold, in_wh, image_wh):
    return [round(gold[0] * in_wh[0] / image_wh[0]), round(gold[1] * in_wh[1] / image_wh[1]),
            round(gold[2] * in_wh[0] / image_wh[0]), round(gold[3] * in_wh[1] / image_wh[1])]


def iou_of_box(b, gold, in_wh, image_wh):
    r = box_iou(rescale(b, in_wh, image_wh), gold)
    return 0.0 if r is None else r


def near_threshold(rng, T, gold, in_wh, image_wh, above):
    """An integer box whose IoU with gold is as close to 0.5 as a short search
    finds, above it (correct) or at or below it (not correct)."""
    best, best_d = None, None
    for _ in range(3000):
        b = jitter_box(rng, T, rng.choice([0.1, 0.2, 0.3]))
        v = iou_of_box(b, gold, in_wh, image_wh)
        if (v > 0.5) != above or v == 0.5:
            continue
        d = abs(v - 0.5)
        if best is None or d < best_d:
            best, best_d = b, d
    # then one-pixel steps toward the threshold
    improved = True
    while improved and best is not None:
        improved = False
        for k in range(4):
            for step in (-1, 1):
                c = list(best)
                c[k] += step
                if c[k] < 0:
                    continue
                v = iou_of_box(c, gold, in_wh, image_wh)
                if (v > 0.5) == above and v != 0.5 and abs(v - 0.5) < best_d:
                    best, best_d, improved = c, abs(v - 0.5), True
    return best


EXACT_INPUTS = [[448, 224], [224, 448], [448, 448], [896, 448], [224, 224], [112, 224]]


def exact_half(rng):
    """A geometry and gold box where IoU 0.5 is reached exactly: the model input
    is 7 * 2^k pixels wide and high and the boxes sit on multiples of 7, so
    every division, product and sum is exact. Returns (image, input, gold,
    [half-height box, half-width box] in input pixels)."""
    in_wh = rng.choice(EXACT_INPUTS)
    image_wh = [rng.randint(56, 1000), rng.randint(56, 1000)]
    cw, ch = in_wh[0] // 7, in_wh[1] // 7
    i1, j1 = rng.randint(0, cw // 2), rng.randint(0, ch // 2)
    i2 = i1 + 2 * rng.randint(2, (cw - i1) // 2)
    j2 = j1 + 2 * rng.randint(2, (ch - j1) // 2)
    G = [7 * i1, 7 * j1, 7 * i2, 7 * j2]
    gold = rescale(G, in_wh, image_wh)
    halves = [[7 * i1, 7 * j1, 7 * i2, 7 * (j1 + (j2 - j1) // 2)], [7 * i1, 7 * j1, 7 * (i1 + (i2 - i1) // 2), 7 * j2]]
    for h in halves:
        assert box_iou(rescale(h, in_wh, image_wh), gold) == 0.5, (in_wh, image_wh, G, h)
    return image_wh, in_wh, gold, G, halves


def r1_text(rng, b, lab):
    thought = rng.choice(THOUGHTS).format(lab=lab, where=rng.choice(WHERE))
    return '<think>%s</think>\n<answer>{"bbox_2d": %s, "label": "%s"}</answer>' % (thought, L(b), lab)


SPLITS = ["synth_val", "synth_val", "synth_ood", "synth_test"]


def problem_of(lab):
    return "Please provide the bounding box coordinate of the region this sentence describes: %s." % lab


def completion(rng, text):
    k = rng.randint(3, 40)
    return {"text": text, "tokens": [rng.randint(1, 900) for _ in range(k)],
            "logp": [round(-rng.expovariate(3.0) - 0.0001, 4) for _ in range(k)], "finish": "eos"}


def rollout_line(rng, n, image_wh, in_wh, gold, lab, texts):
    split = rng.choice(SPLITS)
    return {"id": "%s/%d" % (split, n), "split": split, "task": "rec",
            "images": ["/nonexistent/img_%d.png" % n], "image_sizes": [image_wh],
            "problem": problem_of(lab), "solution": gold, "label": lab,
            "pixels": {"file": "cache/img_%d.safetensors" % n, "grid_thw": [1, in_wh[1] // 14, in_wh[0] // 14],
                       "input_size": in_wh, "image_size": image_wh},
            "prompt_tokens": 100, "completions": [completion(rng, t) for t in texts]}


def build_rollout(rng):
    hand = [h for h in HAND if h[1] in ("all", "rollout")]
    lines = []
    n = 0
    hi = 0
    for li in range(92):
        lab = rng.choice(LABELS)
        if li % 23 == 5:  # exact IoU 0.5 (not correct), and the nearest neighbours either side
            image_wh, in_wh, gold, G, halves = exact_half(rng)
            up = near_threshold(rng, G, gold, in_wh, image_wh, True)
            down = near_threshold(rng, G, gold, in_wh, image_wh, False)
            assert up is not None and down is not None
            texts = [r1_text(rng, halves[0], lab), "[%s]" % ", ".join(map(str, halves[1])),
                     r1_text(rng, up, lab), r1_text(rng, down, lab)]
        elif li % 23 == 11:  # a gold box of zero area: [0, 0, 0, 0] makes the union 0
            image_wh, in_wh = make_geom(rng)
            g = make_gold(rng, image_wh)
            gold = [g[0], g[1], g[0], g[3]] if li % 2 else [g[0], g[1], g[2], g[1]]
            T = to_input(g, in_wh, image_wh)
            texts = ["", A + '{"bbox_2d": [0, 0, 0, 0]}' + Z, realistic(rng, T, in_wh, lab),
                     A + '{"bbox_2d": %s}' % L([T[0] + 3, T[1], T[0] + 3, T[3]]) + Z]
        else:
            image_wh, in_wh = make_geom(rng)
            gold = make_gold(rng, image_wh)
            T = to_input(gold, in_wh, image_wh)
            texts = []
            if hi < len(hand):
                f = far_box(rng, *in_wh)
                texts.append(hand[hi][2](T, f, lab))
                hi += 1
            if li % 4 == 1:
                texts.append(r1_text(rng, near_threshold(rng, T, gold, in_wh, image_wh, li % 8 == 1), lab))
            while len(texts) < 4:
                texts.append(realistic(rng, T, in_wh, lab))
            rng.shuffle(texts)
        lines.append(rollout_line(rng, n, image_wh, in_wh, gold, lab, texts))
        n += 1
    assert hi == len(hand), "rollout too short for the hand cases"
    return lines


def plain_line(rng, n, text, gold, in_wh, image_wh):
    split = rng.choice(SPLITS)
    line = {"id": "%s/p%d" % (split, n), "split": split, "text": text}
    if gold is not None:
        line["solution"] = gold
    if in_wh is not None:
        line["input_size"] = in_wh
        line["image_size"] = image_wh
    return line


def build_plain(rng):
    hand = [h for h in HAND if h[1] in ("all", "plain")]
    lines = []

    def add(text, gold, in_wh, image_wh):
        lines.append(plain_line(rng, len(lines), text, gold, in_wh, image_wh))

    for name, _, fn in hand:
        image_wh, in_wh = make_geom(rng)
        gold = make_gold(rng, image_wh)
        T = to_input(gold, in_wh, image_wh)
        if rng.random() < 0.25 or name == "r1 4301 digits":  # no sizes: the box is in image pixels
            T, in_wh = to_input(gold, image_wh, image_wh), None
        add(fn(T, far_box(rng, *image_wh), rng.choice(LABELS)), gold, in_wh, image_wh if in_wh else None)
    # no sizes, exact arithmetic
    add(A + '{"bbox_2d": [0, 0, 100, 50]}' + Z, [0, 0, 100, 100], None, None)            # IoU 0.5 exactly
    add("[0, 0, 50.0, 100]", [0, 0, 100, 100], None, None)                               # IoU 0.5 exactly
    add("[0, 0, 100, 50.015]", [0, 0, 100, 100], None, None)                             # just above
    add(A + '{"bbox_2d": [0, 0, 100, 49]}' + Z, [0, 0, 100, 100], None, None)            # just below
    add(A + '{"bbox_2d": [20, 0, 10, 10]}' + Z, [0, 0, 10, 10], None, None)              # union 0 (-100 + 100)
    add("[30, 0, 10, 10]", [0, 0, 10, 10], None, None)                                   # union < 0: -0.0
    add(A + '{"bbox_2d": [0, 0, 9007199254740993, 9007199254740995]}' + Z, [0, 0, 10, 10], None, None)
    add(A + '{"bbox_2d": [0, 0, %s, 5]}' % BIG + Z, [0, 0, 10, 10], None, None)          # float(int) overflows
    add("no box at all", [5, 5, 5, 9], None, None)                                       # zero-area gold, union 0
    add(A + '{"bbox_2d": [0, 0, 0, 0]}' + Z, [5, 5, 9, 5], [56, 56], [100, 100])         # same, with sizes
    add("[0.0, 0.0, 0.0, 0.0]", [7, 7, 7, 7], [56, 84], [640, 480])
    add(A + '{"bbox_2d": [3, 4, 3, 9]}' + Z, [3, 4, 3, 9], [112, 112], [112, 112])       # both zero width
    # batch grounding: no gold box
    for k in range(12):
        image_wh, in_wh = make_geom(rng)
        gold = make_gold(rng, image_wh)
        T = to_input(gold, in_wh, image_wh)
        f = far_box(rng, *in_wh)
        lab = rng.choice(LABELS)
        text = realistic(rng, T, in_wh, lab) if k % 3 else hand[(k * 7) % len(hand)][2](T, f, lab)
        if k % 4 == 3:
            in_wh = image_wh = None
        add(text, None, in_wh, image_wh)
    # realistic answers to reach the count
    while len(lines) < 130:
        image_wh, in_wh = make_geom(rng)
        gold = make_gold(rng, image_wh)
        T = to_input(gold, in_wh, image_wh)
        add(realistic(rng, T, in_wh, rng.choice(LABELS)), gold, in_wh, image_wh)
    return lines


def build_rec_results(rng):
    """The inputs of test_rec_r1.py's final loop: (example, output, sizes), none
    on which either script's code would raise; then the document it writes."""
    hand = [h for h in HAND if h[1] == "all"]
    picks = [hand[i] for i in range(0, len(hand), 3)]
    cases = []  # (image, question, ground_truth, model_output, in_wh, image_wh)

    def ok(text, gold, in_wh, image_wh):
        return all(score(m, text, gold, in_wh, image_wh)[1] is None for m in READERS)

    n = 0
    while len(cases) < 75:
        lab = rng.choice(LABELS)
        if n % 25 == 3:
            image_wh, in_wh, gold, G, halves = exact_half(rng)
            text = r1_text(rng, halves[n % 2], lab)
        else:
            image_wh, in_wh = make_geom(rng)
            gold = make_gold(rng, image_wh)
            T = to_input(gold, in_wh, image_wh)
            if n % 3 == 0 and picks:
                text = picks.pop(0)[2](T, far_box(rng, *in_wh), lab)
            elif n % 7 == 1:
                text = r1_text(rng, near_threshold(rng, T, gold, in_wh, image_wh, n % 14 == 1), lab)
            else:
                text = realistic(rng, T, in_wh, lab)
        if ok(text, gold, in_wh, image_wh):
            cases.append(("synth_val/img_%d.png" % n, problem_of(lab), gold, text, in_wh, image_wh))
        n += 1
    results, correct_number = [], 0
    for image, question, gt, text, in_wh, image_wh in cases:
        v, _ = score("r1", text, gt, in_wh, image_wh)
        resized = v["pred"] if v["pred"] is not None else rescale([0, 0, 0, 0], in_wh, image_wh)
        correct = 1 if v["correct"] else 0
        correct_number += correct
        results.append({"image": image, "question": question, "ground_truth": gt, "model_output": text,
                        "input_size": [in_wh[1], in_wh[0]], "image_size": [image_wh[1], image_wh[0]],
                        "extracted_answer": resized, "correct": correct})
    return {"accuracy": correct_number / len(results) * 100, "results": results}


# ---------------------------------------------------------------- writing


def scored_outputs(name, data):
    """(text, gold, input [w, h] or None, image [w, h] or None) of every scored
    output of one input file, in the order of the want files."""
    if name == "rollout":
        for line in data:
            px = line["pixels"]
            for c in line["completions"]:
                yield c["text"], line["solution"], px["input_size"], line["image_sizes"][0]
    elif name == "plain":
        for line in data:
            yield line["text"], line.get("solution"), line.get("input_size"), line.get("image_size")
    else:
        for r in data["results"]:
            yield (r["model_output"], r["ground_truth"], [r["input_size"][1], r["input_size"][0]],
                   [r["image_size"][1], r["image_size"][0]])


def render():
    """{file name: text} of everything in tests/golden/eval/."""
    rng = random.Random(SEED)
    rollout = build_rollout(rng)
    plain = build_plain(rng)
    rec = build_rec_results(rng)
    files = {
        "rollout.jsonl": "".join(json.dumps(l, ensure_ascii=False) + "\n" for l in rollout),
        "plain.jsonl": "".join(json.dumps(l, ensure_ascii=False) + "\n" for l in plain),
        "rec_results_synth_val.json": json.dumps(rec, indent=2),  # as json.dump(..., f, indent=2)
    }
    stats = {}
    for name, data in (("rollout", rollout), ("plain", plain), ("rec_results", rec)):
        for mode in READERS:
            out, st = [], {"n": 0, "labelled": 0, "correct": 0, "parse": {}, "raised": {}, "iou_null": 0, "pred_null_coord": 0}
            for text, gold, in_wh, image_wh in scored_outputs(name, data):
                v, raised = score(mode, text, gold, in_wh, image_wh)
                out.append(verdict_json(v) + "\n")
                st["n"] += 1
                st["parse"][v["parse"]] = st["parse"].get(v["parse"], 0) + 1
                if raised:
                    st["raised"][raised] = st["raised"].get(raised, 0) + 1
                if gold is not None:
                    st["labelled"] += 1
                    st["correct"] += v["correct"]
                    st["iou_null"] += v["iou"] != v["iou"]
                if v["pred"] is not None:
                    st["pred_null_coord"] += any(not math.isfinite(x) for x in v["pred"])
            files["%s.%s.want.jsonl" % (name, mode)] = "".join(out)
            stats[(name, mode)] = st
    files["README.md"] = readme(stats, rollout, plain, rec)
    return files


def readme(stats, rollout, plain, rec):
    rows = []
    for (name, mode), st in stats.items():
        parse = ", ".join("%s %d" % (k, st["parse"].get(k, 0)) for k in ("ok", "no_answer", "no_box", "bad_number")
                          if not (mode == "baseline" and k == "no_answer"))
        raised = ", ".join("%s %d" % kv for kv in sorted(st["raised"].items())) or "none"
        rows.append("| %s | %s | %d | %d | %d | %s | %s | %d | %d |" % (
            name, mode, st["n"], st["labelled"], st["correct"], parse, raised, st["iou_null"], st["pred_null_coord"]))
    total = sum(stats[(n, "r1")]["n"] for n in ("rollout", "plain", "rec_results"))
    big = max(len(c["text"].encode()) for l in rollout for c in l["completions"])
    big = max(big, max(len(l["text"].encode()) for l in plain))
    return README % {
        "rollout_lines": len(rollout), "plain_lines": len(plain), "rec_n": len(rec["results"]),
        "plain_nogold": sum("solution" not in l for l in plain),
        "plain_nosize": sum("input_size" not in l for l in plain),
        "accuracy": rec["accuracy"], "total": total, "hand": len(HAND), "rows": "\n".join(rows),
        "biggest": big, "seed": SEED,
    }


README = """# tests/golden/eval — golden verdicts of vr-eval

    python3 tests/golden/eval_golden.py                  # rewrite this folder (seeded: same bytes every run)
    python3 tests/golden/eval_golden.py --check-vlmr1    # run VLM-R1's own scoring code on it

What vr-eval must reproduce: the scoring of VLM-R1's evaluation scripts
(om-ai-lab/VLM-R1, `src/eval/test_rec_r1.py` and `src/eval/test_rec_baseline.py`):
`extract_bbox_answer` (r1: the first `<answer>(.*?)</answer>` block, stripped, then
`\\{.*\\[(\\d+),\\s*(\\d+),\\s*(\\d+),\\s*(\\d+)]\\s*.*\\}`, ints; baseline: the leftmost
`\\[(\\s*-?\\d*\\.?\\d+\\s*),\\s*...\\]` anywhere, floats; else `[0, 0, 0, 0]`), `resize_bbox`
(x / input_width * image_width, y / input_height * image_height; the input size is
`image_grid_thw * 14`), `iou` (inclusive-pixel intersection, plain-area union) and
correct = iou > 0.5. `eval_golden.py` holds a transcription of them (each function names
the one it mirrors), linear-time scanners that find the same boxes without
backtracking, and the seeded generator (seed %(seed)d) of the files here.

## Files

- `rollout.jsonl` — %(rollout_lines)d vr rollout lines × 4 completions: `pixels.input_size` =
  `[grid_w*14, grid_h*14]`, `image_sizes[0]` = `pixels.image_size` = `[W, H]` (vr's [w, h]
  order), images 56..1000 px and input sizes 56..1008 (multiples of 28) drawn
  independently; splits synth_val, synth_ood, synth_test.
- `plain.jsonl` — %(plain_lines)d lines `{"id","split","text","solution","input_size","image_size"}`
  ([w, h]); %(plain_nosize)d without sizes (the box is in image pixels: no rescale, pred = the
  parsed numbers as floats), %(plain_nogold)d without `solution` (batch grounding: the verdict
  has only `pred` and `parse`).
- `rec_results_synth_val.json` — %(rec_n)d results written exactly as `test_rec_r1.py` writes
  them (`json.dump({"accuracy", "results"}, f, indent=2)`; `input_size` and `image_size`
  are VLM-R1's **(height, width)**; `extracted_answer` is the resized box, `correct` 0/1;
  accuracy %(accuracy)r), filled by the transcription of that script. No result in it makes
  either script's code raise.
- `{rollout,plain,rec_results}.{r1,baseline}.want.jsonl` — the verdicts, one line per scored
  output in input order (rollout: every completion, line by line): `{"pred": [x1, y1, x2, y2]
  or null, "iou", "correct", "parse"}`; `iou` and `correct` absent without a gold box. For
  rec_results the gold box is `ground_truth` and the sizes come from `input_size` (h, w)
  and `image_size` (h, w), in both modes. Floats are Python's shortest round-trip repr:
  compare numerically (jq), not as text. A -0.0 may be printed as 0.0.

## The corpus

%(total)d scored outputs per mode: %(hand)d hand-written cases (in `HAND`, each in
rollout.jsonl and plain.jsonl but for the r1 overflow (rollout only) and the 4301-digit
integer (plain only); every third, where neither script raises, also in rec_results) with
the box near the gold one or far from it: realistic R1 answers; tags (empty text, no `<answer>`, two blocks,
`</answer>` missing, nested, uppercase); braces (box outside braces, no `}` after the box,
several boxes in one answer: r1's greedy `.*` takes the **last** `[d, d, d, d]` after the
first `{` that a `}` still follows, the baseline the **first** list anywhere); 3 and 5
numbers; floats in an r1 box (r1 needs ints); negatives, `.5`, `5.` (rejected),
`1.5.5`; Unicode digits (Arabic-Indic, fullwidth, mathematical bold U+1D7CE, mixed scripts
in one number — Python's `\\d` matches and `int()`/`float()` read them); Unicode spaces
(U+00A0, U+2003, U+3000, U+2028, U+0085, U+001C..U+001F); newlines; runs of 1500-3000 `[`
or `{`; inverted and zero-area boxes; integers between 2^53 and 10^25; literals beyond the
double range. The rest are generated R1-style and baseline-style answers (seeded), and
boxes at the IoU threshold: IoU exactly 0.5 (input sizes 7·2^k, boxes on multiples of 7,
so all arithmetic is exact; not correct), and the integer boxes nearest to 0.5 either side
that a search finds (some 1 or 2 ulp below 0.5).
Zero-area gold boxes scored against `[0, 0, 0, 0]` are in rollout.jsonl and plain.jsonl only. Every text is under 4 KB except one in plain.jsonl (%(biggest)d bytes: an
integer written with 4301 digits, leading zeros included, the fewest `int()` refuses).

## Where Python raises: vr's defined behaviour

- `iou`'s union is 0 (ZeroDivisionError; also -0.0): iou 0.0, not correct.
- r1: a group `int()` refuses (more than 4300 digits, **leading zeros counted**:
  ValueError), or an int / int beyond the double range (OverflowError; `float(int)` on
  a line without sizes): parse `bad_number`, pred null, iou 0.0, not correct.
- baseline: Python's `float()` strips Unicode whitespace but refuses U+001C..U+001F,
  which `\\s` matches; the groups keep the whitespace after `[` and before `,`/`]`, so
  `[\\x1e12, ...` or `[12\\x1c, ...` makes `float()` raise ValueError: parse
  `bad_number`, pred null, iou 0.0, not correct. (After a `,` such whitespace is eaten
  by `,\\s*` outside the groups and is harmless.)

Not raising, followed as Python does it: a baseline literal beyond the double range is
±inf (`float()`), resized ±inf; the IoU may be NaN (inf - inf), and NaN > 0.5 is false.
JSON has no NaN or inf: **an iou NaN is written `null`, and so is a pred coordinate ±inf**.
When the parse status is not `ok`, VLM-R1 scores `[0, 0, 0, 0]` (IoU 0, or union 0 →
0.0 above); the verdict's pred is null. Parse status is vr-eval's own field: r1
`no_answer` (no `<answer>…</answer>` block), `no_box`, `bad_number`, `ok`; baseline
`no_box`, `bad_number`, `ok`.

## Counts

| file | mode | outputs | with gold | correct | parse | Python raises (vr rule applied) | iou null (NaN) | preds with a null (±inf) |
|---|---|---|---|---|---|---|---|---|
%(rows)s

## --check-vlmr1

Takes `extract_bbox_answer`, `iou` and `resize_bbox` out of `git show
HEAD:src/eval/test_rec_r1.py` and `HEAD:src/eval/test_rec_baseline.py` of a VLM-R1 git
directory (ast; nothing of VLM-R1 is imported), execs them, and runs them on every scored
output of the files here: pred, iou and correct must equal the want files everywhere,
except where VLM-R1's code raises ZeroDivisionError (want: iou 0.0, not correct),
ValueError or OverflowError (want: `bad_number`). It also checks the rec_results file's
`extracted_answer`, `correct` and `accuracy` against VLM-R1's code, that the scanners agree
with the regular expressions on every text, that `\\d` and `\\s` are the Nd and isspace
sets, and that this folder is byte-identical to what the script writes.

Record (Python 3.11.7, Unicode 14.0.0; VLM-R1 at 90052f4): 0 mismatches over the 573
outputs of each mode; VLM-R1's code raises on 13 + 12 (rollout r1 + baseline) and 5 + 5
(plain) outputs with ZeroDivisionError, on 0 + 2 (rollout) and 1 + 2 (plain) with
ValueError, and on 1 (rollout r1) and 1 (plain r1) with OverflowError, each where the want
files hold vr's rule; none in rec_results.
"""


def write():
    os.makedirs(OUT, exist_ok=True)
    files = render()
    for name, text in files.items():
        with open(os.path.join(OUT, name), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    size = sum(len(t.encode("utf-8")) for t in files.values())
    print("%d files, %d bytes -> %s" % (len(files), size, OUT))


# ---------------------------------------------------------------- checks against VLM-R1


def vlmr1_functions(gitdir):
    """{mode: namespace with extract_bbox_answer, iou, resize_bbox} from the
    scripts' source at HEAD (the scripts import torch and start a process
    group at import, so only the three functions are taken, with ast)."""
    spaces = {}
    for mode, path in (("r1", "src/eval/test_rec_r1.py"), ("baseline", "src/eval/test_rec_baseline.py")):
        src = subprocess.run(["git", "-C", gitdir, "show", "HEAD:" + path], check=True,
                             capture_output=True, text=True).stdout
        ns = {"re": re}
        found = []
        for node in ast.parse(src).body:
            if isinstance(node, ast.FunctionDef) and node.name in ("extract_bbox_answer", "iou", "resize_bbox"):
                exec(ast.get_source_segment(src, node), ns)
                found.append(node.name)
        assert sorted(found) == ["extract_bbox_answer", "iou", "resize_bbox"], (path, found)
        spaces[mode] = ns
    return spaces


def _same(a, b):
    return a == b or (a != a and b != b)


def check_vlmr1(gitdir):
    head = subprocess.run(["git", "-C", gitdir, "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    fns = vlmr1_functions(gitdir)
    bad = 0

    def fail(*msg):
        nonlocal bad
        bad += 1
        if bad <= 30:
            print("MISMATCH", *msg)

    # the folder is what this script writes
    files = render()
    for name, text in files.items():
        with open(os.path.join(OUT, name), encoding="utf-8", newline="") as f:
            if f.read() != text:
                fail(name, "differs from what eval_golden.py writes")
    # \d and \s
    assert all(bool(re.match(r"\d", chr(c))) == _is_digit(chr(c)) for c in range(0x110000))
    assert all(bool(re.match(r"\s", chr(c))) == _is_space(chr(c)) for c in range(0x110000))

    with open(os.path.join(OUT, "rollout.jsonl"), encoding="utf-8") as f:
        rollout = [json.loads(l) for l in f]
    with open(os.path.join(OUT, "plain.jsonl"), encoding="utf-8") as f:
        plain = [json.loads(l) for l in f]
    with open(os.path.join(OUT, "rec_results_synth_val.json"), encoding="utf-8") as f:
        rec = json.load(f)
    counts = {}
    for name, data in (("rollout", rollout), ("plain", plain), ("rec_results", rec)):
        for mode, ns in fns.items():
            with open(os.path.join(OUT, "%s.%s.want.jsonl" % (name, mode)), encoding="utf-8") as f:
                wants = [json.loads(l) for l in f]
            outs = list(scored_outputs(name, data))
            if len(wants) != len(outs):
                fail(name, mode, "want lines", len(wants), "outputs", len(outs))
                continue
            c = counts.setdefault((name, mode), {"n": 0, "ZeroDivisionError": 0, "ValueError": 0, "OverflowError": 0})
            for k, ((text, gold, in_wh, image_wh), want) in enumerate(zip(outs, wants)):
                c["n"] += 1
                where = (name, mode, k, repr(text[:70]))
                # the scanners find what the regular expressions find
                if (scan_r1 if mode == "r1" else scan_baseline)(text) != READERS[mode](text):
                    fail(*where, "scanner disagrees with the regex")
                # VLM-R1's own code
                try:
                    answer = ns["extract_bbox_answer"](text)
                    if in_wh is not None:
                        resized = ns["resize_bbox"](list(answer), in_wh[1], in_wh[0], image_wh[1], image_wh[0])
                    else:
                        resized = [float(v) for v in answer]  # vr: no input size, no rescale
                except (ValueError, OverflowError) as e:
                    c[type(e).__name__] += 1
                    if want["parse"] != "bad_number" or want["pred"] is not None or \
                            ("iou" in want and (want["iou"] != 0.0 or want["correct"])):
                        fail(*where, "VLM-R1 raises %s, want" % type(e).__name__, want)
                    continue
                if want["parse"] == "ok":
                    exp = [x if math.isfinite(x) else None for x in resized]
                    if want["pred"] != exp or not all(type(x) is float for x in resized):
                        fail(*where, "pred", resized, want["pred"])
                elif answer != [0, 0, 0, 0] or want["pred"] is not None:
                    fail(*where, "VLM-R1 read", answer, "want", want)
                if gold is None:
                    if "iou" in want or "correct" in want:
                        fail(*where, "no gold but", want)
                    continue
                try:
                    got = ns["iou"](resized, gold)
                except ZeroDivisionError:
                    c["ZeroDivisionError"] += 1
                    if want["iou"] != 0.0 or want["correct"]:
                        fail(*where, "ZeroDivisionError, want", want)
                    continue
                w_iou = float("nan") if want["iou"] is None else want["iou"]
                if not _same(got, w_iou) or (got > 0.5) != want["correct"]:
                    fail(*where, "iou", got, "want", want)
                if name == "rec_results" and mode == "r1":
                    r = data["results"][k]
                    if r["extracted_answer"] != resized or r["correct"] != (1 if got > 0.5 else 0):
                        fail(*where, "rec_results entry", r["extracted_answer"], r["correct"], resized, got)
    # accuracy as the script computes it
    ns = fns["r1"]
    correct_number = 0
    for r in rec["results"]:
        a = ns["resize_bbox"](ns["extract_bbox_answer"](r["model_output"]), *r["input_size"], *r["image_size"])
        correct_number += 1 if ns["iou"](a, r["ground_truth"]) > 0.5 else 0
    if rec["accuracy"] != correct_number / len(rec["results"]) * 100:
        fail("rec_results accuracy", rec["accuracy"])
    print("VLM-R1 %s (git show HEAD:src/eval/test_rec_{r1,baseline}.py), Python %s, Unicode %s"
          % (head[:12], sys.version.split()[0], unicodedata.unidata_version))
    for (name, mode), c in counts.items():
        print("  %-11s %-8s %4d outputs; VLM-R1 raises: ZeroDivisionError %d, ValueError %d, OverflowError %d"
              % (name, mode, c["n"], c["ZeroDivisionError"], c["ValueError"], c["OverflowError"]))
    print("%d mismatches" % bad)
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--check-vlmr1":
        sys.exit(check_vlmr1(sys.argv[2] if len(sys.argv) > 2 else MIRROR))
    if len(sys.argv) > 1:
        sys.exit(__doc__)
    write()
