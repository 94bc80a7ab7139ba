//! Remote trust policy and the pure checks a pull applies to each commit.
//!
//! - [`options`]: how a remote option's raw key-file value is read (`sign-verify`,
//!   `gpgkeypath`, booleans): the one reader, also used by the engine's remotes.
//! - [`RemotePolicy`] (`remote.rs`): the verification keys of an ostree remote (a
//!   `[remote "NAME"]` group of a repo `config` or `/etc/ostree/remotes.d/*.conf`) with
//!   libostree's defaults.
//! - [`check_bindings`] (with its halves [`check_ref_binding`] and
//!   [`check_collection_binding`]) mirrors `_ostree_repo_verify_bindings` (`bindings.rs`).
//! - [`check_downgrade`] mirrors `_ostree_compare_timestamps` (`downgrade.rs`).
//!
//! Nothing here touches the network or the filesystem.

mod bindings;
mod downgrade;
pub mod options;
mod remote;

pub use bindings::{BindingError, check_bindings, check_collection_binding, check_ref_binding};
pub use downgrade::{DowngradeError, check_downgrade};
pub use options::{OptionError, SignVerifyOption};
pub use remote::{ConfigError, RemotePolicy, SignEngine, SignVerify};
