//! `claimsmith serve`: the token-hook server (the `claimsmith-server` crate), until SIGTERM or
//! SIGINT. A config that cannot be used exits 2 with the cause on stderr, as `check` does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use claimsmith_server::ServeError;

use super::{EXIT_BAD_INPUT, EXIT_FAILURE};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The config file, with its `[server]` table.
    #[arg(long)]
    config: PathBuf,
    /// The address to listen on, in place of `[server] listen` (default 127.0.0.1:8787).
    #[arg(long)]
    listen: Option<SocketAddr>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    match claimsmith_server::serve(&args.config, args.listen) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(
            error @ (ServeError::Config(_) | ServeError::Tls { .. } | ServeError::Listen { .. }),
        ) => {
            eprintln!("error: {error}");
            Ok(ExitCode::from(EXIT_BAD_INPUT))
        }
        Err(error) => {
            eprintln!("error: {error}");
            Ok(ExitCode::from(EXIT_FAILURE))
        }
    }
}
