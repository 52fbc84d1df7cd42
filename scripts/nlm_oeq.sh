#!/usr/bin/env bash
# NLM out-of-equilibrium study (../shared/specs/nlm.md §3.2, check 10) at a scale that fits
# 2 CPU cores (14x14 images, --pool 2, 5000 training images): a non-persistent model
# (Rdm: chains restarted from N(0,1) every update, k = 500) and a persistent one (PCD-10),
# each measured against generation time t = round(5*1.5^i) steps (and t = 500) for its t_age
# snapshots. Writes $OUT/oeq-rdm.png and $OUT/oeq-pcd.png (E_AAI and E2 vs log10 generation
# steps, one curve per t_age) with their JSON tables.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-checkpoints/nlm-oeq}
DEVICE=${DEVICE:-flex}
RDM_UPDATES=${RDM_UPDATES:-1000}
PCD_UPDATES=${PCD_UPDATES:-5000}
N_GEN=${N_GEN:-500}
source scripts/bin.sh
A="$BIN --device $DEVICE --quiet"
mkdir -p "$OUT"
T0=$(date +%s)
TIMES=$(python3 -c "print(','.join(sorted({str(round(5*1.5**i)) for i in range(19)} | {'500'}, key=int)))")
MAXT=$(echo "$TIMES" | tr ',' '\n' | tail -1)
$A nlm train --pool 2 --sampler restart --steps-per-update 500 --updates "$RDM_UPDATES" --run-dir "$OUT/rdm" --overwrite
$A nlm train --pool 2 --updates "$PCD_UPDATES" --run-dir "$OUT/pcd" --overwrite
for m in rdm pcd; do
  EVALS=()
  for t in $(ls "$OUT/$m/tage" | sed -E 's/ckpt-0*([0-9]+)\.atck/\1/' | sort -n); do
    $A nlm eval --run-dir "$OUT/$m" --tage "$t" --n-gen "$N_GEN" --gen-steps "$MAXT" --record-at "$TIMES" \
       --out "$OUT/$m/eval-tage$t.json" > /dev/null
    EVALS+=("$OUT/$m/eval-tage$t.json")
  done
  $A nlm summarize --evals "${EVALS[@]}" --x t_age --out "$OUT/oeq-$m.png" > /dev/null
  python3 - "$m" "${EVALS[@]}" <<'PY'
import json, sys
m, files = sys.argv[1], sys.argv[2:]
for f in files:
    ev = json.load(open(f))
    tr = ev["trace"]
    best = min(tr, key=lambda r: r["e_aai"])
    late = [r for r in tr if r["gen_steps"] >= 5000]
    late_e = sum(r["e_aai"] for r in late) / max(len(late), 1)
    print(f"{m} t_age {ev['t_age']:>6}: best E_AAI {best['e_aai']:.3f} at t = {best['gen_steps']} steps; "
          f"mean E_AAI at t >= 5000: {late_e:.3f}; E2 at t = 500: "
          f"{next((r['e2'] for r in tr if r['gen_steps'] == 500), float('nan')):.4f}, final {tr[-1]['e2']:.4f}")
PY
done
echo "out-of-equilibrium study finished in $(( $(date +%s) - T0 )) s; plots $OUT/oeq-rdm.png, $OUT/oeq-pcd.png"
