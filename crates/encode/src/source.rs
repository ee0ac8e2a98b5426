//! What the encoder reads a snapshot through: an owned [`Snapshot`] or a parsed
//! [`SnapshotView`], one encoder for both (monomorphised per source). An owned tag is
//! read in place (`&Tag`), not turned into a [`TagView`] first: building a view per
//! tag cost the owned path about 10% more instructions.

use tagwire_model::{Members, Reading, ReadingView, Snapshot, SnapshotView, Tag, TagView};

use crate::{classify, Out};

/// A snapshot the encoder can read: node, group, timestamp and each tag.
pub(crate) trait Source {
    /// How one tag is read.
    type Tag<'s>: TagRead
    where
        Self: 's;
    fn node(&self) -> &str;
    fn group(&self) -> &str;
    fn timestamp_ms(&self) -> u64;
    fn tag_count(&self) -> usize;
    /// The name of tag `i` alone (the layout cache compares only names).
    fn tag_name(&self, i: usize) -> &str;
    fn tag(&self, i: usize) -> Self::Tag<'_>;
}

/// What the writer needs of one tag.
pub(crate) trait TagRead {
    /// The tag's value after the scaling and float rules, or its error code.
    fn classify(&self) -> Out<'_>;
    fn has_metas(&self) -> bool;
    fn metas(&self) -> Members<'_>;
}

impl TagRead for &Tag {
    #[inline]
    fn classify(&self) -> Out<'_> {
        match &self.reading {
            Reading::Error(code) => Out::Error(*code),
            Reading::Value(v) => classify(&v.view(), self.decimal, self.bias, self.precision),
        }
    }
    #[inline]
    fn has_metas(&self) -> bool {
        !self.metas.is_empty()
    }
    fn metas(&self) -> Members<'_> {
        // Only for tags that have metas: the view is built for them alone.
        self.view().metas
    }
}

impl TagRead for &TagView<'_> {
    #[inline]
    fn classify(&self) -> Out<'_> {
        match &self.reading {
            ReadingView::Error(code) => Out::Error(*code),
            ReadingView::Value(v) => classify(v, self.decimal, self.bias, self.precision),
        }
    }
    #[inline]
    fn has_metas(&self) -> bool {
        !self.metas.is_empty()
    }
    fn metas(&self) -> Members<'_> {
        self.metas.clone()
    }
}

/// The two sources read alike (a `String` field derefs to `&str` as a `&str` one does):
/// one body for both, so the owned and the borrowed readers cannot drift apart.
macro_rules! source {
    ($(impl<$($l:lifetime),*>)? for $snapshot:ty, tag $tag:ty) => {
        impl$(<$($l),*>)? Source for $snapshot {
            type Tag<'s>
                = &'s $tag
            where
                Self: 's;
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
            fn tag(&self, i: usize) -> &$tag {
                &self.tags[i]
            }
        }
    };
}

source!(for Snapshot, tag Tag);
source!(impl<'a> for SnapshotView<'a>, tag TagView<'a>);
