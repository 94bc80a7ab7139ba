//! Static delta generation: `deltas/…/{superblock,0,1,…}` in ostree's format, made on
//! every core.
