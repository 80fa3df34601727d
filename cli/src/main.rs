//! The `claimsmith` command: run a login from the command line, publish the JWKS, check a
//! config, generate keys; scaffold, build and test rule crates; benchmark logins.
//!
//! Exit codes: 0 ok; 1 tests failed or internal error; 2 bad config, event or module;
//! 3 login denied; 4 a rule failed.

use std::process::ExitCode;

use clap::Parser;

use claimsmith_cli::{Cli, EXIT_BAD_INPUT, describe, dispatch, init_logging};

/// mimalloc, for the hook server's many small, short-lived allocations across threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.default_log_level());
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
