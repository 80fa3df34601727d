//! Shared set-up for the integration tests: the example rules built once through the real
//! `claimsmith build`, keys generated per test, configs written to a temp folder, and the real
//! binary run with its exit code and output.
#![allow(dead_code)]

pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::{Value, json};

/// The `claimsmith` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_claimsmith")
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Build every example rule once (per test binary) with `claimsmith build`; the module path of
/// `rule` (`add-roles` -> `.../add_roles.wasm`).
pub fn module(rule: &str) -> PathBuf {
    static BUILT: OnceLock<Vec<PathBuf>> = OnceLock::new();
    let modules = BUILT.get_or_init(|| {
        let out = Command::new(bin())
            .arg("build")
            .current_dir(workspace())
            .stderr(Stdio::inherit())
            .output()
            .expect("run claimsmith build");
        assert!(out.status.success(), "claimsmith build failed");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(PathBuf::from)
            .collect()
    });
    let file = format!("{}.wasm", rule.replace('-', "_"));
    modules
        .iter()
        .find(|p| p.file_name().unwrap() == file.as_str())
        .unwrap_or_else(|| panic!("{rule} was not built: {modules:?}"))
        .clone()
}

/// A sample event from examples/events.
pub fn event(name: &str) -> Value {
    let path = workspace()
        .join("examples/events")
        .join(format!("{name}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// A temp folder with a generated key and a config; `rules` is the TOML after `[[keys]]`.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Setup {
    /// A config with one key of `alg` and the given `[[rules]]` TOML (module paths may use
    /// `{add-roles}` placeholders, replaced by the built module paths).
    pub fn new(alg: &str, rules: &str) -> Setup {
        Setup::with_header(alg, "", rules)
    }

    /// Like [`Setup::new`] with extra top-level TOML (before `[[keys]]`).
    pub fn with_header(alg: &str, header: &str, rules: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let pem = claimsmith::generate_pem(alg).unwrap();
        std::fs::write(dir.path().join("signing.pem"), pem).unwrap();
        let mut rules = rules.to_owned();
        for name in [
            "add-roles",
            "add-roles-candidate",
            "capabilities",
            "require-verified-email",
            "scopes-from-roles",
            "tenant-from-metadata",
        ] {
            let placeholder = format!("{{{name}}}");
            if rules.contains(&placeholder) {
                rules = rules.replace(&placeholder, &module(name).display().to_string());
            }
        }
        let text = format!(
            "issuer = \"https://login.example.com/\"\nnamespaces = [\"https://example.com/\"]\n{header}\n[[keys]]\nkid = \"test-{}\"\nalg = \"{alg}\"\nprivate_key = \"signing.pem\"\n\n{rules}",
            alg.to_lowercase()
        );
        let config = dir.path().join("claimsmith.toml");
        std::fs::write(&config, text).unwrap();
        Setup { dir, config }
    }

    /// Write a file in the set-up folder; its path.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// `claimsmith run` on `event` (given on stdin).
    pub fn run(&self, event: &Value) -> Output {
        claimsmith(
            &[
                "run",
                "--config",
                self.config.to_str().unwrap(),
                "--event",
                "-",
            ],
            Some(&event.to_string()),
        )
    }
}

/// The add-roles rule as a `[[rules]]` entry.
pub const ADD_ROLES: &str = "[[rules]]\nname = \"add-roles\"\nmodule = \"{add-roles}\"\n[rules.config]\nnamespace = \"https://example.com\"\n";

/// What a run of the binary gave.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout as one JSON object.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// Run `claimsmith` with `args`, optionally feeding `stdin`.
pub fn claimsmith(args: &[&str], stdin: Option<&str>) -> Output {
    claimsmith_in(&workspace(), args, stdin)
}

/// Run `claimsmith` in folder `dir`. Compiled modules are cached under the workspace's target/
/// rather than the user's cache folder.
pub fn claimsmith_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env(
            "CLAIMSMITH_CACHE_DIR",
            workspace().join("target/claimsmith-test-cache"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run claimsmith");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        // The binary may exit before reading (bad config): a broken pipe is not a test failure.
        let _ = pipe.write_all(input.as_bytes());
    }
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Verify `token` against the JWKS printed by `claimsmith jwks` and return its header and claims.
pub fn verify(token: &str, jwks: &Value, audience: &str) -> (jsonwebtoken::Header, Value) {
    verify_issued_by(token, jwks, audience, "https://login.example.com/")
}

/// Verify `token` from `issuer` for `audience` against `jwks` (a JWK set); its header and claims.
pub fn verify_issued_by(
    token: &str,
    jwks: &Value,
    audience: &str,
    issuer: &str,
) -> (jsonwebtoken::Header, Value) {
    let header = jsonwebtoken::decode_header(token).expect("a JWT header");
    let kid = header.kid.clone().expect("every token carries kid");
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let jwk = set
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS"));
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("the token verifies against the JWKS");
    (header, data.claims)
}

/// A module that always returns `commands` (ABI version 1).
pub fn fixed_rule(commands: Value) -> Vec<u8> {
    let result = json!({ "commands": commands }).to_string();
    let escaped = result.replace('\\', "\\\\").replace('"', "\\\"");
    wat::parse_str(format!(
        r#"(module
  (memory (export "memory") 2)
  (func (export "claimsmith_abi_version") (result i32) (i32.const 1))
  (func (export "claimsmith_alloc") (param i32) (result i32) (i32.const 65536))
  (func (export "claimsmith_on_execute_post_login") (param i32 i32) (result i64)
    (i64.const {packed}))
  (data (i32.const 1024) "{escaped}"))"#,
        packed = (1024u64 << 32) | result.len() as u64
    ))
    .unwrap()
}

/// An ABI version 1 module that loops until its deadline.
pub fn spin_module() -> Vec<u8> {
    wat::parse_str(
        r#"(module (memory (export "memory") 1)
  (func (export "claimsmith_abi_version") (result i32) (i32.const 1))
  (func (export "claimsmith_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "claimsmith_on_execute_post_login") (param i32 i32) (result i64)
    (loop $spin (br $spin)) (i64.const 0)))"#,
    )
    .unwrap()
}
