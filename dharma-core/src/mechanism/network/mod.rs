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
//! use dharma_core::mechanism::network::NetworkVerifier;
//!
//! let inside = NetworkVerifier::builder()
//!     .allow("10.20.0.0/16")?
//!     .allow("fd00::/8")?
//!     .allow_loopback()
//!     .trusted_proxy("10.0.0.5")?
//!     .build();
//! # let _ = inside;
//! # Ok::<(), dharma_core::mechanism::network::NetworkError>(())
//! ```

pub(crate) mod settings;

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

use http::HeaderMap;
use serde_json::json;

use crate::{
    context::{Claims, Identity, IdentityKind},
    error::{ForbiddenReason, MalformedRequest, Rejection},
    mechanism::{Authenticated, Verifier},
    request::RequestView,
    util::{BoxFuture, truncate},
};

/// A network that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid network {0:?}: use an address or address/prefix")]
pub struct NetworkError(String);

/// Parses a network (`10.0.0.0/8`, `fd00::/8`, or one address) with `ipnet`, host bits
/// cleared. An IPv4-mapped IPv6 network (`::ffff:10.20.0.0/112`) is the IPv4 network it
/// maps (`10.20.0.0/16`), since client addresses are compared in their IPv4 form; one
/// whose prefix reaches into the mapping's own bits (below `/96`) is refused, since it
/// would name IPv4 and IPv6 addresses at once.
fn parse_network(s: &str) -> Result<IpNet, NetworkError> {
    let err = || NetworkError(truncate(s, 64));
    let net = match s.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => IpNet::from(s.parse::<IpAddr>().map_err(|_| err())?),
    };
    if let IpNet::V6(v6) = net
        && let Some(v4) = v6.addr().to_ipv4_mapped()
    {
        let prefix = v6.prefix_len().checked_sub(96).ok_or_else(err)?;
        return Ipv4Net::new(v4, prefix)
            .map(|n| IpNet::V4(n.trunc()))
            .map_err(|_| err());
    }
    Ok(net.trunc())
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are compared as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn contains(net: &IpNet, ip: IpAddr) -> bool {
    net.contains(&canonical(ip))
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
        self.allow.push(parse_network(network)?);
        Ok(self)
    }
    /// Trusts clients on the loopback interface (`127.0.0.0/8`, `::1`).
    pub fn allow_loopback(mut self) -> Self {
        self.loopback = true;
        self
    }
    /// Trusts the forwarding headers of proxies in this network (repeatable).
    pub fn trusted_proxy(mut self, network: &str) -> Result<Self, NetworkError> {
        self.proxies.push(parse_network(network)?);
        Ok(self)
    }
    /// Finishes the verifier.
    pub fn build(self) -> NetworkVerifier {
        NetworkVerifier {
            allow: self.allow,
            loopback: self.loopback,
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
    proxies: Vec<IpNet>,
    header: ForwardedHeader,
}

impl NetworkVerifier {
    /// Starts configuring.
    pub fn builder() -> NetworkVerifierBuilder {
        NetworkVerifierBuilder::default()
    }

    fn is_proxy(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|p| contains(p, ip))
    }

    fn is_allowed(&self, ip: IpAddr) -> bool {
        (self.loopback && canonical(ip).is_loopback()) || self.allow.iter().any(|n| contains(n, ip))
    }

    /// The client address: the peer, or the hops trusted proxies appended. `None` when
    /// every address on the way is a trusted proxy (a proxy that sent no forwarding
    /// header, or only proxies' hops): the client is unknown, and never the proxy itself.
    pub fn client_address(
        &self,
        peer: IpAddr,
        headers: &HeaderMap,
    ) -> Result<Option<IpAddr>, MalformedRequest> {
        let mut client = peer;
        if !self.is_proxy(client) {
            return Ok(Some(client));
        }
        let hops = forwarded_hops(headers, self.header);
        for hop in hops.iter().rev() {
            client =
                parse_node(hop).ok_or_else(|| MalformedRequest::Forwarded(truncate(hop, 64)))?;
            if !self.is_proxy(client) {
                return Ok(Some(client));
            }
        }
        Ok(None)
    }

    fn check(&self, request: &RequestView<'_>) -> Result<Authenticated, Rejection> {
        let peer = request.peer().ok_or(ForbiddenReason::UnknownPeer)?;
        let client = self
            .client_address(peer.ip(), request.headers())?
            .ok_or(ForbiddenReason::NoForwardedClient)?;
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

    fn has(net: &str, ip: &str) -> bool {
        contains(&parse_network(net).unwrap(), ip.parse().unwrap())
    }

    #[test]
    fn networks() {
        assert!(has("10.0.0.0/8", "10.255.0.1"));
        assert!(!has("10.0.0.0/8", "11.0.0.1"));
        assert!(has("10.0.0.0/8", "::ffff:10.1.1.1"));
        assert!(has("0.0.0.0/0", "8.8.8.8"));
        assert!(has("fd00::/8", "fd12::1"));
        assert!(!has("fd00::/8", "fe80::1"));
        assert!(has("192.168.1.7", "192.168.1.7"));
        assert!(!has("192.168.1.7", "192.168.1.8"));
        assert!(!has("10.0.0.0/8", "fd00::1"));
        assert!(has("10.1.2.3/8", "10.200.0.1"), "host bits are cleared");
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "x",
            "10.0.0.0/",
            "::ffff:0:0/95",
        ] {
            assert!(parse_network(bad).is_err(), "{bad}");
        }
    }

    /// The issue's reproduction: an IPv4-mapped network panicked in debug builds and
    /// matched every IPv4 address in release builds.
    #[test]
    fn ipv4_mapped_networks_are_their_ipv4_networks() {
        assert_eq!(
            parse_network("::ffff:10.20.0.0/112").unwrap(),
            parse_network("10.20.0.0/16").unwrap()
        );
        assert!(has("::ffff:10.20.0.0/112", "10.20.3.4"));
        assert!(has("::ffff:10.20.0.0/112", "::ffff:10.20.3.4"));
        assert!(!has("::ffff:10.20.0.0/112", "10.21.0.1"));
        assert!(!has("::ffff:10.20.0.0/112", "203.0.113.9"));
        assert!(has("::ffff:10.0.0.5", "10.0.0.5"));
        assert!(!has("::ffff:10.0.0.5", "10.0.0.6"));
        // A trusted proxy written in its mapped form is that proxy, and no other address.
        let v = NetworkVerifier::builder()
            .allow("::ffff:10.20.0.0/112")
            .unwrap()
            .trusted_proxy("::ffff:10.0.0.5")
            .unwrap()
            .build();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let spoof = headers(&[("x-forwarded-for", "10.20.0.1")]);
        assert_eq!(
            v.client_address(ip("203.0.113.9"), &spoof).unwrap(),
            Some(ip("203.0.113.9"))
        );
        assert!(!v.is_allowed(ip("203.0.113.9")));
        assert_eq!(
            v.client_address(ip("10.0.0.5"), &spoof).unwrap(),
            Some(ip("10.20.0.1"))
        );
    }

    #[test]
    fn a_proxy_without_a_forwarding_header_is_not_the_client() {
        let v = NetworkVerifier::builder()
            .allow("10.0.0.0/8")
            .unwrap()
            .trusted_proxy("10.0.0.5")
            .unwrap()
            .build();
        let none = HeaderMap::new();
        let view = RequestView::new(&http::Method::GET, "/", &none)
            .with_peer("10.0.0.5:4000".parse().unwrap());
        assert_eq!(
            v.check(&view).unwrap_err().code(),
            "forwarded_client_unknown"
        );
        let only_proxies = headers(&[("x-forwarded-for", "10.0.0.5")]);
        let view = RequestView::new(&http::Method::GET, "/", &only_proxies)
            .with_peer("10.0.0.5:4000".parse().unwrap());
        assert_eq!(
            v.check(&view).unwrap_err().code(),
            "forwarded_client_unknown"
        );
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
    fn unknown_peers() {
        let headers = HeaderMap::new();
        let view = RequestView::new(&http::Method::GET, "/", &headers);
        let tcp_only = NetworkVerifier::builder().allow_loopback().build();
        // No peer at all (an adapter that cannot tell): refused, never assumed inside.
        assert_eq!(tcp_only.check(&view).unwrap_err().code(), "unknown_peer");
        let local = view.with_peer("127.0.0.1:9".parse().unwrap());
        assert!(tcp_only.check(&local).is_ok());
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
            Some(ip("203.0.113.9"))
        );
        // From a trusted proxy, its hop counts.
        assert_eq!(
            v.client_address(ip("10.0.0.5"), &spoof).unwrap(),
            Some(ip("10.20.0.1"))
        );
        // The client prepended a fake inside address; only the proxies' hops count.
        let chain = headers(&[("x-forwarded-for", "10.20.0.1, 203.0.113.9, 10.0.0.6")]);
        assert_eq!(
            v.client_address(ip("10.0.0.5"), &chain).unwrap(),
            Some(ip("203.0.113.9"))
        );
        // Several header lines are one list.
        let lines = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "10.0.0.6"),
        ]);
        assert_eq!(
            v.client_address(ip("10.0.0.5"), &lines).unwrap(),
            Some(ip("203.0.113.9"))
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
            Some(ip("1.1.1.1"))
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
            Some(ip("10.20.0.3"))
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
