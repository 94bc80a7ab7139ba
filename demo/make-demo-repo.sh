#!/usr/bin/env bash
# Build the bundled demo repository with the real `ostree` and `gpg`:
#
#   demo/make-demo-repo.sh [OUTDIR]      (default: the directory of this script)
#
# OUTDIR/repo      an OSTree "archive" repository; ref demo/x86_64/stable -> v2,
#                  v2's parent is v1; both commits and the summary are GPG-signed;
#                  static deltas v1 -> v2 and empty -> v1; summary and delta indexes
# OUTDIR/demo.asc  the public half of the signing key (the secret key is thrown away)
# OUTDIR/commits   "v1 <sha256>" and "v2 <sha256>"
#
# The trees are an OS-like layout (usr/bin, usr/lib, usr/share/doc, usr/etc): generated
# text, a few small ELF binaries copied from this machine's /usr/bin, and files chosen to
# exercise every part of a pull: setuid, an empty file, a hard link, xattrs, long and
# non-ASCII names, symlinks. v2 patches some binaries in place (so the v1 -> v2 delta
# carries bspatch ops), adds and removes files, retargets a symlink and changes a mode.
# Timestamps are fixed; the signatures (and so the key) differ on every run.
#
# Needs: ostree, gpg, awk, setfattr (Debian: ostree gnupg mawk attr).
set -euo pipefail

OUT=${1:-$(dirname "$(readlink -f "$0")")}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
REF=demo/x86_64/stable

for t in ostree gpg awk setfattr; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install -y ostree gnupg mawk attr)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/cfsync-demo.XXXXXX)
cleanup() {
  gpgconf --homedir "$WORK/gpg" --kill gpg-agent 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- content generators (deterministic: mawk's rand() with a fixed seed) ---

# text FILE SEED LINES: lorem-ipsum-like lines, with a header naming the file
text() {
  mkdir -p "$(dirname "$1")"
  awk -v seed="$2" -v n="$3" -v name="${1#"$T"/}" 'BEGIN {
    srand(seed)
    split("system service package update config data module kernel runtime image " \
          "object commit delta summary signature mirror policy store verify layer", w, " ")
    print "# " name
    for (i = 0; i < n; i++) {
      line = ""
      k = 4 + int(rand() * 9)
      for (j = 0; j < k; j++) line = line w[1 + int(rand() * 20)] " "
      print line
    }
  }' > "$1"
}

# blob FILE SEED BYTES: binary-looking bytes (a fixed pseudo-random stream)
blob() {
  mkdir -p "$(dirname "$1")"
  LC_ALL=C awk -v seed="$2" -v n="$3" 'BEGIN {
    srand(seed)
    for (i = 0; i < n; i++) printf "%c", int(rand() * 256)
  }' > "$1"
}

# scatter FILE EVERY: overwrite one byte every EVERY bytes (in place), so that a rolling
# checksum finds few unchanged chunks and ostree's delta compiler picks bsdiff
scatter() {
  local size off
  size=$(stat -c %s "$1")
  for ((off = 1000; off < size; off += $2)); do
    printf '\x5a' | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
  done
}

# --- v1 ---
T=$WORK/v1
mkdir -p "$T"/usr/{bin,sbin,lib,share/doc,share/man/man1,etc}

for b in true false echo; do cp /usr/bin/$b "$T/usr/bin/$b"; done
cp /usr/bin/dash "$T/usr/bin/dash"
cp /usr/bin/sed "$T/usr/bin/sed"
ln -s dash "$T/usr/bin/sh"
for i in $(seq -w 1 24); do
  f=$T/usr/bin/demo-tool-$i
  { echo '#!/bin/sh'; echo "# demo tool $i"; echo "exec echo \"demo tool $i: \$*\""; } > "$f"
  chmod 0755 "$f"
done
# a setuid program and a hard link to it
cp /usr/bin/true "$T/usr/sbin/demo-helper"
chmod 04755 "$T/usr/sbin/demo-helper"
ln "$T/usr/sbin/demo-helper" "$T/usr/sbin/demo-helper-compat"

mkdir -p "$T/usr/lib/demo/modules" "$T/usr/lib/demo/releases/1" "$T/usr/lib/demo/releases/2"
blob "$T/usr/lib/demo/libdemo.so.1.0" 7 24000
ln -s libdemo.so.1.0 "$T/usr/lib/demo/libdemo.so.1"
ln -s /usr/lib/demo/libdemo.so.1.0 "$T/usr/lib/demo/libdemo-absolute.so"
ln -s ../does/not/exist "$T/usr/lib/demo/dangling"
for i in $(seq -w 1 40); do text "$T/usr/lib/demo/modules/mod-$i.conf" "1$i" 6; done
text "$T/usr/lib/demo/releases/1/NOTES" 11 20
text "$T/usr/lib/demo/releases/2/NOTES" 12 25
ln -s releases/1 "$T/usr/lib/demo/current"
cat > "$T/usr/lib/os-release" <<'EOF'
PRETTY_NAME="cfsync demo OS 1.0"
NAME="cfsync demo OS"
VERSION_ID="1.0"
ID=cfsync-demo
EOF

