//! JavaScript rules: a rule folder with an `action.js` and no Cargo.toml holds an Auth0
//! post-login Action, run unchanged. `claimsmith build` compiles the guest runtime
//! (`js/runtime`: Boa inside a guest ABI version 1 module) with the action's source compiled in,
//! after refusing the Auth0 APIs a rule cannot have (`api.redirect`, `api.cache`, `require`,
//! `fetch`), named with their line.

use std::path::{Path, PathBuf};

use crate::rule_crate::{self, BuildError, BuiltRule};

/// The file a JavaScript rule folder holds.
pub const ACTION_FILE: &str = "action.js";

/// The guest stack of a JavaScript module: Boa's parser and interpreter recurse natively.
pub const JS_STACK_BYTES: usize = 1 << 20;

/// Whether `dir` is a JavaScript rule folder: an `action.js` and no Cargo.toml.
pub fn is_action_dir(dir: &Path) -> bool {
    dir.join(ACTION_FILE).is_file() && !dir.join("Cargo.toml").is_file()
}

/// The rule's name: its folder's name.
pub fn rule_name(dir: &Path) -> String {
    dir.canonicalize()
        .unwrap_or_else(|_| dir.to_owned())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "action".into())
}

/// The guest runtime crate: `CLAIMSMITH_JS_RUNTIME`, else `js/runtime` of this source tree.
pub fn runtime_dir() -> PathBuf {
    std::env::var_os("CLAIMSMITH_JS_RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../js/runtime"))
}

/// The Auth0 APIs a rule cannot use that appear in `source`, each with its line (1-based):
/// `api.redirect`, `api.cache`, `require(...)` and `fetch(...)`. Line comments are skipped.
pub fn unsupported_uses(source: &str) -> Vec<(usize, &'static str)> {
    const PATTERNS: &[(&str, &str)] = &[
        ("api.redirect", "api.redirect"),
        ("api.cache", "api.cache"),
        ("require(", "require()"),
        ("fetch(", "fetch()"),
    ];
    let mut found = Vec::new();
    for (i, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        for (pattern, name) in PATTERNS {
            let hit = code.match_indices(pattern).any(|(at, _)| {
                // A whole name: `xfetch(` or `.require(` of some other object is not the global.
                let before = code[..at].chars().next_back();
                !matches!(before, Some(c) if c.is_alphanumeric() || c == '_' || c == '$' || (c == '.' && !pattern.starts_with("api.")))
            });
            if hit {
                found.push((i + 1, *name));
            }
        }
    }
    found
}

/// Build the action in `dir` into `<target_dir>/js/<name>.wasm`.
pub fn build(dir: &Path, target_dir: &Path) -> Result<BuiltRule, BuildError> {
    let name = rule_name(dir);
    let action = dir.join(ACTION_FILE);
    let source = std::fs::read_to_string(&action).map_err(|e| BuildError::JavaScript {
        path: action.clone(),
        message: e.to_string(),
    })?;
    let unsupported = unsupported_uses(&source);
    if !unsupported.is_empty() {
        let list: Vec<String> = unsupported
            .iter()
            .map(|(line, api)| format!("line {line}: {api}"))
            .collect();
        return Err(BuildError::JavaScript {
            path: action,
            message: format!(
                "uses what a claimsmith rule cannot have (no network, no cache, no npm packages): {}",
                list.join(", ")
            ),
        });
    }
    let action = action.canonicalize().map_err(BuildError::Spawn)?;
    let runtime = runtime_dir();
    let js_target = target_dir.join("js");
    let status = rule_crate::cargo_build_with(
        &runtime,
        &js_target,
        &[],
        JS_STACK_BYTES,
        &[("CLAIMSMITH_JS_ACTION", action.as_os_str())],
        &[],
        "3",
        &["--cfg", "getrandom_backend=\"custom\""],
    )?;
    if !status.success() {
        return Err(BuildError::Cargo {
            dir: dir.to_owned(),
            status: status.to_string(),
        });
    }
    let built = js_target
        .join(rule_crate::WASM_TARGET)
        .join("release")
        .join("claimsmith_js_runtime.wasm");
    let module = js_target.join(format!("{name}.wasm"));
    std::fs::copy(&built, &module).map_err(BuildError::Spawn)?;
    Ok(BuiltRule {
        package: name,
        dir: dir.to_owned(),
        module,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_apis_are_found_with_their_line_and_comments_are_not() {
        let source = "exports.onExecutePostLogin = async (event, api) => {\n  // api.cache is not used\n  api.redirect.sendUserTo('x');\n  const r = await fetch('https://x');\n  const y = require('axios');\n  obj.fetch(1); prefetch(2);\n};\n";
        assert_eq!(
            unsupported_uses(source),
            vec![(3, "api.redirect"), (4, "fetch()"), (5, "require()")]
        );
    }
}
