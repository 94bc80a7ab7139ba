#!/usr/bin/env bash
# Regenerate the fuzz seed corpora (fuzz/corpus/TARGET/<sha256>) from real data made by
# the real `ostree` and `flatpak`:
#
#   scripts/fuzz-seeds.sh            add seeds (existing files, e.g. committed crash inputs, stay)
#   FUZZ_SEEDS_CLEAN=1 scripts/...   empty each target's corpus first
#
# It builds two small archive-mode repos in a temp dir:
#   - ostree: collection ID, a tree with symlinks, xattrs (where the filesystem allows),
#     odd modes, a binary file that changes between commits (bsdiff), GPG-signed and
#     dummy-signed commits with version/endoflife/ref-binding/composefs-digest metadata,
#     a tombstone, a mirror ref (collection map), GPG- and dummy-signed summaries, and
#     static deltas: --empty, --from, --inline, --swap-endianness, --max-chunk-size,
#     --disable-bsdiff, and a signed superblock (--sign-type=dummy: the ed25519 engine
#     needs libsodium, which this ostree lacks; the OSTSGNDT wrapper is the same);
#   - flatpak: `flatpak build-update-repo` twice for summary.idx, subsummaries and
#     subsummary deltas;
# plus every object, summary and delta file of demo/repo. Framed seeds (delta parts with
# their object lists, op streams, bspatch inputs, file headers, type-prefixed gvariant
# seeds) come from fuzz/examples/seeds.rs. Seeds over FUZZ_MAX_SEED bytes (default
# 64 KiB) are dropped so the committed corpus stays small.
#
# Needs: ostree, gpg, flatpak (optional), gzip, sha256sum, cargo.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
CORPUS=${FUZZ_CORPUS:-$ROOT/fuzz/corpus}
MAX_SEED=${FUZZ_MAX_SEED:-65536}
W=$(mktemp -d /tmp/cfsync-seeds.XXXXXX)
trap 'rm -rf "$W"' EXIT
export GNUPGHOME=$W/gnupg OSTREE_DUMMY_SIGN_ENABLED=1 LC_ALL=C.UTF-8
mkdir -m 700 "$GNUPGHOME"

echo "fuzz-seeds: building the seed tool"
(cd "$ROOT/fuzz" && cargo build --quiet --release --example seeds)
SEEDS=$ROOT/fuzz/target/release/examples/seeds
STAGE=$W/stage # the seed tool writes here; add() filters by size into $CORPUS
seeds() { "$SEEDS" "$1" "$STAGE" "${@:2}"; }

add() { # add TARGET FILE...: copy each file, named by its sha256, if small enough
  local t=$1 f h
  shift
  mkdir -p "$CORPUS/$t"
  for f in "$@"; do
    [ -f "$f" ] || continue
    [ "$(stat -c %s "$f")" -le "$MAX_SEED" ] || continue
    h=$(sha256sum "$f" | cut -c1-64)
    cp "$f" "$CORPUS/$t/$h"
  done
}
addstr() { # addstr TARGET STRING...
  local t=$1 s
  shift
  for s in "$@"; do
    printf '%s' "$s" > "$W/str"
    add "$t" "$W/str"
  done
}

