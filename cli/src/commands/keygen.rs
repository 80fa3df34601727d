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
    if !args.force && (args.out.exists() || args.out.is_symlink()) {
        bail!("{} exists; pass --force to replace it", args.out.display());
    }
    let pem = claimsmith::generate_pem(&args.alg)?;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if args.force {
        // A new owner-only file beside it, renamed over it: the mode of the file replaced (or of
        // what a symlink there points to) never applies to the new key.
        let name = args.out.file_name().unwrap_or_default().to_string_lossy();
        let temporary = args
            .out
            .with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let written = write_new(&temporary, pem.as_bytes()).and_then(|()| {
            std::fs::rename(&temporary, &args.out)
                .with_context(|| format!("cannot replace {}", args.out.display()))
        });
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written?;
    } else {
        write_new(&args.out, pem.as_bytes())?;
    }
    eprintln!("wrote a {} private key to {}", args.alg, args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Write `bytes` to a file that must not exist yet (not even as a dangling symlink), readable by
/// its owner only.
fn write_new(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| {
        if path.is_symlink() || path.exists() {
            format!("{} exists; pass --force to replace it", path.display())
        } else {
            format!("cannot write {}", path.display())
        }
    })?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}
