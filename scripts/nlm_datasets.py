#!/usr/bin/env python3
"""Builds the NLM test-bench datasets that are not bundled (standard library only, seeded).

    python3 scripts/nlm_datasets.py OUT_DIR

writes six datasets under OUT_DIR, each in a layout `attractor nlm train --data DIR` reads:

- `inverted/`: the bundled MNIST (both splits, with labels) with every pixel p -> 255 - p: white
  background, dark strokes, data mean pixel about +0.77 in tanh units (2p - 1).
- `shapes/`: 5000 training and 1000 held-out 28x28 images (IDX, no labels) of one simple shape
  each on a black background: a filled or outlined circle, a filled or outlined square, or a
  horizontal or vertical bar, at a random position and size, anti-aliased, at a random
  brightness 0.75-1.
- `grey/`: 1200 28x28 PNGs with a mid-grey mean: a vertical brightness gradient (0.65 at the top
  to 0.35 at the bottom) with one or two soft Gaussian spots of random sign, size and place.
- `grey-contrast/`: the same images with their contrast stretched 3x about mid-grey
  (p -> 0.5 + 3 (p - 0.5), clipped): the same mean, the grey levels spread over the whole range.
- `digits-png/`: all ten digits as labelled PNGs, one sub-folder per class (`0/` ... `9/`), the
  first 600 images of each digit in the bundled MNIST training split (6000 images, 28x28).
- `objects/`: 6000 28x28 PNGs of four grey-level object classes on a dark background, one
  sub-folder per class, 1500 each: `ball` (a sphere lit from a random direction, Lambertian
  shading, a fine speckle texture), `box` (a square face with a shading gradient across it and a
  checker texture), `ring` (a torus seen from above, shaded across its tube) and `cone` (a
  triangle shaded from its axis outwards, with horizontal stripes). Random position, size,
  brightness and light direction; anti-aliased.

The same command always writes the same bytes (fixed seeds).
"""

import gzip
import math
import os
import random
import struct
import sys
import zlib

SIZE = 28
HERE = os.path.dirname(os.path.abspath(__file__))
MNIST = os.path.join(HERE, "..", "data", "mnist")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return dims, data[4 + 4 * ndim :]


def write_idx_images(path, images):
    """images: list of SIZE*SIZE lists of floats in [0, 1]."""
    head = struct.pack(">BBBBIII", 0, 0, 8, 3, len(images), SIZE, SIZE)
    body = bytes(min(255, max(0, round(255 * v))) for im in images for v in im)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(head + body)


def write_png(path, im):
    """8-bit grey PNG of a SIZE*SIZE list of floats in [0, 1]."""
    raw = b"".join(
        b"\x00" + bytes(min(255, max(0, round(255 * v))) for v in im[r * SIZE : (r + 1) * SIZE])
        for r in range(SIZE)
    )

    def chunk(kind, payload):
        c = struct.pack(">I", len(payload)) + kind + payload
        return c + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", SIZE, SIZE, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9))
    png += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def inverted(out):
    os.makedirs(out, exist_ok=True)
    for split in ["train", "t10k"]:
        dims, px = read_idx(os.path.join(MNIST, f"{split}-images-idx3-ubyte.gz"))
        head = struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">III", *dims)
        with gzip.GzipFile(os.path.join(out, f"{split}-images-idx3-ubyte.gz"), "wb", mtime=0) as f:
            f.write(head + bytes(255 - p for p in px))
        with open(os.path.join(MNIST, f"{split}-labels-idx1-ubyte.gz"), "rb") as src:
            labels = src.read()
        with open(os.path.join(out, f"{split}-labels-idx1-ubyte.gz"), "wb") as dst:
            dst.write(labels)


def coverage(inside, r, c, sub=4):
    """Fraction of pixel (r, c) inside the shape (sub x sub supersampling)."""
    hits = 0
    for i in range(sub):
        for j in range(sub):
            if inside(r + (i + 0.5) / sub, c + (j + 0.5) / sub):
                hits += 1
    return hits / (sub * sub)


