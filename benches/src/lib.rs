//! Benchmarks of dharma (criterion), measured as ratios against the raw signature check
//! and against peer crates in the same run. The benches themselves arrive with the
//! benchmark issue; this crate reserves their place in the workspace.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
