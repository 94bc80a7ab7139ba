//! The opcode bytes of the delta bytecode and their names.

/// An opcode of the delta bytecode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpCode {
    /// `S`: create a whole object from the blob.
    OpenSpliceAndClose,
    /// `o`: start a file object.
    Open,
    /// `w`: append bytes.
    Write,
    /// `r`: select an existing file object as read source.
    SetReadSource,
    /// `R`: clear the read source.
    UnsetReadSource,
    /// `c`: finish the open object.
    Close,
    /// `B`: produce the content with a bspatch against the read source.
    Bspatch,
}

impl OpCode {
    /// All opcodes, in the order `ostree static-delta show` counts them.
    pub const ALL: [OpCode; 7] = [
        OpCode::OpenSpliceAndClose,
        OpCode::Open,
        OpCode::Write,
        OpCode::SetReadSource,
        OpCode::UnsetReadSource,
        OpCode::Close,
        OpCode::Bspatch,
    ];

    /// Decodes an opcode byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            b'S' => OpCode::OpenSpliceAndClose,
            b'o' => OpCode::Open,
            b'w' => OpCode::Write,
            b'r' => OpCode::SetReadSource,
            b'R' => OpCode::UnsetReadSource,
            b'c' => OpCode::Close,
            b'B' => OpCode::Bspatch,
            _ => return None,
        })
    }

    /// The opcode byte.
    pub fn to_byte(self) -> u8 {
        match self {
            OpCode::OpenSpliceAndClose => b'S',
            OpCode::Open => b'o',
            OpCode::Write => b'w',
            OpCode::SetReadSource => b'r',
            OpCode::UnsetReadSource => b'R',
            OpCode::Close => b'c',
            OpCode::Bspatch => b'B',
        }
    }

    /// Position in [`OpCode::ALL`] (ostree's `delta_opcode_index`).
    pub fn index(self) -> usize {
        match self {
            OpCode::OpenSpliceAndClose => 0,
            OpCode::Open => 1,
            OpCode::Write => 2,
            OpCode::SetReadSource => 3,
            OpCode::UnsetReadSource => 4,
            OpCode::Close => 5,
            OpCode::Bspatch => 6,
        }
    }

    /// The name `ostree static-delta show` uses for it.
    pub fn show_name(self) -> &'static str {
        match self {
            OpCode::OpenSpliceAndClose => "openspliceclose",
            OpCode::Open => "open",
            OpCode::Write => "write",
            OpCode::SetReadSource => "setread",
            OpCode::UnsetReadSource => "unsetread",
            OpCode::Close => "close",
            OpCode::Bspatch => "bspatch",
        }
    }
}
