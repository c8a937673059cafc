#!/usr/bin/env python3
"""Golden fixtures for lib/bpe.c and lib/chat.c (vr-tokenize).

    python3 tests/golden/make_tokenizer_golden.py [--tokenizer PATH]

Run from the repository root. Needs tokenizers, transformers and Pillow; reads
../shared/tokenizers/qwen2.5/tokenizer.json. Writes (see tests/golden/README.md):

  tests/golden/tokenizer/corpus.jsonl    one JSON string per line (valid UTF-8)
  tests/golden/tokenizer/corpus.ids      tokenizers' ids of each, one JSON array a line
  tests/golden/tokenizer/corpus.nfc      "line<TAB>decode" where tokenizers' decode of the
                                         ids is not the string (NFC changed it)
  tests/golden/tokenizer/corpus.tags     the category of each line (for reports)
  tests/golden/tokenizer/raw.txt         byte lines, many with invalid UTF-8
  tests/golden/tokenizer/raw.ids         ids of bytes.decode("utf-8", "replace")
  tests/golden/tokenizer/raw.decoded.txt decode of those ids (the replaced text)
  tests/golden/tokenizer/special.jsonl   strings with special-token text, and
  tests/golden/tokenizer/special.split.ids  their ids with encode_special_tokens
  tests/golden/tokenizer/special.skip.jsonl decode(ids, skip_special_tokens=True)
  tests/golden/tokenizer/tiny.json       a small byte-level BPE trained here, merges
                                         as "a b" strings, two normalized added tokens
  tests/golden/tokenizer/tiny.jsonl, tiny.ids
  tests/golden/tokenizer/mini.json, mini-ignore.json (ignore_merges), mini.jsonl, mini*.ids
  tests/golden/chat/cases.txt, <case>.in.jsonl, <case>.expected.jsonl, default-pixels.in.jsonl
  tests/bad/tokenizer/*.json             one defect each (see expected.txt there)

Invalid UTF-8: Python strings cannot hold it, so tokenizers never sees it. vr
defines a byte string's ids as those of bytes.decode("utf-8", errors="replace"):
each maximal invalid subsequence becomes one U+FFFD (the Unicode practice that
Rust's from_utf8_lossy follows too). raw.ids is made that way.
"""
import argparse
import json
import os
import random
import re
import sys
import unicodedata
import warnings

warnings.filterwarnings("ignore")

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
from tokenizers import pre_tokenizers, trainers

ROOT = os.getcwd()
OUT = os.path.join(ROOT, "tests/golden/tokenizer")
CHAT = os.path.join(ROOT, "tests/golden/chat")
BAD = os.path.join(ROOT, "tests/bad/tokenizer")

SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>",
]
QWEN_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
              r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
REC_PREFIX = "Please provide the bounding box coordinate of the region this sentence describes: "
R1_SUFFIX = (" First output the thinking process in <think> </think> tags and then output the "
             "final answer in <answer> </answer> tags. Output the final answer in JSON format.")
BASELINE_SUFFIX = " Please provide the bounding box coordinate in JSON format."
# The official Qwen2-VL / Qwen2.5-VL chat_template.json (shared/qwen25vl.md §5.1).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture "
    "{{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video "
    "{{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def dumps(v):
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


# ----------------------------------------------------------------- corpus

ENGLISH = """\
The quick brown fox jumps over the lazy dog.
Hello, world! How are you doing today?
It's a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.
She sells sea-shells by the sea-shore.
I can't believe it's not butter.
They're going to the market; we'll meet them there.
You've got mail.
Who'd have thought?
The year 2024 was a leap year, with 366 days.
Dr. Smith earned $1,234.56 on 3/14/2015 at 9:26 a.m.
E-mail me at someone@example.com or visit https://example.com/path?q=1&r=2#frag.
"Quoted text," she said, 'and single quotes too.'
Parentheses (like these) and brackets [like these] and braces {like these}.
Well... that's odd -- isn't it?
ALL CAPS SENTENCE WITH NUMBERS 123 AND SYMBOLS !!!
mixedCase camelCaseIdentifier snake_case_identifier kebab-case-identifier
The referring expression is "the man in the red shirt on the left".
The woman holding an umbrella next to the bus stop.
A small white dog sitting on a wooden bench.
The second car from the right, partially hidden behind the truck.
Bottom left corner: a plate with two slices of pizza.
Tensor shapes are written as (B, T, D) throughout the code.
Gradient clipping at 1.0 keeps the update stable.
The learning rate decays linearly from 1e-6 to 0 over 500 steps.
Pneumonoultramicroscopicsilicovolcanoconiosis is a long word.
Supercalifragilisticexpialidocious!
Antidisestablishmentarianism, floccinaucinihilipilification.
O'Neill and D'Angelo went to McDonald's.
rock 'n' roll, 'tis the season, y'all.
The end.
a
I
A.
Hmm.
Yes? No! Maybe...
#hashtag @mention $cashtag %percent ^caret &ampersand *star
Tab\tseparated\tvalues\there.
Line one\nLine two\nLine three
Windows\r\nline\r\nendings\r\n
Trailing spaces   
   Leading spaces
Multiple    internal     spaces.
"""

CHINESE = """\
你好，世界！
今天天气很好，我们去公园散步吧。
请提供这句话所描述区域的边界框坐标：穿红色衣服的男人。
左边那只黑色的猫正在睡觉。
图片中有三个人站在桥上。
机器学习是人工智能的一个分支。
北京是中华人民共和国的首都。
我爱自然语言处理。
这是一个测试句子，包含数字123和英文English。
“引号”和《书名号》以及【方括号】。
他说：“明天见！”
桌子上有一个红苹果和两个香蕉。
请问洗手间在哪里？
一二三四五六七八九十百千万亿
长城是世界上最长的建筑之一，全长两万多公里。
中文标点：，。！？；：、（）——……
繁體中文：這是一個測試句子。
我们使用GRPO训练Qwen2.5-VL模型。
坐标是[103, 299, 238, 477]。
右下角的白色汽车
"""

