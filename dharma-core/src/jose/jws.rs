//! Compact JWS (RFC 7515): split, decode, read the header, check the signature.
//!
//! Only what is needed to verify is read from the header. `jku`, `x5u`, `jwk` and `x5c`
//! are never used to find a key; a `crit` header is refused because dharma implements no
//! critical extension; `b64: false` (RFC 7797) is refused. `{"alg":"none"}` is not
//! representable, so parsing refuses it.

use std::{borrow::Cow, string::FromUtf8Error};

use super::{alg::Algorithm, b64, jwk::VerifyingKey};
use crate::{
    error::TokenError,
    json::scan::{self, Kind, Raw},
    util::truncate,
};

/// A header this long or shorter is decoded on the stack.
const INLINE_HEADER: usize = 512;
/// Room for the longest signature any supported key makes (RSA with 8192 bits).
const MAX_SIGNATURE: usize = 1024;

/// Where a token's header and signature are decoded: on the stack for ordinary tokens;
/// a header longer than [`INLINE_HEADER`] (an `x5c` chain) goes to the heap.
pub(crate) struct Scratch {
    header: [u8; INLINE_HEADER],
    heap: Vec<u8>,
    signature: [u8; MAX_SIGNATURE],
}

impl Scratch {
    pub(crate) fn new() -> Self {
        Self {
            header: [0; INLINE_HEADER],
            heap: Vec::new(),
            signature: [0; MAX_SIGNATURE],
        }
    }
}

/// A parsed compact JWS whose signature is not checked yet.
#[derive(Debug)]
pub(crate) struct Compact<'a> {
    header_b64: &'a str,
    signing_input: &'a str,
    /// The decoded payload (not yet authenticated): text, or the bytes when they are not
    /// UTF-8 (a JWS may sign any bytes; a JWT's payload is JSON).
    payload: Result<String, Vec<u8>>,
    signature: &'a [u8],
    header: ReadHeader<'a>,
    /// Whether the header was taken from a [`KnownHeader`] rather than read.
    header_known: bool,
}

/// The header members dharma reads, as written.
#[derive(Default)]
struct Header<'a> {
    alg: Option<Raw<'a>>,
    kid: Option<Raw<'a>>,
    typ: Option<Raw<'a>>,
    crit: Option<Raw<'a>>,
    b64: Option<Raw<'a>>,
    zip: bool,
    x5c: Option<Raw<'a>>,
    x5t_s256: Option<Raw<'a>>,
}

/// A token cut at its dots: the header and payload segments, what was signed (both, with
/// the dot between), and the signature segment. The payload segment may still hold a
/// dot; decoding it refuses that.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Split<'a> {
    pub(crate) header: &'a str,
    payload: &'a str,
    pub(crate) signing_input: &'a str,
    pub(crate) signature: &'a str,
}

impl<'a> Split<'a> {
    pub(crate) fn of(token: &'a str) -> Result<Self, TokenError> {
        let (signing_input, signature) = token.rsplit_once('.').ok_or(SEGMENTS)?;
        let (header, payload) = signing_input.split_once('.').ok_or(SEGMENTS)?;
        Ok(Self {
            header,
            payload,
            signing_input,
            signature,
        })
    }
}

const NOT_JSON: TokenError = TokenError::Malformed("payload is not a JSON object");
const SEGMENTS: TokenError = TokenError::Malformed("not three dot-separated segments");

impl<'a> Compact<'a> {
    /// Splits and decodes `token` and reads its header, decoding into `scratch`.
    pub(crate) fn parse(token: &'a str, scratch: &'a mut Scratch) -> Result<Self, TokenError> {
        Self::read(Split::of(token)?, scratch)
    }

    /// Decodes a split token and reads its header, decoding into `scratch`.
    pub(crate) fn read(split: Split<'a>, scratch: &'a mut Scratch) -> Result<Self, TokenError> {
        Self::read_known(split, scratch, None)
    }

