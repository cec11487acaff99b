//! Certificate authorities, intermediates and leaves made at run time with rcgen.

use base64::{Engine, engine::general_purpose::STANDARD};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, date_time_ymd,
};
use rustls_pki_types::CertificateDer;

use crate::TestKey;

/// A CA (root or intermediate) that can issue certificates.
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    cert: CertificateDer<'static>,
    /// Intermediates between this CA and the root, this one first (empty for a root).
    chain: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ca({} intermediates)", self.chain.len())
    }
}

fn ca_params(name: &str, pathlen: Option<u8>) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(pathlen.map_or(
        BasicConstraints::Unconstrained,
        BasicConstraints::Constrained,
    ));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = date_time_ymd(2020, 1, 1);
    p.not_after = date_time_ymd(2099, 1, 1);
    p
}

impl Ca {
    /// A self-signed root.
    pub fn root(name: &str) -> Self {
        Self::self_signed(ca_params(name, None))
    }

    fn self_signed(params: CertificateParams) -> Self {
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap().der().clone();
        Self {
            params,
            key,
            cert,
            chain: Vec::new(),
        }
    }

    /// A root whose DNS names are constrained to `permitted` and its subdomains.
    pub fn root_constrained(name: &str, permitted: &str) -> Self {
        let mut params = ca_params(name, None);
        params.name_constraints = Some(rcgen::NameConstraints {
            permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName(permitted.to_owned())],
            excluded_subtrees: Vec::new(),
        });
        Self::self_signed(params)
    }

    /// An intermediate CA signed by this one, with an optional path-length constraint.
    pub fn intermediate(&self, name: &str, pathlen: Option<u8>) -> Self {
        let params = ca_params(name, pathlen);
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap().der().clone();
        let mut chain = vec![cert.clone()];
        chain.extend(self.chain.iter().cloned());
        Self {
            params,
            key,
            cert,
            chain,
        }
    }

    /// This CA's certificate.
    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.clone()
    }

    /// This CA's certificate as PEM.
    pub fn pem(&self) -> String {
        pem("CERTIFICATE", &self.cert)
    }

    /// Issues a leaf.
    pub fn issue(&self, leaf: &Leaf) -> Issued {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        if let Some(cn) = &leaf.cn {
            dn.push(DnType::CommonName, cn.as_str());
        }
        p.distinguished_name = dn;
        for uri in &leaf.uris {
            p.subject_alt_names
                .push(SanType::URI(uri.as_str().try_into().unwrap()));
        }
        for dns in &leaf.dns {
            p.subject_alt_names
                .push(SanType::DnsName(dns.as_str().try_into().unwrap()));
        }
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = leaf.eku.clone();
        p.not_before = date_time_ymd(leaf.not_before.0, leaf.not_before.1, leaf.not_before.2);
        p.not_after = date_time_ymd(leaf.not_after.0, leaf.not_after.1, leaf.not_after.2);
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = p.signed_by(&key, &issuer).unwrap().der().clone();
        let mut chain = vec![cert.clone()];
        chain.extend(self.chain.iter().cloned());
        Issued { cert, key, chain }
    }
}

/// What a leaf certificate says.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// URI SANs (SPIFFE IDs).
    pub uris: Vec<String>,
    /// DNS SANs.
    pub dns: Vec<String>,
    /// Subject CN.
    pub cn: Option<String>,
    /// Extended key usages.
    pub eku: Vec<ExtendedKeyUsagePurpose>,
    /// Not before (year, month, day).
    pub not_before: (i32, u8, u8),
    /// Not after (year, month, day).
    pub not_after: (i32, u8, u8),
}

impl Leaf {
    /// A client certificate for a SPIFFE ID, valid 2020–2099.
    pub fn spiffe(id: &str) -> Self {
        Self {
            uris: vec![id.to_owned()],
            dns: Vec::new(),
            cn: None,
            eku: vec![ExtendedKeyUsagePurpose::ClientAuth],
            not_before: (2020, 1, 1),
            not_after: (2099, 1, 1),
        }
    }
    /// A client certificate with a DNS name and CN.
    pub fn dns(name: &str) -> Self {
        Self {
            uris: Vec::new(),
            dns: vec![name.to_owned()],
            cn: Some(name.to_owned()),
            ..Self::spiffe("")
        }
    }
    /// A client certificate that names itself only in its subject CN (no SAN).
    pub fn cn_only(cn: &str) -> Self {
        Self {
            uris: Vec::new(),
            dns: Vec::new(),
            cn: Some(cn.to_owned()),
            ..Self::spiffe("")
        }
    }
    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server() -> Self {
        Self {
            uris: Vec::new(),
            dns: vec!["localhost".into()],
            cn: Some("localhost".into()),
            eku: vec![ExtendedKeyUsagePurpose::ServerAuth],
            ..Self::spiffe("")
        }
    }
    /// With these validity dates.
    pub fn valid(mut self, from: (i32, u8, u8), to: (i32, u8, u8)) -> Self {
        self.not_before = from;
        self.not_after = to;
        self
    }
    /// With these extended key usages.
    pub fn eku(mut self, eku: Vec<ExtendedKeyUsagePurpose>) -> Self {
        self.eku = eku;
        self
    }
}

/// An issued leaf with its key and chain.
pub struct Issued {
    /// The leaf.
    pub cert: CertificateDer<'static>,
    /// Its key (ECDSA P-256).
    pub key: KeyPair,
    /// Leaf first, then the intermediates up to (not including) the root.
    pub chain: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Issued({} certificates)", self.chain.len())
    }
}

impl Issued {
    /// The chain as an `x5c` header value (standard base64 DER, leaf first).
    pub fn x5c(&self) -> Vec<String> {
        self.chain.iter().map(|c| STANDARD.encode(c)).collect()
    }
    /// A JWS signer with the leaf's key.
    pub fn signer(&self, kid: &str) -> TestKey {
        TestKey::es256_from_pkcs8(&self.key.serialize_der(), kid)
    }
    /// The chain as PEM.
    pub fn chain_pem(&self) -> String {
        self.chain.iter().map(|c| pem("CERTIFICATE", c)).collect()
    }
    /// The key as PEM (PKCS#8).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
