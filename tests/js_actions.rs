//! JavaScript rules through the real `claimsmith` binary: an Auth0 post-login Action in
//! `<rule>/action.js` is built by `claimsmith build` into a module the engine loads like any
//! other. The unchanged benchmark action gives the Rust rule's claims, every supported `api`
//! item works, the unsupported ones fail naming the API, and hostile JavaScript ends in a named
//! error with no token; state left by one login is not seen by the next.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use claimsmith_engine::{LoginError, Outcome, Pipeline, RuleFailure, RuleSpec};
use serde_json::{Value, json};
use support::{bin, claimsmith_in, workspace};

/// The three actions of these tests, built once with one `claimsmith build`: `add-roles` (the
/// peer benchmark's action, copied unchanged), `surface` and `hostile` (tests/js).
fn modules() -> &'static Modules {
    static BUILT: OnceLock<Modules> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = workspace().join("target/claimsmith-js-tests");
        let add_roles = root.join("add-roles");
        std::fs::create_dir_all(&add_roles).unwrap();
        std::fs::copy(
            workspace().join("benches/peer/add-roles.js"),
            add_roles.join("action.js"),
        )
        .unwrap();
        let js = workspace().join("tests/js");
        let out = Command::new(bin())
            .arg("build")
            .arg(&add_roles)
            .arg(js.join("surface"))
            .arg(js.join("hostile"))
            .arg("--target-dir")
            .arg(workspace().join("target/claimsmith-rules"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run claimsmith build");
        assert!(out.status.success(), "claimsmith build failed");
        let paths: Vec<PathBuf> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(PathBuf::from)
            .collect();
        assert_eq!(paths.len(), 3, "{paths:?}");
        Modules {
            add_roles: std::fs::read(&paths[0]).unwrap(),
            surface: std::fs::read(&paths[1]).unwrap(),
            hostile: std::fs::read(&paths[2]).unwrap(),
            paths,
        }
    })
}

struct Modules {
    add_roles: Vec<u8>,
    surface: Vec<u8>,
    hostile: Vec<u8>,
    paths: Vec<PathBuf>,
}

fn pipeline(module: &[u8], configuration: Value, secrets: &[(&str, &str)]) -> Pipeline {
    let spec = RuleSpec {
        name: "js".into(),
        configuration: configuration.as_object().unwrap().clone(),
        secrets: secrets
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..RuleSpec::default()
    };
    // A 6 MB module takes seconds to compile: the compiled artifact is cached like any module's.
    Pipeline::builder()
        .artifact_cache_if_usable(workspace().join("target/claimsmith-test-cache"))
        .namespaces(["https://example.com"])
        .rule(spec, module)
        .build()
        .expect("the module loads")
}

fn login(pipeline: &Pipeline, event: Value) -> Result<Outcome, LoginError> {
    pipeline.run(&pipeline.event_from_value(event).expect("a valid event"))
}

fn user() -> Value {
    json!({"user": {"user_id": "auth0|1"}, "client": {"client_id": "spa"}, "resource_server": {"identifier": "https://api.example.com"}})
}

/// The surface action's `case`, its claims under `https://example.com`, on [`user`]'s login.
fn surface_case(case: &str) -> Outcome {
    let p = pipeline(
        &modules().surface,
        json!({"namespace": "https://example.com", "case": case}),
        &[],
    );
    login(&p, user()).unwrap()
}

/// The rule's failure, or a panic naming what it did instead.
fn failure(result: Result<Outcome, LoginError>) -> RuleFailure {
    match result {
        Err(LoginError::RuleFailed(failed)) => failed.cause,
        other => panic!("expected a rule failure, got {other:?}"),
    }
}

fn panicked(result: Result<Outcome, LoginError>) -> String {
    match failure(result) {
        RuleFailure::Panicked(message) => message,
        other => panic!("expected a failure with a message, got {other:?}"),
    }
}

#[test]
fn the_unchanged_auth0_action_gives_the_claims_of_the_rust_rule() {
    let rust = std::fs::read(support::module("add-roles")).unwrap();
    let config = json!({"namespace": "https://example.com"});
    let js = pipeline(&modules().add_roles, config.clone(), &[]);
    let rust = pipeline(&rust, config, &[]);
    for name in ["alice", "bob-unverified", "carol-no-api"] {
        let event = support::event(name);
        let (a, b) = (
            login(&js, event.clone()).unwrap(),
            login(&rust, event).unwrap(),
        );
        assert_eq!(a.id_token, b.id_token, "{name}");
        assert_eq!(a.access_token, b.access_token, "{name}");
        assert_eq!(a.scopes, b.scopes, "{name}");
    }
    // A user without roles: the action's `|| []` and the Rust rule's empty list agree.
    let a = login(&js, user()).unwrap();
    assert_eq!(a.id_token["https://example.com/roles"], json!([]));
}

