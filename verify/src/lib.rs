//! Every trust decision cfsync makes: object checksums, GPG and ed25519 signatures,
//! ref binding and downgrade rules.
#![forbid(unsafe_code)]
