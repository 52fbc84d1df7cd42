#!/usr/bin/env bash
# NLM digits at 14×14 on 2 CPU cores (scripts/nlm_digits14.json): MNIST digits 1/3/6
# average-pooled 2×2 (N = 196), the first 1000 images, 20 000 Adam updates with a cosine
# learning-rate decay 1e-3 -> 2e-5, M = B = 256 persistent chains, k = 10 (about 6-8 minutes at
# 40-60 updates/s), then the table of scripts/nlm_default.sh with E_AAI <= 0.10 as a check
# (1000 fresh chains x 5000 steps against the 1000 training images), and E_AAI / Acc_S / Acc_T
# of the t_age snapshots (eval_tage.png). The 28×28 counterpart is scripts/nlm_hour.sh.
# Arguments go to `nlm train`: `--n-data 288` is the training-set size of the authors'
# exploration figure (E_AAI against those 288 images, docs/results.md).
# CONFIG=scripts/nlm_digits14_long.json: the same images with 60 000 updates, cosine 3e-4 -> 1e-5
# (about 26 minutes of training; cleaner digits, docs/results.md); its default OUT is
# checkpoints/nlm-digits14-long. CONFIG=scripts/nlm_digits14_long500.json: that schedule on the
# first 500 images (about 16 minutes; E_AAI below 0.10, docs/results.md), OUT checkpoints/nlm-digits14-long500.
# The E_AAI row is the mean over REPEATS (default 5) independent sets of 1000 samples (one set
# scatters by about ±0.004); the t_age rows are one set each.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-scripts/nlm_digits14.json}
case "$CONFIG" in
  *_long.json) OUT=${OUT:-checkpoints/nlm-digits14-long} ;;
  *_long500.json) OUT=${OUT:-checkpoints/nlm-digits14-long500} ;;
  *) OUT=${OUT:-checkpoints/nlm-digits14} ;;
esac
DEVICE=${DEVICE:-flex}
source scripts/bin.sh
export BIN
OUT=$OUT DEVICE=$DEVICE EAAI_MAX=${EAAI_MAX:-0.10} REPEATS=${REPEATS:-5} bash scripts/nlm_default.sh --config "$CONFIG" "$@"
A="$BIN --device $DEVICE --quiet"
EVALS=()
for t in 1679 4852 8248 14021 23836 40521; do
  if [ -d "$OUT/tage" ] && ls "$OUT/tage" | grep -q "$t"; then
    $A nlm eval --run-dir "$OUT" --tage "$t" --out "$OUT/eval_tage$t.json" > /dev/null
    EVALS+=("$OUT/eval_tage$t.json")
  fi
done
EVALS+=("$OUT/eval.json")
$A nlm summarize --evals "${EVALS[@]}" --x t_age --out "$OUT/eval_tage.png"
python3 - "${EVALS[@]}" <<'PY'
import json, sys
print(f"{'t_age':>7}  {'E_AAI':>6}  {'Acc_S':>6}  {'Acc_T':>6}  {'E2':>8}  mean pixel")
for f in sys.argv[1:]:
    e = json.load(open(f))
    print(f"{e['t_age']:>7}  {e['e_aai']:6.3f}  {e['acc_s']:6.3f}  {e['acc_t']:6.3f}  {e['e2']:8.5f}  {e['mean_pixel']:.3f}")
PY
