//! The signature algorithms dharma verifies, and nothing else.
//!
//! There is no `none` and no HMAC: with public key sets, a symmetric algorithm could only
//! ever be a confusion attack, so it is not representable.
//!
//! ```
//! use dharma_core::mechanism::jwt::Algorithm;
//!
//! assert_eq!(Algorithm::from_name("ES256"), Some(Algorithm::Es256));
//! assert_eq!(Algorithm::from_name("none"), None);
//! assert_eq!(Algorithm::from_name("HS256"), None);
//! ```

use std::fmt;

/// A JWS signature algorithm (RFC 7518, RFC 8037) that dharma can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// Ed25519.
    EdDsa,
}

/// The kind of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 9] = [
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
        Self::Es256,
        Self::Es384,
        Self::EdDsa,
    ];

    /// Parses the JWS `alg` name, case-sensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
        }
    }

    pub(crate) fn family(self) -> Family {
        match self {
            Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 | Self::Ps384 | Self::Ps512 => {
                Family::Rsa
            }
            Self::Es256 => Family::P256,
            Self::Es384 => Family::P384,
            Self::EdDsa => Family::Ed25519,
        }
    }

    pub(crate) fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of algorithms, as a bit set.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct AlgorithmSet(u16);

impl AlgorithmSet {
    /// Every supported algorithm.
    pub fn all() -> Self {
        Self::ALL_BITS
    }
    const ALL_BITS: Self = Self((1 << Algorithm::ALL.len()) - 1);

    /// No algorithm.
    pub fn empty() -> Self {
        Self(0)
    }

    /// Whether `alg` is in the set.
    pub fn contains(self, alg: Algorithm) -> bool {
        self.0 & alg.bit() != 0
    }

    /// The set with `alg` added.
    #[must_use]
    pub fn with(self, alg: Algorithm) -> Self {
        Self(self.0 | alg.bit())
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn of_family(family: Family) -> Self {
        Algorithm::ALL
            .into_iter()
            .filter(|a| a.family() == family)
            .fold(Self::empty(), Self::with)
    }

    /// The algorithms in the set.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(move |a| self.contains(*a))
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        iter.into_iter().fold(Self::empty(), Self::with)
    }
}

impl fmt::Debug for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Algorithm::name))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
        }
        for bad in [
            "none", "None", "NONE", "nOnE", "rs256", "HS256", "ES512", "ES256K", "",
        ] {
            assert_eq!(Algorithm::from_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn sets() {
        let rsa = AlgorithmSet::of_family(Family::Rsa);
        assert_eq!(rsa.iter().count(), 6);
        assert!(!rsa.contains(Algorithm::Es256));
        assert_eq!(AlgorithmSet::all().iter().count(), 9);
    }
}