OTHER_LANGS = """\
こんにちは、世界！今日はいい天気ですね。
カタカナとひらがなと漢字が混ざった文章です。
안녕하세요, 세계! 오늘 날씨가 좋네요.
한국어 문장에는 띄어쓰기가 있습니다.
Привет, мир! Как дела?
Съешь же ещё этих мягких французских булок, да выпей чаю.
Γειά σου Κόσμε! Η γρήγορη καφέ αλεπού.
مرحبا بالعالم! هذه جملة عربية.
שלום עולם! זה משפט בעברית.
नमस्ते दुनिया! यह एक हिंदी वाक्य है।
สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ
Xin chào thế giới! Tiếng Việt có nhiều dấu.
Zażółć gęślą jaźń. Příliš žluťoučký kůň úpěl ďábelské ódy.
Größenwahn, Straße, Fußgänger, Äpfel, Öl, Übermut.
Ça va? Où est la gare? Voilà, c'est déjà l'été!
¿Dónde está la biblioteca? ¡Qué bueno!
Türkçe: Iğdır, İstanbul, ılık, şeker, çiçek.
ქართული ენა, Հայերեն լեզու, ᐃᓄᒃᑎᑐᑦ
Ελληνικά: ΑΒΓΔ αβγδ ΆΈΉΊ άέήί
Tiếng Việt: Đường phố Hà Nội vào buổi sáng.
"""

EXPRESSIONS = []


def rec_expressions(rng, n):
    colors = ["red", "blue", "green", "white", "black", "yellow", "brown", "gray", "pink", "orange"]
    things = ["man", "woman", "dog", "cat", "car", "bus", "umbrella", "chair", "table", "cup",
              "bottle", "person", "child", "horse", "elephant", "giraffe", "pizza", "laptop",
              "bike", "truck", "plate", "sandwich", "boat", "zebra", "sheep", "cow", "bird"]
    wheres = ["on the left", "on the right", "in the middle", "at the top", "at the bottom",
              "behind the fence", "next to the window", "closest to the camera",
              "partially hidden", "in the background", "second from the left", "far right",
              "holding a phone", "wearing glasses", "with a hat", "near the door"]
    out = []
    for _ in range(n):
        e = " ".join(x for x in [rng.choice(["the", "a", "", "THE"]), rng.choice(colors),
                                 rng.choice(things), rng.choice(wheres)] if x)
        if rng.random() < 0.2:
            e = e.upper() if rng.random() < 0.5 else e.capitalize()
        if rng.random() < 0.1:
            e += rng.choice([" 2", "'s", " (left)", " ??", " - top", " #3", "  "])
        out.append(e)
    return out


def think_completion(rng, expr):
    x1, y1 = rng.randint(0, 600), rng.randint(0, 400)
    x2, y2 = x1 + rng.randint(5, 400), y1 + rng.randint(5, 300)
    think = rng.choice([
        f"The image shows {expr}. It is located at the described position.",
        f"I need to find {expr}. Looking at the image, I see it around ({x1}, {y1}).",
        "There are several objects. The one matching the description is on the left side.",
        "首先，我观察图片。目标在左侧。",
        f"Let me think step by step.\n1. Find the object.\n2. Its box is [{x1}, {y1}, {x2}, {y2}].",
    ])
    ans = json.dumps({"bbox_2d": [x1, y1, x2, y2], "label": expr}, ensure_ascii=False)
    form = rng.randrange(5)
    if form == 0:
        return f"<think>{think}</think><answer>{ans}</answer>"
    if form == 1:
        return f"<think>\n{think}\n</think>\n<answer>\n{ans}\n</answer>"
    if form == 2:
        return f"<think> {think} </think> <answer>```json\n[\n\t{ans}\n]\n```</answer>"
    if form == 3:
        return f"```json\n[\n\t{{\"bbox_2d\": [{x1}, {y1}, {x2}, {y2}], \"label\": \"{expr}\"}}\n]\n```"
    return f"<answer>[{x1},{y1},{x2},{y2}]</answer>"


CODE_C = r"""/* heap.c: a binary heap of (rank, pos) pairs. */
#include <stdint.h>
#include <stdlib.h>

struct heap_ent {
    int32_t rank, pos;
};

static int less(const struct heap_ent *x, const struct heap_ent *y)
{
    return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

void heap_push(struct heap_ent *h, size_t *n, struct heap_ent e)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        printf("%d: %s (%zu bytes)\n", i, argv[i], strlen(argv[i]));
    return 0;
}
"""

CODE_PY = r"""import json
import sys


def iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


for line in sys.stdin:
    rec = json.loads(line)
    print(f"{rec['id']}\t{iou(rec['pred'], rec['gt']):.4f}")
"""

CODE_SH = r"""#!/bin/sh
set -eu
for f in "$@"; do
	case $f in
	*.json) jq -c '.[]' "$f" ;;
	*) cat -- "$f" ;;
	esac
done | sort -u > "${OUT:-/dev/stdout}"
all: $(PROGS)
%.o: %.c
	$(CC) $(CFLAGS) -c -o $@ $<
"""


def code_lines():
    """Code samples: the lines of three small programs kept here, each also
    whole, and one-liners in other languages."""
    out = []
    for block in (CODE_C, CODE_PY, CODE_SH):
        out.append(block)
        out += [l for l in block.splitlines() if l.strip()]
    out += [
        "int main(int argc, char **argv) { return 0; }",
        "for (int i = 0; i < n; i++) {\n\tsum += a[i] * b[i];\n}",
        "def f(x):\n    return x ** 2  # square\n",
        "if __name__ == '__main__':\n    main()",
        '{"id":"refcoco_val/123","images":["/abs/a.jpg"],"solution":[103.93,299.99,238.15,477.41]}',
        "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
        "<div class=\"box\"><span>text</span></div>",
        "#!/bin/sh\nset -eu\nexec \"$@\"",
        "x = [1, 2, 3]; y = {k: v for k, v in zip('abc', x)}",
        "\\begin{equation} E = mc^2 \\end{equation}",
        "    \t  mixed indentation\t\t",
        "a->b->c; p[i] &= ~mask; x <<= 2; y >>= 1; z ^= 0xFF;",
        "printf(\"%s:%d: %.9g\\n\", file, line, x);",
        "std::vector<std::pair<int, std::string>> v;",
        "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
        "/* comment */ // line comment\n# shell comment",
        "$ vr-prep --format vlmr1 data.json | vr-encode --model base/ > out.jsonl",
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+",
    ]
    return out


