//! The oidc-provider example (examples/oidc-provider/) end to end: the real `claimsmith serve` on
//! the example's claimsmith.toml, the example's Node.js issuer on it, and a complete
//! authorization-code login with PKCE through the provider's development interactions (login
//! and consent forms, redirects followed by hand, cookies kept). The ID token and the JWT access
//! token, verified against the issuer's JWKS, carry the rules' claims and scopes; a denying rule
//! ends the login with `access_denied` at the client; a failing rule, a wrong hook key and a hook
//! that never answers each fail the login, with no code and so no tokens; claimsmith gone by the
//! token request fails that request.
//!
//! Needs `node` (20.19+, 22.12+ or 23+) and `npm`; where they are missing the tests say so on
//! stderr and pass. node_modules are installed once per package-lock.json with `npm ci` under
//! target/oidc-provider-example/ and shared by later runs.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use support::server::Server;
use support::{module, workspace};

const CLIENT_ID: &str = "example-app";
const REDIRECT_URI: &str = "http://127.0.0.1:8080/callback";
const API: &str = "https://api.example.com";
const HOOK_PATH: &str = "/hooks/oidc-provider";
const HOOK_KEY: &str = "test-hook-key-0b4c9e";

/// Say on stderr (past the test harness's capture, so it shows in `cargo test`) why a test did
/// not run.
fn skip(why: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED tests/oidc_provider.rs: {why}; the oidc-provider example was not tested"
    );
}

/// The example's folder.
fn example() -> PathBuf {
    workspace().join("examples/oidc-provider")
}