pkgs="acl adduser apt attr base-files base-passwd bash bsdutils coreutils dash debconf
debianutils diffutils dpkg e2fsprogs findutils gcc-12-base gpgv grep gzip hostname init-system-helpers
libacl1 libattr1 libc6 libcap2 libgcc-s1 libpcre2-8-0 libselinux1 libzstd1 login mawk mount
ncurses-base passwd perl-base sed sysvinit-utils tar tzdata util-linux zlib1g"
n=0
for p in $pkgs; do
  n=$((n + 1))
  text "$T/usr/share/doc/$p/copyright" "$((1000 + n))" 12
  text "$T/usr/share/doc/$p/changelog" "$((2000 + n))" 30
  text "$T/usr/share/man/man1/$p.1" "$((3000 + n))" 15
done

n=0
for l in ca cs da de el es fi fr hu it ja ko nb nl pl pt pt_BR ro ru sk sv tr uk zh_CN zh_TW; do
  n=$((n + 1))
  text "$T/usr/share/locale/$l/LC_MESSAGES/cfsync-demo.po" "$((4000 + n))" 8
done
for i in $(seq -w 1 60); do text "$T/usr/lib/demo/python/demo_mod_$i.py" "8$i" 5; done

text "$T/usr/etc/demo.conf" 41 10
mkdir -p "$T/usr/etc/demo.d"
for i in $(seq -w 1 20); do text "$T/usr/etc/demo.d/$i-defaults.conf" "5$i" 4; done
echo demo > "$T/usr/etc/hostname"
: > "$T/usr/etc/machine-id"
ln -s ../lib/os-release "$T/usr/etc/os-release"
chmod 0600 "$T/usr/etc/demo.conf"
setfattr -n user.demo.origin -v "generated by make-demo-repo.sh" "$T/usr/etc/demo.conf"
setfattr -n user.demo.flags -v 0x00ff017f "$T/usr/lib/demo/libdemo.so.1.0"

mkdir -p "$T/usr/share/demo/names" "$T/usr/share/demo/empty"
text "$T/usr/share/demo/names/café.txt" 61 3
text "$T/usr/share/demo/names/日本語のファイル.txt" 62 3
text "$T/usr/share/demo/names/$(printf 'long-name-%.0s' $(seq 1 24))end" 63 3
text "$T/usr/share/demo/names/with space and 'quotes'" 64 3

V1_TREE=$T

# --- v2: a copy of v1 with an update applied ---
T=$WORK/v2
cp -a "$V1_TREE" "$T"
scatter "$T/usr/bin/dash" 3000          # patched binaries: bspatch in the v1 -> v2 delta
scatter "$T/usr/bin/sed" 3000
printf '\n# demo v2 trailer\n' >> "$T/usr/bin/echo"
scatter "$T/usr/lib/demo/libdemo.so.1.0" 2000
rm -f "$T/usr/lib/demo/current"; ln -s releases/2 "$T/usr/lib/demo/current"
chmod 0750 "$T/usr/bin/demo-tool-07"
sed -i 's/1\.0/2.0/' "$T/usr/lib/os-release"
rm -rf "$T/usr/share/doc/acl" "$T/usr/share/man/man1/acl.1" "$T/usr/bin/demo-tool-24"
for f in copyright changelog NEWS; do text "$T/usr/share/doc/cfsync-demo/$f" "9${#f}" 20; done
{ echo '#!/bin/sh'; echo 'exec echo "new in v2: $*"'; } > "$T/usr/bin/demo-new"
chmod 0755 "$T/usr/bin/demo-new"
for i in $(seq -w 1 40); do [ $((10#$i % 5)) = 0 ] && text "$T/usr/lib/demo/modules/mod-$i.conf" "7$i" 7; done
V2_TREE=$T

# --- signing key ---
export GNUPGHOME=$WORK/gpg
mkdir -p "$GNUPGHOME"; chmod 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'cfsync demo signing key <demo@example.invalid>' \
  ed25519 sign never 2>/dev/null
KEY=$(gpg --batch --list-keys --with-colons | awk -F: '/^fpr/ {print $10; exit}')
gpg --batch --armor --export "$KEY" > "$OUT/demo.asc"

# --- repository ---
R=$OUT/repo
rm -rf "$R"
ostree --repo="$R" init --mode=archive
sign=(--gpg-sign="$KEY" --gpg-homedir="$GNUPGHOME")
c1=$(ostree --repo="$R" commit -b "$REF" --tree=dir="$V1_TREE" --timestamp=2025-01-01T00:00:00Z \
      -s "cfsync demo 1.0" --add-metadata-string=version=1.0 "${sign[@]}")
c2=$(ostree --repo="$R" commit -b "$REF" --tree=dir="$V2_TREE" --timestamp=2025-02-01T00:00:00Z \
      -s "cfsync demo 2.0" --add-metadata-string=version=2.0 "${sign[@]}")
ostree --repo="$R" static-delta generate --from="$c1" --to="$c2"
ostree --repo="$R" static-delta generate --empty --to="$c1"
ostree --repo="$R" summary -u "${sign[@]}"
ostree --repo="$R" fsck --quiet
printf 'v1 %s\nv2 %s\n' "$c1" "$c2" > "$OUT/commits"

echo "demo repository: $R"
echo "  v1 $c1 ($(find "$V1_TREE" -type f | wc -l) files)"
echo "  v2 $c2 ($(find "$V2_TREE" -type f | wc -l) files)"
echo "  key $KEY"
du -sh "$R"
