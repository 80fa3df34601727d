//! The `claimsmith` command: run a login from the command line, publish the JWKS, check a
//! config, generate keys; scaffold, build and test rule crates; benchmark logins.
//!
//! Exit codes: 0 ok; 1 tests failed or internal error; 2 bad config, event or module;
//! 3 login denied; 4 a rule failed.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cli::init_logging();
    let args = cli::Cli::parse();
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", cli::describe(&err));
            ExitCode::from(cli::EXIT_BAD_INPUT)
        }
    }
}