if [ "${FUZZ_SEEDS_CLEAN:-0}" = 1 ]; then
  rm -rf "${CORPUS:?}"/*/
fi

# --- keys -----------------------------------------------------------------------------
gpg --batch --quiet --passphrase '' --quick-gen-key 'cfsync fuzz seeds <fuzz@example.invalid>' \
  ed25519 sign never 2>/dev/null
gpg --batch --quiet --check-trustdb 2>/dev/null || true
KEY=$(gpg --list-keys --with-colons | awk -F: '/^fpr/ {print $10; exit}')
GPG=(--gpg-sign="$KEY" --gpg-homedir="$GNUPGHOME")
DUMMY=(--sign-type=dummy --sign=cfsync-fuzz-dummy-key)

# --- trees ----------------------------------------------------------------------------
R=$W/repo
ostree init --repo="$R" --mode=archive --collection-id=org.example.Fuzz
ostree config --repo="$R" set core.tombstone-commits true

mk_tree() { # mk_tree DIR VERSION
  local d=$1 v=$2
  mkdir -p "$d/etc" "$d/usr/bin" "$d/usr/lib/empty" "$d/private" "$d/ünïcödé dir"
  printf 'name=fuzz\nversion=%s\n' "$v" > "$d/etc/os-release"
  : > "$d/etc/empty"
  printf '#!/bin/sh\necho %s\n' "$v" > "$d/usr/bin/tool"
  chmod 0755 "$d/usr/bin/tool"
  chmod 0700 "$d/private"
  chmod 4755 "$d/usr/bin/tool"
  echo secret > "$d/private/key"
  chmod 0600 "$d/private/key"
  ln -sf ../usr/bin/tool "$d/etc/tool-link"
  ln -sf /absolute/target/that/does/not/exist "$d/usr/lib/dangling"
  echo "$v" > "$d/ünïcödé dir/fïle"
  # A ~48 KiB binary that changes a little between versions: bsdiff material.
  awk -v v="$v" 'BEGIN { srand(7); for (i = 0; i < 6000; i++) printf "%08x", int(rand() * 4294967295); if (v != "1.0") printf "changed in %s", v }' \
    > "$d/usr/lib/libfuzz.so"
  if [ "$v" != "1.0" ]; then
    echo new > "$d/usr/bin/new-in-$v"
    rm -f "$d/etc/empty"
  fi
  setfattr -n user.cfsync -v "xattr $v" "$d/etc/os-release" 2>/dev/null || true
  setfattr -n user.empty -v "" "$d/usr/bin/tool" 2>/dev/null || true
  setfattr -n user.dir -v 0sAAEC "$d/private" 2>/dev/null || true
}
mk_tree "$W/v1" 1.0
mk_tree "$W/v2" 2.0

DIGEST="[byte $(seq -s ', byte ' 1 32)]"
C1=$(ostree commit --repo="$R" -b fuzz/main --tree=dir="$W/v1" "${GPG[@]}" \
  --timestamp=2024-01-01T00:00:00Z -s "v1" --body "first commit" \
  --add-metadata-string=version=1.0 --add-metadata-string=ostree.endoflife="no longer supported" \
  --add-metadata="ostree.composefs.digest.v0=$DIGEST" --bind-ref=fuzz/alias)
C2=$(ostree commit --repo="$R" -b fuzz/main --tree=dir="$W/v2" "${GPG[@]}" \
  --timestamp=2024-02-01T00:00:00Z -s "v2" \
  --add-metadata-string=version=2.0 --add-metadata-string=ostree.endoflife-rebase=fuzz/next)
ostree sign --repo="$R" --sign-type=dummy "$C2" cfsync-fuzz-dummy-key
# Keep old history reachable from a second ref, and make a tombstone.
ostree refs --repo="$R" --create=fuzz/old "$C1"
C3=$(ostree commit --repo="$R" -b fuzz/gone --tree=dir="$W/v1" -s gone --no-bindings \
  --timestamp=2024-03-01T00:00:00Z)
ostree refs --repo="$R" --delete fuzz/gone
ostree prune --repo="$R" --delete-commit="$C3" >/dev/null
# A ref of another collection: the summary lists it in its collection map.
mkdir -p "$R/refs/mirrors/org.example.Other/other"
echo "$C1" > "$R/refs/mirrors/org.example.Other/other/ref"

# --- deltas ---------------------------------------------------------------------------
harvest_deltas() { # copy every superblock (and its parts' seeds) in $R, then delete them
  local sb d
  while IFS= read -r sb; do
    d=$(dirname "$sb")
    if [ "$(head -c 8 "$sb")" = OSTSGNDT ]; then add signed_superblock "$sb"; fi
    add superblock "$sb"
    seeds delta "$sb" "$d" "$R"
    addstr names "${d#"$R"/}"
    addstr delta_name "${d#"$R"/}"
  done < <(find "$R/deltas" -name superblock 2>/dev/null)
  while IFS= read -r n; do addstr delta_name "$n"; done < <(ostree static-delta list --repo="$R")
  while IFS= read -r f; do add delta_index "$f"; add metadata "$f"; done \
    < <(find "$R/delta-indexes" -type f 2>/dev/null)
  ostree summary --repo="$R" -u "${GPG[@]}"
  add summary "$R/summary"
  add summary_sig "$R/summary.sig"
  add metadata "$R/summary.sig"
  rm -rf "$R/deltas" "$R/delta-indexes"
}
delta() { ostree static-delta generate --repo="$R" "$@" >/dev/null 2>&1; }
delta --empty --to="$C1"
delta --from="$C1" --to="$C2"
harvest_deltas
delta --from="$C1" --to="$C2" --inline
delta --empty --to="$C2" --inline --disable-bsdiff
harvest_deltas
delta --from="$C1" --to="$C2" --swap-endianness
delta --empty --to="$C2" --set-endianness=B --min-fallback-size=0
harvest_deltas
delta --from="$C1" --to="$C2" --max-chunk-size=1 --disable-bsdiff
delta --empty --to="$C1" "${DUMMY[@]}"
harvest_deltas
for f in "$W"/*.sb; do [ -f "$f" ] && add superblock "$f"; done

# --- summaries ------------------------------------------------------------------------
ostree summary --repo="$R" -u "${DUMMY[@]}" \
  --add-metadata=ostree.summary.expires="uint64 $((1 << 40))" \
  --add-metadata=ostree.summary.mode="'archive'"
add summary "$R/summary"
add summary_sig "$R/summary.sig"
ostree summary --repo="$R" -u "${GPG[@]}" "${DUMMY[@]}"
add summary "$R/summary"
add summary_sig "$R/summary.sig"
add metadata "$R/summary.sig"

# --- objects --------------------------------------------------------------------------
harvest_objects() { # harvest_objects REPO
  local o=$1/objects
  mapfile -t commits < <(find "$o" -name '*.commit')
  mapfile -t trees < <(find "$o" -name '*.dirtree')
  mapfile -t metas < <(find "$o" -name '*.dirmeta')
  mapfile -t cmeta < <(find "$o" -name '*.commitmeta')
  mapfile -t tombs < <(find "$o" -name '*.commit-tombstone')
  mapfile -t filez < <(find "$o" -name '*.filez' -size -$((MAX_SEED / 1024))k)
  add commit "${commits[@]}" "${tombs[@]}"
  add dirtree "${trees[@]}"
  add dirmeta "${metas[@]}"
  add metadata "${cmeta[@]}" "${tombs[@]}"
  add filez "${filez[@]}"
  [ ${#filez[@]} -gt 0 ] && seeds headers "${filez[@]}"
  [ ${#commits[@]} -gt 0 ] && seeds typed '(a{sv}aya(say)sstayay)' "${commits[@]}"
  [ ${#trees[@]} -gt 0 ] && seeds typed '(a(say)a(sayay))' "${trees[@]}"
  [ ${#metas[@]} -gt 0 ] && seeds typed '(uuua(ayay))' "${metas[@]}"
  [ ${#cmeta[@]} -gt 0 ] && seeds typed 'a{sv}' "${cmeta[@]}"
  local f
  for f in "${commits[@]}" "${trees[@]}" "${metas[@]}" "${filez[@]}"; do
    addstr names "$(basename "$(dirname "$f")")$(basename "$f")"
  done
  while IFS= read -r f; do addstr names "${f#*/}"; done \
    < <(cd "$1/refs" && find heads mirrors remotes -type f 2>/dev/null)
  true
}
harvest_objects "$R"