def design_lines():
    out = []
    for path in ["../shared/DESIGN.md", "../shared/STYLE.md", "../shared/qwen25vl.md"]:
        p = os.path.join(ROOT, path)
        if os.path.exists(p):
            out += [l.rstrip("\n") for l in open(p, encoding="utf-8") if l.strip()]
    random.Random(7).shuffle(out)
    return out[:350]


def build_corpus(rng):
    items = []

    def add(tag, ss):
        for s in ss:
            items.append((tag, s))

    add("english", [l.replace("\\t", "\t").replace("\\n", "\n").replace("\\r", "\r")
                    for l in ENGLISH.splitlines()])
    subj = ["The model", "A user", "The pipeline", "This stage", "Every test", "She", "They",
            "Our tokenizer", "The GPU", "It"]
    verb = ["reads", "writes", "predicts", "encodes", "decodes", "checks", "ignores", "returns",
            "can't find", "won't load", "doesn't match", "has", "'ll compute"]
    obj = ["the task lines.", "a bounding box.", "token ids quickly.", "every image in the folder.",
           "UTF-8 text, including emoji.", "the merges by rank.", "3 errors and 2 warnings.",
           "nothing at all!", "the weights (bf16).", "it's own output?"]
    add("english", [f"{rng.choice(subj)} {rng.choice(verb)} {rng.choice(obj)}" for _ in range(250)])
    add("english", design_lines())
    add("chinese", CHINESE.splitlines())
    zh_words = ["我们", "模型", "图像", "训练", "数据", "坐标", "左边", "右边", "红色", "汽车", "男人",
                "女人", "桌子", "猫", "狗", "的", "在", "是", "有", "和", "一个", "这个", "那个"]
    add("chinese", ["".join(rng.choice(zh_words) for _ in range(rng.randint(2, 12))) +
                    rng.choice(["。", "！", "？", "", "，", " ok", "123"]) for _ in range(150)])
    add("languages", OTHER_LANGS.splitlines())

    emoji = ["😀", "👍", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇨🇳", "🇺🇸", "1️⃣", "❤️", "🤖", "🎉", "🐱",
             "👩🏿‍💻", "🧑‍🚀", "☕", "✨", "🔥", "💯", "🙏", "🥲", "🫠", "🏴󠁧󠁢󠁳󠁣󠁴󠁿"]
    add("emoji", emoji)
    add("emoji", [" ".join(rng.choice(emoji) for _ in range(rng.randint(1, 5))) for _ in range(40)])
    add("emoji", [f"{rng.choice(['Great job', 'I love it', '好的', 'OK'])}{rng.choice(['', ' ', '!'])}"
                  f"{''.join(rng.choice(emoji) for _ in range(rng.randint(1, 3)))}"
                  for _ in range(40)])

    digits = ["0", "7", "42", "123", "1234", "12345", "123456789", "3.14159", "-2.5e-3", "1,234,567.89",
              "2024-11-25", "12:34:56", "+1 (555) 123-4567", "0xDEADBEEF", "v1.2.3", "1e10",
              "٣٤٥", "１２３", "²³", "½ ¾", "Ⅻ ⅻ", "①②③", "𝟘𝟙𝟚", "00000", "9999999999999999",
              "1st 2nd 3rd 4th", "50%", "$100", "€20,50", "¥1000", "#1", "x2", "2x", "a1b2c3"]
    add("digits", digits)
    add("digits", [str(rng.randint(0, 10 ** rng.randint(1, 15))) for _ in range(60)])
    add("digits", [f"{rng.uniform(-1000, 1000):.{rng.randint(0, 6)}f}" for _ in range(40)])
    add("digits", [f"[{rng.randint(0, 999)}, {rng.randint(0, 999)}, {rng.randint(0, 999)}, "
                   f"{rng.randint(0, 999)}]" for _ in range(30)])

    ws = [" ", "  ", "   ", "\t", "\n", "\r", "\r\n", "\n\n", "\r\n\r\n", " \n", "\n ", " \n ",
          "\t\n", "\u00a0", "\u3000", "\u2028", "\u2029", "\u0085", "\u200b", "\ufeff", "\u180e",
          "\x0b", "\x0c", "\x1c", "\x1f", "\u2000\u2001\u2002", "\u205f", "\u1680"]
    add("whitespace", ws)
    add("whitespace", ["".join(rng.choice(ws) for _ in range(rng.randint(1, 6))) for _ in range(60)])
    add("whitespace", [rng.choice(["word", "a", "1", "!", "中", "é"]) +
                       "".join(rng.choice(ws) for _ in range(rng.randint(1, 4))) +
                       rng.choice(["word", "b", "2", "?", "文", "", "x y"]) for _ in range(120)])
    add("whitespace", ["trailing " * k + " " * k for k in range(1, 6)] +
        ["line\r\n" * k for k in range(1, 4)] + ["  leading", "\tindented", "\n\nparagraph\n\n"])

    add("code", code_lines())
    names = ["x", "i", "n_tokens", "buf", "self.cache", "ids[k]", "maxPixels", "grid_thw", "_tmp0", "ÄÖ"]
    forms = ["{a} = {b} + {c};", "if ({a} >= {c}) return -1;", "for {a} in range({c}):", "{a}({b}, {c})",
             "{a} += {b} * 0x{h:x};", "return {a} != NULL ? {b} : {c};", "{a}[{c}] = '{b}'", "#define {A} {c}",
             "{a}->{b} = ({a}->{b} + 1) % {c};", "# {a}: {b} ({c}%)", "let {a}: Vec<u32> = vec![{c}; {h}];",
             "{a} = [{c}, {h}, -{c}] if {b} else {{}}", "printf(\"%d\\n\", {a});", "}} else if ({a} == {b}) {{"]
    add("code", [rng.choice(["", "    ", "\t", "        ", "  ", "\t\t"]) +
                 rng.choice(forms).format(a=rng.choice(names), b=rng.choice(names), c=rng.randint(0, 9999),
                                          h=rng.randint(0, 65535), A=rng.choice(names).upper())
                 + rng.choice(["", "", " ", "  // note", "\n", "\r\n"]) for _ in range(220)])

    add("special", SPECIALS)
    add("special", ["<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                    "<|vision_start|><|image_pad|><|image_pad|><|vision_end|>What is this?<|im_end|>\n"
                    "<|im_start|>assistant\n",
                    "<|im_end|><|im_end|>", "<|im_start|><|im_start|>user", "text<|endoftext|>more",
                    "<|im_end", "|im_end|>", "<|im_end|", "<<|im_end|>>", "<|im_end|>>", "<|<|im_end|>|>",
                    "<|im_middle|>", "<|IM_END|>", "< |im_end| >", "<think>", "</think>", "<answer>",
                    "</answer>", "<tool_call>{\"name\": \"f\"}</tool_call>", " <|im_end|> ",
                    "\n<|im_end|>\n", "a<|box_start|>(10,20),(30,40)<|box_end|>b",
                    "<|object_ref_start|>the dog<|object_ref_end|><|box_start|>(1,2),(3,4)<|box_end|>",
                    "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>pass", "<|repo_name|>vr<|file_sep|>lib/bpe.c",
                    "<|vision_start|><|vision_pad|><|video_pad|><|vision_end|>"])
    add("special", ["".join(rng.choice(SPECIALS + ["x", " ", "\n", "<", "|", ">", "é", "中"])
                            for _ in range(rng.randint(2, 8))) for _ in range(80)])

    exprs = rec_expressions(rng, 300)
    add("vlmr1", [REC_PREFIX + e + "." for e in exprs[:80]])
    add("vlmr1", [REC_PREFIX + e + "." + R1_SUFFIX for e in exprs[80:160]])
    add("vlmr1", [REC_PREFIX + e + "." + BASELINE_SUFFIX for e in exprs[160:200]])
    add("vlmr1", [think_completion(rng, e) for e in exprs[200:300]])
    add("vlmr1", [R1_SUFFIX.strip(), BASELINE_SUFFIX.strip(), REC_PREFIX.strip(),
                  "<think></think><answer></answer>", "<think>\n\n</think>\n\n<answer>\n\n</answer>"])

    contr = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]
    variants = set()
    for c in contr:
        letters = c[1:]
        for mask in range(1 << len(letters)):
            v = "'" + "".join(ch.upper() if mask >> i & 1 else ch for i, ch in enumerate(letters))
            variants.add(v)
    variants = sorted(variants)
    add("contractions", [w + v for v in variants for w in ["it", "I", "X"]][:120])
    add("contractions", [v + rng.choice(["", "s", " ", "x", "!", "ll"]) for v in variants])
    add("contractions", ["'ſ", "'ſt", "'K", "'ß", "’s", "‘t", "''s", "' s", "'", "''", "'''", "'1",
                         "don't", "DON'T", "Don'T", "we'RE", "they'Ve", "I'M", "she'LL", "he'D",
                         "'tis", "'Tis", "y'all'd've", "o'clock", "ma'am", "'s'", "'S'S'S"])

    nfc = ["e\u0301", "E\u0301", "a\u0308", "o\u0302\u0301", "A\u030a", "\u212b", "\u2126", "\u212a",
           "n\u0303", "u\u0308\u0304", "d\u0307\u0323", "d\u0323\u0307", "q\u0307\u0323",
           "\u1100\u1161", "\u1100\u1161\u11a8", "\u1112\u1161\u11ab\u1100\u116e\u11a8\u110b\u1165",
           "\u0958", "\u0915\u093c", "\u2adc", "\ufb01", "\u00c5\u0301", "\u1e9b\u0323",
           "\u0344", "\u0340\u0341", "\u0f73", "\u1e0b\u0323", "caf\u00e9", "cafe\u0301",
           "Tie\u0302\u0301\u0301ng Vie\u0323\u0302t", "\u0041\u0300\u0316", "\u0041\u0316\u0300",
           "\u0061\u0315\u0300\u05ae\u0300\u0062", "\u1dfa", "\u1ac1\u0301", "a\u1df9\u0316",
           "\u0d3b\u0334", "a\u1dc0\u0301\u0316", "\U00011935\U00011930", "\U00011347\U0001133e",
           "\U000110a5\U000110ba", "\u0b47\u0b3e", "\u0bc6\u0bbe", "\u0cc6\u0cc2\u0cd5",
           "\U0001d15e", "\U0001d160", "\u0374", "\u037e", "\u0387", "\u1f71", "\u2000", "\u2329"]
    add("nfc", nfc)
    add("nfc", [unicodedata.normalize("NFD", w) for w in
                ["Ångström", "naïve café", "résumé", "Mëtàl Ümlaut", "Tiếng Việt", "한국어", "Crème brûlée",
                 "São Paulo", "Dvořák", "Ελληνικά", "Ёжик", "ありがとう", "ガギグゲゴ", "Ǆǅǆ"]])
    comb = [c for c in range(0x300, 0x110000)
            if unicodedata.category(chr(c)) in ("Mn", "Mc", "Me") and unicodedata.combining(chr(c))]
    add("nfc", ["".join([rng.choice("aeouAEOU중中") ] + [chr(rng.choice(comb)) for _ in range(rng.randint(1, 4))])
                for _ in range(120)])

    # single characters: every byte value as a character, and Latin-1
    add("chars", [chr(c) for c in range(0x80)])
    add("chars", [chr(c) for c in range(0x80, 0x100)])
    allcp = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    assigned = [c for c in allcp if unicodedata.category(chr(c)) != "Cn"]
    asc = [chr(c) for c in range(0x20, 0x7F)] + ["\n", "\r", "\t", " ", " ", " ", "'s", "'LL"]
    fuzz = []
    for _ in range(450):
        s = ""
        for _ in range(rng.randint(1, 24)):
            r = rng.random()
            s += (rng.choice(asc) if r < 0.4 else chr(rng.choice(comb)) if r < 0.55
                  else chr(rng.choice(allcp)) if r < 0.65 else chr(rng.choice(assigned)))
        fuzz.append(s)
    add("fuzz", fuzz)
    # characters Unicode assigned after 9.0 (NFC in tokenizers does not know them) and
    # after 14.0 (PCRE2 in Debian 12 does not): letters, digits, marks
    late = [0x1DF6, 0x1DF9, 0x1AC5, 0x10F46, 0x1E130, 0x10EAB, 0x11D42, 0x16FF0, 0x0D3B, 0x1E2EC,
            0x10D24, 0x11F04, 0x1E4D0, 0x31350, 0x1E030, 0x11F50, 0x1E4F0, 0x1D2C0, 0x16D43, 0x1CCF0,
            0x10D4A, 0x2EBF0, 0x2B739, 0x10EFD, 0x0CF3]
    add("fuzz", ["a" + chr(c) + "b " + chr(c) + chr(c) + " 1" + chr(c) + "2 \u0301" + chr(c) + "\u0334"
                 for c in late])

    long_en = " ".join(l for l in ENGLISH.splitlines() if len(l) > 30) * 2
    add("long", [long_en, "".join(CHINESE.splitlines()) * 2, " " * 1000, "a" * 500, "ab" * 300,
                 "1234567890" * 30, "!" * 400, "=-" * 200, "😀" * 100, "\n" * 300, "\r\n" * 150,
                 "Pneumonoultramicroscopicsilicovolcanoconiosis" * 20, "中" * 300, "\t " * 200,
                 ("word " * 200).strip(), "é" * 200, "e\u0301" * 200])
    add("edge", ["", " x", "x ", "<", ">", "|", "<|", "|>", "\x00", "a\x00b", "\x7f", "\ufffd",
                 "\U0010ffff", "\U000e0001", "\uffff", "\U0001f600\u200d", "\u200d\u200c"])
    return items


