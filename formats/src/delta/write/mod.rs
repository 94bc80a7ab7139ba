//! Writers for static delta files: superblocks and parts, in ostree's format.
