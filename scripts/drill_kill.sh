#!/usr/bin/env bash
# Crash drill: for each model family, train a reference run without interruption, then train the
# same configuration while killing it with SIGKILL at random moments (start-up, mid-step,
# checkpoint writes, caught by watching for their temporary files), resuming after every kill. After each kill it checks with `attractor verify`
# that every checkpoint on disk is complete (format + checksum), that none went missing (the
# newest step never goes back), and that the next resume starts from the newest checkpoint.
# At the end the drilled run's final checkpoint must equal the reference's, byte for byte, on the
# CPU backend.
#
#   bash scripts/drill_kill.sh                  # 20 kills per family, ddm nlm fep
#   KILLS=5 FAMILIES=fep bash scripts/drill_kill.sh
#
# Env: KILLS (20), FAMILIES ("ddm nlm fep"), SEED (1, for the kill times), DEVICE (flex),
# OUT (checkpoints/drill), BIN (default: the README's build, ${CARGO_TARGET_DIR:-target}/release/attractor,
# built first if missing or outdated; the drill runs a private copy of it). Prints a table: family, kills, kills during a checkpoint write,
# resumes, wrong resume points, mismatches, files lost.
set -uo pipefail
cd "$(dirname "$0")/.."
KILLS=${KILLS:-20}
FAMILIES=${FAMILIES:-"ddm nlm fep"}
SEED=${SEED:-1}
DEVICE=${DEVICE:-flex}
OUT=${OUT:-checkpoints/drill}
if [ -z "${BIN:-}" ]; then
    source scripts/bin.sh
    # A private copy, so that rebuilding during the drill cannot mix binaries.
    mkdir -p "$(dirname "$OUT")"
    cp "$BIN" "$OUT.bin" || exit 1
    BIN="$OUT.bin"
fi
RANDOM=$SEED
mkdir -p "$OUT"

# Each run is long enough for KILLS=20 to fit before it ends (a resume starts faster than the
# reference's first start, so every kill cycle also advances the run by the difference).
train_args() {
    case $1 in
    ddm) echo "ddm train --sde ou-rot --neurons 200 --batch 1024 --iters 6000 --set checkpoint_every=50 \
        --set pool_size=2000 --set pool_chains=100 --set burn_in=2.0 --set ridge_points=1000" ;;
    nlm) echo "nlm train --pool 2 --n-data 1000 --chains 128 --batch 128 --updates 8000 \
        --set checkpoint_every=20 --set log_every=10" ;;
    fep) echo "fep train --epochs 400 --steps-per-epoch 200 --set networks=160 --set checkpoint_every=4" ;;
    esac
}

now() { date +%s.%N; }
latest() { # newest checkpoint step in $1, -1 when none
    "$BIN" verify --run-dir "$1" 2>/dev/null | sed -n 's/.*"latest_step":\([0-9]*\).*/\1/p' | grep . || echo -1
}