#[test]
fn every_supported_api_item_works() {
    let p = pipeline(
        &modules().surface,
        json!({"namespace": "https://example.com", "case": "all"}),
        &[("api_key", "s3cr3t-value")],
    );
    let event = json!({
        "user": {"user_id": "auth0|1", "email": "alice@acme.example", "app_metadata": {"tenant": "acme"}},
        "authorization": {"roles": ["admin"]},
        "client": {"client_id": "spa"},
        "transaction": {"requested_scopes": ["openid", "email"]},
        "stats": {"logins_count": 3},
        "resource_server": {"identifier": "https://api.example.com"}
    });
    let out = login(&p, event).unwrap();
    assert_eq!(
        out.id_token["https://example.com/email"],
        "alice@acme.example"
    );
    assert_eq!(out.id_token["https://example.com/tenant"], "acme");
    assert_eq!(
        out.access_token["https://example.com/roles"],
        json!(["admin"])
    );
    assert_eq!(out.access_token["https://example.com/client"], "spa");
    assert_eq!(out.access_token["https://example.com/logins"], 3);
    assert_eq!(out.access_token["https://example.com/has_key"], true);
    assert_eq!(out.scopes, ["openid", "read:reports"]);
    assert_eq!(out.app_metadata["last_client"], "spa");
    assert_eq!(out.user_metadata["theme"], "dark");
    assert_eq!(out.mfa, ["any"]);
    let logs: Vec<String> = out
        .logs
        .iter()
        .map(|l| format!("{:?} {}", l.level, l.message))
        .collect();
    assert_eq!(
        logs,
        [r#"Info hello {"user":"auth0|1"} 42"#, "Warn careful"],
        "{logs:?}"
    );

    let out = surface_case("defaults");
    assert_eq!(
        out.id_token["https://example.com/shape"],
        json!([0, {}, 0, 0])
    );

    let p = pipeline(&modules().surface, json!({"case": "deny"}), &[]);
    match login(&p, user()) {
        Err(LoginError::Denied(denied)) => assert_eq!(denied.reason, "not from this client"),
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn claim_values_are_written_as_json_stringify_writes_them() {
    // The runtime writes plain values' JSON natively (js/runtime/src/commands.rs) and hands the
    // rest to JSON.stringify: each claim must equal JSON.stringify's own text of the value.
    let out = surface_case("json");
    let names = [
        "text",
        "numbers",
        "literals",
        "nested",
        "sparse",
        "odd",
        "date",
        "boxed",
        "map",
        "point",
        "getter",
        "inPoint",
        "raw",
        "empty",
        "big",
        "toJsonDate",
    ];
    for name in names {
        let value = &out.id_token[&format!("https://example.com/value/{name}")];
        let text = out.id_token[&format!("https://example.com/text/{name}")]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no text claim"));
        let stringified: Value = serde_json::from_str(text).unwrap();
        assert_eq!(value, &stringified, "{name}: {text}");
        assert_eq!(out.app_metadata[name], stringified, "{name} (app_metadata)");
    }
    assert_eq!(out.id_token["https://example.com/string"], "plain");
    assert_eq!(out.id_token["https://example.com/counted"], json!({"a": 1}));
    assert_eq!(out.id_token["https://example.com/runs"], 1);
    assert_eq!(
        out.id_token["https://example.com/value/toJsonDate"],
        json!({"a": {}}),
        "toJSON runs once: the Date it returns is written as an object"
    );
    // A few by hand, so that the test does not rest on JSON.stringify alone.
    assert_eq!(
        out.id_token["https://example.com/value/point"],
        json!({"x": 1, "key": ""}),
        "a top-level value is the member \"\" of its holder"
    );
    assert_eq!(
        out.id_token["https://example.com/value/inPoint"],
        json!({"here": {"x": 1, "key": "here"}})
    );
    assert_eq!(
        out.id_token["https://example.com/value/odd"],
        json!([null, null, null])
    );
    assert_eq!(
        out.id_token["https://example.com/value/sparse"],
        json!([1, null, 3])
    );
    assert_eq!(
        out.id_token["https://example.com/value/date"],
        "2026-01-02T03:04:05.000Z"
    );
    assert_eq!(
        out.id_token["https://example.com/value/boxed"],
        json!([4, "s", false])
    );
    assert_eq!(
        out.id_token["https://example.com/value/getter"],
        json!({"computed": "got", "plain": 1})
    );
    assert_eq!(
        out.id_token["https://example.com/value/nested"],
        json!({"1": "one", "2": "two", "b": [1, {"c": "d"}], "a": {}})
    );
}

#[test]
fn the_event_is_built_as_it_is_read_and_looks_built_whole() {
    let out = surface_case("lazy");
    let claim = |name: &str| out.id_token[&format!("https://example.com/{name}")].clone();
    let text: Value = serde_json::from_str(claim("text").as_str().unwrap()).unwrap();
    let keys: Vec<String> = serde_json::from_value(claim("keys")).unwrap();
    let in_text: Vec<String> = text.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys, in_text,
        "Object.keys and JSON.stringify see the same members"
    );
    for member in [
        "user",
        "client",
        "secrets",
        "configuration",
        "tenant",
        "issuer_claims",
        "login_time",
    ] {
        assert!(keys.iter().any(|k| k == member), "{member} in {keys:?}");
    }
    // Members the login has not got, and that have no default, are not in the event at all.
    for member in ["organization", "session"] {
        assert!(
            !keys.iter().any(|k| k == member),
            "{member} not in {keys:?}"
        );
    }
    assert_eq!(text["user"]["user_id"], "auth0|1");
    assert_eq!(text["user"]["app_metadata"], json!({}));
    assert_eq!(text["authorization"]["roles"], json!([]));
    assert_eq!(text["stats"]["logins_count"], 0);
    assert_eq!(claim("same"), true);
    assert_eq!(claim("data"), true, "a member read is a data property");
    assert_eq!(claim("assigned"), "assigned");
    assert_eq!(claim("deleted"), false);
    assert_eq!(claim("copy"), json!(["auth0|1", [], ""]));
    assert_eq!(claim("frozen"), json!([true, {}, {}]));

    let out = surface_case("frozen-first");
    assert_eq!(
        out.id_token["https://example.com/frozen"],
        json!([true, "auth0|1", {}, false])
    );
}

#[test]
fn a_login_ends_once_every_job_has_run_and_set_custom_claim_chains() {
    let out = surface_case("floating");
    let claim = |name: &str| out.id_token[&format!("https://example.com/{name}")].clone();
    assert_eq!(
        claim("late"),
        2,
        "a claim set by a job the action did not await"
    );
    assert_eq!(claim("a"), 1);
    assert_eq!(claim("b"), "written by JSON.stringify");
    assert_eq!(claim("chained"), true);
}

#[test]
fn every_api_method_returns_the_api_object_as_auth0s_do() {
    let out = surface_case("chain");
    assert_eq!(
        out.id_token["https://example.com/returned"],
        json!(vec![true; 9])
    );
    assert_eq!(out.id_token["https://example.com/c"], 3);
    assert_eq!(out.access_token["https://example.com/d"], 4);
    assert_eq!(out.access_token["https://example.com/b"], "x");
}

#[test]
fn an_undefined_claim_value_sets_no_claim_and_says_so_in_a_debug_line() {
    let out = surface_case("undefined");
    assert_eq!(out.id_token["https://example.com/present"], 1);
    assert!(out.id_token.get("https://example.com/missing").is_none());
    assert!(
        out.access_token
            .get("https://example.com/missing")
            .is_none()
    );
    let debug: Vec<&str> = out
        .logs
        .iter()
        .filter(|l| l.level == claimsmith_engine::LogLevel::Debug)
        .map(|l| l.message.as_str())
        .collect();
    assert_eq!(
        debug,
        [
            "api.idToken.setCustomClaim(\"https://example.com/missing\"): the value is undefined, so no claim is set",
            "api.accessToken.setCustomClaim(\"https://example.com/missing\"): the value is undefined, so no claim is set",
        ]
    );
}

#[test]
fn console_lines_are_kept_when_the_action_fails_afterwards() {
    // on_error = skip: the login goes on, and the failed rule's log lines are in its outcome.
    let spec = RuleSpec {
        name: "js".into(),
        configuration: json!({"case": "console-then-throw"})
            .as_object()
            .unwrap()
            .clone(),
        on_error: claimsmith_engine::OnError::Skip,
        ..RuleSpec::default()
    };
    let p = Pipeline::builder()
        .artifact_cache_if_usable(workspace().join("target/claimsmith-test-cache"))
        .namespaces(["https://example.com"])
        .rule(spec, modules().surface.clone())
        .build()
        .unwrap();
    let out = login(&p, user()).unwrap();
    let logs: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    assert!(logs.contains(&"before the throw"), "{logs:?}");
}

#[test]
fn a_time_zone_without_intl_fails_rather_than_give_the_wrong_hour() {
    // A time zone, UTC's too (its hour options would be ignored), or a locale alone.
    for (locale, options) in [
        (json!("en-US"), json!({"timeZone": "America/New_York"})),
        (
            json!("en-US"),
            json!({"timeZone": "UTC", "hour": "numeric", "hour12": false}),
        ),
        (json!("en-GB"), Value::Null),
    ] {
        let p = pipeline(
            &modules().surface,
            json!({"case": "timezone", "locale": locale, "options": options}),
            &[],
        );
        let message = panicked(login(&p, user()));
        assert!(
            message.contains(
                "UnsupportedApiError: Date.prototype.toLocaleTimeString with a locale or options (Intl) is not supported"
            ),
            "{message}"
        );
    }
    for (case, api) in [
        ("refresh-token", "api.refreshToken"),
        ("rules", "api.rules"),
    ] {
        let p = pipeline(&modules().surface, json!({"case": case}), &[]);
        let message = panicked(login(&p, user()));
        assert!(
            message.contains(&format!("UnsupportedApiError: {api} is not supported")),
            "{case}: {message}"
        );
    }
}

#[test]
fn secrets_a_log_line_writes_as_json_are_redacted_too() {
    let secret = "s3\"cr\\t\u{1}";
    let p = pipeline(
        &modules().surface,
        json!({"case": "log-secrets"}),
        &[("api_key", secret)],
    );
    let out = login(&p, user()).unwrap();
    assert_eq!(out.logs.len(), 2, "{:?}", out.logs);
    for line in &out.logs {
        for part in ["s3", "cr", "\\t"] {
            assert!(!line.message.contains(part), "{part} in {}", line.message);
        }
        assert!(line.message.contains("[REDACTED]"), "{}", line.message);
    }
}

#[test]
fn date_now_is_the_logins_time_for_the_whole_login() {
    let p = pipeline(
        &modules().surface,
        json!({"namespace": "https://example.com", "case": "clock"}),
        &[],
    );
    let mut event = user();
    event["login_time"] = json!(1_796_461_200_123u64);
    event["tenant"] = json!({"id": "acme-prod"});
    event["session"] = json!({"id": "s-1"});
    let out = login(&p, event).unwrap();
    assert_eq!(
        out.id_token["https://example.com/now"],
        1_796_461_200_123u64
    );
    assert_eq!(
        out.id_token["https://example.com/iso"],
        "2026-12-05T09:00:00.123Z"
    );
    assert_eq!(out.id_token["https://example.com/same"], true);
    assert_eq!(out.id_token["https://example.com/tenant_id"], "acme-prod");
    assert_eq!(out.id_token["https://example.com/session"], "s-1");
    // No time in the request: the host's clock at the start of the login.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let out = login(&p, user()).unwrap();
    let now = out.id_token["https://example.com/now"].as_u64().unwrap();
    assert!(now >= before && now < before + 60_000, "{now} vs {before}");
    assert_eq!(out.id_token["https://example.com/tenant_id"], "");
    assert_eq!(out.id_token["https://example.com/session"], Value::Null);
}

#[test]
fn the_authentication_and_session_calls_reach_the_outcome() {
    let p = pipeline(&modules().surface, json!({"case": "factors"}), &[]);
    let mut event = user();
    event["login_time"] = json!(1_796_461_200_000u64);
    let out = login(&p, event).unwrap();
    assert_eq!(out.mfa, ["guardian"]);
    assert!(out.mfa_allow_remember_browser);
    let requests = serde_json::to_value(&out.authentication).unwrap();
    assert_eq!(
        requests,
        json!([
            {"kind": "challenge_with", "factor": {"type": "phone", "options": {"preferredMethod": "voice"}},
             "additional_factors": [{"type": "otp"}]},
            {"kind": "challenge_with_any", "factors": [{"type": "email"}, {"type": "webauthn-roaming"}]},
            {"kind": "enroll_with", "factor": {"type": "otp"}, "additional_factors": []}
        ])
    );
    assert_eq!(out.session.expires_at, Some(1_796_464_800_000));
    assert_eq!(out.session.idle_expires_at, Some(1_796_461_260_000));

    let p = pipeline(&modules().surface, json!({"case": "bad-factor"}), &[]);
    let message = panicked(login(&p, user()));
    assert!(
        message.contains("a factor has only `type` and `options`, not `option`"),
        "{message}"
    );
    assert!(message.contains("action.js:"), "{message}");
    let p = pipeline(&modules().surface, json!({"case": "enroll-with-any"}), &[]);
    let message = panicked(login(&p, user()));
    assert!(
        message.contains("api.authentication.enrollWithAny is not supported"),
        "{message}"
    );
}

#[test]
fn the_four_auth0_actions_pass_their_rust_twins_fixtures() {
    let actions = workspace().join("actions");
    let mut fixtures = 0;
    let mut command = Command::new(bin());
    command.arg("test");
    for name in [
        "weekday-only",
        "session-timeout",
        "adaptive-mfa",
        "mfa-factor-selection",
    ] {
        // The same fixture files: the action's folder links to the Rust rule's.
        let linked = std::fs::canonicalize(actions.join(name).join("fixtures")).unwrap();
        assert_eq!(
            linked,
            std::fs::canonicalize(workspace().join("rules").join(name).join("fixtures")).unwrap()
        );
        fixtures += std::fs::read_dir(&linked).unwrap().count();
        command.arg(actions.join(name));
    }
    let out = command
        .arg("--target-dir")
        .arg(workspace().join("target/claimsmith-rules"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run claimsmith test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("{fixtures} passed, 0 failed")),
        "{stdout}"
    );
    assert!(fixtures >= 13, "{fixtures}");
}

#[test]
fn unsupported_apis_fail_naming_the_api_and_the_line() {
    for (case, api, line) in [
        ("redirect", "api.redirect", 41),
        ("cache", "api.cache", 44),
        ("require", "require(\"axios\")", 47),
        ("fetch", "fetch()", 50),
    ] {
        let p = pipeline(&modules().surface, json!({"case": case}), &[]);
        let message = panicked(login(&p, user()));
        assert!(
            message.contains(&format!("UnsupportedApiError: {api} is not supported")),
            "{case}: {message}"
        );
        assert!(
            message.contains(&format!("action.js:{line}:")),
            "{case}: {message}"
        );
    }
}

#[test]
fn unsupported_apis_written_plainly_are_refused_at_build_time_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("redirects");
    std::fs::create_dir(&rule).unwrap();
    std::fs::write(
        rule.join("action.js"),
        "exports.onExecutePostLogin = async (event, api) => {\n  api.redirect.sendUserTo('https://x');\n};\n",
    )
    .unwrap();
    let out = claimsmith_in(dir.path(), &["build", "redirects"], None);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("line 2: api.redirect"),
        "{}",
        out.stderr
    );
}

