//! Network isolation: trust a request by where it comes from.
//!
//! The client address is the transport peer, unless the peer is a configured trusted
//! proxy: then the hops that trusted proxies appended to the configured header
//! (`X-Forwarded-For` by default, or `Forwarded`, RFC 7239) are walked from the right, and
//! the first address that is not a trusted proxy is the client. The header is ignored from
//! anyone else, and the other header is never read, so a client cannot claim an inside
//! address by writing one.
//!
//! ```
//! use dharma_core::network::NetworkVerifier;
//!
//! let inside = NetworkVerifier::builder()
//!     .allow("10.20.0.0/16")?
//!     .allow("fd00::/8")?
//!     .allow_loopback()
//!     .trusted_proxy("10.0.0.5")?
//!     .build();
//! # let _ = inside;
//! # Ok::<(), dharma_core::network::NetworkError>(())
//! ```

use std::{fmt, net::IpAddr, str::FromStr};

use http::HeaderMap;
use serde_json::json;

use crate::{
    context::{Claims, Identity, IdentityKind},
    reject::{ForbiddenReason, MalformedRequest, Rejection},
    request::RequestView,
    util::{BoxFuture, truncate},
    verifier::{Authenticated, Verifier},
};

/// A network that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid network {0:?}: use an address or address/prefix")]
pub struct NetworkError(String);

/// An IP network (`10.0.0.0/8`, `fd00::/8`, or one address).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for IpNet {
    type Err = NetworkError;
    fn from_str(s: &str) -> Result<Self, NetworkError> {
        let err = || NetworkError(truncate(s, 64));
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (
                a.parse::<IpAddr>().map_err(|_| err())?,
                Some(p.parse::<u8>().map_err(|_| err())?),
            ),
            None => (s.parse::<IpAddr>().map_err(|_| err())?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(err());
        }
        Ok(Self { addr, prefix })
    }
}

impl fmt::Debug for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are compared as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl IpNet {
    /// Whether `ip` is in the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |a: u128, width: u32| {
            let shift = width - u32::from(self.prefix);
            if shift >= width { 0 } else { a >> shift }
        };
        match (canonical(self.addr), canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                bits(u128::from(u32::from(n)), 32) == bits(u128::from(u32::from(a)), 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => bits(u128::from(n), 128) == bits(u128::from(a), 128),
            _ => false,
        }
    }
}

/// Which header the trusted proxies append the client address to. Only that header is
/// read: a client can send the other one, and a proxy that does not write it passes it on
/// untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (the default).
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239), its `for` parameters.
    Forwarded,
}

/// Builds a [`NetworkVerifier`].
#[derive(Debug, Default)]
#[must_use]
pub struct NetworkVerifierBuilder {
    allow: Vec<IpNet>,
    loopback: bool,
    unix: bool,
    proxies: Vec<IpNet>,
    header: ForwardedHeader,
}

impl NetworkVerifierBuilder {
    /// The header the trusted proxies write (default `X-Forwarded-For`).
    pub fn forwarded_header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }
    /// Trusts clients in this network (repeatable).
    pub fn allow(mut self, network: &str) -> Result<Self, NetworkError> {
        self.allow.push(network.parse()?);
        Ok(self)
    }
    /// Trusts clients on the loopback interface (`127.0.0.0/8`, `::1`).
    pub fn allow_loopback(mut self) -> Self {
        self.loopback = true;
        self
    }
    /// Trusts peers on a Unix-domain socket.
    pub fn allow_unix(mut self) -> Self {
        self.unix = true;
        self
    }
    /// Trusts the forwarding headers of proxies in this network (repeatable).
    pub fn trusted_proxy(mut self, network: &str) -> Result<Self, NetworkError> {
        self.proxies.push(network.parse()?);
        Ok(self)
    }
    /// Finishes the verifier.
    pub fn build(self) -> NetworkVerifier {
        NetworkVerifier {
            allow: self.allow,
            loopback: self.loopback,
            unix: self.unix,
            proxies: self.proxies,
            header: self.header,
        }
    }
}

/// Trusts requests from allowed networks. The identity is the client address, as a
/// workload authenticated by its position in the network.
#[derive(Debug, Clone)]
pub struct NetworkVerifier {
    allow: Vec<IpNet>,
    loopback: bool,
    unix: bool,
    proxies: Vec<IpNet>,
    header: ForwardedHeader,
}

