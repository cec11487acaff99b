//! The headers of tokens verified recently, so a cold token whose header segment is one of
//! them skips decoding and reading it: an issuer signs every token with the same few
//! headers (one per key), and the header is a tenth of the work dharma adds to a signature
//! check.
//!
//! A handful of slots, each picked by a hash of the segment and holding the last header
//! verified there. A hit needs the very same segment, byte for byte, so it answers what
//! reading the header would have; only headers of tokens whose signature checked are
//! kept, so callers cannot fill the slots.

use std::sync::Arc;

use arc_swap::{ArcSwapOption, Guard};

use crate::jose::jws::KnownHeader;

const SLOTS: usize = 8;

#[derive(Default)]
pub(super) struct Headers {
    slots: [ArcSwapOption<KnownHeader>; SLOTS],
}

impl Headers {
    /// The kept header for `segment`'s slot, which may be another segment's
    /// ([`Compact::read_known`](crate::jose::jws::Compact::read_known) compares).
    pub(super) fn get(&self, segment: &str) -> Guard<Option<Arc<KnownHeader>>> {
        self.slot(segment).load()
    }

    /// Keeps `header`, replacing whatever its slot held.
    pub(super) fn keep(&self, header: KnownHeader) {
        self.slot(header.segment()).store(Some(Arc::new(header)));
    }

    fn slot(&self, segment: &str) -> &ArcSwapOption<KnownHeader> {
        let hash = segment.bytes().fold(segment.len(), |h, b| {
            h.wrapping_mul(31).wrapping_add(b.into())
        });
        let [first, ..] = &self.slots;
        self.slots.get(hash % SLOTS).unwrap_or(first)
    }
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.slots.iter().filter(|s| s.load().is_some()).count();
        f.debug_struct("Headers").field("kept", &kept).finish()
    }
}
