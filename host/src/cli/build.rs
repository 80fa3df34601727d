//! `claimsmith build`: compile rule crates to wasm, check each module against the ABI, print
//! each module's path on stdout (size and exports on stderr).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use claimsmith::engine::{ClaimPolicy, Limits, Rule, RuleSpec, Sandbox, SandboxConfig};
use claimsmith::rule_crate;

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Rule crate folders; default: every crate under ./rules.
    rule_dirs: Vec<PathBuf>,
    /// Where cargo puts its output; default: target/claimsmith-rules in the workspace.
    #[arg(long)]
    target_dir: Option<PathBuf>,
}

pub fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let dirs = if args.rule_dirs.is_empty() {
        rule_crate::discover("rules".as_ref())
            .context("cannot list ./rules; name the rule crate folders")?
    } else {
        args.rule_dirs
    };
    if dirs.is_empty() {
        anyhow::bail!("no rule crates found");
    }
    let sandbox = Sandbox::new(SandboxConfig::default()).map_err(anyhow::Error::msg)?;
    let policy = ClaimPolicy::new(Vec::new()).map_err(anyhow::Error::msg)?;
    for dir in dirs {
        let target_dir = match &args.target_dir {
            Some(dir) => dir.clone(),
            None => rule_crate::default_target_dir(&dir),
        };
        let built = rule_crate::build(&dir, &target_dir)?;
        let bytes = std::fs::read(&built.module)
            .with_context(|| format!("cannot read {}", built.module.display()))?;
        let spec = RuleSpec {
            name: built.package.clone(),
            limits: Limits::default(),
            ..RuleSpec::default()
        };
        let rule = Rule::from_bytes(&sandbox, &policy, spec, &bytes)?;
        eprintln!(
            "built {}: {} bytes, exports {}",
            built.package,
            bytes.len(),
            rule.module().export_names().join(", ")
        );
        println!("{}", built.module.display());
    }
    Ok(ExitCode::SUCCESS)
}
