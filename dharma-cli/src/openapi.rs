//! `dharma openapi`: OpenAPI 3.1 security schemes and per-operation security requirements,
//! derived from the policy rather than written by hand.
//!
//! Each mechanism an endpoint's lanes use becomes a security scheme: `jwt` with discovery
//! an `openIdConnect` scheme, other bearer tokens (`jwt`, `x5c_jwt`, `introspection`) an
//! HTTP bearer scheme, `api_key` an API key in its header, `mtls` a `mutualTLS` scheme.
//! `any_of` gives alternative requirements, `all_of` one requirement naming each part;
//! network isolation and tokens carried for accountability have no OpenAPI form: they are
//! listed in the operation's `x-dharma` extension (`not-in-openapi`), never written as an
//! empty requirement (which would read as "anonymous"). Scopes are listed on every
//! requirement (OpenAPI 3.1 allows them for any scheme type).

use serde_json::{Map, Value, json};

use crate::{policy::Policy, reach::mechanisms};

/// The methods an endpoint without a method list is written for.
const ANY_METHOD: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Why a spec cannot be merged into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeError(pub String);

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The security scheme of a mechanism, or `None` when OpenAPI cannot express it.
fn scheme(policy: &Policy, mechanism: &str) -> Option<Value> {
    let table = policy.table(mechanism)?;
    let text = |key: &str| table.get(key).and_then(toml::Value::as_str);
    let description = format!("dharma mechanism {mechanism:?}");
    match policy.kind(mechanism)? {
        "jwt" => {
            let issuers = table.get("issuers").and_then(toml::Value::as_array);
            let discovery = issuers.and_then(|list| match list.as_slice() {
                [one] => one
                    .get("discovery")
                    .and_then(toml::Value::as_bool)
                    .filter(|d| *d)
                    .and(one.get("issuer").and_then(toml::Value::as_str)),
                _ => None,
            });
            Some(match discovery {
                Some(issuer) => json!({
                    "type": "openIdConnect",
                    "openIdConnectUrl": format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')),
                    "description": description,
                }),
                None => {
                    json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": description})
                }
            })
        }
        "x5c_jwt" => Some(json!({
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT (x5c, organisation certificate)",
            "description": description,
        })),
        "introspection" => Some(json!({
            "type": "http", "scheme": "bearer", "bearerFormat": "opaque (introspected)",
            "description": description,
        })),
        "api_key" => Some(json!({
            "type": "apiKey", "in": "header", "name": text("header").unwrap_or("x-api-key"),
            "description": description,
        })),
        "mtls" => Some(json!({"type": "mutualTLS", "description": description})),
        _ => None,
    }
}

/// The alternative requirements (each a set of scheme names) `mechanism` asks for; an
/// empty set where nothing OpenAPI can state is asked.
fn alternatives(policy: &Policy, mechanism: &str, depth: usize) -> Vec<Vec<String>> {
    if depth > 8 {
        return vec![Vec::new()];
    }
    match policy.kind(mechanism) {
        Some("any_of") => policy
            .parts(mechanism)
            .iter()
            .flat_map(|m| alternatives(policy, m, depth + 1))
            .collect(),
        Some("all_of") => {
            policy
                .parts(mechanism)
                .iter()
                .fold(vec![Vec::new()], |acc: Vec<Vec<String>>, m| {
                    let next = alternatives(policy, m, depth + 1);
                    acc.iter()
                        .flat_map(|a| {
                            next.iter().map(move |n| {
                                let mut both = a.clone();
                                both.extend(n.iter().cloned());
                                both
                            })
                        })
                        .collect()
                })
        }
        _ if scheme(policy, mechanism).is_some() => vec![vec![mechanism.to_owned()]],
        _ => vec![Vec::new()],
    }
}

