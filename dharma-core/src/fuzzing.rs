//! Entry points for dharma's fuzz targets into crate-private parsers (feature `fuzzing`).
//! Not an API.

/// What the strict JSON reader makes of `text`: `None` when it refuses it; for an object,
/// each top-level member's decoded name and JSON text, in order; for any other value, no
/// members.
pub fn json(text: &str) -> Option<Vec<(String, String)>> {
    use crate::json::{JsonError, scan};
    let mut members = Vec::new();
    match scan::object(text, |name, value| {
        members.push((name.decode().into_owned(), value.text().to_owned()));
    }) {
        Ok(()) => Some(members),
        Err(JsonError::NotAnObject) => Some(Vec::new()),
        Err(JsonError::Invalid) => None,
    }
}

/// What the base64url decoder of token segments makes of `text`, into a vector and into
/// a buffer of `room` bytes: `None` when it refuses it.
pub fn base64url(text: &str, room: usize) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let mut buf = vec![0; room];
    let into = crate::jose::b64::decode_into(text, &mut buf)
        .and_then(|n| buf.get(..n).map(<[u8]>::to_vec));
    (crate::jose::b64::decode(text), into)
}

/// The NumericDate the claim rules read from the JSON value `text` (`exp`, `nbf`, `iat`):
/// `None` when they refuse it, or when `text` is not one JSON value.
pub fn numeric_date(text: &str) -> Option<u64> {
    let mut date = None;
    crate::json::scan::object(&format!("{{\"exp\":{text}}}"), |_, value| {
        date = crate::mechanism::token::numeric_date(Some(value), "exp")
            .ok()
            .flatten();
    })
    .ok()?;
    date
}
