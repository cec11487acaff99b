//! Writes the benchmark report (markdown) from criterion's estimates and the load test's
//! results, with each target of the benchmark plan marked met or not met.
//!
//! `report <criterion-dir> <load-results> <mode> [notes.md]` (the report goes to stdout)

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

const ALGORITHMS: [&str; 5] = ["RS256", "PS256", "ES256", "ES384", "EdDSA"];

/// Median times in nanoseconds, by `group/bench`.
struct Estimates(BTreeMap<String, f64>);

impl Estimates {
    fn read(dir: &Path) -> Self {
        let mut map = BTreeMap::new();
        for group in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            for bench in std::fs::read_dir(group.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let file = bench.path().join("new/estimates.json");
                let Ok(text) = std::fs::read_to_string(&file) else {
                    continue;
                };
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
                    continue;
                };
                if let Some(ns) = json
                    .pointer("/median/point_estimate")
                    .and_then(serde_json::Value::as_f64)
                {
                    let key = format!(
                        "{}/{}",
                        group.file_name().to_string_lossy(),
                        bench.file_name().to_string_lossy()
                    );
                    map.insert(key, ns);
                }
            }
        }
        Self(map)
    }

    fn get(&self, id: &str) -> Option<f64> {
        self.0.get(id).copied()
    }

    fn ratio(&self, a: &str, b: &str) -> Option<f64> {
        Some(self.get(a)? / self.get(b)?)
    }
}

/// One load run: requests/s, p50 and p99 in microseconds.
#[derive(Clone, Copy)]
struct Load {
    rps: f64,
    p50: f64,
    p99: f64,
}

fn read_load(path: &Path) -> Vec<((String, String), Load)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                [framework, variant, "RESULT", rps, p50, p99, ..] => Some((
                    (framework.to_string(), variant.to_string()),
                    Load {
                        rps: rps.parse().ok()?,
                        p50: p50.parse().ok()?,
                        p99: p99.parse().ok()?,
                    },
                )),
                _ => None,
            }
        })
        .collect()
}

/// The paired ratios by algorithm: cold/floor median, first and third quartile, and the
/// median of cold/jsonwebtoken.
fn read_paired(path: &Path) -> BTreeMap<String, (f64, f64, f64, f64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                [alg, m, q1, q3, peer] => Some((
                    alg.to_string(),
                    (
                        m.parse().ok()?,
                        q1.parse().ok()?,
                        q3.parse().ok()?,
                        peer.parse().ok()?,
                    ),
                )),
                _ => None,
            }
        })
        .collect()
}

fn time(ns: Option<f64>) -> String {
    match ns {
        None => "–".into(),
        Some(ns) if ns >= 1_000_000.0 => format!("{:.2} ms", ns / 1_000_000.0),
        Some(ns) if ns >= 1_000.0 => format!("{:.2} µs", ns / 1_000.0),
        Some(ns) => format!("{ns:.0} ns"),
    }
}

fn ratio(r: Option<f64>) -> String {
    r.map_or("–".into(), |r| format!("{r:.2}x"))
}

/// "met", "**not met**" or "not measured", for a value and its bound.
fn verdict(value: Option<f64>, ok: impl Fn(f64) -> bool) -> &'static str {
    match value {
        None => "not measured",
        Some(v) if ok(v) => "met",
        Some(_) => "**not met**",
    }
}

/// `name value...` lines of the audit bench (`audit_paced.txt`).
fn read_audit(dir: &Path) -> BTreeMap<String, Vec<f64>> {
    std::fs::read_to_string(dir.join("audit_paced.txt"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?.to_owned();
            Some((name, words.filter_map(|v| v.parse().ok()).collect()))
        })
        .collect()
}

/// The audit section: the JSON-lines sink against a sink that discards, paced.
fn audit_section(w: &mut String, audit: &BTreeMap<String, Vec<f64>>) -> std::fmt::Result {
    let at = |name: &str, i: usize| audit.get(name).and_then(|v| v.get(i)).copied();
    writeln!(w, "\n## Audit trail\n")?;
    writeln!(
        w,
        "One thread decides warm JWT requests paced at 100,000 a second, alternating passes \
         between an enforcer whose sink discards events and one whose sink is a `JsonLinesSink` \
         (default settings) writing to a file; its writer thread runs on the other core. The \
         added cost is the median over pass pairs of the difference of mean decision times.\n"
    )?;
    writeln!(w, "| sink | median | mean | p99 |")?;
    writeln!(w, "|---|---|---|---|")?;
    for (label, name) in [("discard", "discard"), ("JSON lines", "json_lines")] {
        writeln!(
            w,
            "| {label} | {} | {} | {} |",
            time(at(name, 0)),
            time(at(name, 1)),
            time(at(name, 2))
        )?;
    }
    writeln!(
        w,
        "\nAdded per decision: {} (quartiles {} to {}); events written {}, dropped {}.",
        time(at("added", 0)),
        time(at("added", 1)),
        time(at("added", 2)),
        at("written", 0).map_or("n/a".into(), |v| format!("{v:.0}")),
        at("dropped", 0).map_or("n/a".into(), |v| format!("{v:.0}")),
    )
}

