//! A bench service on 127.0.0.1 for the loopback load test. It writes `count` valid
//! tokens (one per line) to `tokens-file`, prints `listening <addr>`, serves for
//! `seconds` at most and exits.
//!
//! `load-server <axum|actix|tonic> <bare|dharma> <seconds> <tokens-file> <count>`

use std::{io::Write, time::Duration};

use dharma_benches::{enforcer, jwt_verifier, load, tokens};
use dharma_test_support::TestKey;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "load-server <axum|actix|tonic> <bare|dharma> <seconds> <tokens-file> <count>";
    let [framework, mode, seconds, file, count] = args.as_slice() else {
        return Err(usage.into());
    };
    let framework = load::Framework::parse(framework).ok_or(usage)?;
    let limit = Duration::from_secs(seconds.parse()?);
    let key = TestKey::generate("ES256", "load-1");
    let enforcer = match mode.as_str() {
        "bare" => None,
        "dharma" => Some(enforcer(jwt_verifier(&key, 10_000))),
        _ => return Err(usage.into()),
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(file)?);
    for token in tokens(&key, count.parse()?) {
        writeln!(out, "{token}")?;
    }
    out.flush()?;
    let addr = load::serve(framework, enforcer, limit).await?;
    println!("listening {addr}");
    tokio::time::sleep(limit).await;
    Ok(())
}
