//! Benchmarks of dharma (criterion), measured as ratios against the raw signature check in
//! the same run: `cargo bench -p dharma-benches --bench verify`. Peer crates, adapter
//! overhead, contention and the report are still to come.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
