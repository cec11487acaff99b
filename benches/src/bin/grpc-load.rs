//! A bounded gRPC load: `concurrency` tasks call the health check over one HTTP/2
//! connection for `seconds`, each call with the first token (`warm`) or the next unused
//! one (`fresh`). Prints `RESULT <requests/s> <p50 µs> <p99 µs> <failures> <requests>`,
//! the line the wrk script prints.
//!
//! `grpc-load <addr> <tokens-file> <warm|fresh> <seconds> <concurrency>`

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tonic::{metadata::MetadataValue, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "grpc-load <addr> <tokens-file> <warm|fresh> <seconds> <concurrency>";
    let [addr, file, mode, seconds, concurrency] = args.as_slice() else {
        return Err(usage.into());
    };
    let fresh = match mode.as_str() {
        "warm" => false,
        "fresh" => true,
        _ => return Err(usage.into()),
    };
    let tokens: Arc<Vec<MetadataValue<_>>> = Arc::new(
        std::fs::read_to_string(file)?
            .lines()
            .map(|t| format!("Bearer {t}").parse())
            .collect::<Result<_, _>>()?,
    );
    if tokens.is_empty() {
        return Err("no tokens".into());
    }
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds.parse()?);
    let mut tasks = Vec::new();
    for _ in 0..concurrency.parse::<usize>()? {
        let (channel, tokens, next) = (channel.clone(), tokens.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = HealthClient::new(channel);
            let (mut latencies, mut failures) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                let i = if fresh {
                    next.fetch_add(1, Ordering::Relaxed)
                } else {
                    0
                };
                let mut request = tonic::Request::new(HealthCheckRequest {
                    service: String::new(),
                });
                if let Some(token) = tokens.get(i % tokens.len()) {
                    request
                        .metadata_mut()
                        .insert("authorization", token.clone());
                }
                let sent = Instant::now();
                match client.check(request).await {
                    Ok(_) => latencies.push(sent.elapsed().as_micros() as u64),
                    Err(_) => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let (mut latencies, mut failures) = (Vec::new(), 0);
    for task in tasks {
        let (l, f) = task.await?;
        latencies.extend(l);
        failures += f;
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).copied().unwrap_or(0)
    };
    let done = latencies.len() as u64 + failures;
    println!(
        "RESULT {:.1} {} {} {} {}",
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        failures,
        done
    );
    Ok(())
}