def shape_image(rng):
    kind = rng.randrange(6)
    level = rng.uniform(0.75, 1.0)
    if kind in (0, 1):  # circle, filled or outlined
        rad = rng.uniform(4.0, 10.0)
        cy, cx = rng.uniform(rad + 1, SIZE - rad - 1), rng.uniform(rad + 1, SIZE - rad - 1)
        width = rng.uniform(1.5, 2.5)

        def inside(y, x):
            d = math.hypot(y - cy, x - cx)
            return d <= rad and (kind == 0 or d >= rad - width)

    elif kind in (2, 3):  # square, filled or outlined
        half = rng.uniform(3.5, 9.5)
        cy, cx = rng.uniform(half + 1, SIZE - half - 1), rng.uniform(half + 1, SIZE - half - 1)
        width = rng.uniform(1.5, 2.5)

        def inside(y, x):
            d = max(abs(y - cy), abs(x - cx))
            return d <= half and (kind == 2 or d >= half - width)

    else:  # bar, horizontal or vertical
        length, thick = rng.uniform(10.0, 24.0), rng.uniform(2.0, 4.0)
        hl, ht = length / 2, thick / 2
        cy, cx = rng.uniform(hl + 1, SIZE - hl - 1), rng.uniform(ht + 1, SIZE - ht - 1)
        if kind == 4:
            cy, cx = cx, cy
            hy, hx = ht, hl
        else:
            hy, hx = hl, ht

        def inside(y, x):
            return abs(y - cy) <= hy and abs(x - cx) <= hx

    return [level * coverage(inside, r, c) for r in range(SIZE) for c in range(SIZE)]


def shapes(out):
    os.makedirs(out, exist_ok=True)
    rng = random.Random(2026)
    write_idx_images(os.path.join(out, "train-images-idx3-ubyte.gz"), [shape_image(rng) for _ in range(5000)])
    write_idx_images(os.path.join(out, "t10k-images-idx3-ubyte.gz"), [shape_image(rng) for _ in range(1000)])


def grey_image(rng):
    im = []
    spots = []
    for _ in range(rng.randint(1, 2)):
        amp = rng.choice([-1, 1]) * rng.uniform(0.2, 0.35)
        sig = rng.uniform(2.5, 5.0)
        spots.append((amp, sig, rng.uniform(4, SIZE - 4), rng.uniform(4, SIZE - 4)))
    for r in range(SIZE):
        base = 0.65 - 0.30 * r / (SIZE - 1)
        for c in range(SIZE):
            v = base
            for amp, sig, cy, cx in spots:
                v += amp * math.exp(-((r - cy) ** 2 + (c - cx) ** 2) / (2 * sig * sig))
            im.append(min(1.0, max(0.0, v)))
    return im


def grey(out, contrast=1.0):
    """contrast > 1 stretches every image about mid-grey, p -> 0.5 + contrast * (p - 0.5)."""
    os.makedirs(out, exist_ok=True)
    rng = random.Random(7)
    for i in range(1200):
        im = [min(1.0, max(0.0, 0.5 + contrast * (v - 0.5))) for v in grey_image(rng)]
        write_png(os.path.join(out, f"img{i:04d}.png"), im)


def digits_png(out, per_class=600):
    dims, px = read_idx(os.path.join(MNIST, "train-images-idx3-ubyte.gz"))
    _, labels = read_idx(os.path.join(MNIST, "train-labels-idx1-ubyte.gz"))
    n = dims[1] * dims[2]
    counts = [0] * 10
    for i, lab in enumerate(labels):
        if counts[lab] >= per_class:
            continue
        d = os.path.join(out, str(lab))
        os.makedirs(d, exist_ok=True)
        write_png(os.path.join(d, f"{counts[lab]:04d}.png"), [p / 255 for p in px[i * n : (i + 1) * n]])
        counts[lab] += 1
        if min(counts) >= per_class:
            break