    /// [`read`](Self::read), taking the header from `known` when the token's header
    /// segment is the one `known` was read from (byte for byte).
    pub(crate) fn read_known(
        split: Split<'a>,
        scratch: &'a mut Scratch,
        known: Option<&'a KnownHeader>,
    ) -> Result<Self, TokenError> {
        let Split {
            header: header_b64,
            payload: payload_b64,
            signing_input,
            signature: signature_b64,
        } = split;
        // First, so that a token of more than three segments is refused as such: a dot is
        // not base64url.
        let payload =
            String::from_utf8(payload_bytes(payload_b64)?).map_err(FromUtf8Error::into_bytes);
        let Scratch {
            header: inline,
            heap,
            signature: signature_buf,
        } = scratch;
        let known = known.filter(|k| *k.segment == *header_b64);
        let header = match known {
            Some(known) => ReadHeader {
                alg: known.alg,
                kid: known.kid.as_deref().map(Cow::Borrowed),
                typ: known.typ.as_deref().map(Cow::Borrowed),
                x5c: None,
                x5t_s256: None,
            },
            None => read_header(header_b64, inline, heap)?,
        };
        let signature: &'a [u8] = {
            let n = b64::decode_into(signature_b64, signature_buf)
                .ok_or(TokenError::Malformed("signature is not base64url"))?;
            let signature_buf: &'a [u8; MAX_SIGNATURE] = signature_buf;
            signature_buf.get(..n).unwrap_or_default()
        };
        if signature.is_empty() {
            return Err(TokenError::Malformed("empty signature"));
        }
        Ok(Self {
            header_b64,
            signing_input,
            payload,
            signature,
            header,
            header_known: known.is_some(),
        })
    }

    /// The header as a [`KnownHeader`], for a later token with the same header segment;
    /// `None` when it was taken from one already, or has certificates (`x5c`,
    /// `x5t#S256`), which are per token.
    pub(crate) fn known_header(&self) -> Option<KnownHeader> {
        if self.header_known || self.header.x5c.is_some() || self.header.x5t_s256.is_some() {
            return None;
        }
        Some(KnownHeader {
            segment: self.header_b64.into(),
            alg: self.header.alg,
            kid: self.header.kid.as_deref().map(Into::into),
            typ: self.header.typ.as_deref().map(Into::into),
        })
    }

    /// The header's algorithm.
    pub(crate) fn alg(&self) -> Algorithm {
        self.header.alg
    }

    /// The header's key id.
    pub(crate) fn kid(&self) -> Option<&str> {
        self.header.kid.as_deref()
    }

    /// The header's `typ`.
    pub(crate) fn typ(&self) -> Option<&str> {
        self.header.typ.as_deref()
    }

    /// The `x5c` header's strings, `None` when absent, an error when it is not an array of
    /// strings (only the x5c mechanism reads it, and validates what it says).
    pub(crate) fn x5c(&self) -> Option<Result<Vec<Cow<'a, str>>, TokenError>> {
        let raw = self.header.x5c?;
        if raw.kind() != Kind::Array {
            return Some(Err(X5C_SHAPE));
        }
        Some(
            raw.items()
                .map(|item| item.as_str().map(scan::Str::decode).ok_or(X5C_SHAPE))
                .collect(),
        )
    }

    /// The `x5t#S256` header, if it is a string.
    pub(crate) fn x5t_s256(&self) -> Option<Option<Cow<'a, str>>> {
        self.header
            .x5t_s256
            .map(|raw| raw.as_str().map(scan::Str::decode))
    }

    /// The decoded payload (not yet authenticated), if it is UTF-8.
    pub(crate) fn payload(&self) -> Result<&str, TokenError> {
        self.payload.as_deref().map_err(|_| NOT_JSON)
    }

    /// The decoded payload's text, kept once the token is verified (empty when it is not
    /// UTF-8, which [`payload`](Self::payload) refused).
    pub(crate) fn into_payload(self) -> String {
        self.payload.unwrap_or_default()
    }

    /// Checks the signature with `key`, using the header's algorithm only if the key
    /// allows it.
    pub(crate) fn verify(&self, key: &VerifyingKey) -> Result<(), TokenError> {
        key.verify(
            self.header.alg,
            self.signing_input.as_bytes(),
            self.signature,
        )
    }
}

/// What a header says that verification uses.
#[derive(Debug)]
struct ReadHeader<'a> {
    alg: Algorithm,
    kid: Option<Cow<'a, str>>,
    typ: Option<Cow<'a, str>>,
    x5c: Option<Raw<'a>>,
    x5t_s256: Option<Raw<'a>>,
}

/// A header that was read from a token whose signature then checked, kept to read the
/// same header segment of later tokens without decoding it again. Only headers without
/// certificates are kept.
#[derive(Debug)]
pub(crate) struct KnownHeader {
    segment: Box<str>,
    alg: Algorithm,
    kid: Option<Box<str>>,
    typ: Option<Box<str>>,
}

impl KnownHeader {
    /// The header segment (base64url) it was read from.
    pub(crate) fn segment(&self) -> &str {
        &self.segment
    }
}

