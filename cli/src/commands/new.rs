//! `claimsmith new NAME [--dir rules]`: scaffold a rule crate and say what to run next.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::scaffold::{self, ScaffoldError};

use super::EXIT_BAD_INPUT;

#[derive(Args, Debug)]
pub struct NewArgs {
    /// The rule's crate name: lowercase letters, digits and '-'.
    name: String,
    /// The folder to create it in.
    #[arg(long, default_value = "rules")]
    dir: PathBuf,
    /// The claimsmith sdk/ folder, when the crate is outside a workspace that names it.
    #[arg(long)]
    sdk: Option<PathBuf>,
}

pub fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    let created = match scaffold::create(&args.name, &args.dir, args.sdk.as_deref()) {
        Ok(created) => created,
        Err(
            e @ (ScaffoldError::BadName(_) | ScaffoldError::Exists(_) | ScaffoldError::NoSdk(_)),
        ) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
        Err(e) => return Err(e.into()),
    };
    let shown = args.dir.join(&created.name);
    let shown = shown.display();
    match (&created.workspace, created.added_to_members) {
        (Some(root), true) => println!(
            "created {shown}, added to the workspace in {}",
            root.display()
        ),
        (Some(root), false) => println!("created {shown}, in the workspace of {}", root.display()),
        (None, _) => println!("created {shown}, a crate of its own (no enclosing workspace)"),
    }
    let test = match &created.workspace {
        Some(_) => format!("cargo test -p {}", created.name),
        None => format!("(cd {shown} && cargo test)"),
    };
    println!("next:");
    println!("  {test:<40} # native unit tests");
    println!(
        "  {:<40} # fixtures/*.json through the wasm engine",
        format!("claimsmith test {shown}")
    );
    println!(
        "  {:<40} # the module to name in your config",
        format!("claimsmith build {shown}")
    );
    Ok(ExitCode::SUCCESS)
}