# --- flatpak: summary.idx, subsummaries, subsummary deltas ----------------------------
if command -v flatpak >/dev/null; then
  F=$W/flatpak
  A=$W/app
  mkdir -p "$A/files/bin" "$A/export"
  printf '[Application]\nname=org.example.App\nruntime=org.example.Platform/x86_64/stable\ncommand=hello\n' \
    > "$A/metadata"
  flatpak_round() { # flatpak_round CONTENT
    echo "$1" > "$A/files/bin/hello"
    flatpak build-export "$F" "$A" stable >/dev/null 2>&1
    flatpak build-export --arch=aarch64 "$F" "$A" stable >/dev/null 2>&1
    flatpak build-update-repo "$F" >/dev/null
    add summary_index "$F/summary.idx"
  }
  flatpak_round v1
  flatpak_round v2
  flatpak_round v3
  add summary_index "$F/summary.idx"
  add summary "$F/summary"
  seeds typed '(a{s(ayaaya{sv})}a{sv})' "$F/summary.idx"
  for gz in "$F"/summaries/*.gz; do
    add subsummary_diff "$gz"
    gzip -dc "$gz" > "$W/sub"
    add summary "$W/sub"
  done
  for d in "$F"/summaries/*.delta; do
    from=$(basename "$d" .delta)
    from=${from%%-*}
    gzip -dc "$F/summaries/$from.gz" > "$W/old"
    seeds prefixed subsummary_diff "$W/old" "$d"
    if gzip -dc "$d" > "$W/diff" 2>/dev/null; then
      seeds prefixed subsummary_diff "$W/old" "$W/diff"
    fi
  done
else
  echo "fuzz-seeds: flatpak not installed, no summary.idx seeds" >&2
fi

# --- demo/repo ------------------------------------------------------------------------
D=$ROOT/demo/repo
if [ -d "$D/objects" ]; then
  harvest_objects "$D"
  add summary "$D/summary"
  add summary_sig "$D/summary.sig"
  while IFS= read -r sb; do
    add superblock "$sb"
    seeds delta "$sb" "$(dirname "$sb")" "$D" || true
  done < <(find "$D/deltas" -name superblock 2>/dev/null)
  while IFS= read -r f; do add delta_index "$f"; done < <(find "$D/delta-indexes" -type f 2>/dev/null)
fi

# --- names ----------------------------------------------------------------------------
addstr names fuzz/main a "" / a/ /a a//b . .. a/. a/.. -a a.b_c-d origin:fuzz/main origin: :x \
  org.example.Fuzz org.example a.b.c _._ 1a.b "$C1" "${C1^^}" "$C1.commit" "$C1.filez" \
  "$C1.dirtree" "$(printf 'x%.0s' {1..256})" "ü" "a b" $'a\tb'
addstr delta_name "$C1" "$C1-$C2"

# --- framed seeds from the tool -------------------------------------------------------
for d in "$STAGE"/*/; do
  [ -d "$d" ] && add "$(basename "$d")" "$d"/*
done

echo "fuzz-seeds: corpus now:"
for d in "$CORPUS"/*/; do
  printf '  %-20s %4d files %8d bytes\n' "$(basename "$d")" "$(find "$d" -type f | wc -l)" \
    "$(find "$d" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')"
done
du -sh "$CORPUS"