impl NetworkVerifier {
    /// Starts configuring.
    pub fn builder() -> NetworkVerifierBuilder {
        NetworkVerifierBuilder::default()
    }

    fn is_proxy(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|p| p.contains(ip))
    }

    fn is_allowed(&self, ip: IpAddr) -> bool {
        (self.loopback && canonical(ip).is_loopback()) || self.allow.iter().any(|n| n.contains(ip))
    }

    /// The client address: the peer, or the hops trusted proxies appended.
    pub fn client_address(
        &self,
        peer: IpAddr,
        headers: &HeaderMap,
    ) -> Result<IpAddr, MalformedRequest> {
        let mut client = peer;
        if !self.is_proxy(client) {
            return Ok(client);
        }
        let hops = forwarded_hops(headers, self.header);
        for hop in hops.iter().rev() {
            if !self.is_proxy(client) {
                break;
            }
            client =
                parse_node(hop).ok_or_else(|| MalformedRequest::Forwarded(truncate(hop, 64)))?;
        }
        Ok(client)
    }

    fn check(&self, request: &RequestView<'_>) -> Result<Authenticated, Rejection> {
        if request.is_unix_peer() {
            return if self.unix {
                Ok(Authenticated::new(vec![Identity::new(
                    IdentityKind::Workload,
                    "unix",
                )]))
            } else {
                Err(ForbiddenReason::UntrustedNetwork("unix".into()).into())
            };
        }
        let peer = request.peer().ok_or(ForbiddenReason::UnknownPeer)?;
        let client = self.client_address(peer.ip(), request.headers())?;
        if !self.is_allowed(client) {
            return Err(ForbiddenReason::UntrustedNetwork(client.to_string()).into());
        }
        let mut claims = serde_json::Map::new();
        claims.insert("ip".into(), json!(client.to_string()));
        claims.insert("peer".into(), json!(peer.ip().to_string()));
        Ok(Authenticated::new(vec![
            Identity::new(IdentityKind::Workload, client.to_string())
                .with_claims(Claims::new(claims)),
        ]))
    }
}

impl Verifier for NetworkVerifier {
    fn verify<'a>(
        &'a self,
        request: &'a RequestView<'a>,
    ) -> BoxFuture<'a, Result<Authenticated, Rejection>> {
        let result = self.check(request);
        Box::pin(async move { result })
    }
}

