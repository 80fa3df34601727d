//! `claimsmith test [RULE_DIR...]`: build each rule crate, run its `fixtures/*.json` through the
//! engine as real logins, print `ok` or `FAIL` with a diff per fixture; exit 1 if any fails,
//! 2 if a fixture or module cannot be used.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use crate::fixture::{self, Fixture, RunSettings};
use claimsmith::{CacheSetting, Config};
use claimsmith_engine::RuleSpec;

use super::build::{build_module, rule_dirs};
use super::{EXIT_BAD_INPUT, EXIT_FAILURE};

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Rule folders (crates, or JavaScript `action.js` folders); default: every one under
    /// ./rules and ./actions.
    rule_dirs: Vec<PathBuf>,
    /// Take the claim namespaces from this issuer config (a fixture's own `namespaces` wins).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where cargo puts its output; default: target/claimsmith-rules in the workspace.
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Read the fixtures from this folder instead of each crate's `fixtures/` (a candidate's
    /// comparison fixtures, kept beside the config they compare under).
    #[arg(long)]
    fixtures: Option<PathBuf>,
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    broken: usize,
}

pub fn run(args: TestArgs) -> anyhow::Result<ExitCode> {
    if let Some(folder) = &args.fixtures
        && !folder.is_dir()
    {
        bail!("--fixtures {}: no such folder", folder.display());
    }
    let dirs = rule_dirs(args.rule_dirs)?;
    let config = args.config.as_deref().map(Config::load).transpose()?;
    let mut base = RunSettings {
        cache: CacheSetting::default_dir(),
        ..RunSettings::default()
    };
    if let Some(config) = &config {
        base.namespaces = config.namespaces.clone();
        base.claims_bytes = config.claims_bytes;
        base.sandbox = config.sandbox.clone();
    }
    let mut tally = Tally::default();
    for dir in &dirs {
        let (built, module) = build_module(dir, args.target_dir.as_deref())?;
        let folder = args
            .fixtures
            .clone()
            .unwrap_or_else(|| dir.join("fixtures"));
        let fixtures = fixture::discover_in(&folder)
            .with_context(|| format!("cannot list {}", folder.display()))?;
        if fixtures.is_empty() {
            // Fixtures asked for by name must be there: a mistyped folder is not a pass.
            if args.fixtures.is_some() {
                bail!("--fixtures {}: no *.json fixtures in it", folder.display());
            }
            println!(
                "--   {}: no fixtures in {}",
                built.package,
                folder.display()
            );
        }
        let rule = config
            .as_ref()
            .and_then(|c| configured_rule(c, &built.module));
        let shadows = match (&config, rule.as_ref().and_then(|r| r.shadows.as_ref())) {
            (Some(config), Some(target)) => {
                let target = config
                    .rules
                    .iter()
                    .find(|r| &r.spec.name == target)
                    .with_context(|| format!("no rule {target:?} in the config"))?;
                let bytes = std::fs::read(&target.module)
                    .with_context(|| format!("cannot read {}", target.module.display()))?;
                Some((target.spec.clone(), bytes))
            }
            _ => None,
        };
        let settings = RunSettings {
            rule,
            shadows,
            ..base.clone()
        };
        for path in fixtures {
            run_one(&built.package, &path, &module, &settings, &mut tally);
        }
    }
    println!(
        "{} passed, {} failed{}",
        tally.passed,
        tally.failed,
        if tally.broken > 0 {
            format!(", {} could not run", tally.broken)
        } else {
            String::new()
        }
    );
    Ok(if tally.broken > 0 {
        ExitCode::from(EXIT_BAD_INPUT)
    } else if tally.failed > 0 {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}

/// The config's entry for the module at `module`, if it runs it.
fn configured_rule(config: &Config, module: &Path) -> Option<RuleSpec> {
    let module = module.canonicalize().ok()?;
    config
        .rules
        .iter()
        .find(|rule| rule.module.canonicalize().ok().as_ref() == Some(&module))
        .map(|rule| rule.spec.clone())
}

fn run_one(package: &str, path: &Path, module: &[u8], settings: &RunSettings, tally: &mut Tally) {
    let label = format!(
        "{package}/{}",
        path.file_name().unwrap_or_default().to_string_lossy()
    );
    let checked = Fixture::load(path).and_then(|f| f.check(path, module, settings));
    match checked {
        Ok(mismatches) if mismatches.is_empty() => {
            tally.passed += 1;
            println!("ok   {label}");
        }
        Ok(mismatches) => {
            tally.failed += 1;
            println!("FAIL {label}\n{}", fixture::diff(&mismatches));
        }
        Err(e) => {
            tally.broken += 1;
            println!("ERR  {label}\n  {e}\n");
        }
    }
}