/// The mechanisms under `mechanism` that OpenAPI cannot state (network isolation, tokens
/// carried for accountability, custom kinds).
fn unstated(policy: &Policy, mechanism: &str, depth: usize, out: &mut Vec<String>) {
    match policy.kind(mechanism) {
        Some("any_of" | "all_of") if depth < 8 => {
            for m in policy.parts(mechanism) {
                unstated(policy, m, depth + 1, out);
            }
        }
        kind if scheme(policy, mechanism).is_none() => {
            let named = format!("{mechanism} ({})", kind.unwrap_or("custom"));
            if !out.contains(&named) {
                out.push(named);
            }
        }
        _ => {}
    }
}

/// The OpenAPI document of the policy's security: `paths` with one operation per endpoint
/// and method, each with its `security` and an `x-dharma` extension, and
/// `components.securitySchemes`.
pub fn openapi(policy: &Policy, title: &str) -> Value {
    let mut schemes = Map::new();
    let mut paths = Map::new();
    for endpoint in policy.topology.endpoints() {
        let (interior, boundary) = mechanisms(policy, endpoint);
        let mut security = Vec::new();
        let mut not_stated = Vec::new();
        for m in interior.iter().chain(boundary.iter()) {
            unstated(policy, m, 0, &mut not_stated);
            // An alternative that asks nothing OpenAPI can state is left out rather than
            // written as `{}`, which would read as "anonymous".
            for alternative in alternatives(policy, m, 0)
                .into_iter()
                .filter(|a| !a.is_empty())
            {
                for name in &alternative {
                    if let Some(s) = scheme(policy, name) {
                        schemes.insert(name.clone(), s);
                    }
                }
                let scopes: Vec<&str> = endpoint
                    .requirements()
                    .scopes()
                    .iter()
                    .map(|s| s.as_str())
                    .collect();
                let requirement: Map<String, Value> = alternative
                    .iter()
                    .map(|name| (name.clone(), json!(scopes)))
                    .collect();
                let requirement = Value::Object(requirement);
                if !security.contains(&requirement) {
                    security.push(requirement);
                }
            }
        }
        if endpoint.credentials_optional() && !security.contains(&json!({})) {
            security.push(json!({}));
        }
        let PathTemplate {
            path,
            parameters,
            catch_all,
        } = path_of(endpoint.path().as_str());
        let methods: Vec<String> = match endpoint.methods() {
            Some(ms) => ms.iter().map(|m| m.as_str().to_ascii_lowercase()).collect(),
            None => ANY_METHOD.iter().map(|m| (*m).to_owned()).collect(),
        };
        let item = paths
            .entry(path)
            .or_insert_with(|| json!({}))
            .as_object_mut();
        let Some(item) = item else { continue };
        for method in methods {
            let mut operation = json!({
                "operationId": format!("{}.{method}", endpoint.name()),
                "security": security,
                "responses": {
                    "200": {"description": "Admitted by dharma and answered by the service."},
                    "401": {"description": "No acceptable credentials (RFC 6750 WWW-Authenticate)."},
                    "403": {"description": "Credentials accepted; the endpoint's requirements are not met."},
                },
                "x-dharma": {
                    "domain": endpoint.domain().as_str(),
                    "exposure": endpoint.exposure().as_str(),
                    "mechanisms": interior.iter().chain(boundary.iter()).collect::<Vec<_>>(),
                    "requires": crate::explain::requirements(endpoint),
                    "not-in-openapi": not_stated,
                },
            });
            if !parameters.is_empty()
                && let Some(op) = operation.as_object_mut()
            {
                op.insert("parameters".into(), json!(parameters));
            }
            if let Some(name) = &catch_all
                && let Some(extension) =
                    operation.get_mut("x-dharma").and_then(Value::as_object_mut)
            {
                extension.insert("catch-all".into(), json!(name));
            }
            item.insert(method, operation);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": "policy"},
        "paths": paths,
        "components": {"securitySchemes": schemes},
    })
}

