#!/usr/bin/env bash
# Runs every fuzz target briefly: each one first replays its committed corpus (fuzz/corpus/<t>),
# then fuzzes for FUZZ_SECONDS (default 25). New inputs go to a scratch directory, so the
# committed corpus stays as it is; a crash leaves its input in fuzz/artifacts/<t>/ and fails.
# Installs cargo-fuzz when missing. Needs the nightly compiler flags `cargo fuzz` passes, which
# the stable toolchain accepts with RUSTC_BOOTSTRAP=1.
#
#   ./scripts/fuzz-smoke.sh                   # every target
#   FUZZ_SECONDS=600 ./scripts/fuzz-smoke.sh checkpoint
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${FUZZ_SECONDS:-25}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  list=$(cargo fuzz list --fuzz-dir fuzz)
  mapfile -t targets <<<"$list"
fi

# Without a sanitizer: the workspace forbids unsafe code, and the build is the slow part.
opts=(--fuzz-dir fuzz --sanitizer none)
if [ -n "${CARGO_TARGET_DIR:-}" ]; then opts+=(--target-dir "$CARGO_TARGET_DIR"); fi

# fuzz/ is a workspace of its own with its own lock file: it must build the versions the main
# workspace pins, or the fuzzers test other code than the server runs.
echo "== fuzz/Cargo.lock pins the main workspace's versions"
relock="cp Cargo.lock fuzz/Cargo.lock && cargo metadata --manifest-path fuzz/Cargo.toml --format-version 1 >/dev/null"
if ! cargo metadata --locked --manifest-path fuzz/Cargo.toml --format-version 1 >/dev/null; then
  echo "fuzz/Cargo.lock is out of date; refresh it from the main lock: $relock" >&2
  exit 1
fi
python3 - "$relock" <<'EOF'
import sys, tomllib
def versions(path):
    found = {}
    for p in tomllib.load(open(path, "rb"))["package"]:
        found.setdefault(p["name"], set()).add(p["version"])
    return found
main, fuzz = versions("Cargo.lock"), versions("fuzz/Cargo.lock")
drift = [f"{n} {sorted(v - main[n])}" for n, v in sorted(fuzz.items()) if n in main and v - main[n]]
if drift:
    sys.exit("fuzz/Cargo.lock differs from Cargo.lock: " + ", ".join(drift) + "; refresh it: " + sys.argv[1])
EOF

echo "== building fuzz targets"
cargo fuzz build "${opts[@]}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  echo "== fuzzing $t for ${SECONDS_PER_TARGET}s over fuzz/corpus/$t"
  mkdir -p "$scratch/$t"
  log="$scratch/$t.log"
  if ! cargo fuzz run "${opts[@]}" "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1; then
    tail -n 80 "$log"
    echo "fuzz target $t failed; the input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
  grep -E '^(stat::number_of_executed_units|Done [0-9]+ runs)' "$log" || true
done
