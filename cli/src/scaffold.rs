//! `claimsmith new`: a rule crate that builds and passes its tests as created: `Cargo.toml`
//! (joining the enclosing Cargo workspace, or standing alone outside one), `src/lib.rs` with a
//! commented example rule and native unit tests, and one fixture.

use std::path::{Component, Path, PathBuf};

/// The SDK this binary was built from, used when the new crate is not in a workspace that
/// already names `claimsmith-sdk`.
pub const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk");

/// What was created.
#[derive(Debug, Clone)]
pub struct Scaffold {
    /// The package name.
    pub name: String,
    /// The workspace manifest it joined, if any.
    pub workspace: Option<PathBuf>,
    /// Whether it had to be added to `[workspace] members` (false: a glob already covers it).
    pub added_to_members: bool,
}

/// Why a crate could not be created; nothing is left behind.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// Not a usable crate name.
    #[error(
        "{0:?} is not a usable rule name: use lowercase letters, digits and '-', starting with a letter"
    )]
    BadName(String),
    /// The folder exists.
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    /// The workspace already has a package of this name.
    #[error("the workspace in {} already has a package named {name:?}; pick another name", workspace.display())]
    NameTaken {
        /// The name asked for.
        name: String,
        /// The workspace's Cargo.toml.
        workspace: PathBuf,
    },
    /// The SDK was not found.
    #[error("cannot find claimsmith-sdk at {}; pass --sdk PATH (the sdk/ folder of a claimsmith checkout)", .0.display())]
    NoSdk(PathBuf),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The workspace manifest could not be read or edited.
    #[error("{}: {message}", path.display())]
    Manifest {
        /// The workspace's Cargo.toml.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Create rule crate `name` under `parent`; `sdk` overrides where the SDK is.
pub fn create(name: &str, parent: &Path, sdk: Option<&Path>) -> Result<Scaffold, ScaffoldError> {
    check_name(name)?;
    let parent_existed = parent.is_dir();
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let parent = parent.canonicalize().map_err(io(parent))?;
    let created = create_in(name, &parent, sdk);
    if created.is_err() && !parent_existed {
        // Only removes the folder this call made, and only while it is empty.
        let _ = std::fs::remove_dir(&parent);
    }
    created
}

fn create_in(name: &str, parent: &Path, sdk: Option<&Path>) -> Result<Scaffold, ScaffoldError> {
    let dir = parent.join(name);
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    let workspace = find_workspace(parent)?;
    if let Some((root, _)) = &workspace
        && let Some(names) = package_names(root)
        && names.iter().any(|n| n == name)
    {
        return Err(ScaffoldError::NameTaken {
            name: name.to_owned(),
            workspace: root.clone(),
        });
    }
    let sdk_in_workspace = workspace.as_ref().is_some_and(|(_, doc)| {
        doc.get("workspace")
            .and_then(|w| w.get("dependencies"))
            .and_then(|d| d.get("claimsmith-sdk"))
            .is_some()
    });
    let sdk_line = if sdk_in_workspace {
        "claimsmith-sdk.workspace = true".to_owned()
    } else {
        let sdk = sdk
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from(BUILT_SDK));
        let sdk = sdk
            .canonicalize()
            .ok()
            .filter(|p| p.join("Cargo.toml").is_file())
            .ok_or_else(|| ScaffoldError::NoSdk(sdk.clone()))?;
        // Relative when both sit under one folder (a checkout moves as a whole), else absolute.
        let shared = dir
            .components()
            .zip(sdk.components())
            .take_while(|(a, b)| a == b)
            .count();
        let path = if shared > 1 {
            relative(&dir, &sdk)
        } else {
            sdk.clone()
        };
        let path = path.display().to_string();
        format!("claimsmith-sdk = {{ path = {path:?} }}")
    };
    let mut manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
         [lib]\n# cdylib: the wasm module the issuer loads; rlib: so `cargo test` runs the rule natively.\n\
         crate-type = [\"cdylib\", \"rlib\"]\n\n[dependencies]\n{sdk_line}\n"
    );
    if workspace.is_none() {
        manifest
            .push_str("\n# Not inside a Cargo workspace: this crate is its own.\n[workspace]\n");
    }

    let files = [
        (dir.join("Cargo.toml"), manifest),
        (dir.join("src").join("lib.rs"), lib_rs(name)),
        (
            dir.join("fixtures").join("example.json"),
            FIXTURE.to_owned(),
        ),
    ];
    // One non-recursive create: if the folder appeared meanwhile, it is someone else's.
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(ScaffoldError::Exists(dir));
        }
        Err(e) => return Err(io(&dir)(e)),
    }
    let written = (|| {
        for (path, text) in &files {
            std::fs::create_dir_all(path.parent().expect("a file in a folder"))
                .map_err(io(path))?;
            std::fs::write(path, text).map_err(io(path))?;
        }
        match &workspace {
            Some((root, doc)) => join_members(root, doc.clone(), &dir),
            None => Ok(false),
        }
    })();
    match written {
        Ok(added_to_members) => Ok(Scaffold {
            name: name.to_owned(),
            workspace: workspace.map(|(root, _)| root),
            added_to_members,
        }),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

/// An I/O error on `path`, for `map_err`.
fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ScaffoldError {
    let path = path.to_owned();
    move |source| ScaffoldError::Io { path, source }
}

fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ScaffoldError::BadName(name.to_owned()))
    }
}