/// A path template, its path parameters, and the name of its catch-all if it has one.
struct PathTemplate {
    path: String,
    parameters: Vec<Value>,
    catch_all: Option<String>,
}

/// The OpenAPI path template of an endpoint pattern: `{id}` stays; a catch-all `{*rest}`
/// becomes `{rest}`, which OpenAPI matches against one segment only, so the parameter says
/// that it takes the rest of the path and the operation's `x-dharma` names it.
fn path_of(pattern: &str) -> PathTemplate {
    let mut parameters = Vec::new();
    let mut catch_all = None;
    let path: Vec<String> = pattern
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    let rest = name.strip_prefix('*');
                    let name = rest.unwrap_or(name);
                    let mut parameter = json!({
                        "name": name, "in": "path", "required": true, "schema": {"type": "string"},
                    });
                    if rest.is_some()
                        && let Some(fields) = parameter.as_object_mut()
                    {
                        fields.insert(
                            "description".into(),
                            json!(
                                "The rest of the path: one or more segments, slashes included \
                                 (a catch-all, which OpenAPI path templates cannot state)."
                            ),
                        );
                        catch_all = Some(name.to_owned());
                    }
                    parameters.push(parameter);
                    format!("{{{name}}}")
                }
                None => segment.to_owned(),
            },
        )
        .collect();
    PathTemplate {
        path: path.join("/"),
        parameters,
        catch_all,
    }
}

/// Writes the policy's security into an existing OpenAPI document: its security schemes
/// are added (replacing any of the same name) and each operation the policy covers gets
/// its `security` and `x-dharma` (operations missing from the spec are added).
pub fn merge(spec: &mut Value, generated: &Value) -> Result<(), MergeError> {
    let version = spec.get("openapi").and_then(Value::as_str).unwrap_or("");
    if !version.starts_with("3.1") {
        return Err(MergeError(format!(
            "the spec is OpenAPI {version:?}; dharma writes OpenAPI 3.1 (mutualTLS and scopes on any scheme need it)"
        )));
    }
    let object = spec
        .as_object_mut()
        .ok_or_else(|| MergeError("the spec is not a JSON object".into()))?;
    let schemes = object
        .entry("components")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| MergeError("components is not an object".into()))?
        .entry("securitySchemes")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| MergeError("components.securitySchemes is not an object".into()))?;
    if let Some(new) = generated
        .pointer("/components/securitySchemes")
        .and_then(Value::as_object)
    {
        schemes.extend(new.clone());
    }
    let paths = object
        .entry("paths")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| MergeError("paths is not an object".into()))?;
    let generated_paths = generated.get("paths").and_then(Value::as_object);
    for (path, item) in generated_paths.into_iter().flatten() {
        let target = paths
            .entry(path.clone())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| MergeError(format!("paths.{path} is not an object")))?;
        for (method, operation) in item.as_object().into_iter().flatten() {
            match target.get_mut(method).and_then(Value::as_object_mut) {
                Some(existing) => {
                    for key in ["security", "x-dharma"] {
                        if let Some(v) = operation.get(key) {
                            existing.insert(key.into(), v.clone());
                        }
                    }
                }
                None => {
                    target.insert(method.clone(), operation.clone());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catch_all_says_it_takes_the_rest_of_the_path() {
        let t = path_of("/files/{owner}/{*rest}");
        assert_eq!(t.path, "/files/{owner}/{rest}");
        assert_eq!(t.catch_all.as_deref(), Some("rest"));
        assert_eq!(t.parameters.len(), 2);
        assert!(t.parameters[0].get("description").is_none());
        assert_eq!(t.parameters[1]["name"], "rest");
        assert!(
            t.parameters[1]["description"]
                .as_str()
                .is_some_and(|d| d.contains("slashes included"))
        );
        let plain = path_of("/orders/{id}");
        assert_eq!(plain.path, "/orders/{id}");
        assert!(plain.catch_all.is_none());
    }
}
