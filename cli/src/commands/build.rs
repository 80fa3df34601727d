//! `claimsmith build`: compile rule crates to wasm, check each module against the ABI, print
//! each module's path on stdout (size, exports and the `sha256 = "..."` line a config pins it
//! with on stderr).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::rule_crate::{self, BuiltRule};
use claimsmith_engine::{Limits, Pipeline, RuleSpec, SandboxConfig};

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Rule folders (crates, or JavaScript `action.js` folders); default: every one under
    /// ./rules and ./actions.
    rule_dirs: Vec<PathBuf>,
    /// Where cargo puts its output; default: target/claimsmith-rules in the workspace.
    #[arg(long)]
    target_dir: Option<PathBuf>,
}

/// The rule crate folders named, or every crate under ./rules.
pub(super) fn rule_dirs(given: Vec<PathBuf>) -> anyhow::Result<Vec<PathBuf>> {
    let dirs = if given.is_empty() {
        let mut dirs = rule_crate::discover("rules".as_ref())
            .context("cannot list ./rules; name the rule crate folders")?;
        // JavaScript rules may live in ./actions: a crate-less folder under a workspace's
        // `rules/*` member glob would break the workspace.
        if Path::new("actions").is_dir() {
            dirs.extend(rule_crate::discover("actions".as_ref()).context("cannot list ./actions")?);
        }
        dirs
    } else {
        given
    };
    if dirs.is_empty() {
        anyhow::bail!("no rule crates found");
    }
    Ok(dirs)
}

/// Build the crate in `dir` (into `target_dir`, else the workspace's); the build and its bytes.
pub(super) fn build_module(
    dir: &Path,
    target_dir: Option<&Path>,
) -> anyhow::Result<(BuiltRule, Vec<u8>)> {
    let target_dir = match target_dir {
        Some(target) => target.to_owned(),
        None => rule_crate::default_target_dir(dir),
    };
    let built = rule_crate::build(dir, &target_dir)?;
    let bytes = std::fs::read(&built.module)
        .with_context(|| format!("cannot read {}", built.module.display()))?;
    Ok((built, bytes))
}

pub fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let dirs = rule_dirs(args.rule_dirs)?;
    for dir in dirs {
        let (built, bytes) = build_module(&dir, args.target_dir.as_deref())?;
        let spec = RuleSpec {
            name: built.package.clone(),
            limits: Limits::default(),
            ..RuleSpec::default()
        };
        let pipeline = Pipeline::builder()
            .sandbox(SandboxConfig {
                engines: 1,
                ..SandboxConfig::default()
            })
            .rule(spec, bytes.clone())
            .build()?;
        let rule = &pipeline.rules()[0];
        eprintln!(
            "built {}: {} bytes, exports {}\n  sha256 = \"{}\"\n  {}",
            built.package,
            bytes.len(),
            rule.export_names().join(", "),
            rule.sha256(),
            super::check::reads_line(rule)
        );
        println!("{}", built.module.display());
    }
    Ok(ExitCode::SUCCESS)
}