/// `program --version`, or None when it cannot be run.
fn version(program: &str) -> Option<String> {
    let out = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether `node --version` (`v20.20.2`) is one oidc-provider 9 runs on (package.json's engines).
fn node_is_recent(version: &str) -> bool {
    let mut parts = version
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    major >= 23 || (major == 22 && minor >= 12) || (major == 20 && minor >= 19)
}

/// The example's node_modules, installed once per package-lock.json (`npm ci` in a fresh folder
/// under target/, then renamed into place, so concurrent runs never share a half-done install);
/// None, having said why, when node or npm is missing.
fn node_modules() -> Option<PathBuf> {
    static READY: OnceLock<Option<PathBuf>> = OnceLock::new();
    READY
        .get_or_init(|| {
            let Some(node) = version("node") else {
                skip("`node` is not on PATH");
                return None;
            };
            if !node_is_recent(&node) {
                skip(&format!(
                    "node {node} is older than oidc-provider 9 needs (20.19, 22.12 or 23)"
                ));
                return None;
            }
            if version("npm").is_none() {
                skip("`npm` is not on PATH");
                return None;
            }
            let lock = std::fs::read(example().join("package-lock.json")).unwrap();
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &lock);
            let hash: String = digest.as_ref()[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let cache = workspace().join("target/oidc-provider-example");
            let ready = cache.join(&hash);
            if ready
                .join("node_modules/oidc-provider/package.json")
                .exists()
            {
                return Some(ready.join("node_modules"));
            }
            std::fs::create_dir_all(&cache).unwrap();
            let fresh = tempfile::tempdir_in(&cache).unwrap();
            for file in ["package.json", "package-lock.json"] {
                std::fs::copy(example().join(file), fresh.path().join(file)).unwrap();
            }
            let mut npm = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
                .current_dir(fresh.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run npm ci");
            let deadline = Instant::now() + Duration::from_secs(300);
            let status = loop {
                if let Some(status) = npm.try_wait().unwrap() {
                    break status;
                }
                if Instant::now() > deadline {
                    let _ = npm.kill();
                    let _ = npm.wait();
                    panic!("npm ci did not finish within 300 s");
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            let mut errors = String::new();
            let _ = std::io::Read::read_to_string(&mut npm.stderr.take().unwrap(), &mut errors);
            assert!(status.success(), "npm ci failed: {errors}");
            let fresh = fresh.keep();
            // Another run may have got there first: then its install is as good as this one.
            if std::fs::rename(&fresh, &ready).is_err() {
                let _ = std::fs::remove_dir_all(&fresh);
            }
            Some(ready.join("node_modules"))
        })
        .clone()
}

/// The example's claimsmith.toml in `dir`: its module paths pointing at the rules the test
/// support built, and a fresh key where it expects `keys/signing.pem`. With `rules`, the example's
/// `[[rules]]` are replaced by that TOML, keeping its header and its `[server]` table.
fn claimsmith_config(dir: &Path, rules: Option<&str>) -> PathBuf {
    let text = std::fs::read_to_string(example().join("claimsmith.toml")).unwrap();
    let prefix = "../../target/claimsmith-rules/wasm32-unknown-unknown/release/";
    let mut config = String::new();
    for line in text.lines() {
        match line.strip_prefix("module = \"") {
            Some(rest) if rest.starts_with(prefix) => {
                let stem = rest[prefix.len()..].trim_end_matches(".wasm\"");
                config += &format!("module = \"{}\"\n", module(stem).display());
            }
            _ => config += &format!("{line}\n"),
        }
    }
    assert!(!config.contains(prefix), "every module path is replaced");
    assert!(config.contains("format = \"outcome\""), "{config}");
    if let Some(rules) = rules {
        let first = config.find("[[rules]]").unwrap();
        let server = config.find("[server]").unwrap();
        config = format!("{}{rules}\n{}", &config[..first], &config[server..]);
    }
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    let pem = claimsmith::generate_pem("EdDSA").unwrap();
    std::fs::write(dir.join("keys/signing.pem"), pem).unwrap();
    let path = dir.join("claimsmith.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// The example as shipped: `claimsmith serve` on the example's config and the Node.js issuer
/// calling it with the right key, each in a folder of the returned temp dir.
fn the_example(modules: &Path, env: &[(&str, &str)]) -> (tempfile::TempDir, Server, Server) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("cs")).unwrap();
    std::fs::create_dir_all(dir.path().join("node")).unwrap();
    let claimsmith = claimsmith_serve(&dir.path().join("cs"), None);
    let node = issuer(
        &dir.path().join("node"),
        modules,
        &claimsmith.url(HOOK_PATH),
        HOOK_KEY,
        env,
    );
    (dir, claimsmith, node)
}

/// `claimsmith serve` on the example's config (or with `rules` instead of its rules).
fn claimsmith_serve(dir: &Path, rules: Option<&str>) -> Server {
    let config = claimsmith_config(dir, rules);
    Server::start(&config, &[("CLAIMSMITH_HOOK_KEY", HOOK_KEY)])
}

/// The example issuer (server.js, run from a copy in `dir` whose node_modules links to the cached
/// install) calling `hook` with `key`, on a free loopback port.
fn issuer(dir: &Path, node_modules: &Path, hook: &str, key: &str, env: &[(&str, &str)]) -> Server {
    for file in ["server.js", "accounts.json", "package.json"] {
        std::fs::copy(example().join(file), dir.join(file)).unwrap();
    }
    std::os::unix::fs::symlink(node_modules, dir.join("node_modules")).unwrap();
    let mut command = Command::new("node");
    command
        .arg("server.js")
        .current_dir(dir)
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("CLAIMSMITH_URL", hook)
        .env("CLAIMSMITH_HOOK_KEY", key)
        .env("REDIRECT_URI", REDIRECT_URI)
        .env_remove("ISSUER")
        .env_remove("NODE_OPTIONS")
        .envs(env.iter().copied());
    Server::spawn(&mut command, "http", Duration::from_secs(30))
}

/// One HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    location: Option<String>,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// A cookie the browser keeps: value and path.
#[derive(Debug)]
struct Cookie {
    name: String,
    value: String,
    path: String,
}

/// A browser: follows no redirect by itself, keeps cookies (by name and path, sent where the
/// path matches, dropped when the server expires them).
struct Browser {
    agent: ureq::Agent,
    cookies: Vec<Cookie>,
}

impl Browser {
    fn new() -> Browser {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        Browser {
            agent,
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self, url: &str) -> String {
        let path = url
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{}", p.split('?').next().unwrap()))
            .unwrap_or_else(|| "/".into());
        self.cookies
            .iter()
            .filter(|c| path.starts_with(&c.path))
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, response: &ureq::http::Response<ureq::Body>) {
        for header in response.headers().get_all("set-cookie") {
            let header = header.to_str().unwrap();
            let mut parts = header.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let mut path = "/".to_owned();
            let mut expired = value.is_empty();
            for attribute in parts {
                let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
                match key.to_ascii_lowercase().as_str() {
                    "path" => path = val.to_owned(),
                    "max-age" => expired |= val.starts_with('0') || val.starts_with('-'),
                    "expires" => expired |= val.contains("1970"),
                    _ => {}
                }
            }
            self.cookies.retain(|c| c.name != name || c.path != path);
            if !expired {
                self.cookies.push(Cookie {
                    name: name.to_owned(),
                    value: value.to_owned(),
                    path,
                });
            }
        }
    }

    fn answer(
        &mut self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Answer {
        let mut response = response.expect("the issuer answers");
        self.keep(&response);
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        Answer {
            status: response.status().as_u16(),
            location,
            text: response.body_mut().read_to_string().unwrap_or_default(),
        }
    }

    fn get(&mut self, url: &str) -> Answer {
        let cookies = self.cookie_header(url);
        let response = self.agent.get(url).header("Cookie", &cookies).call();
        self.answer(response)
    }

    fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Answer {
        let cookies = self.cookie_header(url);
        let response = self
            .agent
            .post(url)
            .header("Cookie", &cookies)
            .send_form(form.iter().copied());
        self.answer(response)
    }
}

/// Percent-encode a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The query parameters of `url`, decoded.
fn query(url: &str) -> HashMap<String, String> {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    url.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The value of `attribute="..."` after `after` in `html`.
fn attribute<'a>(html: &'a str, after: &str, attribute: &str) -> Option<&'a str> {
    let from = html.find(after)?;
    let rest = &html[from..];
    let start = rest.find(&format!("{attribute}=\""))? + attribute.len() + 2;
    let end = rest[start..].find('"')?;
    Some(&rest[start..start + end])
}

/// A PKCE verifier and its S256 challenge.
fn pkce() -> (String, String) {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (verifier, URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

/// A login as `user` at `issuer` from the start of the authorization request to the redirect
/// back to the client, through the login and consent forms; that redirect's query.
fn log_in(
    browser: &mut Browser,
    issuer: &str,
    user: &str,
    challenge: &str,
    state: &str,
) -> HashMap<String, String> {
    let start = format!(
        "{issuer}/auth?client_id={CLIENT_ID}&response_type=code&redirect_uri={}&scope={}&resource={}&code_challenge={challenge}&code_challenge_method=S256&state={state}&nonce=nonce-{state}",
        encode(REDIRECT_URI),
        encode("openid profile email read:reports"),
        encode(API),
    );
    let mut answer = browser.get(&start);
    let mut steps = Vec::new();
    for _ in 0..12 {
        steps.push(format!("{} {:?}", answer.status, answer.location));
        match answer.status {
            300..=399 => {
                let location = answer.location.clone().expect("a redirect has a Location");
                let location = if location.starts_with('/') {
                    format!("{issuer}{location}")
                } else {
                    location
                };
                if location.starts_with(REDIRECT_URI) {
                    return query(&location);
                }
                answer = browser.get(&location);
            }
            200 => {
                let html = &answer.text;
                let action = attribute(html, "<form", "action")
                    .expect("a form")
                    .to_owned();
                let prompt = attribute(html, "name=\"prompt\"", "value").expect("a prompt");
                let form: Vec<(&str, &str)> = match prompt {
                    "login" => vec![("prompt", "login"), ("login", user), ("password", "any")],
                    "consent" => vec![("prompt", "consent")],
                    other => panic!("an unknown prompt {other}: {html}"),
                };
                answer = browser.post(&action, &form);
            }
            _ => panic!("the login stopped at {answer:?} after {steps:#?}"),
        }
    }
    panic!("no redirect to the client after {steps:#?}")
}

/// Skip unless node and npm are here; the cached node_modules.
macro_rules! need_node {
    () => {
        match node_modules() {
            Some(modules) => modules,
            None => return,
        }
    };
}

#[test]
fn a_login_gets_the_rules_claims_and_scopes_in_both_verified_tokens() {
    let modules = need_node!();
    let (_dir, claimsmith, node) = the_example(&modules, &[]);
    let issuer_url = node.url("");
    let mut browser = Browser::new();
    let (verifier, challenge) = pkce();
    let back = log_in(&mut browser, &issuer_url, "alice", &challenge, "s-alice");
    assert_eq!(
        back.get("state").map(String::as_str),
        Some("s-alice"),
        "{back:?}"
    );
    let code = back
        .get("code")
        .unwrap_or_else(|| panic!("a code: {back:?}"));

    let tokens = browser.post(
        &format!("{issuer_url}/token"),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", CLIENT_ID),
            ("code_verifier", &verifier),
        ],
    );
    assert_eq!(tokens.status, 200, "{tokens:?}");
    let tokens = tokens.json();

    let discovery = browser
        .get(&format!("{issuer_url}/.well-known/openid-configuration"))
        .json();
    assert_eq!(discovery["issuer"], issuer_url.as_str());
    let jwks = browser.get(discovery["jwks_uri"].as_str().unwrap()).json();
    let issued_by = discovery["issuer"].as_str().unwrap();

    let roles = json!(["admin", "editor"]);
    let (_, id) = support::verify_issued_by(
        tokens["id_token"].as_str().unwrap(),
        &jwks,
        CLIENT_ID,
        issued_by,
    );
    assert_eq!(id["sub"], "alice");
    assert_eq!(id["https://example.com/roles"], roles, "{id}");
    assert_eq!(id["email"], "alice@acme.example", "{id}");
    assert_eq!(id["nonce"], "nonce-s-alice");

    let (header, access) = support::verify_issued_by(
        tokens["access_token"].as_str().unwrap(),
        &jwks,
        API,
        issued_by,
    );
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(access["sub"], "alice");
    assert_eq!(access["client_id"], CLIENT_ID);
    assert_eq!(access["https://example.com/roles"], roles, "{access}");
    // Requested read:reports; scopes-from-roles adds what admin and editor grant.
    let mut scopes: Vec<&str> = access["scope"].as_str().unwrap().split(' ').collect();
    scopes.sort_unstable();
    assert_eq!(
        scopes,
        ["admin:users", "read:reports", "write:reports"],
        "{access}"
    );
    let mut answered: Vec<&str> = tokens["scope"].as_str().unwrap().split(' ').collect();
    answered.sort_unstable();
    assert_eq!(
        answered, scopes,
        "the token response names the token's scopes"
    );

    // The hook was called with the key and answered 200 three times: the gate after the login
    // form and after consent, then the token request. Nothing failed at the issuer.
    let metrics = ureq::get(&claimsmith.url("/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "claimsmith_hook_requests_total{{hook=\"{HOOK_PATH}\",outcome=\"ok\"}} 3"
        )),
        "{metrics}"
    );
    let logs = node.logs();
    assert!(!logs.iter().any(|l| l.contains("failed")), "{logs:#?}");
}

#[test]
fn a_denying_rule_ends_the_login_with_access_denied_at_the_client() {
    let modules = need_node!();
    let (_dir, _claimsmith, node) = the_example(&modules, &[]);
    let mut browser = Browser::new();
    let (_, challenge) = pkce();
    // bob's email is not verified (accounts.json): require-verified-email denies him.
    let back = log_in(&mut browser, &node.url(""), "bob", &challenge, "s-bob");
    assert_eq!(
        back.get("error").map(String::as_str),
        Some("access_denied"),
        "{back:?}"
    );
    assert!(
        back["error_description"].contains("verify your email"),
        "{back:?}"
    );
    assert_eq!(back.get("state").map(String::as_str), Some("s-bob"));
    assert!(!back.contains_key("code"), "{back:?}");
}

#[test]
fn a_failing_rule_a_wrong_key_and_a_silent_hook_each_fail_the_login() {
    let modules = need_node!();
    let dir = tempfile::tempdir().unwrap();
    for sub in ["cs", "cs-trap", "node-trap", "node-key", "node-silent"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    // A rule that traps, with on_error = "deny": claimsmith answers 500.
    let trap = wat::parse_str(
        r#"(module (memory (export "memory") 1)
  (func (export "claimsmith_abi_version") (result i32) (i32.const 1))
  (func (export "claimsmith_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "claimsmith_on_execute_post_login") (param i32 i32) (result i64) unreachable))"#,
    )
    .unwrap();
    let trap_path = dir.path().join("cs-trap/trap.wasm");
    std::fs::write(&trap_path, trap).unwrap();
    let trapping = claimsmith_serve(
        &dir.path().join("cs-trap"),
        Some(&format!(
            "[[rules]]\nname = \"trap\"\nmodule = \"{}\"\non_error = \"deny\"\n",
            trap_path.display()
        )),
    );
    let claimsmith = claimsmith_serve(&dir.path().join("cs"), None);
    // A hook that accepts connections (the kernel's backlog) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}{HOOK_PATH}", silent.local_addr().unwrap());

    let cases = [
        (
            "node-trap",
            trapping.url(HOOK_PATH),
            HOOK_KEY,
            "claimsmith answered 500",
        ),
        (
            "node-key",
            claimsmith.url(HOOK_PATH),
            "not-the-key",
            "claimsmith answered 401",
        ),
        (
            "node-silent",
            silent_url,
            HOOK_KEY,
            "no answer within 1000 ms",
        ),
    ];
    for (sub, hook, key, cause) in cases {
        let node = issuer(
            &dir.path().join(sub),
            &modules,
            &hook,
            key,
            &[("CLAIMSMITH_TIMEOUT_MS", "1000")],
        );
        let mut browser = Browser::new();
        let (_, challenge) = pkce();
        let started = Instant::now();
        let back = log_in(&mut browser, &node.url(""), "alice", &challenge, "s-fail");
        assert_eq!(
            back.get("error").map(String::as_str),
            Some("server_error"),
            "{sub}: {back:?}"
        );
        assert!(
            !back.contains_key("code"),
            "{sub}: no code, so no tokens: {back:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{sub}: bounded"
        );
        // The issuer logs why (its stderr is read on its own thread: give it a moment).
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut logs = Vec::new();
        while !logs.iter().any(|l: &String| l.contains(cause)) && Instant::now() < deadline {
            logs.extend(node.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            logs.iter().any(|l| l.contains(cause)),
            "{sub}: {cause} in {logs:#?}"
        );
    }
    drop(silent);
}

#[test]
fn claimsmith_gone_between_the_login_and_the_token_request_means_no_tokens() {
    let modules = need_node!();
    let (_dir, claimsmith, node) = the_example(&modules, &[("CLAIMSMITH_TIMEOUT_MS", "1000")]);
    let issuer_url = node.url("");
    let mut browser = Browser::new();
    let (verifier, challenge) = pkce();
    let back = log_in(&mut browser, &issuer_url, "alice", &challenge, "s-gone");
    let code = back
        .get("code")
        .unwrap_or_else(|| panic!("a code: {back:?}"));
    drop(claimsmith);
    let tokens = browser.post(
        &format!("{issuer_url}/token"),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", CLIENT_ID),
            ("code_verifier", &verifier),
        ],
    );
    assert_eq!(tokens.status, 500, "{tokens:?}");
    let tokens = tokens.json();
    assert_eq!(tokens["error"], "server_error", "{tokens}");
    assert!(tokens.get("access_token").is_none() && tokens.get("id_token").is_none());
}