/// The nearest `Cargo.toml` at or above `dir` with a `[workspace]` table, parsed.
fn find_workspace(dir: &Path) -> Result<Option<(PathBuf, toml_edit::DocumentMut)>, ScaffoldError> {
    for folder in dir.ancestors() {
        let manifest = folder.join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let doc: toml_edit::DocumentMut =
            text.parse()
                .map_err(|e: toml_edit::TomlError| ScaffoldError::Manifest {
                    path: manifest.clone(),
                    message: e.to_string(),
                })?;
        if doc.get("workspace").is_some_and(|w| w.is_table_like()) {
            return Ok(Some((manifest, doc)));
        }
    }
    Ok(None)
}

/// Add `dir` to the workspace's `members` unless a member pattern covers it; whether it added.
fn join_members(
    root: &Path,
    mut doc: toml_edit::DocumentMut,
    dir: &Path,
) -> Result<bool, ScaffoldError> {
    let manifest_error = |message: String| ScaffoldError::Manifest {
        path: root.to_owned(),
        message,
    };
    let base = root.parent().expect("a manifest in a folder");
    let member = relative(base, dir).to_string_lossy().replace('\\', "/");
    let workspace = doc["workspace"]
        .as_table_like_mut()
        .ok_or_else(|| manifest_error("[workspace] is not a table".into()))?;
    if workspace.get("members").is_none() {
        workspace.insert("members", toml_edit::value(toml_edit::Array::new()));
    }
    let members = workspace
        .get_mut("members")
        .and_then(|m| m.as_array_mut())
        .ok_or_else(|| manifest_error("workspace.members is not an array".into()))?;
    if members
        .iter()
        .filter_map(|m| m.as_str())
        .any(|pattern| glob_match(pattern.trim_end_matches('/'), &member))
    {
        return Ok(false);
    }
    members.push(member);
    // Written beside and renamed over, so a failed write never leaves a truncated manifest.
    let temp = root.with_extension(format!("toml.claimsmith-new-{}", std::process::id()));
    let replaced =
        std::fs::write(&temp, doc.to_string()).and_then(|()| std::fs::rename(&temp, root));
    if let Err(source) = replaced {
        let _ = std::fs::remove_file(&temp);
        return Err(ScaffoldError::Io {
            path: root.to_owned(),
            source,
        });
    }
    Ok(true)
}

/// The package names of the workspace at `root`, per `cargo metadata`; `None` when cargo cannot
/// tell (the new crate then cannot make it worse).
fn package_names(root: &Path) -> Option<Vec<String>> {
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(root)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(
        metadata["packages"]
            .as_array()?
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect(),
    )
}

/// Cargo's member patterns: path segments, each with `*` and `?` wildcards.
fn glob_match(pattern: &str, path: &str) -> bool {
    let (pattern, path): (Vec<&str>, Vec<&str>) = (
        pattern
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect(),
        path.split('/').filter(|s| !s.is_empty()).collect(),
    );
    pattern.len() == path.len()
        && pattern
            .iter()
            .zip(&path)
            .all(|(p, s)| segment_match(p.as_bytes(), s.as_bytes()))
}

fn segment_match(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            segment_match(&p[1..], s) || (!s.is_empty() && segment_match(p, &s[1..]))
        }
        (Some(b'?'), Some(_)) => segment_match(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => segment_match(&p[1..], &s[1..]),
        _ => false,
    }
}

/// `to` relative to folder `from` (both absolute).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to[common..] {
        out.push(part.as_os_str());
    }
    out
}

