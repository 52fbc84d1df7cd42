#!/usr/bin/env bash
# NLM within an hour on 2 CPU cores (scripts/nlm_hour.json): MNIST digits 1/3/6 at 28×28, the
# first 1000 images, 20 000 Adam updates with a cosine learning-rate decay 1e-3 -> 2e-5,
# M = B = 256 persistent chains, k = 10 (about 55 minutes at ~6.5 updates/s with the fused CPU
# kernel), then the same generation / evaluation / denoising table as scripts/nlm_default.sh.
# E_AAI is measured against the 1000 training images; see docs/results.md for what it reached.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-checkpoints/nlm-hour} bash scripts/nlm_default.sh --config scripts/nlm_hour.json "$@"