#[test]
fn hostile_javascript_ends_in_a_named_error_within_its_limits() {
    let run = |case: &str| {
        let p = pipeline(&modules().hostile, json!({"case": case}), &[]);
        let started = std::time::Instant::now();
        let result = login(&p, user());
        assert!(
            started.elapsed().as_secs() < 5,
            "{case} took {:?}",
            started.elapsed()
        );
        failure(result)
    };
    assert!(
        matches!(
            run("loop"),
            RuleFailure::FuelExhausted { limit: 50_000_000 } | RuleFailure::Timeout { .. }
        ),
        "an endless loop is stopped by fuel or the deadline"
    );
    match run("bomb") {
        RuleFailure::MemoryLimit { limit, .. } => assert_eq!(limit, 64 << 20),
        RuleFailure::FuelExhausted { .. } | RuleFailure::Timeout { .. } => {}
        other => panic!("a memory bomb: {other:?}"),
    }
    let message = match run("recursion") {
        RuleFailure::Panicked(message) => message,
        other => panic!("deep recursion: {other:?}"),
    };
    assert!(
        message.contains("maximum number of recursive calls")
            && message.contains("(at action.js:15:"),
        "{message}"
    );
    assert!(
        message.lines().count() == 1,
        "one line, not the whole backtrace: {message}"
    );
    let message = match run("throw") {
        RuleFailure::Panicked(message) => message,
        other => panic!("a throw: {other:?}"),
    };
    assert!(message.contains("Error: boom from the action"), "{message}");
    assert!(message.contains("action.js:19:"), "{message}");
    for (case, line) in [("bigint", 21), ("cyclic", 26)] {
        let message = match run(case) {
            RuleFailure::Panicked(message) => message,
            other => panic!("{case}: {other:?}"),
        };
        assert!(
            message.contains("api.idToken.setCustomClaim(\"https://example.com/")
                && message.contains("cannot be serialised to JSON")
                && message.contains(&format!("(at action.js:{line}:")),
            "{case}: the call and its line: {message}"
        );
    }
    let message = match run("never") {
        RuleFailure::Panicked(message) => message,
        other => panic!("a promise that never settles: {other:?}"),
    };
    assert!(message.contains("never settled"), "{message}");
    let message = match run("unawaited") {
        RuleFailure::Panicked(message) => message,
        other => panic!("a rejection nobody awaited: {other:?}"),
    };
    assert!(
        message.contains("a promise the action did not await was rejected")
            && message.contains("api.idToken.setCustomClaim(\"https://example.com/late\")")
            && message.contains("(at action.js:"),
        "{message}"
    );
}

