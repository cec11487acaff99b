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
        // Eight bytes at a time: the slot only spreads an issuer's few headers.
        let words = segment.as_bytes().chunks(8).map(|chunk| {
            let mut word = [0; 8];
            word.iter_mut().zip(chunk).for_each(|(w, b)| *w = *b);
            u64::from_le_bytes(word)
        });
        let hash = words.fold(segment.len() as u64, |h, w| {
            (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        });
        let hash = usize::from((hash >> 56) as u8);
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
