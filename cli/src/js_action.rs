//! JavaScript rules: a rule folder with an `action.js` and no Cargo.toml holds an Auth0
//! post-login Action, run unchanged. `claimsmith build` refuses the Auth0 APIs a rule cannot have
//! (`api.redirect`, `api.cache`, `require`, `fetch`), named with their line; builds the guest
//! runtime once (`js/runtime`: Boa inside a guest ABI version 5 module, no action in it); then,
//! per action, writes the source into an instance of it, runs its `wizer.initialize` (the shim
//! and the action evaluated) and snapshots that instance with wizer into the rule's module.

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
/// `api.redirect`, `api.cache`, `api.prompt`, `api.samlResponse`, `api.refreshToken`,
/// `api.rules`, `api.authentication.enrollWithAny` / `recordMethod` / `setPrimaryUser`,
/// `api.session.revoke`, `require(...)` and `fetch(...)`. Comments are skipped.
pub fn unsupported_uses(source: &str) -> Vec<(usize, &'static str)> {
    const PATTERNS: &[(&str, &str)] = &[
        ("api.redirect", "api.redirect"),
        ("api.cache", "api.cache"),
        ("api.prompt", "api.prompt"),
        ("api.samlResponse", "api.samlResponse"),
        ("api.refreshToken", "api.refreshToken"),
        ("api.rules", "api.rules"),
        (
            "api.authentication.enrollWithAny",
            "api.authentication.enrollWithAny",
        ),
        (
            "api.authentication.recordMethod",
            "api.authentication.recordMethod",
        ),
        (
            "api.authentication.setPrimaryUser",
            "api.authentication.setPrimaryUser",
        ),
        ("api.session.revoke", "api.session.revoke"),
        ("require(", "require()"),
        ("fetch(", "fetch()"),
    ];
    let mut found = Vec::new();
    let mut in_block = false;
    for (i, line) in source.lines().enumerate() {
        let code = without_comments(line, &mut in_block);
        let code = code.as_str();
        for (pattern, name) in PATTERNS {
            let hit = code.match_indices(pattern).any(|(at, _)| {
                // A whole name: `xfetch(` or `.require(` of some other object is not the global.
                let before = code[..at].chars().next_back();
                // And whole at its end: `api.rulesEngine` is not `api.rules`.
                let after = code[at + pattern.len()..].chars().next();
                let name_char = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
                let joined_before = matches!(before, Some(c) if name_char(c) || (c == '.' && !pattern.starts_with("api.")));
                let joined_after = !pattern.ends_with('(') && after.is_some_and(name_char);
                !(joined_before || joined_after)
            });
            if hit {
                found.push((i + 1, *name));
            }
        }
    }
    found
}

/// `line` without its comments: `// ...` to its end and `/* ... */` (which may run across lines:
/// `in_block` carries that from one line to the next), each block replaced by a space.
fn without_comments(line: &str, in_block: &mut bool) -> String {
    let mut code = String::with_capacity(line.len());
    let mut rest = line;
    loop {
        if *in_block {
            match rest.find("*/") {
                Some(end) => {
                    *in_block = false;
                    code.push(' ');
                    rest = &rest[end + 2..];
                }
                None => return code,
            }
        }
        let line_comment = rest.find("//");
        let block = rest.find("/*");
        match (line_comment, block) {
            (Some(l), b) if b.is_none_or(|b| l < b) => {
                code.push_str(&rest[..l]);
                return code;
            }
            (_, Some(b)) => {
                code.push_str(&rest[..b]);
                *in_block = true;
                rest = &rest[b + 2..];
            }
            _ => {
                code.push_str(rest);
                return code;
            }
        }
    }
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
    let runtime = build_runtime(dir, target_dir)?;
    let runtime = std::fs::read(&runtime).map_err(BuildError::Spawn)?;
    let module = snapshot(&runtime, &source).map_err(|e| BuildError::JavaScript {
        path: dir.join(ACTION_FILE),
        message: format!("{e:#}"),
    })?;
    let out = target_dir.join("js").join(format!("{name}.wasm"));
    std::fs::write(&out, module).map_err(BuildError::Spawn)?;
    Ok(BuiltRule {
        package: name,
        dir: dir.to_owned(),
        module: out,
    })
}