# ----------------------------------------------------------------- raw bytes

def raw_lines(rng):
    bad = [b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xc2", b"\xe0\x80\x80", b"\xe0\xa0",
           b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\x80\xed\xb0\x80", b"\xf0\x80\x80\x80",
           b"\xf0\x9f\x98", b"\xf0\x9f", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80",
           b"\xfc\x84\x80\x80\x80\x80", b"\xfe", b"\xff", b"\xfe\xff", b"\xe4\xbd", b"\xe4",
           b"\xc3\x28", b"\xa0\xa1", b"\xe2\x28\xa1", b"\xe2\x82\x28", b"\xf0\x28\x8c\xbc",
           b"\xf0\x90\x28\xbc", b"\xf0\x28\x8c\x28", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf",
           b"\xef\xbf\xbe", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf"]
    lines = []
    for b in bad:
        lines += [b, b"abc" + b, b + b"xyz", b"\xe4\xbd\xa0" + b + b"\xe5\xa5\xbd", b" " + b + b" ",
                  b"it" + b + b"'s", b"<|im_end|>" + b, b + b"<|im_start|>"]
    valid = "Hello, 世界! 😀 naïve".encode()
    for _ in range(120):
        s = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randint(0, len(s))
            s[pos:pos] = bytes(rng.randint(0x80, 0xff) for _ in range(rng.randint(1, 3)))
        if rng.random() < 0.3:
            del s[rng.randint(0, len(s) - 1)]  # may cut a sequence
        lines.append(bytes(s))
    for _ in range(120):
        lines.append(bytes(rng.choice([b for b in range(256) if b != 10])
                           for _ in range(rng.randint(1, 20))))
    return [l for l in lines if b"\n" not in l]


# ----------------------------------------------------------------- tiny tokenizer

def train_tiny(texts):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False, trim_offsets=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    tok.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in SPECIALS])
    # two non-special tokens matched after NFC (normalized: true)
    tok.add_tokens([AddedToken("<think>", normalized=True, special=False),
                    AddedToken("caf\u00e9!", normalized=True, special=False)])
    d = json.loads(tok.to_str())
    d["post_processor"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                           "use_regex": False}
    # the older "a b" form of merges (no merge token holds a space in byte-level BPE)
    d["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in d["model"]["merges"]]
    return d


# ----------------------------------------------------------------- chat

def chat_golden(tok_path):
    from PIL import Image
    from transformers import Qwen2_5_VLProcessor, Qwen2TokenizerFast
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from transformers.processing_utils import ProcessorMixin

    # transformers 5 checks a video processor class that needs torchvision; the
    # processor is only used for images here
    ProcessorMixin.check_argument_for_proper_class = lambda self, name, arg: None
    hf_tok = Qwen2TokenizerFast(tokenizer_file=tok_path, eos_token="<|im_end|>",
                                pad_token="<|endoftext|>")

    def processor(min_pixels, max_pixels):
        ip = Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)
        return Qwen2_5_VLProcessor(image_processor=ip, tokenizer=hf_tok, chat_template=CHAT_TEMPLATE)

    tasks = [
        {"id": "chat/0", "images": ["/data/a.jpg"], "image_sizes": [[640, 480]],
         "problem": REC_PREFIX + "the woman with the blue umbrella.", "solution": [103.93, 299.99, 238.15, 477.41],
         "label": "the woman with the blue umbrella"},
        {"id": "chat/1", "images": ["/data/b.jpg"], "image_sizes": [[960, 540]],
         "problem": REC_PREFIX + "左边的红色汽车.", "solution": [10, 20, 800, 700], "label": "左边的红色汽车"},
        {"id": "chat/2", "images": ["/data/c.png", "/data/d.jpg"], "image_sizes": [[333, 500], [1000, 250]],
         "problem": "Which image shows the \"cat\"? It's in one of them.", "solution": [1, 2, 30, 40]},
        {"id": "chat/3", "images": ["/data/e.jpg"], "image_sizes": [[50, 40]],
         "problem": REC_PREFIX + "the TINY dot  ", "solution": [0.5, 0.5, 49.5, 39.5], "label": "dot"},
        {"id": "chat/4", "images": [], "problem": "No image here.\nJust text with <|im_end|> inside.",
         "solution": "text answer"},
        {"id": "chat/5", "images": ["/data/f.jpg"], "image_sizes": [[2000, 150]],
         "problem": REC_PREFIX + "the long banner.", "solution": [100, 10, 2900, 190], "label": "the long banner",
         "completion": "<think>\nThe banner spans the image.\n</think>\n<answer>{\"bbox_2d\": [1, 2, 3, 4]}</answer>"},
    ]

    def answer(t, grid):
        if "completion" in t:
            return t["completion"]
        sol = t["solution"]
        if isinstance(sol, str):
            return "<answer>" + sol + "</answer>"
        w, h = t["image_sizes"][0]
        sx, sy = grid[2] * 14, grid[1] * 14
        import math
        r = lambda v: int(math.floor(v + 0.5))
        box = [r(sol[0] * sx / w), r(sol[1] * sy / h), r(sol[2] * sx / w), r(sol[3] * sy / h)]
        s = '<answer>{"bbox_2d": [%d, %d, %d, %d]' % tuple(box)
        if "label" in t:
            s += ', "label": ' + json.dumps(t["label"], ensure_ascii=False)
        return s + "}</answer>"

    templates = {"r1": "{Question}" + R1_SUFFIX, "baseline": "{Question}" + BASELINE_SUFFIX,
                 "none": "{Question}"}
    cases = [  # name, vr-tokenize flags, tasks, system, template, assistant, min, max
        ("default", "", range(6), None, "r1", False, 3136, 12845056),
        ("system", "--system 'You are a grounding expert. 你好!'", [0, 2], "You are a grounding expert. 你好!",
         "r1", False, 3136, 12845056),
        ("empty-system", "--system '' --template none", [3, 4], "", "none", False, 3136, 12845056),
        ("assistant", "--assistant", range(6), None, "r1", True, 3136, 12845056),
        ("baseline", "--template baseline", [0], None, "baseline", False, 3136, 12845056),
        ("pixels", "--min-pixels 12544 --max-pixels 200704 --template none --assistant", [1, 2, 3], None,
         "none", True, 12544, 200704),
    ]
    os.makedirs(CHAT, exist_ok=True)
    with_pixels = []
    expected = {}
    for name, flags, which, system, tmpl, assistant, minp, maxp in cases:
        proc = processor(minp, maxp)
        lines = []
        with open(os.path.join(CHAT, name + ".in.jsonl"), "w") as f:
            f.write("".join(dumps(tasks[i]) + "\n" for i in which))
        for t in [tasks[i] for i in which]:
            imgs = [Image.new("RGB", tuple(wh), (120, 60, 30)) for wh in t.get("image_sizes", [])]
            q = templates[tmpl].replace("{Question}", t["problem"])
            msgs = []
            if system is not None:
                msgs.append({"role": "system", "content": system})
            msgs.append({"role": "user", "content": [{"type": "image"} for _ in imgs] +
                         [{"type": "text", "text": q}]})
            grids = []
            if imgs:
                grids = proc.image_processor(images=imgs, return_tensors=None)["image_grid_thw"]
                grids = [[int(x) for x in g] for g in grids]
            if assistant:
                msgs.append({"role": "assistant", "content": answer(t, grids[0] if grids else None)})
            text = proc.apply_chat_template(msgs, tokenize=False, add_generation_prompt=not assistant)
            out = proc(text=[text], images=imgs or None, return_tensors=None)
            ids = [int(x) for x in out["input_ids"][0]]
            if imgs:
                assert [[int(x) for x in g] for g in out["image_grid_thw"]] == grids
            # the processor's expanded text: each <|image_pad|> -> t*h*w/4 copies
            parts = text.split("<|image_pad|>")
            assert len(parts) == len(grids) + 1
            full = parts[0]
            for g, p in zip(grids, parts[1:]):
                full += "<|image_pad|>" * (g[0] * g[1] * g[2] // 4) + p
            assert hf_tok(full, add_special_tokens=False)["input_ids"] == ids
            lines.append(dumps({"id": t["id"], "text": full, "ids": ids, "n_tokens": len(ids)}))
            if name == "default":
                tp = dict(t)
                if grids:
                    px = [{"file": "cache/%s-%d.safetensors" % (t["id"].replace("/", "-"), i),
                           "grid_thw": g, "input_size": [g[2] * 14, g[1] * 14]} for i, g in enumerate(grids)]
                    tp["pixels"] = px[0] if len(px) == 1 else px
                with_pixels.append(tp)
        expected[name] = lines
        with open(os.path.join(CHAT, name + ".expected.jsonl"), "w") as f:
            f.write("\n".join(lines) + "\n")
    # the default tasks with vr-encode's "pixels" (grid_thw) instead of image_sizes
    with open(os.path.join(CHAT, "default-pixels.in.jsonl"), "w") as f:
        f.write("".join(dumps({k: v for k, v in t.items() if k != "image_sizes"}) + "\n"
                        for t in with_pixels))
    with open(os.path.join(CHAT, "cases.txt"), "w") as f:
        f.write("# case<TAB>vr-tokenize flags: <case>.in.jsonl in, <case>.expected.jsonl out\n")
        for name, flags, *_ in cases:
            f.write("%s\t%s\n" % (name, flags))
    return sum(len(c[2]) for c in cases)


# ----------------------------------------------------------------- mini and bad tokenizers

def mini_vocab():
    v = {}
    for c in "abcdx !Ġ":
        v[c] = len(v)
    for w in ["ab", "bc", "abc", "Ġa", "Ġab", "Ġabc"]:
        v[w] = len(v)
    return v


def mini_base(vocab, merges, ignore=False):
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": len(vocab), "content": "<|im_end|>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN_REGEX}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                           "use_regex": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": ignore, "vocab": dict(vocab), "merges": merges},
    }