/// Decodes and reads a header segment, refusing what dharma does not implement.
fn read_header<'a>(
    header_b64: &str,
    inline: &'a mut [u8; INLINE_HEADER],
    heap: &'a mut Vec<u8>,
) -> Result<ReadHeader<'a>, TokenError> {
    let header =
        decode(header_b64, inline, heap).ok_or(TokenError::Malformed("header is not base64url"))?;
    let header = std::str::from_utf8(header)
        .map_err(|_| TokenError::Malformed("header is not a JSON object"))?;
    let mut h = Header::default();
    scan::object(header, |name, value| match name.decode().as_ref() {
        "alg" => h.alg = Some(value),
        "kid" => h.kid = Some(value),
        "typ" => h.typ = Some(value),
        "crit" => h.crit = Some(value),
        "b64" => h.b64 = Some(value),
        "zip" => h.zip = true,
        "x5c" => h.x5c = Some(value),
        "x5t#S256" => h.x5t_s256 = Some(value),
        _ => {}
    })
    .map_err(|_| TokenError::Malformed("header is not a JSON object"))?;
    if let Some(crit) = h.crit {
        let first = crit
            .items()
            .next()
            .and_then(Raw::as_str)
            .map(|s| truncate(&s.decode(), 32))
            .unwrap_or_default();
        return Err(TokenError::CriticalHeader(first));
    }
    if h.b64.is_some_and(|b| b.text() != "true") {
        return Err(TokenError::Malformed(
            "unencoded payload (b64) is not supported",
        ));
    }
    // Compression belongs to JWE (RFC 7516); in a JWS it is a confused or hostile token.
    if h.zip {
        return Err(TokenError::Malformed("zip is not a JWS header"));
    }
    let alg = match h.alg.and_then(Raw::as_str) {
        Some(alg) => {
            let alg = alg.decode();
            Algorithm::from_name(&alg)
                .ok_or_else(|| TokenError::UnsupportedAlgorithm(truncate(&alg, 32)))?
        }
        None => return Err(TokenError::Malformed("header has no \"alg\" string")),
    };
    let text = |member: Option<Raw<'a>>| match member {
        None => Ok(None),
        Some(raw) => raw
            .as_str()
            .map(|s| Some(s.decode()))
            .ok_or(TokenError::Malformed("header member is not a string")),
    };
    let kid = text(h.kid)?;
    let typ = text(h.typ)?;
    Ok(ReadHeader {
        alg,
        kid,
        typ,
        x5c: h.x5c,
        x5t_s256: h.x5t_s256,
    })
}

const X5C_SHAPE: TokenError = TokenError::Malformed("x5c is not an array of base64 certificates");

/// A payload segment's text, if it is base64url of UTF-8.
pub(crate) fn decode_payload(segment: &str) -> Result<String, TokenError> {
    String::from_utf8(payload_bytes(segment)?).map_err(|_| NOT_JSON)
}

/// A payload segment's bytes, if it is base64url; one with a dot in it is a token of more
/// than three segments.
fn payload_bytes(segment: &str) -> Result<Vec<u8>, TokenError> {
    b64::decode(segment).ok_or_else(|| {
        if segment.contains('.') {
            SEGMENTS
        } else {
            TokenError::Malformed("payload is not base64url")
        }
    })
}