/// The `for` hops of the configured forwarding header, left to right.
fn forwarded_hops(headers: &HeaderMap, header: ForwardedHeader) -> Vec<String> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .flat_map(|v| {
                v.to_str()
                    .unwrap_or("\u{0}")
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    match header {
        ForwardedHeader::XForwardedFor => values("x-forwarded-for"),
        ForwardedHeader::Forwarded => values("forwarded")
            .iter()
            .map(|element| {
                element
                    .split(';')
                    .find_map(|pair| {
                        let (k, v) = pair.trim().split_once('=')?;
                        k.eq_ignore_ascii_case("for")
                            .then(|| v.trim_matches('"').to_owned())
                    })
                    .unwrap_or_default()
            })
            .collect(),
    }
}

/// An address as a forwarding header writes it: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`,
/// `[2001:db8::1]:443`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    node.rsplit_once(':')
        .and_then(|(ip, port)| port.parse::<u16>().ok().and(ip.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn networks() {
        assert!(net("10.0.0.0/8").contains("10.255.0.1".parse().unwrap()));
        assert!(!net("10.0.0.0/8").contains("11.0.0.1".parse().unwrap()));
        assert!(net("10.0.0.0/8").contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(net("0.0.0.0/0").contains("8.8.8.8".parse().unwrap()));
        assert!(net("fd00::/8").contains("fd12::1".parse().unwrap()));
        assert!(!net("fd00::/8").contains("fe80::1".parse().unwrap()));
        assert!(net("192.168.1.7").contains("192.168.1.7".parse().unwrap()));
        assert!(!net("192.168.1.7").contains("192.168.1.8".parse().unwrap()));
        assert!(!net("10.0.0.0/8").contains("fd00::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "10.0.0/8", "x", "10.0.0.0/"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn nodes() {
        for (s, ip) in [
            ("1.2.3.4", "1.2.3.4"),
            ("1.2.3.4:80", "1.2.3.4"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
        ] {
            assert_eq!(parse_node(s), Some(ip.parse().unwrap()), "{s}");
        }
        for bad in ["unknown", "_hidden", "", "1.2.3.4:x"] {
            assert_eq!(parse_node(bad), None, "{bad}");
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn unix_and_unknown_peers() {
        let headers = HeaderMap::new();
        let view = RequestView::new(&http::Method::GET, "/", &headers);
        let unix = NetworkVerifier::builder().allow_unix().build();
        let tcp_only = NetworkVerifier::builder().allow_loopback().build();
        assert_eq!(
            unix.check(&view.with_unix_peer()).unwrap().identities()[0].subject(),
            "unix"
        );
        assert_eq!(
            tcp_only.check(&view.with_unix_peer()).unwrap_err().code(),
            "untrusted_network"
        );
        // No peer at all (an adapter that cannot tell): refused, never assumed inside.
        assert_eq!(tcp_only.check(&view).unwrap_err().code(), "unknown_peer");
        let local = view.with_peer("127.0.0.1:9".parse().unwrap());
        assert!(tcp_only.check(&local).is_ok());
        assert!(unix.check(&local).is_err());
    }

    #[test]
    fn client_address_follows_only_trusted_proxies() {
        let v = NetworkVerifier::builder()
            .allow("10.20.0.0/16")
            .unwrap()
            .trusted_proxy("10.0.0.5")
            .unwrap()
            .trusted_proxy("10.0.0.6")
            .unwrap()
            .build();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let spoof = headers(&[("x-forwarded-for", "10.20.0.1")]);
        // From an untrusted peer, the header is ignored.
        assert_eq!(
            v.client_address(ip("203.0.113.9"), &spoof).unwrap(),
            ip("203.0.113.9")
        );
        // From a trusted proxy, its hop counts.
        assert_eq!(
            v.client_address(ip("10.0.0.5"), &spoof).unwrap(),
            ip("10.20.0.1")
        );
        // The client prepended a fake inside address; only the proxies' hops count.
        let chain = headers(&[("x-forwarded-for", "10.20.0.1, 203.0.113.9, 10.0.0.6")]);
        assert_eq!(
            v.client_address(ip("10.0.0.5"), &chain).unwrap(),
            ip("203.0.113.9")
        );
        // Several header lines are one list.
        let lines = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "10.0.0.6"),
        ]);
        assert_eq!(
            v.client_address(ip("10.0.0.5"), &lines).unwrap(),
            ip("203.0.113.9")
        );
        // The header the proxies do not write is never read: a client-written Forwarded
        // cannot override what the proxy appended to X-Forwarded-For.
        let fwd = headers(&[
            (
                "forwarded",
                "for=10.20.0.3;proto=https, for=\"[::ffff:10.0.0.6]:8443\"",
            ),
            ("x-forwarded-for", "1.1.1.1"),
        ]);
        assert_eq!(
            v.client_address(ip("10.0.0.5"), &fwd).unwrap(),
            ip("1.1.1.1")
        );
        // A verifier for proxies that write Forwarded reads only that.
        let rfc7239 = NetworkVerifier::builder()
            .trusted_proxy("10.0.0.5")
            .unwrap()
            .trusted_proxy("10.0.0.6")
            .unwrap()
            .forwarded_header(ForwardedHeader::Forwarded)
            .build();
        assert_eq!(
            rfc7239.client_address(ip("10.0.0.5"), &fwd).unwrap(),
            ip("10.20.0.3")
        );
        // A garbage hop from a trusted proxy is a malformed request.
        let bad = headers(&[("forwarded", "for=unknown")]);
        assert!(matches!(
            rfc7239.client_address(ip("10.0.0.5"), &bad),
            Err(MalformedRequest::Forwarded(_))
        ));
        let bad = headers(&[("x-forwarded-for", "unknown")]);
        assert!(matches!(
            v.client_address(ip("10.0.0.5"), &bad),
            Err(MalformedRequest::Forwarded(_))
        ));
    }
}
