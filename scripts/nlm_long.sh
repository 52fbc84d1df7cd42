#!/usr/bin/env bash
# NLM longer configuration (scripts/nlm_long.json): MNIST digits 1/3/6, the first 10 000
# images, 16 000 Adam updates with a cosine learning-rate decay 1e-3 -> 2e-5, M = B = 256
# persistent chains, k = 10 (about 35-40 minutes on 2 CPU cores at ~7.5 updates/s), then the same
# generation / evaluation / denoising table as scripts/nlm_default.sh.
# The paper's scale (B = M = 1000, lr 5e-5, 120 000 updates) is `--config scripts/nlm_paper.json`
# and needs a GPU (`--device wgpu` / `cuda`).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-checkpoints/nlm-long} bash scripts/nlm_default.sh --config scripts/nlm_long.json "$@"