/// Decodes base64url into `inline` when it fits, else into `heap`.
fn decode<'a>(encoded: &str, inline: &'a mut [u8], heap: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    if b64::decoded_len(encoded)? <= inline.len() {
        let n = b64::decode_into(encoded, inline)?;
        let inline: &'a [u8] = inline;
        inline.get(..n)
    } else {
        *heap = b64::decode(encoded)?;
        Some(heap.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str) -> String {
        format!("{}.{}.{}", b64(header), b64("{}"), b64("sig"))
    }

    #[test]
    fn structure() {
        for bad in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "a.b.c.d.e",
            "..",
            "e30.e30.",
            "e30.e30.e30=",
        ] {
            assert!(
                matches!(
                    Compact::parse(bad, &mut Scratch::new()),
                    Err(TokenError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
        // Extra segments are named as such, whatever the header says.
        for bad in ["e30.e30.e30.c2ln", "bad!.e30.e30.c2ln", "e30...c2ln"] {
            assert_eq!(
                Compact::parse(bad, &mut Scratch::new()).unwrap_err(),
                SEGMENTS,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn alg_none_in_any_case_is_refused() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            let t = token(&format!(r#"{{"alg":"{alg}"}}"#));
            assert!(
                matches!(
                    Compact::parse(&t, &mut Scratch::new()),
                    Err(TokenError::UnsupportedAlgorithm(_))
                ),
                "{alg}"
            );
        }
    }

    #[test]
    fn crit_and_b64_are_refused() {
        let t = token(r#"{"alg":"ES256","crit":["exp"],"exp":1}"#);
        assert_eq!(
            Compact::parse(&t, &mut Scratch::new()).unwrap_err(),
            TokenError::CriticalHeader("exp".into())
        );
        let t = token(r#"{"alg":"ES256","crit":[]}"#);
        assert!(matches!(
            Compact::parse(&t, &mut Scratch::new()),
            Err(TokenError::CriticalHeader(_))
        ));
        let t = token(r#"{"alg":"ES256","b64":false}"#);
        assert!(matches!(
            Compact::parse(&t, &mut Scratch::new()),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn duplicate_alg_is_refused() {
        let t = token(r#"{"alg":"ES256","alg":"none"}"#);
        assert!(matches!(
            Compact::parse(&t, &mut Scratch::new()),
            Err(TokenError::Malformed(_))
        ));
    }

    /// The issue's reproductions: a JSON array header parsed, invalid UTF-8 in a member
    /// dharma ignores passed, and `zip` was accepted in a JWS.
    #[test]
    fn strict_headers() {
        for bad in [
            r#"["ES256"]"#,
            "{\"alg\":\"ES256\",\"x\":\"\u{0}\"}x",
            r#"{"alg":"ES256","zip":"DEF"}"#,
            r#"{"alg":"ES256","kid":7}"#,
            r#"{"alg":"ES256","typ":["at+jwt"]}"#,
            r#"{"alg":["ES256"]}"#,
            r#"{"alg":"ES256","kid":"a","kid":"b"}"#,
        ] {
            assert!(
                matches!(
                    Compact::parse(&token(bad), &mut Scratch::new()),
                    Err(TokenError::Malformed(_))
                ),
                "{bad}"
            );
        }
        let invalid_utf8 = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(b"{\"alg\":\"ES256\",\"note\":\"\xff\"}"),
            b64("{}"),
            b64("sig")
        );
        assert!(matches!(
            Compact::parse(&invalid_utf8, &mut Scratch::new()),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn header_members_are_read() {
        let t = token(r#"{"alg":"EdDSA","kid":"k","typ":"at+jwt","jku":"http://127.0.0.1:1/"}"#);
        let mut scratch = Scratch::new();
        let c = Compact::parse(&t, &mut scratch).unwrap();
        assert_eq!(c.alg(), Algorithm::EdDsa);
        assert_eq!(c.kid(), Some("k"));
        assert_eq!(c.typ(), Some("at+jwt"));
        assert_eq!(c.payload(), Ok("{}"));
    }

    #[test]
    fn a_known_header_is_used_only_for_its_own_segment() {
        let first = token(r#"{"alg":"ES256","kid":"k1","typ":"at+jwt"}"#);
        let mut scratch = Scratch::new();
        let known = Compact::parse(&first, &mut scratch)
            .unwrap()
            .known_header()
            .unwrap();

        let same = token(r#"{"alg":"ES256","kid":"k1","typ":"at+jwt"}"#);
        let mut scratch = Scratch::new();
        let c = Compact::read_known(Split::of(&same).unwrap(), &mut scratch, Some(&known)).unwrap();
        assert_eq!(
            (c.alg(), c.kid(), c.typ()),
            (Algorithm::Es256, Some("k1"), Some("at+jwt"))
        );
        assert!(c.known_header().is_none(), "offered again");

        // Another segment is read, not answered from `known`.
        let other = token(r#"{"alg":"EdDSA","kid":"k2"}"#);
        let mut scratch = Scratch::new();
        let c =
            Compact::read_known(Split::of(&other).unwrap(), &mut scratch, Some(&known)).unwrap();
        assert_eq!(
            (c.alg(), c.kid(), c.typ()),
            (Algorithm::EdDsa, Some("k2"), None)
        );
        let critical = token(r#"{"alg":"ES256","kid":"k1","crit":["x"],"x":1}"#);
        assert!(matches!(
            Compact::read_known(
                Split::of(&critical).unwrap(),
                &mut Scratch::new(),
                Some(&known)
            ),
            Err(TokenError::CriticalHeader(_))
        ));

        // Headers with certificates are per token and are not kept.
        let x5c = token(r#"{"alg":"ES256","x5c":["MIIB"]}"#);
        let mut scratch = Scratch::new();
        assert!(
            Compact::parse(&x5c, &mut scratch)
                .unwrap()
                .known_header()
                .is_none()
        );
    }
}