fn lib_rs(name: &str) -> String {
    LIB_RS.replace("{name}", name)
}

const LIB_RS: &str = r#"//! `{name}`: a claimsmith post-login rule.
//!
//! It runs right after each login, in a fresh sandbox, and records what it decides on `api`.
//! The issuer checks those decisions against its claim policy and signs them into the tokens.
//!
//! - `cargo test` runs the unit tests below natively;
//! - `claimsmith test rules/{name}` runs `fixtures/*.json` through the real wasm engine;
//! - `claimsmith build rules/{name}` prints the module path to put in the issuer's config.

use claimsmith_sdk::{Api, Event};

/// Used when the rule's `[rules.config]` names no `namespace`.
const DEFAULT_NAMESPACE: &str = "https://example.com";

/// Auth0's `exports.onExecutePostLogin = async (event, api) => { ... }`, in Rust.
pub fn on_execute_post_login(event: &Event, api: &mut Api) {
    // The issuer's `[rules.config]` table arrives as `event.configuration`.
    let namespace = event
        .config_str("namespace")
        .unwrap_or(DEFAULT_NAMESPACE)
        .trim_end_matches('/');

    // Custom claims live under a namespace the issuer allows; anything else fails the rule
    // with the claim named (Auth0 would drop it silently).
    if let Some((_, domain)) = event.user.email.as_deref().and_then(|e| e.rsplit_once('@')) {
        api.id_token()
            .set_custom_claim(format!("{namespace}/email_domain"), domain);
    }
}

// Exports the function as a claimsmith module when built for wasm32-unknown-unknown. `reads`
// names the parts of the event the rule reads: the host hands it those and no others (the rest
// reads as empty here and in `testing::run`), so add a part here when the rule starts reading it.
claimsmith_sdk::export_rule!(on_execute_post_login, reads = [user, configuration]);

#[cfg(test)]
mod tests {
    use super::*;
    use claimsmith_sdk::{json, testing};

    #[test]
    fn the_email_domain_goes_into_the_id_token() {
        let event = testing::event(json!({
            "user": {"user_id": "auth0|1", "email": "alice@acme.example"},
            "configuration": {"namespace": "https://example.com"}
        }));
        let result = testing::run(RULE, &event);
        assert_eq!(
            result.id_token_claim("https://example.com/email_domain"),
            Some(&json!("acme.example"))
        );
    }

    #[test]
    fn a_user_without_an_email_gets_no_claim() {
        let event = testing::event(json!({"user": {"user_id": "auth0|2"}}));
        let result = testing::run(RULE, &event);
        assert!(result.commands.is_empty());
    }
}
"#;

const FIXTURE: &str = r#"{
  "event": {
    "user": {
      "user_id": "auth0|6740a1f3c2b9e81d4f0a7b21",
      "email": "alice@acme.example",
      "email_verified": true,
      "name": "Alice Moreau"
    },
    "authorization": {"roles": ["admin"]},
    "client": {"client_id": "spa-client", "name": "Example Dashboard"},
    "connection": {"id": "con_1", "name": "Username-Password-Authentication", "strategy": "auth0"},
    "transaction": {"requested_scopes": ["openid", "profile", "email"]},
    "stats": {"logins_count": 12}
  },
  "configuration": {"namespace": "https://example.com"},
  "expect": {
    "id_token": {"https://example.com/email_domain": "acme.example"},
    "denied": null
  }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_cargo_package_rules() {
        assert!(check_name("email-domain").is_ok());
        assert!(check_name("r2").is_ok());
        for bad in ["", "Email", "2fa", "a_b", "a-", "a/b", "../x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn member_globs_match_like_cargo() {
        assert!(glob_match("rules/*", "rules/email-domain"));
        assert!(glob_match("./rules/*", "rules/x"));
        assert!(glob_match("rules/email-*", "rules/email-domain"));
        assert!(!glob_match("rules/*", "other/x"));
        assert!(!glob_match("rules/*", "rules/a/b"));
        assert!(glob_match("rules/a", "rules/a"));
    }

    #[test]
    fn relative_paths_walk_up_then_down() {
        assert_eq!(
            relative(Path::new("/w/rules/x"), Path::new("/w/sdk")),
            PathBuf::from("../../sdk")
        );
        assert_eq!(
            relative(Path::new("/w"), Path::new("/w/rules/x")),
            PathBuf::from("rules/x")
        );
    }
}