#[test]
fn state_left_by_one_login_is_not_seen_by_the_next() {
    let p = pipeline(&modules().hostile, json!({"case": "leak"}), &[]);
    for _ in 0..3 {
        let out = login(&p, user()).unwrap();
        assert_eq!(
            out.id_token["https://example.com/state"],
            json!({"logins": 1, "saw_prototype": false}),
            "each login starts from a fresh instance"
        );
    }
}

#[test]
fn test_check_run_and_bench_take_a_javascript_rule() {
    let surface = workspace().join("tests/js/surface");
    let target = workspace().join("target/claimsmith-rules");
    modules();
    let out = claimsmith_in(
        &workspace(),
        &[
            "test",
            surface.to_str().unwrap(),
            "--target-dir",
            target.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("ok   surface/all.json"),
        "{}",
        out.stdout
    );

    // A config that runs the built module: check, run --explain and bench.
    let module = modules().paths[0].display().to_string();
    let rules = format!(
        "[[rules]]\nname = \"add-roles-js\"\nmodule = {module:?}\n[rules.config]\nnamespace = \"https://example.com\"\n"
    );
    let setup = support::Setup::new("ES256", &rules);
    let config = setup.config.to_str().unwrap();
    let check = claimsmith_in(&workspace(), &["check", "--config", config], None);
    assert_eq!(check.code, 0, "{check:?}");
    let event = support::event("alice");
    let run = claimsmith_in(
        &workspace(),
        &[
            "run",
            "--config",
            config,
            "--event",
            "-",
            "--explain",
            "--json",
        ],
        Some(&event.to_string()),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("https://example.com/roles"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("add-roles-js"), "{}", run.stdout);
    let event_file = setup.write("alice.json", event.to_string());
    let bench = claimsmith_in(
        &workspace(),
        &[
            "bench",
            "--config",
            config,
            "--event",
            event_file.to_str().unwrap(),
            "--iterations",
            "20",
            "--warmup",
            "2",
            "--json",
        ],
        None,
    );
    assert_eq!(bench.code, 0, "{bench:?}");
    assert!(bench.stdout.contains("p50"), "{}", bench.stdout);
}

#[test]
fn claimsmith_serve_runs_a_javascript_rule() {
    let module = modules().paths[0].display().to_string();
    let config = format!(
        "[[rules]]\nname = \"add-roles-js\"\nmodule = {module:?}\n[rules.config]\nnamespace = \"https://example.com\"\n\n\
         [server]\nrequest_timeout_ms = 5000\n\n\
         [[server.hooks]]\npath = \"/hooks/login\"\nformat = \"claimsmith\"\n[server.hooks.auth]\ntype = \"none\"\n"
    );
    let setup = support::Setup::new("EdDSA", &config);
    let server = support::server::Server::start(&setup.config, &[]);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(20)))
        .build()
        .into();
    let alice = support::event("alice");
    let mut response = agent
        .post(&server.url("/hooks/login"))
        .header("Content-Type", "application/json")
        .send(alice.to_string())
        .expect("the request is answered");
    let status = response.status().as_u16();
    let body: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["claims"]["id_token"]["https://example.com/roles"],
        json!(["admin", "editor"])
    );
    assert_eq!(body["claims"]["id_token"]["sub"], alice["user"]["user_id"]);
}
