//! The identity of a node: the one name the kernel gives the parties to a message.
//!
//! What nodes say to each other is not the kernel's business: the message type is a parameter
//! of the kernel (see [`super::Vocabulary`]).

/// Dense index of a node in a run (`0..n_nodes`), in declaration order with groups expanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub u32);

impl NodeId {
    /// As a `usize` index into per-node tables.
    #[inline]
    pub fn idx(self) -> usize {
        self.0 as usize
    }
}
