//! The error type of the strict reader and of the writer.

use super::MAX_DEPTH;

/// Errors of the strict reader and of the writer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A caller-provided type string is not one complete, definite GVariant type.
    #[error("invalid gvariant type string {ty:?}")]
    InvalidType {
        /// The rejected type string.
        ty: String,
    },
    /// The type string stored inside a variant (`v`) is invalid, indefinite or too long.
    #[error("invalid type string inside gvariant variant at offset {offset}")]
    InvalidVariantType {
        /// Offset of the variant value in the parsed buffer.
        offset: usize,
    },
    /// The bytes are not the normal-form serialization of a value of type `ty`.
    #[error("malformed gvariant {ty} at offset {offset}: {what}")]
    Malformed {
        /// What is wrong.
        what: &'static str,
        /// The type being read.
        ty: String,
        /// Offset of the value in the parsed buffer.
        offset: usize,
    },
    /// Containers are nested deeper than [`MAX_DEPTH`].
    #[error("gvariant nested deeper than {MAX_DEPTH} at offset {offset}")]
    TooDeep {
        /// Offset of the value in the parsed buffer.
        offset: usize,
    },
    /// An accessor was used on a value of another type.
    #[error("gvariant type mismatch at offset {offset}: expected {expected}, found {actual}")]
    WrongType {
        /// What the accessor needs.
        expected: &'static str,
        /// The value's type string.
        actual: String,
        /// Offset of the value in the parsed buffer.
        offset: usize,
    },
}
