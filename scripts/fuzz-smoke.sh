#!/usr/bin/env bash
# Build every cargo-fuzz target and run each one briefly: a smoke test that the targets
# build and that no quick crash is lurking (not a substitute for long fuzzing runs).
#
#   scripts/fuzz-smoke.sh [TARGET...]      default: every target `cargo fuzz list` shows
#
# FUZZ_SECONDS  seconds per target (default 5: with 23 targets, the cold build (~70 s) plus
#               the runs stay under 5 minutes on 2 shared cores; 10 s each would not)
# FUZZ_DIR      the cargo-fuzz workspace (default: fuzz/ beside this script's parent)
#
# Seeds are copied from fuzz/corpus/TARGET into a scratch corpus, and libFuzzer is only
# given the scratch copy, so the committed corpus is never written (checked at the end). A crash leaves its input in fuzz/artifacts/TARGET/ and makes the script exit 1
# after all targets ran. Stable Rust is used as nightly via RUSTC_BOOTSTRAP=1; cargo-fuzz
# is installed if missing. Without fuzz/Cargo.toml there is nothing to do (exit 0).
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
FUZZ_DIR=${FUZZ_DIR:-$ROOT/fuzz}
N=${FUZZ_SECONDS:-5}

if [ ! -f "$FUZZ_DIR/Cargo.toml" ]; then
  echo "fuzz-smoke: no $FUZZ_DIR/Cargo.toml, nothing to run"
  exit 0
fi
FUZZ_DIR=$(cd "$FUZZ_DIR" && pwd)

if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz-smoke: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
fuzz() { (cd "$(dirname "$FUZZ_DIR")" && cargo fuzz "$1" --fuzz-dir "$FUZZ_DIR" "${@:2}"); }

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(fuzz list)
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz-smoke: $FUZZ_DIR has no targets" >&2
  exit 1
fi

t0=$(date +%s)
fuzz build # every target, in one cargo build
echo "fuzz-smoke: built ${#targets[@]} targets in $(($(date +%s) - t0)) s"

corpus_fingerprint() {
  if [ -d "$FUZZ_DIR/corpus" ]; then
    (cd "$FUZZ_DIR/corpus" && find . -type f -print0 | sort -z | xargs -0r sha256sum | sha256sum)
  fi
}
before=$(corpus_fingerprint)

SCRATCH=$(mktemp -d /tmp/cfsync-fuzz.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
dict=()
[ -f "$FUZZ_DIR/dicts/ostree.dict" ] && dict=(-dict="$FUZZ_DIR/dicts/ostree.dict")
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$SCRATCH/$t"
  if [ -d "$FUZZ_DIR/corpus/$t" ]; then
    find "$FUZZ_DIR/corpus/$t" -maxdepth 1 -type f -exec cp -t "$SCRATCH/$t" {} +
  fi
  s=$(date +%s)
  if fuzz run "$t" "$SCRATCH/$t" -- -max_total_time="$N" -timeout=20 -rss_limit_mb=2048 \
       "${dict[@]}" -print_final_stats=1 > "$SCRATCH/$t.log" 2>&1; then
    result=ok
  else
    result=FAILED
    failed+=("$t")
    tail -n 40 "$SCRATCH/$t.log" >&2
  fi
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$SCRATCH/$t.log" | awk '{print $2}' | tail -1)
  echo "fuzz-smoke: $t: $result in $(($(date +%s) - s)) s (${runs:-?} runs)"
done

if [ "$(corpus_fingerprint)" != "$before" ]; then
  echo "fuzz-smoke: the committed corpus $FUZZ_DIR/corpus changed during the run" >&2
  exit 1
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz-smoke: crashed: ${failed[*]} (inputs in $FUZZ_DIR/artifacts/)" >&2
  exit 1
fi
echo "fuzz-smoke: all ${#targets[@]} targets ran ${N} s each without a crash"