rows=()
for fam in $FAMILIES; do
    ref="$OUT/$fam-ref"
    run="$OUT/$fam-drill"
    rm -rf "$ref" "$run"
    t0=$(now)
    # shellcheck disable=SC2046
    "$BIN" --device "$DEVICE" --quiet $(train_args "$fam") --run-dir "$ref" &
    pid=$!
    while [ ! -f "$ref/ckpt-000000000.atck" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
    startup=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{print b-a}')
    wait "$pid" || {
        echo "reference $fam run failed"
        exit 1
    }
    tref=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{print b-a}')
    echo "[$fam] reference run: ${tref}s (start-up ${startup}s)"
    kills=0 during=0 resumes=0 wrong=0 lost=0 prev=-1 cycles=0
    while [ "$kills" -lt "$KILLS" ] && [ "$cycles" -lt $((KILLS * 3)) ]; do
        cycles=$((cycles + 1))
        expected=$(latest "$run")
        if [ -f "$run/config.json" ]; then
            args="resume --run-dir $run"
            resumes=$((resumes + 1))
        else
            args="$(train_args "$fam") --run-dir $run --overwrite"
        fi
        # shellcheck disable=SC2086
        "$BIN" --device "$DEVICE" $args 2>"$OUT/$fam-last.log" >/dev/null &
        pid=$!
        # A random moment: one kill in four during start-up (loading data, creating the run), one
        # in four as soon as a checkpoint's temporary file appears (mid-write), the others within
        # the next ~1/KILLS of the training time.
        mode=$((RANDOM % 4))
        if [ "$mode" -eq 1 ]; then
            sleep "$startup"
            # Watch (without forking) for at most 1/KILLS of the training time.
            limit=$(awk -v n="$EPOCHREALTIME" -v s="$startup" -v t="$tref" -v k="$KILLS" 'BEGIN{printf "%.0f", (n + (t - s) / k) * 1000}')
            found=""
            while [ -z "$found" ] && kill -0 "$pid" 2>/dev/null; do
                for f in "$run"/ckpt-*.tmp; do [ -e "$f" ] && found=1; done
                ms=${EPOCHREALTIME/./}
                [ "${ms:0:-3}" -gt "$limit" ] && break
            done
        else
            delay=$(awk -v r=$RANDOM -v m="$mode" -v s="$startup" -v t="$tref" -v k="$KILLS" 'BEGIN{
                u = r / 32768; if (m == 0) d = 0.03 + u * s; else d = s + u * (t - s) / (1.5 * k);
                printf "%.3f", d }')
            sleep "$delay"
        fi
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            kills=$((kills + 1))
        else
            wait "$pid"
            rc=$?
            [ "$rc" -eq 0 ] && break # finished before the kill
            echo "[$fam] run exited with $rc before the kill:"
            tail -3 "$OUT/$fam-last.log"
            lost=$((lost + 1))
            break
        fi
        # The resume, if it got that far, must have started from the newest checkpoint.
        started=$(sed -n 's/.*resuming .* from step \([0-9]*\).*/\1/p' "$OUT/$fam-last.log")
        if [ -n "$started" ] && [ "$expected" -ge 0 ] && [ "$started" -ne "$expected" ]; then
            echo "[$fam] resume started at $started, newest checkpoint was $expected"
            wrong=$((wrong + 1))
        fi
        v=$("$BIN" verify --run-dir "$run" 2>/dev/null)
        if [ -f "$run/config.json" ] && ! echo "$v" | grep -q '"ok":true'; then
            echo "[$fam] damaged checkpoint after kill $kills: $v"
            lost=$((lost + 1))
        fi
        if [ -d "$run" ] && echo "$v" | grep -q '"tmp_files":\["ckpt'; then
            during=$((during + 1))
        fi
        cur=$(latest "$run")
        if [ "$cur" -lt "$prev" ]; then
            echo "[$fam] newest checkpoint went back from $prev to $cur"
            lost=$((lost + 1))
        fi
        prev=$cur
        [ -n "${DRILL_DEBUG:-}" ] && echo "[$fam] cycle $cycles mode $mode kills $kills newest $cur"
    done
    # Finish the drilled run and compare the final state byte for byte.
    "$BIN" --device "$DEVICE" --quiet resume --run-dir "$run" || lost=$((lost + 1))
    a=$(ls "$ref"/ckpt-*.atck | sort | tail -1)
    b=$(ls "$run"/ckpt-*.atck | sort | tail -1)
    mism=0
    if [ "$(basename "$a")" != "$(basename "$b")" ] || ! cmp -s "$a" "$b"; then
        mism=1
        echo "[$fam] final checkpoints differ: $a vs $b"
    fi
    echo "[$fam] kills $kills (during a checkpoint write: $during), resumes $resumes, wrong resume points $wrong, mismatches $mism, files lost $lost"
    rows+=("| $fam | $kills | $during | $resumes | $wrong | $mism | $lost | $tref |")
done
echo
echo "| family | kills | kills during a checkpoint write | resumes | wrong resume points | final-state mismatches | files lost | reference run (s) |"
echo "|---|---|---|---|---|---|---|---|"
for r in "${rows[@]}"; do echo "$r"; done
fail=0
for r in "${rows[@]}"; do
    # columns 6-7: wrong resume points, mismatches, files lost must all be 0
    echo "$r" | awk -F'|' '{ if ($6+0 != 0 || $7+0 != 0 || $8+0 != 0) exit 1 }' || fail=1
done
exit $fail
