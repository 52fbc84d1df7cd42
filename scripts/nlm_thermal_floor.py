#!/usr/bin/env python3
"""How far does T = 1 sampling noise alone put a sample from the digit it copies?  By image size.

Usage: python3 scripts/nlm_thermal_floor.py [N_DATA] [T] [EPS] [bin]   (defaults 1000, 1.0, 0.03)
Needs numpy; reads the bundled data/mnist.  For the first N_DATA MNIST 1/3/6 training images at
28x28 (pool 1) and average-pooled to 14x14 (pool 2), per digit class: the median squared pixel
distance of a training image to its nearest other training image (what a sample must beat for
Acc_S to approach 0.5), and the thermal floor, the expected squared pixel distance between an
image and the same image with each unit's x = atanh(p) jittered by N(0, T) (the conditional
spread of a saturated NLM unit at temperature T; Gauss-Hermite quadrature, no random draws),
their ratio, and the share of mid-grey pixels (|p| < 0.9), where tanh is steep and the jitter
costs most.  With `bin` the (pooled) pixels are first thresholded at 0.5, as the NLM's
`binarize` option does.  A ratio above 1 means that even a perfect T = 1 sample of a new digit is farther
from every training digit than the training digits are from each other.
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


def main():
    n_data = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    temp = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    eps = float(sys.argv[3]) if len(sys.argv) > 3 else 0.03
    binarize = len(sys.argv) > 4 and sys.argv[4] == "bin"
    x = idx("data/mnist/train-images-idx3-ubyte.gz").astype(np.float64) / 255.0
    y = idx("data/mnist/train-labels-idx1-ubyte.gz")
    keep = np.isin(y, [1, 3, 6])
    x, y = x[keep][:n_data], y[keep][:n_data]
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    weights = weights / weights.sum()
    print(f"first {n_data} images of MNIST 1/3/6, T = {temp}, eps = {eps}"
          + (", binarised at 0.5" if binarize else ""))
    print("pool  class  share  NN d2 train->train  thermal floor  floor/NN  mid-grey pixels")
    for pool in (1, 2):
        s = 28 // pool
        p = x.reshape(-1, s, pool, s, pool).mean(axis=(2, 4)).reshape(len(x), -1)
        if binarize:
            p = (p > 0.5).astype(np.float64)
        p = np.clip(2.0 * p - 1.0, -1.0 + eps, 1.0 - eps)
        sq = (p * p).sum(1)
        d2 = sq[:, None] + sq[None, :] - 2.0 * p @ p.T
        np.fill_diagonal(d2, np.inf)
        nn = d2.min(1)
        mu = np.arctanh(p)
        jitter = np.tanh(mu[..., None] + np.sqrt(temp) * nodes) - p[..., None]
        floor = ((jitter ** 2) @ weights).sum(1)
        grey = (np.abs(p) < 0.9).mean(1)
        for c in (1, 3, 6):
            m = y == c
            a, f = np.median(nn[m]), np.median(floor[m])
            print(f"{pool:4d}  {c:5d}  {m.mean():5.3f}  {a:18.2f}  {f:13.2f}  {f / a:8.2f}"
                  f"  {grey[m].mean():15.3f}")


if __name__ == "__main__":
    main()
