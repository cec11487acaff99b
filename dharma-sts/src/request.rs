//! Token requests: the form body of RFC 6749 §4.4 and RFC 8693 §2.1, read strictly.

use std::fmt;

use crate::error::{ErrorCode, OAuthError};

/// The RFC 8693 grant type.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type URI of an OAuth access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The token type URI of a JWT.
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The largest form body read (bytes).
pub const MAX_BODY: usize = 64 * 1024;
const MAX_PARAMETERS: usize = 32;
const MAX_TARGETS: usize = 8;

/// A token type of RFC 8693 §3 that this service reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenType {
    /// `urn:ietf:params:oauth:token-type:access_token`.
    AccessToken,
    /// `urn:ietf:params:oauth:token-type:jwt`.
    Jwt,
}

impl TokenType {
    /// The URI.
    pub fn uri(self) -> &'static str {
        match self {
            Self::AccessToken => ACCESS_TOKEN_TYPE,
            Self::Jwt => JWT_TYPE,
        }
    }

    fn parse(name: &'static str, value: &str) -> Result<Self, OAuthError> {
        match value {
            ACCESS_TOKEN_TYPE => Ok(Self::AccessToken),
            JWT_TYPE => Ok(Self::Jwt),
            _ => Err(OAuthError::request(format!(
                "{name} must be {ACCESS_TOKEN_TYPE} or {JWT_TYPE}"
            ))),
        }
    }
}

/// A token as the request carries it. No `Debug` of its content, no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedToken(pub(crate) String);

impl PresentedToken {
    /// The token.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PresentedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PresentedToken({} bytes)", self.0.len())
    }
}

/// What is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Grant {
    /// A token for the calling client itself (RFC 6749 §4.4).
    ClientCredentials,
    /// A token for the subject of another token (RFC 8693).
    Exchange {
        /// The token whose subject the new token speaks for.
        subject_token: PresentedToken,
        /// Its declared type.
        subject_token_type: TokenType,
        /// The token of the party that acts for the subject, if any.
        actor_token: Option<PresentedToken>,
        /// The type the client asks for (an access token when absent).
        requested_token_type: Option<TokenType>,
    },
}

/// A token request, parsed and checked for form.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRequest {
    /// The grant.
    pub grant: Grant,
    /// The `audience` and `resource` values, in order.
    pub targets: Vec<String>,
    /// The scope tokens asked for (`None` when `scope` is absent or empty).
    pub scope: Option<Vec<String>>,
    /// The `client_id` parameter, if sent.
    pub client_id: Option<String>,
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space, `%XX` a
/// byte; the result must be UTF-8.
fn decode(raw: &[u8]) -> Result<String, OAuthError> {
    let bad =
        || OAuthError::request("the form body is not valid application/x-www-form-urlencoded");
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(bytes.next()), hex(bytes.next())) else {
                    return Err(bad());
                };
                out.push(u8::try_from(hi * 16 + lo).map_err(|_| bad())?);
            }
            _ => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// An RFC 6749 §3.3 scope token.
pub(crate) fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// An absolute URI with no fragment (RFC 8707 §2).
fn is_resource(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !s.contains('#')
        && s.bytes().all(|b| b.is_ascii_graphic())
}

#[derive(Default)]
struct Fields {
    grant_type: Option<String>,
    subject_token: Option<String>,
    subject_token_type: Option<String>,
    actor_token: Option<String>,
    actor_token_type: Option<String>,
    requested_token_type: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    targets: Vec<String>,
}

impl TokenRequest {
    /// Reads a token request from its `Content-Type` and body.
    ///
    /// Strict where RFC 6749 is: the body must be a form; parameters other than
    /// `audience` and `resource` appear at most once; empty values count as absent;
    /// unknown parameters are ignored; client credentials in the body are refused (the
    /// client authenticates with its domain's trust mechanism, and two ways at once are
    /// forbidden). `resource` must be an absolute URI without a fragment (RFC 8707).
    ///
    /// ```
    /// use dharma_sts::{Grant, TokenRequest};
    ///
    /// let req = TokenRequest::parse(
    ///     Some("application/x-www-form-urlencoded"),
    ///     b"grant_type=client_credentials&audience=orders&scope=orders%3Aread",
    /// )?;
    /// assert_eq!(req.grant, Grant::ClientCredentials);
    /// assert_eq!(req.targets, ["orders"]);
    /// assert_eq!(req.scope.as_deref(), Some(&["orders:read".to_owned()][..]));
    /// # Ok::<(), dharma_sts::OAuthError>(())
    /// ```
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, OAuthError> {
        let mut fields = Fields::default();
        read_form(content_type, body, |name, value| fields.set(name, value))?;
        fields.into_request()
    }
}