def mini_golden():
    """mini.json: a hand-made BPE with a few tokens (other bytes are not in the
    vocabulary and are dropped, as tokenizers does); mini-ignore.json: merges
    that never build "abc", which ignore_merges takes whole from the vocab."""
    v = mini_vocab()
    strs = ["abc", "abcabc", " abc", "  abc ab", "xabcx", "abd", "cab", "a b c", "ab<|im_end|>c",
            "zzz", "éab", "abc!", "bca", "aabbcc", " ab abc  abc", "", "ǅabc", "a\u0301bc"]
    out = []
    for name, merges, ignore in [("mini", [["a", "b"], ["ab", "c"], ["Ġ", "a"], ["Ġa", "b"], ["Ġab", "c"]], False),
                                 ("mini-ignore", [["b", "c"], ["Ġ", "a"], ["a", "b"], ["Ġa", "b"]], True)]:
        path = os.path.join(OUT, name + ".json")
        with open(path, "w") as f:
            f.write(json.dumps(mini_base(v, merges, ignore), ensure_ascii=False, indent=1) + "\n")
        t = Tokenizer.from_file(path)
        out.append([e.ids for e in t.encode_batch(strs)])
        write_lines(os.path.join(OUT, name + ".ids"), [dumps(i) for i in out[-1]])
    write_lines(os.path.join(OUT, "mini.jsonl"), [dumps(s) for s in strs])
    return len(strs), sum(a != b for a, b in zip(*out))


