#!/usr/bin/env python3
"""Make the tiny images that the vr-prep tests open (tests/data/img/).
Run once from the repository root; the outputs are committed. Needs Pillow."""
from PIL import Image, ImageDraw

def scene(w, h, mode="RGB"):
    im = Image.new("RGB", (w, h), (200, 210, 220))
    d = ImageDraw.Draw(im)
    d.rectangle([4, 6, w // 2, h // 2], fill=(220, 30, 30))
    d.ellipse([w // 2, h // 2, w - 3, h - 2], fill=(30, 30, 220))
    return im.convert(mode)

scene(64, 48).save("tests/data/img/scene_64x48.jpg", quality=90)
scene(40, 30).save("tests/data/img/scene_40x30.png")
scene(33, 50, "L").save("tests/data/img/grey_33x50.png")
scene(20, 20, "P").save("tests/data/img/palette_20x20.png")