/// The Cedar section: dharma's Cedar authorizer against Cedar's own evaluation.
fn cedar_section(w: &mut String, e: &Estimates) -> std::fmt::Result {
    writeln!(w, "\n## Cedar\n")?;
    writeln!(
        w,
        "`dharma-cedar` builds the principal (with its claims as a record, roles as groups), \
         the endpoint resource (built once per endpoint) and the context from the security \
         context, then calls Cedar. Cedar's own evaluation of the same request, built once, is \
         the floor; the authorizer's cost is the difference between a warm decision on an \
         endpoint with the Cedar rule and one without rules.\n"
    )?;
    writeln!(w, "| bench | median |")?;
    writeln!(w, "|---|---|")?;
    for (label, id) in [
        ("Cedar's own evaluation", "cedar/own"),
        ("warm decision, no rule", "cedar/decide_plain"),
        ("warm decision, Cedar rule", "cedar/decide_cedar"),
    ] {
        writeln!(w, "| {label} | {} |", time(e.get(id)))?;
    }
    let cost = e
        .get("cedar/decide_cedar")
        .zip(e.get("cedar/decide_plain"))
        .map(|(c, p)| c - p);
    writeln!(
        w,
        "\nThe authorizer costs {} per request: {} Cedar's own evaluation.",
        time(cost),
        ratio(cost.zip(e.get("cedar/own")).map(|(c, o)| c / o))
    )
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, load, mode, notes) = match args.as_slice() {
        [d, l, m] => (d, l, m, None),
        [d, l, m, n] => (d, l, m, Some(n)),
        _ => return Err("report <criterion-dir> <load-results> <mode> [notes.md]".into()),
    };
    let e = Estimates::read(Path::new(dir));
    let paired = read_paired(&Path::new(dir).join("paired.txt"));
    // `mint|exchange <median> <q1> <q3>`, from the sts bench's paired rounds.
    let sts_paired: BTreeMap<String, (f64, f64, f64)> =
        std::fs::read_to_string(Path::new(dir).join("sts_paired.txt"))
            .unwrap_or_default()
            .lines()
            .filter_map(
                |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                    [name, m, q1, q3] => Some((
                        name.to_owned(),
                        (m.parse().ok()?, q1.parse().ok()?, q3.parse().ok()?),
                    )),
                    _ => None,
                },
            )
            .collect();
    if e.0.is_empty() {
        return Err(format!("no criterion estimates under {dir}").into());
    }
    let load = read_load(Path::new(load));
    let find = |framework: &str, variant: &str| {
        load.iter()
            .find(|((f, v), _)| f == framework && v == variant)
            .map(|(_, l)| *l)
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut out = String::new();
    let w = &mut out;

    writeln!(w, "# dharma benchmark report\n")?;
    writeln!(
        w,
        "Machine: **{}**, **{cores} cores**; mode: **{mode}**; written by `bash benches/run{}`.\n",
        cpu_model(),
        if mode == "quick" { " --quick" } else { "" }
    )?;
    writeln!(
        w,
        "Every figure is a criterion median (or a load run) from the same run on the same \
         machine; the ratios are what carries across machines. Shared machines are noisy: \
         a few percent either way is within the noise of one run.\n"
    )?;

    writeln!(
        w,
        "## Token verification against the floor and jsonwebtoken\n"
    )?;
    writeln!(
        w,
        "`floor`: ring's signature check of the token's signing input, key decoded once. \
         `cold`: dharma on tokens it has never seen (default configuration: the token is \
         also put in the cache). `cold, no cache`: the same with the token cache off. `warm`: \
         a token verified before. `jsonwebtoken 9`: `decode` with a pre-parsed key (ring \
         backend), audience and issuer checked.\n"
    )?;
    writeln!(
        w,
        "| alg | floor | cold | cold / floor | cold, no cache | no cache / floor | warm | warm / cold | jsonwebtoken 9 | cold / jsonwebtoken |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|---|---|---|---|")?;
    for alg in ALGORITHMS {
        let id = |b: &str| format!("{alg}/{b}");
        writeln!(
            w,
            "| {alg} | {} | {} | {} | {} | {} | {} | 1/{:.0} | {} | {} |",
            time(e.get(&id("floor"))),
            time(e.get(&id("cold"))),
            ratio(e.ratio(&id("cold"), &id("floor"))),
            time(e.get(&id("cold_nocache"))),
            ratio(e.ratio(&id("cold_nocache"), &id("floor"))),
            time(e.get(&id("warm"))),
            e.ratio(&id("cold"), &id("warm")).unwrap_or(f64::NAN),
            time(e.get(&id("jsonwebtoken9"))),
            ratio(e.ratio(&id("cold"), &id("jsonwebtoken9"))),
        )?;
    }

    writeln!(w, "\n### Cold against the floor, paired\n")?;
    writeln!(
        w,
        "The same measured in alternating blocks (floor, then dharma on never-seen tokens \
         with a new verifier, and the other way round; jsonwebtoken on the same tokens right \
         after), so that a change of machine speed during the run moves all of them. The \
         median of the per-block ratios is the figure the targets are judged on; the \
         quartiles show the spread.\n"
    )?;
    writeln!(
        w,
        "| alg | cold / floor (median) | first quartile | third quartile | cold / jsonwebtoken 9 (median) |"
    )?;
    writeln!(w, "|---|---|---|---|---|")?;
    for alg in ALGORITHMS {
        match paired.get(alg) {
            Some((m, q1, q3, p)) => {
                writeln!(w, "| {alg} | {m:.3}x | {q1:.3}x | {q3:.3}x | {p:.3}x |")?
            }
            None => writeln!(w, "| {alg} | – | – | – | – |")?,
        }
    }

    writeln!(w, "\n## Other mechanisms' caches\n")?;
    writeln!(
        w,
        "Through one current-thread Tokio runtime, ES256 tokens. An introspection answer \
         remembered; an x5c token whose certificate chain was validated before (each x5c \
         token is new, so its signature is still checked: it compares with the JWT cold path).\n"
    )?;
    writeln!(w, "| path | median | compared with | ratio |")?;
    writeln!(w, "|---|---|---|---|")?;
    for (bench, base, label) in [
        ("jwt_warm", "jwt_warm", "JWT warm"),
        ("introspection_hit", "jwt_warm", "JWT warm"),
        ("jwt_cold_es256", "jwt_cold_es256", "JWT cold"),
        ("x5c_known_chain_es256", "jwt_cold_es256", "JWT cold"),
    ] {
        let id = |b: &str| format!("cache_hits/{b}");
        writeln!(
            w,
            "| {bench} | {} | {label} | {} |",
            time(e.get(&id(bench))),
            ratio(e.ratio(&id(bench), &id(base)))
        )?;
    }

    writeln!(w, "\n## Middleware in process\n")?;
    writeln!(
        w,
        "One request through the framework's service (no network), ES256, the response body \
         read. dharma enforces the endpoint's scope and writes an audit event (to `tracing`, \
         no subscriber installed); the peers verify the token (axum-jwt-auth's handler also \
         checks the scope) and remember nothing, so each of their requests is a cold one.\n"
    )?;
    writeln!(w, "| framework | variant | median | over bare |")?;
    writeln!(w, "|---|---|---|---|")?;
    for (framework, variants) in [
        (
            "axum",
            &[
                "bare",
                "dharma_warm",
                "dharma_cold",
                "axum_jwt_auth",
                "tower_oauth2_rs",
            ][..],
        ),
        ("actix", &["bare", "dharma_warm"][..]),
        ("tonic", &["bare", "dharma_warm"][..]),
    ] {
        let bare = e.get(&format!("{framework}/bare"));
        for v in variants {
            let t = e.get(&format!("{framework}/{v}"));
            let over = match (t, bare) {
                (Some(t), Some(b)) if *v != "bare" => format!("+{}", time(Some(t - b))),
                _ => "–".into(),
            };
            writeln!(w, "| {framework} | {v} | {} | {over} |", time(t))?;
        }
    }

    writeln!(w, "\n## Contention\n")?;
    writeln!(
        w,
        "One shared verifier; nine in ten tokens warm, one in ten never seen (ES256). Wall \
         time per verification, and throughput relative to one thread ({cores} cores here).\n"
    )?;
    writeln!(w, "| threads | per verification | throughput vs 1 thread |")?;
    writeln!(w, "|---|---|---|")?;
    for t in [1, 2, 8] {
        let id = format!("contention/threads_{t}");
        writeln!(
            w,
            "| {t} | {} | {} |",
            time(e.get(&id)),
            ratio(e.ratio("contention/threads_1", &id))
        )?;
    }

    writeln!(w, "\n## Reload under load\n")?;
    writeln!(
        w,
        "Two threads decide warm requests through one enforcer; in `reloading`, a third \
         applies a new policy (new topology, same mechanism instances) every 100 ms.\n"
    )?;
    writeln!(w, "| | per decision | throughput vs steady |")?;
    writeln!(w, "|---|---|---|")?;
    for name in ["steady", "reloading"] {
        let id = format!("reload/{name}");
        writeln!(
            w,
            "| {name} | {} | {} |",
            time(e.get(&id)),
            ratio(e.ratio("reload/steady", &id))
        )?;
    }

    writeln!(w, "\n## Classification\n")?;
    writeln!(
        w,
        "A request's path to its endpoint (compiled into matchit), by the number of \
         endpoints declared: a declared path and one that is not.\n"
    )?;
    writeln!(w, "| endpoints | declared path | undeclared path |")?;
    writeln!(w, "|---|---|---|")?;
    for n in [10, 1_000, 10_000] {
        writeln!(
            w,
            "| {n} | {} | {} |",
            time(e.get(&format!("classify/hit_{n}"))),
            time(e.get(&format!("classify/miss_{n}")))
        )?;
    }

    writeln!(w, "\n## Load over loopback\n")?;
    if load.is_empty() {
        writeln!(w, "Not run.")?;
    } else {
        writeln!(
            w,
            "wrk (one thread, 32 connections) for axum and actix; a tonic client loop (32 \
             concurrent calls, one HTTP/2 connection) for tonic; load generator and server share \
             the machine's cores. `dharma_fresh`: a new ES256 token on every request.\n"
        )?;
        writeln!(
            w,
            "| framework | variant | requests/s | vs bare | p50 | p99 | p99 vs bare |"
        )?;
        writeln!(w, "|---|---|---|---|---|---|---|")?;
        for ((framework, variant), l) in &load {
            let bare = find(framework, "bare");
            writeln!(
                w,
                "| {framework} | {variant} | {:.0} | {} | {} | {} | {} |",
                l.rps,
                ratio(bare.map(|b| l.rps / b.rps)),
                time(Some(l.p50 * 1000.0)),
                time(Some(l.p99 * 1000.0)),
                ratio(bare.map(|b| l.p99 / b.p99)),
            )?;
        }
    }

    writeln!(w, "\n## Token service and propagation\n")?;
    writeln!(
        w,
        "In process, ES256. Minting is a client-credentials grant (policy, scope, claims, \
         `jti`, JSON, base64, signature, audit event); the exchange verifies a subject JWT \
         the verifier has seen, then mints. The floor is one raw ring signature over a \
         signing input of the same size; the ratios are medians of alternating rounds.\n"
    )?;
    writeln!(w, "| bench | median | paired x floor (q1 to q3) |")?;
    writeln!(w, "|---|---|---|")?;
    writeln!(
        w,
        "| sign floor | {} | 1.00x |",
        time(e.get("sts/sign_floor_es256"))
    )?;
    for (name, id) in [
        ("mint", "sts/mint_es256"),
        ("exchange", "sts/exchange_es256"),
    ] {
        let p = sts_paired.get(name);
        writeln!(
            w,
            "| {name} | {} | {} ({} to {}) |",
            time(e.get(id)),
            ratio(p.map(|p| p.0)),
            ratio(p.map(|p| p.1)),
            ratio(p.map(|p| p.2)),
        )?;
    }
    writeln!(
        w,
        "| propagation cache hit | {} | |",
        time(e.get("propagate/cache_hit"))
    )?;
    let audit = read_audit(Path::new(dir));
    audit_section(w, &audit)?;
    cedar_section(w, &e)?;

    writeln!(w, "\n## Targets\n")?;
    writeln!(w, "| target | measured | verdict |")?;
    writeln!(w, "|---|---|---|")?;
    for alg in ALGORITHMS {
        let bound = if alg == "RS256" { 1.08 } else { 1.15 };
        let r = paired.get(alg).map(|p| p.0);
        writeln!(
            w,
            "| {alg} cold ≤ {bound:.2}x floor (paired median) | {} | {} |",
            ratio(r),
            verdict(r, |r| r <= bound)
        )?;
    }
    let r = e.ratio("RS256/warm", "RS256/cold");
    writeln!(
        w,
        "| warm ≤ 1/20 of RS256 cold | 1/{:.0} | {} |",
        r.map_or(f64::NAN, |r| 1.0 / r),
        verdict(r, |r| r <= 0.05)
    )?;
    let warm = e.get("RS256/warm");
    writeln!(
        w,
        "| warm about 1 µs | {} | {} |",
        time(warm),
        verdict(warm, |ns| ns <= 1_500.0)
    )?;
    let r = e.ratio("cache_hits/introspection_hit", "cache_hits/jwt_warm");
    writeln!(
        w,
        "| introspection hit ≤ 1.2x warm | {} | {} |",
        ratio(r),
        verdict(r, |r| r <= 1.2)
    )?;
    let r = e.ratio(
        "cache_hits/x5c_known_chain_es256",
        "cache_hits/jwt_cold_es256",
    );
    writeln!(
        w,
        "| x5c known chain ≤ 1.2x (of JWT cold, see above) | {} | {} |",
        ratio(r),
        verdict(r, |r| r <= 1.2)
    )?;
    for framework in ["axum", "actix", "tonic"] {
        let d = e
            .get(&format!("{framework}/dharma_warm"))
            .zip(e.get(&format!("{framework}/bare")))
            .map(|(a, b)| a - b);
        writeln!(
            w,
            "| {framework} in-process overhead a few µs (≤ 5 µs) | {} | {} |",
            time(d),
            verdict(d, |ns| ns <= 5_000.0)
        )?;
    }
    for alg in ALGORITHMS {
        let r = paired.get(alg).map(|p| p.3);
        writeln!(
            w,
            "| {alg} cold at least as fast as jsonwebtoken 9 (paired median) | {} | {} |",
            ratio(r),
            verdict(r, |r| r <= 1.0)
        )?;
    }
    for peer in ["axum_jwt_auth", "tower_oauth2_rs"] {
        let cold = e.ratio("axum/dharma_cold", &format!("axum/{peer}"));
        let warm = e.ratio(&format!("axum/{peer}"), "axum/dharma_warm");
        writeln!(
            w,
            "| axum: dharma cold at least as fast as {peer} | {} | {} |",
            ratio(cold),
            verdict(cold, |r| r <= 1.0)
        )?;
        writeln!(
            w,
            "| axum: dharma warm many (≥ 5) times faster than {peer} | {} | {} |",
            ratio(warm),
            verdict(warm, |r| r >= 5.0)
        )?;
    }
    let r = sts_paired.get("mint").map(|p| p.0);
    writeln!(
        w,
        "| minting within 1.2x the raw signing floor (paired median) | {} | {} |",
        ratio(r),
        verdict(r, |r| r <= 1.2)
    )?;
    let hit = e.get("propagate/cache_hit");
    writeln!(
        w,
        "| propagation cache hit under 1 µs | {} | {} |",
        time(hit),
        verdict(hit, |ns| ns < 1_000.0)
    )?;
    let added = audit.get("added").and_then(|v| v.first()).copied();
    let dropped = audit.get("dropped").and_then(|v| v.first()).copied();
    writeln!(
        w,
        "| JSON-lines audit sink adds a few hundred ns (≤ 500 ns) per decision at 100,000/s, dropping none | {} | {} |",
        time(added),
        verdict(
            added
                .filter(|_| dropped == Some(0.0))
                .or(added.map(|_| f64::INFINITY)),
            |a| a <= 500.0
        )
    )?;
    let r = e.ratio("reload/steady", "reload/reloading");
    writeln!(
        w,
        "| decisions per second unchanged while the policy is reloaded every 100 ms (≥ 0.95x) | {} | {} |",
        ratio(r),
        verdict(r, |r| r >= 0.95)
    )?;
    let r = e.ratio("contention/threads_1", "contention/threads_2");
    writeln!(
        w,
        "| 2 threads: throughput scales with cores (≥ 1.6x of 1 thread on 2+ cores) | {} | {} |",
        ratio(r),
        verdict(r, |r| r >= 1.6)
    )?;
    for framework in ["axum", "actix", "tonic"] {
        let r = find(framework, "dharma_warm")
            .zip(find(framework, "bare"))
            .map(|(d, b)| d.rps / b.rps);
        writeln!(
            w,
            "| {framework} over loopback, warm: ≥ 0.90x bare throughput | {} | {} |",
            ratio(r),
            verdict(r, |r| r >= 0.90)
        )?;
    }

    if let Some(notes) = notes {
        writeln!(w, "\n{}", std::fs::read_to_string(notes)?.trim_end())?;
    }
    print!("{out}");
    Ok(())
}
