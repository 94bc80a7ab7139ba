#!/usr/bin/env bash
# Benchmarks (never timed tests): cfsync beside `ostree pull` and `cfsctl ostree pull`,
# the same pulls from the same nginx, in one run per link, with the shared
# ../shared/bench/compare.sh. Each shaped run also prints every scenario's floor: the
# fewest bytes any client needed over the link's rate, plus the round trips the formats
# force (below). Results go in docs/benchmarks.md.
#
#   scripts/bench.sh [FIXTURE [CLIENT...]]
#
# FIXTURE   a directory made by ../shared/bench/mkfixture.sh (default
#           /var/tmp/cfsync-fixture-small; built, small, when missing)
# CLIENT    ostree cfsctl cfsync (default: all found)
# LINKS     the links to cross, each `loopback` or RATE_MBIT:RTT_MS through
#           ../shared/bench/linkproxy.py (default: "loopback 100:40 20:80")
# PROTOS    "http", "https" or both (default "http"); https serves the same nginx with
#           TLS and HTTP/2 (`listen ... ssl http2`) under a throwaway CA that is added to
#           the system's trust store for the run (root only) and removed afterwards
# SCENARIOS as compare.sh (default: full full-nodelta update update-nodelta noop)
# CFSYNC    the cfsync binary (default: a release build of this checkout, built first)
#
# The floor of a scenario on a link of R bit/s and round trip T:
#   bytes * 8 / R  +  T * round trips, where the round trips are those no client can
#   avoid: a TCP connection (1; +1 for TLS), the summary and its signature together (1),
#   then
#   - delta routes (full, update): the commit, its commitmeta and the delta superblock
#     together (1), the parts together (1);
#   - object routes (full-nodelta, update-nodelta): the commit and commitmeta (1), one per
#     level of the tree (depth D of the deepest directory, +1 for the root), the files of
#     the deepest level (1);
#   - noop: nothing after the summary's signature says nothing changed.
#   bytes are the fewest any client in the run needed for that scenario.
#
# cfsctl must be on PATH or in $CFSCTL, built in release mode for a fair comparison:
#   cargo install --locked composefs-ctl --version 0.9.4 --no-default-features \
#     --features ostree,http,pre-6.15
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
FX=${1:-/var/tmp/cfsync-fixture-small}
shift || true
LINKS=${LINKS:-"loopback 100:40 20:80"}
PROTOS=${PROTOS:-http}
if [ ! -e "$FX/repo/.done" ]; then
  bash "$SHARED/mkfixture.sh" "$FX" small
fi
if [ -z "${CFSYNC:-}" ]; then
  (cd "$ROOT" && cargo build --release --locked -p cfsync)
  CFSYNC="${CARGO_TARGET_DIR:-$ROOT/target}/release/cfsync"
fi
export CFSYNC
export CFSCTL=${CFSCTL:-$(command -v cfsctl || true)}

# The depth of the deepest directory of the commit the scenarios pull.
DEPTH=$(ostree --repo="$FX/repo" ls -R os/x86_64/stable 2>/dev/null |
  awk '$1 ~ /^d/ { n = gsub("/", "/", $5); if ($5 == "/") n = 0; if (n > m) m = n } END { print m + 0 }')

WORK=$(mktemp -d /tmp/cfsync-bench.XXXXXX)
CA_INSTALLED=
cleanup() {
  if [ -n "$CA_INSTALLED" ]; then
    rm -f /usr/local/share/ca-certificates/cfsync-bench.crt
    update-ca-certificates --fresh > /dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# compare.sh, serve.sh and linkproxy.py as they are, or (https) with nginx serving TLS
# and HTTP/2 and compare.sh pointing its clients at https.
# Sets DIR.
bench_dir() {
  local proto=$1
  DIR=$SHARED
  [ "$proto" = http ] && return
  local d="$WORK/https"
  DIR=$d
  if [ ! -d "$d" ]; then
    mkdir -p "$d"
    cp "$SHARED/compare.sh" "$SHARED/serve.sh" "$SHARED/linkproxy.py" "$d/"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=cfsync bench CA" \
      -keyout "$d/ca.key" -out "$d/ca.crt" > /dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$d/server.key" -out "$d/server.csr" > /dev/null 2>&1
    printf 'subjectAltName=IP:127.0.0.1\n' > "$d/san.ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
      -CAcreateserial -days 2 -extfile "$d/san.ext" -out "$d/server.crt" > /dev/null 2>&1
    cp "$d/ca.crt" /usr/local/share/ca-certificates/cfsync-bench.crt
    CA_INSTALLED=1
    update-ca-certificates > /dev/null
    sed -i "s|server { listen 127.0.0.1:\$PORT; root \$DIR; }|server { listen 127.0.0.1:\$PORT ssl http2; ssl_certificate $d/server.crt; ssl_certificate_key $d/server.key; root \$DIR; }|" \
      "$d/serve.sh"
    grep -q "ssl http2" "$d/serve.sh" || { echo "bench.sh: could not patch serve.sh for TLS" >&2; exit 1; }
    sed -i 's|http://127.0.0.1:|https://127.0.0.1:|g; s|curl -fsS -o|curl -k -fsS -o|; s|curl -s -o|curl -k -s -o|' \
      "$d/compare.sh" "$d/serve.sh"
  fi
}

# Appends floor_s and x_floor to compare.sh's rows.
with_floor() {
  local link=$1 tls=$2
  awk -v link="$link" -v depth="$DEPTH" -v tls="$tls" '
    NR == 1 { head = $0; next }
    { rows[NR] = $0; sc[NR] = $2; if ($3 != "FAILED:") { b = $6 + 0; if (!($2 in min) || b < min[$2]) min[$2] = b } }
    END {
      rate = 0; rtt = 0
      if (link != "loopback") { split(link, p, ":"); rate = p[1] * 1e6 / 8; rtt = p[2] / 1000 }
      print head "  floor_s x_floor"
      for (i = 2; i <= NR; i++) {
        s = sc[i]; line = rows[i]
        if (rate == 0 || !(s in min)) { print line "       -       -"; continue }
        rt = 2 + tls
        if (s == "full" || s == "update") rt += 2
        else if (s ~ /nodelta/) rt += 1 + (depth + 1) + 1
        f = min[s] / rate + rt * rtt
        split(line, c, " ")
        x = (c[3] == "FAILED:") ? "-" : sprintf("%.2f", c[3] / f)
        printf "%s %7.2f %7s\n", line, f, x
      }
    }'
}

# shellcheck source=scripts/settle.sh
. "$ROOT/scripts/settle.sh"

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) cores; fixture $FX: $(tr '\n' ' ' < "$FX/commits")"
echo "# cfsync $("$CFSYNC" --version 2>/dev/null || echo "$CFSYNC"), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); tree depth $DEPTH"
for proto in $PROTOS; do
  bench_dir "$proto"; dir=$DIR
  tls=0; [ "$proto" = https ] && tls=1
  for link in $LINKS; do
    echo
    settle
    echo "## $proto, $link"
    if [ "$link" = loopback ]; then
      bash "$dir/compare.sh" "$FX" "$@" | with_floor "$link" "$tls"
    else
      LINK=$link bash "$dir/compare.sh" "$FX" "$@" | with_floor "$link" "$tls"
    fi
  done
done
