#!/usr/bin/env bash
# Runs one fuzz target: ./fuzz/run.sh TARGET [SECONDS] [extra libFuzzer flags…]
# New inputs go to fuzz/corpus/TARGET (ignored by git); the committed seeds in fuzz/seeds/TARGET
# are only read. Crashes land in fuzz/artifacts/TARGET. One job, one core.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:?target}
secs=${2:-600}
shift $(( $# < 2 ? $# : 2 ))
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/attractor-fuzz-target}
# Long enough to go past the parsers' size limits (expression length, nesting depth).
case $t in
  png) max_len=24576 ;;
  npy | sde_toml) max_len=16384 ;;
  config) max_len=32768 ;;
  *) max_len=8192 ;;
esac
mkdir -p "fuzz/corpus/$t"
dirs=("fuzz/corpus/$t" "fuzz/seeds/$t")
# The reproducers of fixed findings are inputs too: they must pass, and they are good material.
[ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
exec cargo +nightly fuzz run "$t" "${dirs[@]}" -- \
  -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
  -max_len="$max_len" -print_final_stats=1 "$@"
