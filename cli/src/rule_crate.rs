//! Building rule crates to wasm modules: `cargo build` for `wasm32-unknown-unknown` with a
//! size-optimised profile (the event-parsing crates excepted, see [`SPEED_OPTIMISED`]) and a small
//! stack, in a target folder of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The rustc target rules compile to.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Crates on every login's hot path (reading the event, writing the result), built for speed
/// while the rest of the module is built for size: fewer instructions per login for a somewhat
/// larger module (docs/performance-log.md has the figures).
pub const SPEED_OPTIMISED: &[&str] = &["serde", "serde_core", "serde_json", "claimsmith-sdk"];

/// Guest stack size, in bytes, linked into every module.
pub const GUEST_STACK_BYTES: usize = 64 * 1024;

/// A rule crate that was built.
#[derive(Debug, Clone)]
pub struct BuiltRule {
    /// The crate's package name.
    pub package: String,
    /// The crate folder.
    pub dir: PathBuf,
    /// The module file.
    pub module: PathBuf,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The wasm target is not installed.
    #[error("the {WASM_TARGET} target is not installed; run: rustup target add {WASM_TARGET}")]
    MissingTarget,
    /// Not a crate folder.
    #[error("{}: no Cargo.toml here; a rule is a crate folder", .0.display())]
    NotACrate(PathBuf),
    /// Cargo.toml has no package name.
    #[error("{}: cannot read the package name: {message}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A JavaScript action that cannot be built.
    #[error("{}: {message}", path.display())]
    JavaScript {
        /// The action file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// cargo failed.
    #[error("building {} failed (cargo {status}); its output is above", dir.display())]
    Cargo {
        /// The crate folder.
        dir: PathBuf,
        /// cargo's exit status.
        status: String,
    },
    /// cargo could not be run.
    #[error("cannot run cargo: {0}")]
    Spawn(std::io::Error),
}

/// Whether the wasm target's standard library is installed for the active toolchain.
pub fn wasm_target_installed() -> bool {
    let Ok(output) = Command::new(rustc()).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(WASM_TARGET)
        .join("lib")
        .is_dir()
}

/// The rules under `rules_dir` (each sub-folder with a Cargo.toml, or with an `action.js`),
/// sorted.
pub fn discover(rules_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(rules_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").is_file() || crate::js_action::is_action_dir(p))
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// The package name in `dir/Cargo.toml`; for a JavaScript rule folder, the folder's name.
pub fn package_name(dir: &Path) -> Result<String, BuildError> {
    if crate::js_action::is_action_dir(dir) {
        return Ok(crate::js_action::rule_name(dir));
    }
    let manifest = dir.join("Cargo.toml");
    let text =
        std::fs::read_to_string(&manifest).map_err(|_| BuildError::NotACrate(dir.to_owned()))?;
    let value: toml::Table = toml::from_str(&text).map_err(|e| BuildError::Manifest {
        path: manifest.clone(),
        message: e.to_string(),
    })?;
    value
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_owned)
        .ok_or_else(|| BuildError::Manifest {
            path: manifest,
            message: "no [package] name".into(),
        })
}

/// Build one rule crate into `target_dir`; cargo's own output goes to stderr.
pub fn build(dir: &Path, target_dir: &Path) -> Result<BuiltRule, BuildError> {
    build_with_features(dir, target_dir, &[])
}

/// [`build`] with cargo features turned on, such as `claimsmith-sdk/abi-v1` to build a guest ABI
/// version 1 module for a host that predates version 2.
pub fn build_with_features(
    dir: &Path,
    target_dir: &Path,
    features: &[&str],
) -> Result<BuiltRule, BuildError> {
    if !wasm_target_installed() {
        return Err(BuildError::MissingTarget);
    }
    if crate::js_action::is_action_dir(dir) {
        return crate::js_action::build(dir, target_dir);
    }
    let package = package_name(dir)?;
    let status = cargo_build(dir, target_dir, features, GUEST_STACK_BYTES, &[])?;
    if !status.success() {
        return Err(BuildError::Cargo {
            dir: dir.to_owned(),
            status: status.to_string(),
        });
    }
    let module = target_dir
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    Ok(BuiltRule {
        package,
        dir: dir.to_owned(),
        module,
    })
}

/// `cargo build` of the crate in `dir` for the wasm target, in the rule profile, with a
/// `stack_bytes` guest stack, extra `rustflags` and extra environment.
pub(crate) fn cargo_build(
    dir: &Path,
    target_dir: &Path,
    features: &[&str],
    stack_bytes: usize,
    env: &[(&str, &std::ffi::OsStr)],
) -> Result<std::process::ExitStatus, BuildError> {
    cargo_build_with(
        dir,
        target_dir,
        features,
        stack_bytes,
        env,
        SPEED_OPTIMISED,
        "\"s\"",
        &[],
    )
}

/// [`cargo_build`] with the crates built for speed, the opt-level of the rest, and extra
/// rustflags.
#[allow(clippy::too_many_arguments)]
pub(crate) fn cargo_build_with(
    dir: &Path,
    target_dir: &Path,
    features: &[&str],
    stack_bytes: usize,
    env: &[(&str, &std::ffi::OsStr)],
    speed_optimised: &[&str],
    opt_level: &str,
    rustflags: &[&str],
) -> Result<std::process::ExitStatus, BuildError> {
    let extra: String = rustflags.iter().map(|f| format!(", {f:?}")).collect();
    Command::new(cargo())
        .arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .args(["--release", "--target", WASM_TARGET, "--lib"])
        .arg("--target-dir")
        .arg(target_dir)
        .args(features.iter().flat_map(|feature| ["--features", feature]))
        .arg("--config")
        .arg(format!("profile.release.opt-level={opt_level}"))
        .args(speed_optimised.iter().flat_map(|package| {
            [
                "--config".to_owned(),
                format!("profile.release.package.{package}.opt-level=3"),
            ]
        }))
        .args(["--config", "profile.release.lto=true"])
        .args(["--config", "profile.release.codegen-units=1"])
        .args(["--config", "profile.release.panic=\"abort\""])
        .args(["--config", "profile.release.strip=true"])
        .args(["--config", "profile.release.debug=false"])
        .arg("--config")
        .arg(format!(
            "target.{WASM_TARGET}.rustflags=[\"-C\", \"link-arg=-zstack-size={stack_bytes}\"{extra}]"
        ))
        .envs(env.iter().copied())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .stdout(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit())
        .status()
        .map_err(BuildError::Spawn)
}

/// The target folder for rule builds next to the workspace of `dir` (or of the current folder).
pub fn default_target_dir(dir: &Path) -> PathBuf {
    let output = Command::new(cargo())
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .current_dir(dir)
        .output();
    match output {
        Ok(out) if out.status.success() => {
            let manifest = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            manifest
                .parent()
                .unwrap_or(Path::new("."))
                .join("target")
                .join("claimsmith-rules")
        }
        _ => dir.join("target").join("claimsmith-rules"),
    }
}

pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn rustc() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())
}
