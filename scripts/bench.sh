#!/usr/bin/env bash
# Benchmarks (never timed tests): cfsync beside `ostree pull` and `cfsctl ostree pull`,
# the same pulls from the same nginx on loopback, in one run, with the shared
# ../shared/bench/compare.sh. Results go in docs/benchmarks.md.
#
#   scripts/bench.sh [FIXTURE [CLIENT...]]
#
# FIXTURE   a directory made by ../shared/bench/mkfixture.sh (default
#           /var/tmp/cfsync-fixture-small; built, small, when missing)
# CLIENT    ostree cfsctl cfsync (default: all found)
# SCENARIOS as compare.sh (default: full full-nodelta update update-nodelta noop)
#
# cfsctl must be on PATH or in $CFSCTL, built in release mode for a fair comparison:
#   cargo install --locked composefs-ctl --version 0.9.4 --no-default-features \
#     --features ostree,http,pre-6.15
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
FX=${1:-/var/tmp/cfsync-fixture-small}
shift || true
if [ ! -e "$FX/repo/.done" ]; then
  bash "$SHARED/mkfixture.sh" "$FX" small
fi
(cd "$ROOT" && cargo build --release --locked -p cfsync)
export CFSYNC="$ROOT/target/release/cfsync"
export CFSCTL=${CFSCTL:-$(command -v cfsctl || true)}
echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) cores; fixture $FX: $(tr '\n' ' ' < "$FX/commits")"
bash "$SHARED/compare.sh" "$FX" "$@"
