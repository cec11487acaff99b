//! `dharma`: check, explain, draw and publish a dharma policy file. See the library's
//! documentation for what each command prints.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};
use dharma_cli::{
    explain::explain,
    graph::{Format, graph},
    openapi::{merge, openapi},
    policy::Policy,
};

/// Check, explain, draw and publish a dharma policy file (offline).
#[derive(Debug, Parser)]
#[command(name = "dharma", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a policy file offline; exit code 1 if it is invalid.
    Check {
        /// The policy file (TOML).
        file: PathBuf,
    },
    /// Print, per endpoint, its domain, exposure, mechanisms, rules and callers.
    Explain {
        /// The policy file (TOML).
        file: PathBuf,
    },
    /// Draw domains, hierarchy, endpoints and mechanisms.
    Graph {
        /// The policy file (TOML).
        file: PathBuf,
        /// The output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
    /// Write OpenAPI 3.1 security schemes and per-operation security (JSON).
    Openapi {
        /// The policy file (TOML).
        file: PathBuf,
        /// An OpenAPI 3.1 spec (JSON) to write the security into, instead of a new one.
        #[arg(long)]
        merge: Option<PathBuf>,
        /// The title of a new spec.
        #[arg(long, default_value = "dharma policy")]
        title: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum GraphFormat {
    Mermaid,
    Dot,
}

/// Exit codes: 0 done, 1 the policy (or the spec to merge into) is invalid, 2 a file
/// cannot be read or the command line is wrong.
fn main() -> ExitCode {
    let cli = Cli::parse();
    let file = match &cli.command {
        Command::Check { file }
        | Command::Explain { file }
        | Command::Graph { file, .. }
        | Command::Openapi { file, .. } => file.clone(),
    };
    let policy = match Policy::read(&file) {
        Ok(policy) => policy,
        Err(problem) => {
            let at = problem.line.map(|l| format!(":{l}")).unwrap_or_default();
            let key = problem
                .key
                .as_deref()
                .map(|k| format!(" {k}:"))
                .unwrap_or_default();
            eprintln!("{}{at}:{key} {}", file.display(), problem.message);
            return ExitCode::from(if problem.unreadable { 2 } else { 1 });
        }
    };
    match cli.command {
        Command::Check { .. } => {
            println!(
                "{}: ok ({} domains, {} endpoints, {} mechanisms)",
                file.display(),
                policy.topology.domains().len(),
                policy.topology.endpoints().len(),
                policy.config.mechanisms().count()
            );
        }
        Command::Explain { .. } => print!("{}", explain(&policy)),
        Command::Graph { format, .. } => {
            let format = match format {
                GraphFormat::Mermaid => Format::Mermaid,
                GraphFormat::Dot => Format::Dot,
            };
            print!("{}", graph(&policy, format));
        }
        Command::Openapi {
            merge: into, title, ..
        } => {
            let generated = openapi(&policy, &title);
            let out = match into {
                None => generated,
                Some(path) => {
                    let spec = std::fs::read_to_string(&path)
                        .map_err(|e| (2, format!("cannot read {}: {e}", path.display())))
                        .and_then(|text| {
                            serde_json::from_str(&text)
                                .map_err(|e| (1, format!("{}: not JSON: {e}", path.display())))
                        })
                        .and_then(|mut spec| {
                            merge(&mut spec, &generated)
                                .map(|()| spec)
                                .map_err(|e| (1, format!("{}: {e}", path.display())))
                        });
                    match spec {
                        Ok(spec) => spec,
                        Err((code, message)) => {
                            eprintln!("{message}");
                            return ExitCode::from(code);
                        }
                    }
                }
            };
            match serde_json::to_string_pretty(&out) {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    eprintln!("cannot write the spec: {e}");
                    return ExitCode::from(1);
                }
            }
        }
    }
    ExitCode::SUCCESS
}