def bad_tokenizers():
    vocab = mini_vocab()

    def base():
        return mini_base(vocab, [["a", "b"], ["ab", "c"]])

    cases = {}

    def case(name, expect, d=None, text=None):
        cases[name] = (expect, d, text)

    d = base(); d["model"] = {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.5]]}
    case("model_unigram", "model type is 'Unigram'; vr supports BPE tokenizers only", d)
    d = base(); d["model"]["type"] = "WordPiece"
    case("model_wordpiece", "model type is 'WordPiece'", d)
    d = base(); del d["model"]["vocab"]
    case("vocab_missing", "model.vocab is missing", d)
    d = base(); del d["model"]["merges"]
    case("merges_missing", "model.merges is missing", d)
    d = base(); d["model"]["vocab"] = [["a", 0]]
    case("vocab_not_object", "model.vocab is not an object", d)
    d = base(); d["model"]["merges"].append(["a", "zz"])
    case("merge_unknown_token", "merge 3 ('a' 'zz') names 'zz', which is not in model.vocab", d)
    d = base(); d["model"]["merges"].append(["c", "a"])
    case("merge_result_unknown", "merge 3 ('c' 'a') makes 'ca', which is not in model.vocab", d)
    d = base(); d["model"]["merges"] = ["a b", "ab  c"]
    case("merge_string_two_spaces", "merge 2 ('ab  c') is not two tokens separated by one space", d)
    d = base(); d["model"]["merges"] = [["a", "b", "c"]]
    case("merge_three_tokens", "merge 1 has more than two tokens", d)
    d = base(); d["model"]["vocab"]["dup"] = 9
    case("vocab_duplicate_id", "model.vocab gives id 9 to both", d)
    d = base(); d["model"]["vocab"]["big"] = 2 ** 40
    case("vocab_id_too_large", "model.vocab: the id of 'big' is not an integer in [0, 2^31)", d)
    d = base(); d["model"]["vocab"]["neg"] = -1
    case("vocab_id_negative", "model.vocab: the id of 'neg' is not an integer in [0, 2^31)", d)
    d = base(); d["added_tokens"][0]["id"] = 5
    case("added_token_wrong_id", "added token '<|im_end|>' has id 5, but the tokenizers library gives it 14", d)
    d = base(); d["added_tokens"][0]["lstrip"] = True
    case("added_token_lstrip", "added token '<|im_end|>' uses lstrip, which vr does not support", d)
    d = base(); d["model"]["byte_fallback"] = True
    case("byte_fallback", "BPE byte_fallback is not supported", d)
    d = base(); d["model"]["dropout"] = 0.1
    case("dropout", "BPE dropout is not supported", d)
    d = base(); d["normalizer"] = {"type": "Lowercase"}
    case("normalizer_lowercase", "normalizer 'Lowercase' is not supported", d)
    d = base(); d["pre_tokenizer"] = {"type": "Whitespace"}
    case("pretokenizer_whitespace", "pre_tokenizer type 'Whitespace' is not supported", d)
    d = base(); d["pre_tokenizer"]["pretokenizers"] = d["pre_tokenizer"]["pretokenizers"][:1]
    case("pretokenizer_no_bytelevel", "pre_tokenizer has no ByteLevel step", d)
    d = base(); d["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed"
    case("regex_bad", "pre_tokenizer regex does not compile", d)
    d = base(); d["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"
    case("split_removed", "Split pre_tokenizer behavior 'Removed' is not supported", d)
    d = base(); d["decoder"] = {"type": "WordPiece", "prefix": "##"}
    case("decoder_wordpiece", "decoder 'WordPiece' is not supported", d)
    d = base(); d["post_processor"] = {"type": "TemplateProcessing", "single": [], "pair": [], "special_tokens": {}}
    case("postprocessor_template", "post_processor 'TemplateProcessing' is not supported", d)
    d = base(); d["model"]["unk_token"] = "<unk>"
    case("unk_token_unknown", "unk_token '<unk>' is not in model.vocab", d)
    d = base(); del d["model"]
    case("model_missing", "no 'model' object; not a tokenizer.json", d)
    full = json.dumps(base(), ensure_ascii=False, indent=1)
    case("truncated", "invalid JSON", text=full[: len(full) // 2])
    case("truncated_in_vocab", "invalid JSON", text=full[: full.index('"ab": 8') + 5])
    case("empty_file", "invalid JSON", text="")
    case("not_json", "invalid JSON", text="this is not JSON\n")
    case("json_array", "invalid JSON: expected '{'", text="[1, 2, 3]\n")
    case("trailing_garbage", "text after the end of the JSON object", text=full + "\n}\n")
    case("bad_escape", "invalid JSON: bad escape", text=full.replace('"ab": 8', '"a\\qb": 8'))
    case("lone_surrogate", "lone surrogate", text=full.replace('"ab": 8', '"\\ud800": 8'))
    case("invalid_utf8", "invalid UTF-8 in string",
         text=full.replace('"ab": 8', '"a\udcffb": 8'))
    case("duplicate_model_key", "duplicate key 'vocab' in model",
         text=full.replace('"merges": [', '"vocab": {}, "merges": ['))

    os.makedirs(BAD, exist_ok=True)
    for f in os.listdir(BAD):
        if f.endswith(".json") or f == "expected.txt":
            os.remove(os.path.join(BAD, f))
    with open(os.path.join(BAD, "expected.txt"), "w") as ex:
        ex.write("# file<TAB>text the one-line error must contain\n")
        for name, (expect, d, text) in sorted(cases.items()):
            path = os.path.join(BAD, name + ".json")
            if text is None:
                text = json.dumps(d, ensure_ascii=False, indent=1) + "\n"
            with open(path, "wb") as f:
                f.write(text.encode("utf-8", "surrogateescape"))
            ex.write("%s.json\t%s\n" % (name, expect))
    return len(cases)


# ----------------------------------------------------------------- main

def write_lines(path, lines, binary=False):
    with open(path, "wb") as f:
        for l in lines:
            f.write(l if binary else l.encode("utf-8"))
            f.write(b"\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, "../shared/tokenizers/qwen2.5/tokenizer.json"))
    args = ap.parse_args()
    tok = Tokenizer.from_file(args.tokenizer)
    rng = random.Random(20261125)
    os.makedirs(OUT, exist_ok=True)

    items = build_corpus(rng)
    strs = [s for _, s in items]
    assert len(set(strs)) > 2000, len(set(strs))
    encs = tok.encode_batch(strs, add_special_tokens=True)
    ids = [e.ids for e in encs]
    nfc = normalizers.NFC()
    split = re.compile("(" + "|".join(re.escape(t) for t in sorted(SPECIALS, key=len, reverse=True)) + ")")
    decoded = [tok.decode(i, skip_special_tokens=False) for i in ids]
    changed = 0
    for s, d in zip(strs, decoded):
        # decode(encode(s)) is s, with NFC applied between the special tokens
        want = "".join(p if p in SPECIALS else nfc.normalize_str(p) for p in split.split(s))
        assert d == want, (s, d)
        changed += d != s
    write_lines(os.path.join(OUT, "corpus.jsonl"), [dumps(s) for s in strs])
    write_lines(os.path.join(OUT, "corpus.ids"), [dumps(i) for i in ids])
    write_lines(os.path.join(OUT, "corpus.nfc"),
                ["%d\t%s" % (n + 1, dumps(d)) for n, (s, d) in enumerate(zip(strs, decoded)) if d != s])
    write_lines(os.path.join(OUT, "corpus.tags"), [t for t, _ in items])

    raws = raw_lines(rng)
    rtexts = [r.decode("utf-8", errors="replace") for r in raws]
    rids = [e.ids for e in tok.encode_batch(rtexts)]
    write_lines(os.path.join(OUT, "raw.txt"), raws, binary=True)
    write_lines(os.path.join(OUT, "raw.ids"), [dumps(i) for i in rids])
    write_lines(os.path.join(OUT, "raw.decoded.txt"), [tok.decode(i, skip_special_tokens=False) for i in rids])

    sp = [s for t, s in items if t == "special"] + [s for t, s in items if t == "vlmr1"][:40]
    sp_ids = [tok.encode(s).ids for s in sp]
    tok.encode_special_tokens = True
    sp_split = [tok.encode(s).ids for s in sp]
    tok.encode_special_tokens = False
    write_lines(os.path.join(OUT, "special.jsonl"), [dumps(s) for s in sp])
    write_lines(os.path.join(OUT, "special.ids"), [dumps(i) for i in sp_ids])
    write_lines(os.path.join(OUT, "special.split.ids"), [dumps(i) for i in sp_split])
    write_lines(os.path.join(OUT, "special.skip.jsonl"),
                [dumps(tok.decode(i, skip_special_tokens=True)) for i in sp_ids])

    tiny = train_tiny([s for t, s in items if t in ("english", "chinese", "vlmr1", "code")])
    tiny_path = os.path.join(OUT, "tiny.json")
    with open(tiny_path, "w") as f:
        json.dump(tiny, f, ensure_ascii=False, indent=1)
        f.write("\n")
    sub = strs[::8] + ["<think>x</think>", "café! cafe\u0301! <think><think>", "Café!<|im_end|>",
                       "<|im_start|>café!<|im_end|>"]
    t1 = Tokenizer.from_file(tiny_path)
    write_lines(os.path.join(OUT, "tiny.jsonl"), [dumps(s) for s in sub])
    write_lines(os.path.join(OUT, "tiny.ids"), [dumps(e.ids) for e in t1.encode_batch(sub)])

    nchat = chat_golden(args.tokenizer)
    nbad = bad_tokenizers()
    nmini = mini_golden()

    tags = {}
    for t, _ in items:
        tags[t] = tags.get(t, 0) + 1
    print("corpus: %d strings (%s), %d tokens, %d decode differently (NFC)" %
          (len(strs), ", ".join("%s %d" % kv for kv in tags.items()), sum(map(len, ids)), changed))
    print("raw: %d byte lines, %d with invalid UTF-8" %
          (len(raws), sum(1 for r in raws if r.decode("utf-8", "replace").encode() != r)))
    print("special: %d strings; tiny: %d strings; mini: %d strings, %d differ with ignore_merges" %
          ((len(sp), len(sub)) + nmini))
    print("chat: %d prompts; bad tokenizers: %d" % (nchat, nbad))


if __name__ == "__main__":
    main()