/// Build the guest runtime (once: later builds are cargo's no-op) into `<target_dir>/js`; the
/// path of its module, which has no action in it yet.
pub fn build_runtime(dir: &Path, target_dir: &Path) -> Result<PathBuf, BuildError> {
    let js_target = target_dir.join("js");
    let status = rule_crate::cargo_build_with(
        &runtime_dir(),
        &js_target,
        &[],
        JS_STACK_BYTES,
        &[],
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
    Ok(js_target
        .join(rule_crate::WASM_TARGET)
        .join("release")
        .join("claimsmith_js_runtime.wasm"))
}

/// What the runtime reported through `claimsmith::fail` while it evaluated the action.
#[derive(Default)]
struct BuildState {
    failure: Option<String>,
}

/// The runtime with `source` written in and `wizer.initialize` run (the shim and the action
/// evaluated), snapshotted by wizer into a module whose logins start there.
pub fn snapshot(runtime: &[u8], source: &str) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context as _;
    use wasmtime::{Caller, Engine, Linker, Module, Store};

    let mut wizer = wasmtime_wizer::Wizer::new();
    wizer.init_func("wizer.initialize");
    let (cx, instrumented) = wizer
        .instrument(runtime)
        .map_err(|e| anyhow::anyhow!("cannot instrument the runtime: {e}"))?;
    let engine = Engine::default();
    let module = Module::new(&engine, &instrumented)
        .map_err(|e| anyhow::anyhow!("cannot compile the runtime: {e}"))?;
    let mut store = Store::new(&engine, BuildState::default());
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap(
            "claimsmith",
            "fail",
            |mut caller: Caller<'_, BuildState>, ptr: u32, len: u32| {
                let memory = caller.get_export("memory").and_then(|e| e.into_memory());
                let text = memory
                    .and_then(|m| {
                        m.data(&caller)
                            .get(ptr as usize..(ptr as usize).saturating_add(len as usize))
                            .map(|b| String::from_utf8_lossy(b).into_owned())
                    })
                    .unwrap_or_else(|| "<unreadable reason>".into());
                caller.data_mut().failure.get_or_insert(text);
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The runtime's `console.*` import: a line logged outside a login throws in the runtime
    // before it gets here, so evaluating the action never calls it.
    linker
        .func_wrap(
            "claimsmith",
            "log",
            |_: Caller<'_, BuildState>, _level: i32, _ptr: u32, _len: u32| {},
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let instance = linker
        .instantiate(&mut store, &module)
        .map_err(|e| anyhow::anyhow!("cannot instantiate the runtime: {e}"))?;
    let place = instance
        .get_typed_func::<u32, u32>(&mut store, "claimsmith_js_source")
        .map_err(|e| anyhow::anyhow!("the runtime has no claimsmith_js_source: {e}"))?;
    let at = place
        .call(&mut store, source.len() as u32)
        .map_err(|e| anyhow::anyhow!("claimsmith_js_source failed: {e}"))?;
    let memory = instance
        .get_memory(&mut store, "memory")
        .context("the runtime exports no memory")?;
    memory
        .write(&mut store, at as usize, source.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot write the source: {e}"))?;
    let init = instance
        .get_typed_func::<(), ()>(&mut store, wizer.get_init_func())
        .map_err(|e| anyhow::anyhow!("the runtime has no init function: {e}"))?;
    if let Err(e) = init.call(&mut store, ()) {
        return Err(match store.data_mut().failure.take() {
            Some(reason) => anyhow::anyhow!("{reason}"),
            None => anyhow::anyhow!("evaluating the action trapped: {e}"),
        });
    }
    let mut state = Instance {
        store: &mut store,
        instance,
    };
    block_on(wizer.snapshot(&cx, &mut state)).map_err(|e| anyhow::anyhow!("snapshot: {e}"))
}

/// The state wizer reads after initialisation, from our own wasmtime instance.
struct Instance<'a> {
    store: &'a mut wasmtime::Store<BuildState>,
    instance: wasmtime::Instance,
}

impl wasmtime_wizer::InstanceState for Instance<'_> {
    async fn global_get(
        &mut self,
        name: &str,
        _type_hint: wasmtime_wizer::ValType,
    ) -> wasmtime_wizer::SnapshotVal {
        use wasmtime::Val;
        use wasmtime_wizer::SnapshotVal;
        let global = self
            .instance
            .get_global(&mut *self.store, name)
            .expect("wizer names an exported global");
        match global.get(&mut *self.store) {
            Val::I32(x) => SnapshotVal::I32(x),
            Val::I64(x) => SnapshotVal::I64(x),
            Val::F32(x) => SnapshotVal::F32(x),
            Val::F64(x) => SnapshotVal::F64(x),
            Val::V128(x) => SnapshotVal::V128(x.as_u128()),
            other => panic!("a global wizer cannot snapshot: {other:?}"),
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        let memory = self
            .instance
            .get_memory(&mut *self.store, name)
            .expect("wizer names an exported memory");
        contents(memory.data(&*self.store))
    }
}

/// Run a future that never waits (wizer's snapshot over our synchronous instance).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
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
        let source =
            "/**\n * api.prompt is not used here\n */\nlet a = 1; /* api.cache */ let b = 2;\n";
        assert_eq!(unsupported_uses(source), vec![]);
        let source = "api.prompt.render('form');\napi.rules.wasExecuted('r');\napi.rulesEngine = 1;\napi.refreshToken.revoke('x');\napi.authentication.recordMethod('x'); api.session.revoke('y');\n";
        assert_eq!(
            unsupported_uses(source),
            vec![
                (1, "api.prompt"),
                (2, "api.rules"),
                (4, "api.refreshToken"),
                (5, "api.authentication.recordMethod"),
                (5, "api.session.revoke"),
            ]
        );
    }
}