/// Reads a form body (`application/x-www-form-urlencoded`, at most [`MAX_BODY`] bytes
/// and 32 parameters), handing each decoded parameter to `field`. Client credentials in
/// the body are refused: the client authenticates with its domain's trust mechanism, and
/// RFC 6749 §2.3 forbids two ways at once.
pub(crate) fn read_form(
    content_type: Option<&str>,
    body: &[u8],
    mut field: impl FnMut(&str, String) -> Result<(), OAuthError>,
) -> Result<(), OAuthError> {
    let is_form = content_type.is_some_and(|ct| {
        ct.split(';').next().is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if !is_form {
        return Err(OAuthError::request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    if body.len() > MAX_BODY {
        return Err(OAuthError::request("the body is too large"));
    }
    let mut count = 0;
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        count += 1;
        if count > MAX_PARAMETERS {
            return Err(OAuthError::request("too many parameters"));
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (pair.get(..at), pair.get(at + 1..)),
            None => (Some(pair), None),
        };
        let name = decode(name.unwrap_or_default())?;
        let value = decode(value.unwrap_or_default())?;
        if matches!(
            name.as_str(),
            "client_secret" | "client_assertion" | "client_assertion_type"
        ) {
            return Err(OAuthError::request(
                "client credentials in the body are not accepted: the client authenticates with its domain's trust mechanism",
            ));
        }
        field(&name, value)?;
    }
    Ok(())
}

/// Stores a parameter that may appear once; an empty value counts as absent (RFC 6749
/// §3.1).
pub(crate) fn set_once(
    slot: &mut Option<String>,
    name: &str,
    value: String,
) -> Result<(), OAuthError> {
    if slot.is_some() {
        return Err(OAuthError::request(format!("{name} is repeated")));
    }
    if !value.is_empty() {
        *slot = Some(value);
    }
    Ok(())
}

impl Fields {
    fn set(&mut self, name: &str, value: String) -> Result<(), OAuthError> {
        let slot = match name {
            "grant_type" => &mut self.grant_type,
            "subject_token" => &mut self.subject_token,
            "subject_token_type" => &mut self.subject_token_type,
            "actor_token" => &mut self.actor_token,
            "actor_token_type" => &mut self.actor_token_type,
            "requested_token_type" => &mut self.requested_token_type,
            "scope" => &mut self.scope,
            "client_id" => &mut self.client_id,
            "audience" | "resource" => {
                if name == "resource" && !value.is_empty() && !is_resource(&value) {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidTarget,
                        "resource must be an absolute URI without a fragment",
                    ));
                }
                if !value.is_empty() {
                    if self.targets.len() == MAX_TARGETS {
                        return Err(OAuthError::request("too many audiences and resources"));
                    }
                    self.targets.push(value);
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        set_once(slot, name, value)
    }

    fn into_request(self) -> Result<TokenRequest, OAuthError> {
        let scope = match self.scope {
            None => None,
            Some(s) => {
                let items: Vec<String> = s.split(' ').map(str::to_owned).collect();
                if !items.iter().all(|t| is_scope_token(t)) {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidScope,
                        "scope must be scope tokens separated by single spaces",
                    ));
                }
                Some(items)
            }
        };
        let grant = match self.grant_type.as_deref() {
            None => return Err(OAuthError::request("grant_type is missing")),
            Some("client_credentials") => {
                if self.subject_token.is_some() || self.actor_token.is_some() {
                    return Err(OAuthError::request(
                        "subject and actor tokens belong to the token-exchange grant",
                    ));
                }
                Grant::ClientCredentials
            }
            Some(TOKEN_EXCHANGE) => {
                let subject_token = self
                    .subject_token
                    .ok_or_else(|| OAuthError::request("subject_token is missing"))?;
                let subject_type = self
                    .subject_token_type
                    .ok_or_else(|| OAuthError::request("subject_token_type is missing"))?;
                let subject_token_type = TokenType::parse("subject_token_type", &subject_type)?;
                let actor_token = match (self.actor_token, self.actor_token_type) {
                    (None, None) => None,
                    (Some(token), Some(kind)) => {
                        TokenType::parse("actor_token_type", &kind)?;
                        Some(PresentedToken(token))
                    }
                    (Some(_), None) => {
                        return Err(OAuthError::request(
                            "actor_token_type is required with actor_token",
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(OAuthError::request(
                            "actor_token_type is sent without actor_token",
                        ));
                    }
                };
                let requested_token_type = self
                    .requested_token_type
                    .as_deref()
                    .map(|t| TokenType::parse("requested_token_type", t))
                    .transpose()?;
                Grant::Exchange {
                    subject_token: PresentedToken(subject_token),
                    subject_token_type,
                    actor_token,
                    requested_token_type,
                }
            }
            Some(_) => {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    "grant_type must be client_credentials or token-exchange",
                ));
            }
        };
        Ok(TokenRequest {
            grant,
            targets: self.targets,
            scope,
            client_id: self.client_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded; charset=UTF-8");

    fn parse(body: &str) -> Result<TokenRequest, OAuthError> {
        TokenRequest::parse(FORM, body.as_bytes())
    }

    fn code(body: &str) -> ErrorCode {
        parse(body).unwrap_err().code()
    }

    #[test]
    fn an_exchange_request_reads_whole() {
        let req = parse(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
             &subject_token=a.b.c&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt\
             &actor_token=d.e.f&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token\
             &audience=inner&resource=https%3A%2F%2Fapi.example%2Fx&scope=a+b&unknown=1",
        )
        .unwrap();
        assert_eq!(req.targets, ["inner", "https://api.example/x"]);
        assert_eq!(req.scope, Some(vec!["a".into(), "b".into()]));
        let Grant::Exchange {
            subject_token,
            subject_token_type,
            actor_token,
            requested_token_type,
        } = req.grant
        else {
            panic!("not an exchange");
        };
        assert_eq!(subject_token.secret(), "a.b.c");
        assert_eq!(subject_token_type, TokenType::Jwt);
        assert_eq!(actor_token.unwrap().secret(), "d.e.f");
        assert_eq!(requested_token_type, None);
    }

    #[test]
    fn malformed_requests_are_invalid_requests() {
        for body in [
            "",
            "grant_type=client_credentials&grant_type=client_credentials",
            "grant_type=client_credentials&scope=a&scope=b",
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=x",
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=x&subject_token_type=urn:ietf:params:oauth:token-type:id_token",
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=x&subject_token_type=urn:ietf:params:oauth:token-type:jwt&actor_token=y",
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=x&subject_token_type=urn:ietf:params:oauth:token-type:jwt&actor_token_type=urn:ietf:params:oauth:token-type:jwt",
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=x&subject_token_type=urn:ietf:params:oauth:token-type:jwt&requested_token_type=urn:ietf:params:oauth:token-type:saml2",
            "grant_type=client_credentials&subject_token=x",
            "grant_type=client_credentials&client_secret=s",
            "grant_type=client_credentials&audience=%zz",
            "grant_type=client_credentials&audience=%C3",
            "grant_type=client_credentials&audience=%4",
        ] {
            assert_eq!(code(body), ErrorCode::InvalidRequest, "{body}");
        }
        let many = "audience=a&".repeat(MAX_TARGETS + 1) + "grant_type=client_credentials";
        assert_eq!(code(&many), ErrorCode::InvalidRequest);
        let params = "x=1&".repeat(MAX_PARAMETERS + 1);
        assert_eq!(code(&params), ErrorCode::InvalidRequest);
        assert_eq!(
            TokenRequest::parse(Some("application/json"), b"{}")
                .unwrap_err()
                .code(),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            TokenRequest::parse(None, b"grant_type=client_credentials")
                .unwrap_err()
                .code(),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn other_codes() {
        assert_eq!(code("grant_type=password"), ErrorCode::UnsupportedGrantType);
        assert_eq!(
            code("grant_type=client_credentials&scope=a%20%20b"),
            ErrorCode::InvalidScope
        );
        assert_eq!(
            code("grant_type=client_credentials&scope=a%22"),
            ErrorCode::InvalidScope
        );
        assert_eq!(
            code("grant_type=client_credentials&resource=https%3A%2F%2Fa%2F%23frag"),
            ErrorCode::InvalidTarget
        );
        assert_eq!(
            code("grant_type=client_credentials&resource=relative%2Fpath"),
            ErrorCode::InvalidTarget
        );
    }

    #[test]
    fn empty_values_count_as_absent() {
        let req = parse("grant_type=client_credentials&scope=&audience=&resource=").unwrap();
        assert_eq!(req.scope, None);
        assert!(req.targets.is_empty());
        // An empty value does not hide a repeat of a real one from the check either way.
        assert!(parse("grant_type=client_credentials&scope=&scope=a").is_ok());
    }

    #[test]
    fn tokens_do_not_show_in_debug() {
        let req = parse(
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=SECRET&subject_token_type=urn:ietf:params:oauth:token-type:jwt",
        )
        .unwrap();
        assert!(!format!("{req:?}").contains("SECRET"));
    }
}
