#!/usr/bin/env python3
"""Where do generated NLM samples differ from the data?  (diagnostic for the data-size sweep)

Usage: python3 scripts/nlm_distance_parts.py RUN_DIR N_DATA [POOL]
  RUN_DIR  an `nlm train` run trained on the first N_DATA images of MNIST 1/3/6 (bundled
           data/mnist), average-pooled by POOL (default 2), with `nlm generate --npy
           RUN_DIR/gen.npy` already run.
Needs numpy.  Prints, for pixels that are background (exactly -1) in >= 99 % of the training
images: the generated values there (mean, x = atanh spread, share above 0); the median
sample-to-nearest-training-image squared distance and the share of it on those pixels; the
same with the background pixels set to the data's -1; Acc_S / Acc_T both ways; and per digit
class: its share of the training images and of the samples (a sample's class is that of its
nearest training image), Acc_S of its training images, the median squared distance of its
training images to their nearest training image and of its samples to theirs, the part of the
latter on the pixels that are background (<= -0.9) in that nearest image, and what the T = 1
noise alone costs there (the thermal floor: background pixels x E[(tanh x - tanh mu)^2],
x ~ N(mu, 1), mu the data's background x at eps = 0.03).
"""
import gzip
import struct
import sys

import numpy as np


def idx(path):
    b = gzip.open(path).read()
    nd = struct.unpack(">I", b[:4])[0] & 0xFF
    dims = struct.unpack(">" + "I" * nd, b[4:4 + 4 * nd])
    return np.frombuffer(b[4 + 4 * nd:], dtype=np.uint8).reshape(dims)


def npy(path):
    b = open(path, "rb").read()
    hl = struct.unpack("<H", b[8:10])[0]
    hdr = b[10:10 + hl].decode()
    shape = tuple(int(x) for x in hdr.split("(")[1].split(")")[0].split(",") if x.strip())
    return np.frombuffer(b[10 + hl:], dtype="<f4").reshape(shape).astype(np.float64)


def nearest(real, gen):
    """Index of each point's nearest neighbour among real + gen (itself excluded)."""
    a = np.concatenate([real, gen])
    d = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return d.argmin(1), d


def accs(real, gen):
    nn, m = nearest(real, gen)[0], len(real)
    return (nn[:m] < m).mean(), (nn[m:] >= m).mean()


def thermal_floor(eps=0.03, temperature=1.0):
    """E[(tanh x - tanh mu)^2] for x ~ N(mu, T), mu = atanh(-(1 - eps)): the squared-distance
    cost per background pixel of the T-noise alone (the learned bias puts the model's background
    mean at the data's x, and a saturated unit's x fluctuates with variance T around it)."""
    z, w = np.polynomial.hermite_e.hermegauss(80)
    mu = np.arctanh(-(1 - eps))
    return float((w * (np.tanh(mu + np.sqrt(temperature) * z) - np.tanh(mu)) ** 2).sum() / w.sum())


def per_class(real, gen, labels, floor):
    m = len(real)
    nn, d = nearest(real, gen)
    rr, gr = d[:m, :m].min(1), d[m:, :m]
    near = gr.argmin(1)
    gl = labels[near]
    bg = real[near] <= -0.9
    bg_part = (((gen - real[near]) ** 2) * bg).sum(1)
    print(f"thermal floor per background pixel (T = 1, eps = 0.03): {floor:.4f}")
    print("class  train share  sample share  Acc_S of its images  median NN d2 train->train  "
          "sample->train  on its background  floor (bg pixels x floor)")
    for c in np.unique(labels):
        t, s = labels == c, gl == c
        nan = float("nan")
        print(f"{c:>5}  {t.mean():11.3f}  {s.mean():12.3f}  {(nn[:m][t] < m).mean():19.3f}  "
              f"{np.median(rr[t]):25.2f}  {np.median(gr.min(1)[s]) if s.any() else nan:13.2f}  "
              f"{np.median(bg_part[s]) if s.any() else nan:17.2f}  "
              f"{bg[s].sum(1).mean() * floor if s.any() else nan:25.2f}")


def main():
    run, n_data = sys.argv[1], int(sys.argv[2])
    pool = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    x = np.concatenate([idx("data/mnist/train-images-idx3-ubyte.gz"), idx("data/mnist/t10k-images-idx3-ubyte.gz")])
    y = np.concatenate([idx("data/mnist/train-labels-idx1-ubyte.gz"), idx("data/mnist/t10k-labels-idx1-ubyte.gz")])
    keep = np.isin(y, [1, 3, 6])
    x, y = x[keep][:n_data].astype(np.float64) / 255.0, y[keep][:n_data]
    s = 28 // pool
    real = 2 * x.reshape(-1, s, pool, s, pool).mean(axis=(2, 4)).reshape(-1, s * s) - 1
    gen = npy(f"{run}/gen.npy")
    bg = (real <= -0.999).mean(0) >= 0.99
    g = gen[:, bg]
    gx = np.arctanh(np.clip(g, -0.999999, 0.999999))
    print(f"pixels {real.shape[1]}, background in >= 99 % of training images: {bg.sum()}")
    print(f"generated there: mean {g.mean():.3f}, x mean {gx.mean():.3f} sd {gx.std():.3f}, share > 0 {(g > 0).mean():.4f}")
    n = min(len(gen), len(real))
    r, g = real[:n], gen[:n]
    d2 = ((g[:, None, :] - r[None, :, :]) ** 2).sum(-1)
    part = (g - r[d2.argmin(1)]) ** 2
    rr = ((r[:, None, :] - r[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(rr, np.inf)
    print(f"sample -> nearest training image: median d2 {np.median(d2.min(1)):.2f} "
          f"(share on background pixels {np.median(part[:, bg].sum(1) / part.sum(1)):.2f}); "
          f"training -> nearest training: {np.median(rr.min(1)):.2f}")
    gc = g.copy()
    gc[:, bg] = -1.0
    print(f"background set to -1: median d2 {np.median(((gc[:, None, :] - r[None, :, :]) ** 2).sum(-1).min(1)):.2f}")
    print("Acc_S, Acc_T as generated: %.3f %.3f" % accs(r, g))
    print("Acc_S, Acc_T background set to -1: %.3f %.3f" % accs(r, gc))
    per_class(r, g, y[:n], thermal_floor())


if __name__ == "__main__":
    main()
