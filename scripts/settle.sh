# Sourced by the benchmark scripts: `settle`, run before each compare.sh run, waits
# out the deletion of the repositories the run before it made (compare.sh deletes them
# when it ends); before the first run it does nothing.
#
# Without a journal (as on the benchmark machines) ext4 does not reuse an inode freed
# in the last 60 s, or in the last 360 s once its inode table block is dirty again
# (which the next pull's own new inodes make it), and it looks at each such inode on
# the way to a free one. Pulls make thousands of inodes: right after three stores of
# the small fixture were deleted, that scan (`recently_deleted`,
# `find_get_block_common`, `find_inode_bit`, `ext4_get_group_desc` in
# `perf record`) took 11 % of a pull's samples, 10 % after 65 s, 0.5 % after 375 s,
# against 0.2-0.4 % before anything was deleted. So a run measured after another
# pays for the other's cleanup: wait that out. SETTLE seconds after a sync (default
# 370; 0 skips the wait).
SETTLE_AFTER_RUN=
settle() {
  if [ -n "$SETTLE_AFTER_RUN" ]; then
    sync
    sleep "${SETTLE:-370}"
  fi
  SETTLE_AFTER_RUN=1
}
