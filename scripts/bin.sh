# Sourced by the scripts (from the checkout's root) to set BIN, the `attractor` binary they run:
#   BIN=/path/to/attractor   that binary, as it is (nothing is built);
#   otherwise                the README's build, ${CARGO_TARGET_DIR:-target}/release/attractor,
#                            first built with `cargo build --release` when it is missing or older
#                            than the sources (a cold build takes 30-40 minutes on 2 cores; the
#                            script says so and shows cargo's progress).
if [ -n "${BIN:-}" ]; then
  [ -x "$BIN" ] || { echo "$(basename "$0"): BIN=$BIN is not an executable file" >&2; exit 2; }
else
  BIN="${CARGO_TARGET_DIR:-target}/release/attractor"
  if [ ! -x "$BIN" ]; then
    echo "$(basename "$0"): no $BIN yet: building it with \`cargo build --release\` (30-40 minutes cold on 2 cores; BIN=... uses a binary you have)" >&2
    cargo build --release >&2 || exit 1
  elif [ -n "$(find src Cargo.toml Cargo.lock -newer "$BIN" -print -quit 2>/dev/null)" ]; then
    echo "$(basename "$0"): the sources changed since $BIN was built: rebuilding with \`cargo build --release\`" >&2
    cargo build --release >&2 || exit 1
  fi
fi
