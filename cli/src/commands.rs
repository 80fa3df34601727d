//! Command-line arguments and the dispatch to one file per command.

mod bench;
mod build;
mod check;
mod jwks;
mod keygen;
mod new;
mod run;
mod serve;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Internal error, or failing tests.
pub const EXIT_FAILURE: u8 = 1;
/// Bad config, event or module.
pub const EXIT_BAD_INPUT: u8 = 2;
/// A rule denied the login.
pub const EXIT_DENIED: u8 = 3;
/// A rule failed (fail closed).
pub const EXIT_RULE_FAILED: u8 = 4;

/// claimsmith: post-login claims rules in WebAssembly, minted into signed ID and access tokens.
#[derive(Parser, Debug)]
#[command(name = "claimsmith", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one login through the configured rules and print the signed tokens as JSON.
    Run(run::RunArgs),
    /// Print the public JWKS of the configured keys.
    Jwks {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Load the config, its keys and every rule module; exit 0 if all are usable, 2 if not.
    Check {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Compile rule crates to wasm modules (all under rules/ by default) and print each path.
    Build(build::BuildArgs),
    /// Generate a private signing key (PKCS#8 PEM) for set-up.
    Keygen(keygen::KeygenArgs),
    /// Create a rule crate: Cargo.toml, src/lib.rs with an example and unit tests, a fixture.
    New(new::NewArgs),
    /// Build rule crates and run their fixtures/*.json through the engine; exit 1 on a failure.
    Test(test::TestArgs),
    /// Run many logins of one event through the issuer; print latency percentiles and throughput.
    Bench(bench::BenchArgs),
    /// Serve the config's token hooks over HTTP until SIGTERM or SIGINT; SIGHUP reloads.
    Serve(serve::ServeArgs),
}

impl Cli {
    /// The log level when `CLAIMSMITH_LOG` sets none: the server logs each request (info),
    /// the other commands only warnings.
    pub fn default_log_level(&self) -> tracing::Level {
        match self.command {
            Command::Serve(_) => tracing::Level::INFO,
            _ => tracing::Level::WARN,
        }
    }
}

/// Run the chosen command.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Jwks { config } => jwks::run(&config),
        Command::Check { config } => check::run(&config),
        Command::Build(args) => build::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Bench(args) => bench::run(args),
        Command::New(args) => new::run(args),
        Command::Test(args) => test::run(args),
        Command::Serve(args) => serve::run(args),
    }
}

/// Rule logs, warnings and the server's access log to stderr through `tracing`:
/// `CLAIMSMITH_LOG` sets the level (error, warn, info, debug, trace; else `default`), and
/// `CLAIMSMITH_LOG_FORMAT=json` writes one JSON object per line (with timestamps) instead of
/// text.
pub fn init_logging(default: tracing::Level) {
    let level = std::env::var("CLAIMSMITH_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(default);
    let json = std::env::var("CLAIMSMITH_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr);
    if json {
        builder.json().with_current_span(false).init();
    } else {
        builder.with_target(false).without_time().init();
    }
}

/// Print `value` as one line of JSON on stdout.
pub fn print_json(value: &serde_json::Value) {
    println!("{}", serde_json::to_string(value).expect("JSON serializes"));
}

/// An error and its causes on one line, each cause once (typed errors already name theirs).
pub fn describe(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}