def object_image(kind, rng):
    """One object of class `kind` (0 ball, 1 box, 2 ring, 3 cone) on a dark background."""
    level = rng.uniform(0.7, 1.0)
    ang = rng.uniform(0, 2 * math.pi)
    lx, ly, lz = 0.6 * math.cos(ang), 0.6 * math.sin(ang), 0.8  # light direction (unit)
    sub = 3
    im = []
    if kind == 0:
        rad = rng.uniform(5.0, 10.0)
        cy, cx = rng.uniform(rad + 1, SIZE - rad - 1), rng.uniform(rad + 1, SIZE - rad - 1)
        phase = rng.uniform(0, 10)

        def shade(y, x):
            dy, dx = (y - cy) / rad, (x - cx) / rad
            r2 = dx * dx + dy * dy
            if r2 > 1:
                return None
            nz = math.sqrt(1 - r2)
            lam = max(0.0, dx * lx + dy * ly + nz * lz)
            tex = 0.85 + 0.15 * math.sin(7.3 * x + 5.1 * y + phase) * math.sin(6.1 * y - 4.3 * x)
            return (0.25 + 0.75 * lam) * tex

    elif kind == 1:
        half = rng.uniform(4.0, 9.5)
        cy, cx = rng.uniform(half + 1, SIZE - half - 1), rng.uniform(half + 1, SIZE - half - 1)
        cell = rng.uniform(2.0, 3.5)

        def shade(y, x):
            u, v = (x - cx) / half, (y - cy) / half
            if abs(u) > 1 or abs(v) > 1:
                return None
            lam = 0.6 + 0.4 * (u * lx + v * ly) / 0.85
            check = 1.0 if (math.floor((x - cx) / cell) + math.floor((y - cy) / cell)) % 2 == 0 else 0.7
            return max(0.1, lam) * check

    elif kind == 2:
        big = rng.uniform(6.0, 11.0)
        tube = rng.uniform(1.8, min(3.5, big / 2.2))
        cy, cx = rng.uniform(big + 1, SIZE - big - 1), rng.uniform(big + 1, SIZE - big - 1)
        mid = big - tube

        def shade(y, x):
            dy, dx = y - cy, x - cx
            d = math.hypot(dx, dy)
            t = (d - mid) / tube
            if abs(t) > 1 or d == 0:
                return None
            nz = math.sqrt(1 - t * t)
            nx, ny = t * dx / d, t * dy / d
            lam = max(0.0, nx * lx + ny * ly + nz * lz)
            return 0.2 + 0.8 * lam

    else:
        h = rng.uniform(10.0, 22.0)
        w = rng.uniform(0.45, 0.75) * h
        top = rng.uniform(1, SIZE - h - 1)
        cx = rng.uniform(w / 2 + 1, SIZE - w / 2 - 1)
        pitch = rng.uniform(2.5, 4.0)

        def shade(y, x):
            f = (y - top) / h
            if f < 0 or f > 1:
                return None
            halfw = f * w / 2
            if halfw <= 0 or abs(x - cx) > halfw:
                return None
            u = (x - cx) / halfw
            nz = math.sqrt(max(0.0, 1 - u * u))
            lam = max(0.0, u * lx + nz * lz)
            stripe = 0.8 + 0.2 * math.cos(2 * math.pi * (y - top) / pitch)
            return (0.3 + 0.7 * lam) * stripe

    for r in range(SIZE):
        for c in range(SIZE):
            acc = 0.0
            for i in range(sub):
                for j in range(sub):
                    v = shade(r + (i + 0.5) / sub, c + (j + 0.5) / sub)
                    if v is not None:
                        acc += v
            im.append(min(1.0, level * acc / (sub * sub)))
    return im


OBJECTS = ["ball", "box", "ring", "cone"]


def objects(out, per_class=1500):
    rng = random.Random(31)
    for k, name in enumerate(OBJECTS):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        for i in range(per_class):
            write_png(os.path.join(d, f"{i:04d}.png"), object_image(k, rng))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    inverted(os.path.join(out, "inverted"))
    shapes(os.path.join(out, "shapes"))
    grey(os.path.join(out, "grey"))
    grey(os.path.join(out, "grey-contrast"), contrast=3.0)
    digits_png(os.path.join(out, "digits-png"))
    objects(os.path.join(out, "objects"))
    print(f"wrote {out}/inverted, {out}/shapes, {out}/grey, {out}/grey-contrast, {out}/digits-png, {out}/objects")


if __name__ == "__main__":
    main()
