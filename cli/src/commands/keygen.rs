//! `claimsmith keygen`: a fresh private signing key, written with owner-only permissions.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Algorithm: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA.
    #[arg(long, default_value = "RS256")]
    alg: String,
    /// Where to write the PEM file.
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    force: bool,
}

pub fn run(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    if args.out.exists() && !args.force {
        bail!("{} exists; pass --force to replace it", args.out.display());
    }
    let pem = claimsmith::generate_pem(&args.alg)?;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    file.write_all(pem.as_bytes())?;
    eprintln!("wrote a {} private key to {}", args.alg, args.out.display());
    Ok(ExitCode::SUCCESS)
}
