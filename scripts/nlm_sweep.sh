#!/usr/bin/env bash
# NLM memorization -> generalization with training-set size (../shared/specs/nlm.md §4.3, check 9)
# at a scale that fits 2 CPU cores: 14x14 images (--pool 2), sizes int(5*1.5^i) for every second
# i (5 ... 7389), SEEDS runs per size, UPDATES Adam updates each, M = 256 persistent chains,
# B = min(size, 256); generation: min(size, 1000) chains x GEN_STEPS steps, metrics against the
# same training images. Writes $OUT/sweep.png (E_AAI, Acc_S, Acc_T vs log10 size), sweep.json,
# and prints the table. With REF_STEPS > 0 (default 100, t = 1: a unit's relaxation time) each
# model also samples from chains started at held-out digits for REF_STEPS steps, against the
# same training images: new digits with the model's own thermal jitter, the figures a perfectly
# generalising sampler at T = 1 would reach ($OUT/sweep_heldout.png, .json). Extra arguments go
# to every `nlm train`, e.g.
#   UPDATES=20000 bash scripts/nlm_sweep.sh --set schedule=cosine --set lr_final=0.00002
# The schedule of nlm_digits14_long (UPDATES=60000 --lr 0.0003 --set schedule=cosine
# --set lr_final=0.00001) brings 128 images to E_AAI ~0.01 but does not train 5-25 images stably
# (their energies run away after 10 000-20 000 updates); 20 000 such updates show their
# memorisation (docs/results.md). `--set binarize=true` sweeps binarised digits (the thermal reference
# comes near 0.5, the samples do not: docs/results.md). POOL (default 2) and CHAINS (default 256) set
# the options the script passes itself (a repeated option is an error): the paper's scale, for a
# GPU, is POOL=1 CHAINS=1000 UPDATES=20000 GEN_STEPS=50000
# SIZES="5 7 11 ... 11084" --lr 0.00005, with B = min(size, CHAINS).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-checkpoints/nlm-sweep}
SEEDS=${SEEDS:-2}
UPDATES=${UPDATES:-3000}
GEN_STEPS=${GEN_STEPS:-5000}
REF_STEPS=${REF_STEPS:-100}
SIZES=${SIZES:-"5 11 25 56 128 288 648 1459 3284 7389"}
POOL=${POOL:-2}
CHAINS=${CHAINS:-256}
DEVICE=${DEVICE:-flex}
source scripts/bin.sh
A="$BIN --device $DEVICE --quiet"
mkdir -p "$OUT"
T0=$(date +%s)
EVALS=()
REFS=()
for size in $SIZES; do
  for seed in $(seq 1 "$SEEDS"); do
    run="$OUT/n$size-s$seed"
    b=$(( size < CHAINS ? size : CHAINS ))
    g=$(( size < 1000 ? size : 1000 ))
    $A --seed "$seed" nlm train --pool "$POOL" --n-data "$size" --batch "$b" --chains "$CHAINS" --updates "$UPDATES" \
       --set tage_snapshots=false --set checkpoint_every=1000 --run-dir "$run" --overwrite "$@"
    $A nlm eval --run-dir "$run" --n-gen "$g" --gen-steps "$GEN_STEPS" > /dev/null
    EVALS+=("$run/eval.json")
    if [ "$REF_STEPS" -gt 0 ]; then
      $A nlm eval --run-dir "$run" --init held-out --n-gen "$g" --gen-steps "$REF_STEPS" \
         --out "$run/eval_heldout.json" > /dev/null
      REFS+=("$run/eval_heldout.json")
    fi
  done
done
$A nlm summarize --evals "${EVALS[@]}" --x n_data --out "$OUT/sweep.png"
if [ ${#REFS[@]} -gt 0 ]; then
  echo "held-out digits after $REF_STEPS steps of each model (the T = 1 reference):"
  $A nlm summarize --evals "${REFS[@]}" --x n_data --out "$OUT/sweep_heldout.png"
fi
echo "sweep finished in $(( $(date +%s) - T0 )) s; plot $OUT/sweep.png"
