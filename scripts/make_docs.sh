#!/usr/bin/env bash
# Makes every picture the README and docs/ show, from runs on the bundled data (~15 minutes on
# 2 CPU cores, most of it the NLM's default training):
#   DDM  Stuart-Landau limit cycle: target SDE and trained network overlaid (ddm simulate --target,
#        then ddm simulate writes simulate_compare.png) -> docs/img/ddm-compare.png,
#        docs/img/curves-ddm.png
#   NLM  the default run (MNIST digits 1/3/6): generated digits and denoising rows
#        -> docs/img/nlm-samples.png, docs/img/nlm-denoise.png, docs/img/curves-nlm.png
#   FEP  the default run (bundled 8x8 digits): patterns above, attractors below
#        -> docs/img/fep-attractors.png, docs/img/curves-fep.png
# and regenerates docs/cli.md from the program's help. Environment: OUT (runs, default
# checkpoints/make-docs), DEVICE (default flex), BIN (a prebuilt binary; default: the
# README's build, ${CARGO_TARGET_DIR:-target}/release/attractor, made if missing: scripts/bin.sh), SKIP_TRAIN=1 (reuse the runs already in OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-checkpoints/make-docs}
DEVICE=${DEVICE:-flex}
IMG=docs/img
source scripts/bin.sh
A="$BIN --device $DEVICE --quiet"
mkdir -p "$OUT" "$IMG"
train() { [ "${SKIP_TRAIN:-0}" = 1 ] && [ -f "$1/config.json" ] || "${@:2}"; }

# DDM: the Hopf normal form's noisy limit cycle, embedded in a 200-neuron network.
train "$OUT/ddm" $A ddm train --sde stuart-landau --iters 3000 --run-dir "$OUT/ddm" --overwrite
$A ddm simulate --run-dir "$OUT/ddm" --target --t-end 30 --trajectories 4 > /dev/null
$A ddm simulate --run-dir "$OUT/ddm" --t-end 30 --trajectories 4 > /dev/null
cp "$OUT/ddm/simulate_compare.png" "$IMG/ddm-compare.png"
cp "$OUT/ddm/curves.png" "$IMG/curves-ddm.png"

# NLM: the default run, then 36 fresh chains and 8 held-out digits restored.
train "$OUT/nlm" $A nlm train --run-dir "$OUT/nlm" --overwrite
$A nlm generate --run-dir "$OUT/nlm" --chains 36 --out "$OUT/nlm/samples.png" > /dev/null
$A nlm denoise --run-dir "$OUT/nlm" --n-test 8 --corrupt uniform:0.25 --out "$OUT/nlm/denoise8.png" > /dev/null
cp "$OUT/nlm/samples.png" "$IMG/nlm-samples.png"
cp "$OUT/nlm/denoise8.png" "$IMG/nlm-denoise.png"
cp "$OUT/nlm/curves.png" "$IMG/curves-nlm.png"

# FEP: the default run on the bundled digits, then its attractors.
train "$OUT/fep" $A fep train --run-dir "$OUT/fep" --overwrite
$A fep attractors --run-dir "$OUT/fep" > /dev/null
cp "$OUT/fep/attractors.png" "$IMG/fep-attractors.png"
cp "$OUT/fep/curves.png" "$IMG/curves-fep.png"

# The command reference.
echo "make_docs: docs/cli.md from the help (cargo test --release --test front_door)" >&2
ATTRACTOR_BLESS=1 cargo test --release --test front_door docs_cli_md_is_the_current_help > /dev/null
ls -l "$IMG"/ddm-*.png "$IMG"/nlm-*.png "$IMG"/fep-*.png "$IMG"/curves-*.png docs/cli.md
