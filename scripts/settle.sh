# Sourced by the benchmark scripts: `settle`, run after each compare.sh run, which
# deletes its repositories when it ends.
#
# Without a journal (as on the benchmark machines) ext4 allocates no inode freed in
# the last 60 s (300 s while its inode table block is unwritten), and checks each one
# it passes on the way to a free one. The next run's pulls, which make thousands of
# inodes, spent up to a tenth of their CPU in that scan (`recently_deleted` in
# `perf record`), and the more the later they came in the run. So wait that out:
# SETTLE seconds after a sync (default 65; 0 skips it).
settle() {
  sync
  sleep "${SETTLE:-65}"
}
