#!/usr/bin/env bash
# Benchmark (never a timed test): `cfsync delta generate` beside `ostree static-delta
# generate` for the same commits of the same repository, in one run: wall time, peak
# RSS (GNU time), CPU time (user + system: on a shared machine the fairer figure) and
# delta bytes (superblock + parts + fallback objects, as
# `ostree static-delta show` counts them), from scratch and v1 -> v2.
#
#   scripts/bench-publish.sh [FIXTURE...]
#
# FIXTURE  directories made by ../shared/bench/mkfixture.sh (default: the small and, if
#          it is complete, the large fixture under /var/tmp)
# CFSYNC   the cfsync binary (default: a release build in $CARGO_TARGET_DIR or
#          target/, built with `nice cargo build --release -p cfsync` unless NO_BUILD=1)
# CFSYNC_ARGS  extra `delta generate` options (e.g. --threads 2)
# PULL     1: also pull each fixture with its own deltas and with cfsync's (see the end)
# SHARED   ../shared/bench (found beside the checkout or two levels up); PORT as compare.sh
#
# The repository is hard-link copied (`cp -al`) to a scratch directory so the fixture's
# own deltas stay untouched; each generator writes into its own copy's empty deltas/.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
TGT=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${CFSYNC:-}" ]; then
  if [ "${NO_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && nice cargo build --release -p cfsync >&2)
  fi
  CFSYNC=$TGT/release/cfsync
fi
[ -x "$CFSYNC" ] || { echo "no cfsync binary at $CFSYNC" >&2; exit 1; }
command -v ostree >/dev/null || { echo "ostree is needed (apt-get install ostree)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time is needed (apt-get install time)" >&2; exit 1; }

if [ $# -eq 0 ]; then
  set -- /var/tmp/cfsync-fixture-small
  [ -e /var/tmp/cfsync-fixture-large/repo/.done ] && set -- "$@" /var/tmp/cfsync-fixture-large
fi

WORK=$(mktemp -d /var/tmp/bench-publish.XXXXXX)
chmod 755 "$WORK"   # nginx serves the PULL=1 copies from here
trap 'rm -rf "$WORK"' EXIT

# delta_bytes REPO NAME: superblock + parts + fallbacks, from `ostree static-delta show`.
delta_bytes() {
  local repo=$1 name=$2 show sb parts fb
  show=$(ostree --repo="$repo" static-delta show "$name" 2>/dev/null)
  parts=$(sed -n 's/^Total Part Size: \([0-9]*\).*/\1/p' <<<"$show")
  fb=$(sed -n 's/^Total Fallback Size: \([0-9]*\).*/\1/p' <<<"$show")
  # Each scratch copy holds exactly one delta.
  sb=$(find "$repo/deltas" -name superblock -printf '%s\n' | head -1)
  echo "${sb:-0} ${parts:-0} ${fb:-0}"
}

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) cores; $(ostree --version | sed -n 's/ *Version: //p' | tr -d "'") vs $("$CFSYNC" --version 2>/dev/null | head -1)"
printf '| fixture | delta | generator | wall s | CPU s | peak RSS MB | superblock | parts | fallbacks | total bytes | x ostree wall | x ostree bytes |\n'
printf '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for FX in "$@"; do
  read -r _ V1 < <(grep '^v1 ' "$FX/commits")
  read -r _ V2 < <(grep '^v2 ' "$FX/commits")
  fx=$(basename "$FX")
  for kind in scratch update; do
    if [ "$kind" = scratch ]; then args=(--empty --to "$V2"); name=$V2
    else args=(--from "$V1" --to "$V2"); name=$V1-$V2; fi
    declare -A wall rss total
    for gen in ostree cfsync; do
      repo=$WORK/$gen-$fx-$kind
      cp -al "$FX/repo" "$repo"
      rm -rf "$repo/deltas" "$repo/delta-indexes"
      if [ "$gen" = ostree ]; then
        cmd=(ostree --repo="$repo" static-delta generate "${args[@]}")
      else
        # shellcheck disable=SC2206
        cmd=("$CFSYNC" -q delta generate "$repo" "${args[@]}" ${CFSYNC_ARGS:-})
      fi
      sync
      /usr/bin/time -f '%e %M %U %S' -o "$WORK/time" "${cmd[@]}" >/dev/null 2>"$WORK/err" \
        || { cat "$WORK/err" >&2; exit 1; }
      read -r w m us ss < "$WORK/time"
      cpu=$(awk -v a="$us" -v b="$ss" 'BEGIN{printf "%.1f", a+b}')
      read -r sb parts fb < <(delta_bytes "$repo" "$name")
      t=$((sb + parts + fb))
      wall[$gen]=$w; rss[$gen]=$((m / 1024)); total[$gen]=$t
      if [ "$gen" = ostree ]; then xw=1.00; xb=1.00; else
        xw=$(awk -v a="$w" -v b="${wall[ostree]}" 'BEGIN{printf "%.2f", a/b}')
        xb=$(awk -v a="$t" -v b="${total[ostree]}" 'BEGIN{printf "%.2f", a/b}')
      fi
      printf '| %s | %s | %s | %.1f | %s | %d | %d | %d | %d | %d | %s | %s |\n' \
        "$fx" "$kind" "$gen" "$w" "$cpu" "${rss[$gen]}" "$sb" "$parts" "$fb" "$t" "$xw" "$xb"
      rm -rf "$repo"
    done
    unset wall rss total
  done
done

# PULL=1: then the pulls, side by side in one run: each fixture as mkfixture.sh made it
# (ostree's deltas and summary) and a copy whose deltas are cfsync's and whose summary is
# `cfsync summary update`'s (signed with the fixture's GPG key), pulled from scratch
# (`full`) and v1 -> v2 (`update`) through ../shared/bench/compare.sh by cfsync and
# ostree. LINKS as scripts/bench.sh (default: loopback).
if [ "${PULL:-0}" = 1 ]; then
  # shellcheck source=scripts/settle.sh
  . "$ROOT/scripts/settle.sh"
  # shared/ sits beside the checkout (main) or two levels up (a worktree in wt/).
  if [ -z "${SHARED:-}" ]; then
    SHARED=$ROOT/../shared/bench
    [ -d "$SHARED" ] || SHARED=$ROOT/../../shared/bench
  fi
  export CFSYNC
  for FX in "$@"; do
    read -r _ V1 < <(grep '^v1 ' "$FX/commits")
    read -r _ V2 < <(grep '^v2 ' "$FX/commits")
    own=$WORK/$(basename "$FX")-cfsync-deltas
    mkdir -p "$own"
    cp -a "$FX/commits" "$FX/fixture.asc" "$FX/keyid" "$own/"
    cp -al "$FX/repo" "$own/repo"
    rm -rf "$own/repo/deltas" "$own/repo/delta-indexes" "$own/repo/summary" "$own/repo/summary.sig"
    cp --remove-destination "$FX/repo/config" "$own/repo/config"
    "$CFSYNC" -q delta generate "$own/repo" --empty --to "$V2" >/dev/null
    "$CFSYNC" -q delta generate "$own/repo" --from "$V1" --to "$V2" >/dev/null
    "$CFSYNC" -q summary update "$own/repo" --gpg-sign "$(cat "$FX/keyid")" --gpg-homedir "$FX/gpg"
    for link in ${LINKS:-loopback}; do
      for fx in "$FX" "$own"; do
        settle
        echo
        echo "## pulls, $link, $( [ "$fx" = "$FX" ] && echo "ostree's deltas" || echo "cfsync's deltas"): $(basename "$FX")"
        if [ "$link" = loopback ]; then
          SCENARIOS="full update" bash "$SHARED/compare.sh" "$fx" cfsync ostree
        else
          LINK=$link SCENARIOS="full update" bash "$SHARED/compare.sh" "$fx" cfsync ostree
        fi
      done
    done
  done
fi
