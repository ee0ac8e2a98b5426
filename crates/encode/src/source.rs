//! What the encoder reads a snapshot through: an owned [`Snapshot`] or a parsed
//! [`SnapshotView`], one encoder for both (monomorphised per source, so the owned
//! path pays no indirection).

use tagwire_model::{Snapshot, SnapshotView, TagView};

/// A snapshot the encoder can read: node, group, timestamp and each tag as a view.
pub(crate) trait Source {
    fn node(&self) -> &str;
    fn group(&self) -> &str;
    fn timestamp_ms(&self) -> u64;
    fn tag_count(&self) -> usize;
    /// The name of tag `i` alone (the layout cache compares only names).
    fn tag_name(&self, i: usize) -> &str;
    fn tag(&self, i: usize) -> TagView<'_>;
}

impl Source for Snapshot {
    #[inline]
    fn node(&self) -> &str {
        &self.node
    }
    #[inline]
    fn group(&self) -> &str {
        &self.group
    }
    #[inline]
    fn timestamp_ms(&self) -> u64 {
        self.timestamp_ms
    }
    #[inline]
    fn tag_count(&self) -> usize {
        self.tags.len()
    }
    #[inline]
    fn tag_name(&self, i: usize) -> &str {
        &self.tags[i].name
    }
    #[inline]
    fn tag(&self, i: usize) -> TagView<'_> {
        self.tags[i].view()
    }
}

impl Source for SnapshotView<'_> {
    #[inline]
    fn node(&self) -> &str {
        self.node
    }
    #[inline]
    fn group(&self) -> &str {
        self.group
    }
    #[inline]
    fn timestamp_ms(&self) -> u64 {
        self.timestamp_ms
    }
    #[inline]
    fn tag_count(&self) -> usize {
        self.tags.len()
    }
    #[inline]
    fn tag_name(&self, i: usize) -> &str {
        self.tags[i].name
    }
    #[inline]
    fn tag(&self, i: usize) -> TagView<'_> {
        self.tags[i].clone()
    }
}
