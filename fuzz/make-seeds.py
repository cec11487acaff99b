#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/seeds/<target>/) from the test vectors in
dharma-core/tests/data/vectors and from a throwaway PKI made here: an organisation root,
an issuing CA and a workload leaf, and a P-256 key whose public JWK the harness trusts.

Run once when the harnesses change; the output is committed, so CI needs only bash.
Needs the `cryptography` package."""
import base64, datetime, hashlib, json, os, pathlib, shutil, struct, time
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

HERE = pathlib.Path(__file__).resolve().parent
VECTORS = HERE.parent / "dharma-core/tests/data/vectors"
SEEDS = HERE / "seeds"

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def write(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())

def es256(key, header, claims):
    h = b64(json.dumps(header, separators=(",", ":")).encode())
    p = b64(json.dumps(claims, separators=(",", ":")).encode())
    der = key.sign(f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(der)
    return f"{h}.{p}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

def jwk_of(key, kid):
    n = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
            "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}

if SEEDS.exists():
    shutil.rmtree(SEEDS)

# JWS: the vectors, and tokens signed by the key the harness trusts.
key = ec.generate_private_key(ec.SECP256R1())
(HERE / "data/issuer.jwk.json").write_text(json.dumps(jwk_of(key, "fuzz"), indent=2) + "\n")
wp = json.loads((VECTORS / "wycheproof/json_web_signature_test.json").read_text())
n = 0
for group in wp["testGroups"]:
    for t in group["tests"]:
        if isinstance(t.get("jws"), str):
            write("jws", f"wycheproof-{n}", t["jws"]); n += 1
for f in sorted((VECTORS / "rfc7520/jws").glob("*.json")):
    write("jws", f"rfc7520-{f.stem}", json.loads(f.read_text())["output"]["compact"])
now = 2_000_000_000
base = {"iss": "https://issuer.example", "aud": "api", "sub": "alice", "client_id": "app",
        "iat": now - 10, "exp": now + 600, "jti": "j1", "scope": "a b"}
variants = {
    "valid": base,
    "scp": dict(base, scp=["a"]),
    "cnf": dict(base, cnf={"x5t#S256": "abc"}),
    "aud-list": dict(base, aud=["x", "api"]),
    "nested": dict(base, act={"sub": "svc", "act": {"sub": "svc2"}}),
    "tenant": dict(base, iss="https://login.example/acme/v2.0"),
}
for name, claims in variants.items():
    write("jws", f"signed-{name}", es256(key, {"alg": "ES256", "kid": "fuzz", "typ": "at+jwt"}, claims))

# JWK and JWK sets.
for f in sorted((VECTORS / "rfc7520/jwk").glob("*.json")):
    write("jwk", f"rfc7520-{f.stem}", f.read_text())
wk = json.loads((VECTORS / "wycheproof/json_web_key_test.json").read_text())
n = 0
def walk(v):
    global n
    if isinstance(v, dict):
        if "kty" in v:
            write("jwk", f"wycheproof-{n}", json.dumps(v)); n += 1
        for x in v.values():
            walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)
walk(wk)
write("jwk", "set", json.dumps({"keys": [jwk_of(key, "a"), jwk_of(ec.generate_private_key(ec.SECP256R1()), "b")]}))
write("jwk", "okp", json.dumps({"kty": "OKP", "crv": "Ed25519", "x": b64(bytes(range(32)))}))

# Cache-Control values.
for i, v in enumerate(["max-age=600", "public, max-age=\"60\"", "no-store", "max-age=600, no-cache", "s-maxage=1, max-age=99999999999999999999"]):
    write("cache_control", f"seed-{i}", v)

# Forwarding headers: X-Forwarded-For, a newline, Forwarded.
for i, v in enumerate([
    "203.0.113.9, 10.0.0.6\nfor=203.0.113.9;proto=https, for=10.0.0.6",
    "[2001:db8::1]:443\nfor=\"[2001:db8::1]:443\"",
    "::ffff:10.0.0.5, 10.20.0.1\nfor=unknown",
    "\nfor=_hidden, for=1.2.3.4:80",
]):
    write("forwarded", f"seed-{i}", v)

# Paths, optionally a newline and the route a router chose.
for i, v in enumerate([
    "/users/admin\n/users/admin", "/users/%61dmin", "/users/7\n/users/{id}", "/docs/a/b/c\n/docs/{*rest}",
    "/users/caf%C3%A9", "/a//b", "/a/%2e%2e/b", "/users/admin;v=1\n/users/{x}", "/files/x\n/f/{name}.txt",
]):
    write("path", f"seed-{i}", v)

# Configuration files: the examples of the config tests.
cfg = (HERE.parent / "dharma-core/src/config/tests.rs").read_text()
n = 0
for chunk in cfg.split('r#"')[1:]:
    text = chunk.split('"#')[0]
    if "[" in text:
        write("config", f"tests-{n}", text); n += 1

# Certificates: a root (trusted by the harness), an issuing CA, and leaves.
def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
def cert(subject_key, issuer_key, subject, issuer, ca, sans=None, eku=None):
    b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
         .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(datetime.datetime(2020, 1, 1)).not_valid_after(datetime.datetime(2099, 1, 1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return b.sign(issuer_key, hashes.SHA256())
root_key = ec.generate_private_key(ec.SECP256R1())
root = cert(root_key, root_key, "Fuzz Root", "Fuzz Root", True)
(HERE / "data/root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
mid_key = ec.generate_private_key(ec.SECP256R1())
mid = cert(mid_key, root_key, "Fuzz Issuing", "Fuzz Root", True)
leaf_key = ec.generate_private_key(ec.SECP256R1())
leaf = cert(leaf_key, mid_key, "sts", "Fuzz Issuing", False,
            [x509.UniformResourceIdentifier("spiffe://example.org/ns/outer/sa/sts")],
            [ExtendedKeyUsageOID.CLIENT_AUTH])
dns_leaf = cert(leaf_key, mid_key, "billing", "Fuzz Issuing", False,
                [x509.DNSName("billing.internal")], [ExtendedKeyUsageOID.CLIENT_AUTH])
der = lambda c: c.public_bytes(serialization.Encoding.DER)
def chain(*certs):
    out = bytes([len(certs)])
    for c in certs:
        out += struct.pack(">H", len(c)) + c
    return out
write("certs", "spiffe-chain", chain(der(leaf), der(mid)))
write("certs", "dns-chain", chain(der(dns_leaf), der(mid)))
write("certs", "leaf-only", chain(der(leaf)))
write("certs", "root-as-leaf", chain(der(root)))
x5c = [base64.b64encode(der(leaf)).decode(), base64.b64encode(der(mid)).decode()]
sts = "spiffe://example.org/ns/outer/sa/sts"
write("x5c", "signed", es256(leaf_key, {"alg": "ES256", "typ": "at+jwt", "x5c": x5c}, dict(base, iss=sts, aud="inner")))
write("x5c", "x5t", es256(leaf_key, {"alg": "ES256", "x5c": x5c, "x5t#S256": b64(hashlib.sha256(der(leaf)).digest())}, dict(base, iss=sts, aud="inner")))
write("x5c", "cnf", es256(leaf_key, {"alg": "ES256", "x5c": x5c}, dict(base, iss=sts, aud="inner", cnf={"jkt": "x"})))

# Introspection answers: a status byte (see the harness), then the body.
for i, (status, body) in enumerate([
    (0, {"active": True, "sub": "alice", "client_id": "app", "aud": "api", "exp": now + 60, "scope": "a", "token_type": "Bearer"}),
    (0, {"active": False}),
    (0, {"active": True, "aud": ["api"], "token_type": "refresh_token"}),
    (1, {"error": "unsupported_token_type"}),
    (2, {"error": "server_error"}),
]):
    write("introspection", f"seed-{i}", bytes([status]) + json.dumps(body).encode())
print("seeds written to", SEEDS)

# json: the strict reader against strict serde_json.
for name, text in {
    "payload": json.dumps({"iss": "https://issuer.example", "sub": "alice", "aud": ["api", "x"], "exp": 2000000600,
                           "iat": 2000000000, "jti": "j1", "client_id": "web", "scope": "a b", "cnf": {"x5t#S256": "abc"}}),
    "escapes": r'{"a\u0062":"\ud83d\ude00\n\t\"\\\/","c":[1,-0.5e-3,1E+2,true,false,null]}',
    "nested": '{"a":{"b":{"c":[[[{"d":[]}]]]}}}',
    "numbers": '[0,-0,1.0,123456789012345678901234567890,1e308,-1e-400,18446744073709551616]',
    "scalar": '"x"',
    "keyset": json.dumps({"keys": [jwk_of(key, "k")]}),
    "many-members": "{" + ",".join(f'"k{i}":{i}' for i in range(20)) + "}",
}.items():
    write("json", name, text)

# Token requests: a Content-Type selector byte (0: a form), then the form body.
EXCHANGE = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
TYPE = "urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3A"
for i, body in enumerate([
    "grant_type=client_credentials&audience=orders&scope=orders%3Aread+orders%3Awrite",
    f"{EXCHANGE}&subject_token=a.b.c&subject_token_type={TYPE}access_token&audience=orders",
    f"{EXCHANGE}&subject_token=x&subject_token_type={TYPE}jwt&actor_token=y&actor_token_type={TYPE}jwt"
    f"&resource=https%3A%2F%2Fapi.example%2Fv1&requested_token_type={TYPE}jwt&client_id=gw",
    "grant_type=client_credentials&scope=&audience=&x=%zz",
    "grant_type=password&username=u",
    "token=a.b.c&token_type_hint=access_token&client_id=gw",
]):
    write("token_request", f"seed-{i}", bytes([0]) + body.encode())

# Token endpoint answers: a status selector byte (0: 200, 1: 400, 2: 401, 3: 503), then the body.
for i, (sel, body) in enumerate([
    (0, {"access_token": "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
         "token_type": "Bearer", "expires_in": 300, "scope": "orders:read"}),
    (0, {"access_token": "opaque-123_~+/=", "token_type": "bearer"}),
    (1, {"error": "invalid_request", "error_description": "subject_token is not active"}),
    (2, {"error": "invalid_client"}),
    (3, {"error": "temporarily_unavailable"}),
]):
    write("token_response", f"seed-{i}", bytes([sel]) + json.dumps(body).encode())

# Tokens presented for revocation: any text (the signer's own are signed by the target).
for i, text in enumerate(["a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.sig", '{"jti":"x","exp":1}{"jti":"x"}']):
    write("own_token", f"seed-{i}", text.encode())
