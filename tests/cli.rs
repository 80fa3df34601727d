//! The `claimsmith` binary end to end: the example rules compiled to wasm, real configs and
//! keys, tokens verified against the printed JWKS, and every exit code of the contract.

mod support;

use serde_json::{Value, json};
use support::{ADD_ROLES, Setup, claimsmith, event};

/// All five example rules, as in examples/claimsmith.toml.
const ALL_RULES: &str = r#"
[[rules]]
name = "require-verified-email"
module = "{require-verified-email}"
[rules.config]
exempt_connections = ["corporate-saml"]

[[rules]]
name = "add-roles"
module = "{add-roles}"
[rules.config]
namespace = "https://example.com"

[[rules]]
name = "capabilities"
module = "{capabilities}"
[rules.config]
namespace = "https://example.com"
[rules.config.capabilities]
export-report = ["read:reports", "export:reports"]
edit-user = ["update:users"]

[[rules]]
name = "scopes-from-roles"
module = "{scopes-from-roles}"
[rules.config.scopes_by_role]
admin = ["read:reports", "admin:users"]
viewer = ["read:reports"]

[[rules]]
name = "tenant-from-metadata"
module = "{tenant-from-metadata}"
[rules.config]
namespace = "https://example.com"
"#;

fn jwks(setup: &Setup) -> Value {
    let out = claimsmith(&["jwks", "--config", setup.config.to_str().unwrap()], None);
    assert_eq!(out.code, 0, "{out:?}");
    out.json()
}

#[test]
fn alice_gets_both_tokens_verified_against_the_jwks_for_every_algorithm() {
    for alg in ["RS256", "PS256", "ES256", "ES384", "EdDSA"] {
        let setup = Setup::new(alg, ALL_RULES);
        let out = setup.run(&event("alice"));
        assert_eq!(out.code, 0, "{alg}: {out:?}");
        let output = out.json();
        let jwks = jwks(&setup);

        let (header, id) =
            support::verify(output["id_token"].as_str().unwrap(), &jwks, "spa-client");
        assert_eq!(
            header.kid.as_deref(),
            Some(format!("test-{}", alg.to_lowercase()).as_str())
        );
        assert_eq!(id["sub"], "auth0|6740a1f3c2b9e81d4f0a7b21");
        assert_eq!(id["https://example.com/roles"], json!(["admin", "editor"]));
        assert_eq!(
            id["https://example.com/capabilities"],
            json!(["edit-user", "export-report"])
        );
        assert_eq!(
            id["email"], "alice@acme.example",
            "the email scope was requested"
        );
        assert!(
            id.get("https://example.com/tenant").is_none(),
            "tenant is for the API only"
        );
        assert_eq!(
            id, output["claims"]["id_token"],
            "printed claims are the signed ones"
        );

        let (header, access) = support::verify(
            output["access_token"].as_str().unwrap(),
            &jwks,
            "https://api.example.com",
        );
        assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 header");
        assert_eq!(access["client_id"], "spa-client");
        assert_eq!(access["https://example.com/tenant"], "acme");
        assert_eq!(
            access["https://example.com/roles"],
            json!(["admin", "editor"])
        );
        assert!(
            access.get("https://example.com/capabilities").is_none(),
            "capabilities are ID token only"
        );
        assert_eq!(
            access["scope"],
            "openid profile email read:reports admin:users"
        );
        assert!(access["jti"].as_str().is_some_and(|j| !j.is_empty()));
        assert_eq!(access, output["claims"]["access_token"]);
    }
}

#[test]
fn every_configured_key_is_published_without_private_parameters() {
    let setup = Setup::new("RS256", ADD_ROLES);
    let second = claimsmith::generate_pem("EdDSA").unwrap();
    setup.write("second.pem", second);
    let text = std::fs::read_to_string(&setup.config).unwrap()
        + "\n[[keys]]\nkid = \"next\"\nalg = \"EdDSA\"\nprivate_key = \"second.pem\"\n";
    // Keys must precede rules in TOML order only for readability; append after rules is fine.
    std::fs::write(&setup.config, text).unwrap();
    let jwks = jwks(&setup);
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for key in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                key.get(private).is_none(),
                "private parameter {private} published: {key}"
            );
        }
        assert_eq!(key["use"], "sig");
    }
    let out = setup.run(&event("alice"));
    let header = jsonwebtoken::decode_header(out.json()["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        header.kid.as_deref(),
        Some("test-rs256"),
        "the first key signs"
    );
}

#[test]
fn an_unverified_user_is_denied_with_exit_3_and_no_token() {
    let setup = Setup::new("ES256", ALL_RULES);
    let out = setup.run(&event("bob-unverified"));
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(
        out.json(),
        json!({
            "error": "access_denied",
            "error_description": "Please verify your email address before logging in.",
            "rule": "require-verified-email"
        })
    );
    assert!(!out.stdout.contains("eyJ"), "no token on a denial");
}

#[test]
fn a_login_without_an_api_gets_no_access_token() {
    let setup = Setup::new("EdDSA", ALL_RULES);
    let out = setup.run(&event("carol-no-api"));
    assert_eq!(out.code, 0, "{out:?}");
    let output = out.json();
    assert!(output["id_token"].is_string());
    assert!(output.get("access_token").is_none());
    assert!(output["claims"].get("access_token").is_none());
}

#[test]
fn a_rule_failure_exits_4_with_server_error_naming_the_rule() {
    // capabilities without its mapping panics; the host reports the panic message.
    let rules = "[[rules]]\nname = \"caps\"\nmodule = \"{capabilities}\"\n";
    let setup = Setup::new("RS256", rules);
    let out = setup.run(&event("alice"));
    assert_eq!(out.code, 4, "{out:?}");
    let output = out.json();
    assert_eq!(output["error"], "server_error");
    assert_eq!(output["rule"], "caps");
    let description = output["error_description"].as_str().unwrap();
    assert!(
        description.contains("caps")
            && description.contains("panicked")
            && description.contains("capabilities"),
        "{description}"
    );
    assert!(!out.stdout.contains("eyJ"));
}

#[test]
fn the_event_can_come_from_a_file_or_stdin() {
    let setup = Setup::new("ES256", ADD_ROLES);
    let file = support::workspace().join("examples/events/alice.json");
    let out = claimsmith(
        &[
            "run",
            "--config",
            setup.config.to_str().unwrap(),
            "--event",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    let from_stdin = setup.run(&event("alice"));
    assert_eq!(
        out.json()["claims"]["id_token"]["https://example.com/roles"],
        from_stdin.json()["claims"]["id_token"]["https://example.com/roles"]
    );
}

#[test]
fn bad_events_exit_2_with_the_field_named_and_nothing_on_stdout() {
    let setup = Setup::new("RS256", ADD_ROLES);
    let config = setup.config.to_str().unwrap();
    let cases: [(&str, &str); 7] = [
        ("{not json", "not valid JSON"),
        // A struct given as an array of its fields in order is not read positionally.
        (
            r#"{"user": ["auth0|1"], "client": {"client_id": "c"}}"#,
            "`user`: invalid type: sequence, expected struct User",
        ),
        (
            r#"{"user": {"user_id": "u"}, "client": {"client_id": "c"}, "authentication": {"methods": [["pwd"]]}}"#,
            "`authentication.methods[0]`: invalid type: sequence, expected struct AuthenticationMethod",
        ),
        ("[1, 2]", "must be a JSON object"),
        (r#"{"client": {"client_id": "c"}}"#, "user.user_id"),
        (r#"{"user": {"user_id": "u"}}"#, "client.client_id"),
        (
            r#"{"user": {"user_id": "u", "email_verified": "yes"}, "client": {"client_id": "c"}}"#,
            "user.email_verified",
        ),
    ];
    for (event, expected) in cases {
        let out = claimsmith(&["run", "--config", config, "--event", "-"], Some(event));
        assert_eq!(out.code, 2, "{event}: {out:?}");
        assert!(
            out.stderr.contains(expected),
            "{event}: stderr should name {expected:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{event}: {}", out.stdout);
    }
}

#[test]
fn config_errors_exit_2_naming_file_field_and_cause() {
    let base = Setup::new("RS256", ADD_ROLES);
    let original = std::fs::read_to_string(&base.config).unwrap();
    let cases: Vec<(String, &str)> = vec![
        (original.replace("issuer =", "isuser ="), "isuser"),
        (
            original.replace("alg = \"RS256\"", "alg = \"HS256\""),
            "HS256 is refused",
        ),
        (
            original.replace("alg = \"RS256\"", "alg = \"ES256\""),
            "keys[0]",
        ),
        (
            original.replace("signing.pem", "missing.pem"),
            "missing.pem",
        ),
        (
            original.replace(
                &support::module("add-roles").display().to_string(),
                "nowhere/add_roles.wasm",
            ),
            "rule `add-roles`: cannot read module",
        ),
        (
            original.replace(
                "namespaces = [\"https://example.com/\"]",
                "namespaces = [\"example.com\"]",
            ),
            "https://",
        ),
        (format!("id_token_ttl = 0\n{original}"), "id_token_ttl"),
        (
            original.clone() + "\n[[rules]]\nname = \"add-roles\"\nmodule = \"x.wasm\"\n",
            "duplicate rule name",
        ),
        (
            original.replace("[rules.config]", "on_error = \"maybe\"\n[rules.config]"),
            "on_error",
        ),
        (
            // The key's values in field order: serde's derive alone would take it as a key.
            original.replace(
                "[[keys]]\nkid = \"test-rs256\"\nalg = \"RS256\"\nprivate_key = \"signing.pem\"",
                "keys = [[\"test-rs256\", \"RS256\", \"signing.pem\"]]",
            ),
            "invalid type: sequence, expected a `[[keys]]` table",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&base.config, &text).unwrap();
        for command in ["check", "run"] {
            let mut args = vec![command, "--config", base.config.to_str().unwrap()];
            if command == "run" {
                args.extend(["--event", "-"]);
            }
            let out = claimsmith(&args, Some(&event("alice").to_string()));
            assert_eq!(out.code, 2, "{command} with {expected}: {out:?}");
            assert!(
                out.stderr.contains(expected),
                "{command}: stderr should contain {expected:?}: {}",
                out.stderr
            );
            assert!(
                out.stderr.contains("claimsmith.toml"),
                "names the config file: {}",
                out.stderr
            );
            assert!(out.stdout.is_empty() || command == "check");
        }
    }
    std::fs::write(&base.config, original).unwrap();
    let out = claimsmith(&["check", "--config", base.config.to_str().unwrap()], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("add-roles"));
    // Each rule's members of the event, as its module declares them.
    assert!(
        out.stdout.contains("rule add-roles: sha256 = \"",)
            && out
                .stdout
                .contains("\n  reads: authorization, login_time, configuration (ABI version 6)\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn explain_shows_each_rule_with_its_commands_and_resources() {
    let setup = Setup::new("RS256", ALL_RULES);
    let config = setup.config.to_str().unwrap();
    let alice = event("alice").to_string();
    let out = claimsmith(
        &[
            "run",
            "--config",
            config,
            "--event",
            "-",
            "--explain",
            "--json",
        ],
        Some(&alice),
    );
    assert_eq!(out.code, 0, "{out:?}");
    let explain = out.json()["explain"].clone();
    let rules: Vec<&str> = explain
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "require-verified-email",
            "add-roles",
            "capabilities",
            "scopes-from-roles",
            "tenant-from-metadata"
        ]
    );
    let add_roles = &explain[1];
    assert_eq!(add_roles["status"], "applied");
    assert!(add_roles["fuel_used"].as_u64().unwrap() > 0);
    assert!(add_roles["peak_memory_bytes"].as_u64().unwrap() > 0);
    assert_eq!(add_roles["commands"][0]["op"], "set_claim");

    let out = claimsmith(
        &["run", "--config", config, "--event", "-", "--explain"],
        Some(&event("bob-unverified").to_string()),
    );
    assert_eq!(out.code, 3);
    assert!(
        out.stderr.contains("rule require-verified-email") && out.stderr.contains("DENIED"),
        "{}",
        out.stderr
    );
}

#[test]
fn build_prints_one_module_path_per_rule() {
    // The binary runs from the workspace root, as a rule author would run it.
    let out = claimsmith(&["build", "rules/add-roles"], None);
    assert_eq!(out.code, 0, "{out:?}");
    let path = out.stdout.trim();
    assert!(path.ends_with("add_roles.wasm"), "{path}");
    assert!(std::fs::read(path).unwrap().starts_with(b"\0asm"));
    assert!(
        out.stderr.contains("claimsmith_on_execute_post_login"),
        "exports listed: {}",
        out.stderr
    );
}

#[test]
fn keygen_writes_a_private_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    let path = path.to_str().unwrap();
    assert_eq!(
        claimsmith(&["keygen", "--alg", "ES256", "--out", path], None).code,
        0
    );
    let pem = std::fs::read_to_string(path).unwrap();
    assert!(pem.contains("BEGIN PRIVATE KEY"));
    let again = claimsmith(&["keygen", "--alg", "ES256", "--out", path], None);
    assert_eq!(again.code, 2, "refuses to overwrite: {again:?}");
    assert_eq!(std::fs::read_to_string(path).unwrap(), pem);
    let hs = claimsmith(
        &[
            "keygen",
            "--alg",
            "HS256",
            "--out",
            dir.path().join("h.pem").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(hs.code, 2);
}

#[cfg(unix)]
#[test]
fn keygen_force_leaves_an_owner_only_key_and_a_symlink_is_never_written_through() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    std::fs::write(&path, "old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = claimsmith(
        &[
            "keygen",
            "--alg",
            "EdDSA",
            "--out",
            path.to_str().unwrap(),
            "--force",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("BEGIN PRIVATE KEY")
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
    // A dangling symlink is a file that exists: refused, and nothing written where it points.
    let link = dir.path().join("link.pem");
    let target = dir.path().join("victim.pem");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = claimsmith(
        &["keygen", "--alg", "EdDSA", "--out", link.to_str().unwrap()],
        None,
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("exists; pass --force"),
        "{}",
        out.stderr
    );
    assert!(!target.exists());
}

#[test]
fn prewarmed_logins_get_the_same_tokens_and_too_many_ready_instances_are_refused() {
    let setup = Setup::with_header("EdDSA", "[limits]\nprewarm = 1\n", ALL_RULES);
    let alice = setup.write("alice.json", event("alice").to_string());
    let config = setup.config.to_str().unwrap();
    let out = claimsmith(
        &[
            "bench",
            "--config",
            config,
            "--event",
            alice.to_str().unwrap(),
            "--iterations",
            "300",
            "--threads",
            "2",
            "--warmup",
            "5",
            "--json",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.json()["failed_logins"],
        json!({"denied": 0, "rule_failed": 0, "other": 0})
    );
    // The same decisions as without prewarm.
    let plain = Setup::new("EdDSA", ALL_RULES);
    assert_eq!(
        explained_claims(&setup, &event("alice")),
        explained_claims(&plain, &event("alice"))
    );
    // Ready instances, and as many used ones, may hold at most half of an engine's slots.
    let greedy = Setup::with_header("EdDSA", "[limits]\nprewarm = 100\n", ALL_RULES);
    let out = claimsmith(
        &["check", "--config", greedy.config.to_str().unwrap()],
        None,
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("limits.prewarm") && out.stderr.contains("more than half"),
        "{out:?}"
    );
}

/// What the rules put in a login's tokens under `setup` (the custom claims of both, and the
/// scopes), from `run`'s JSON.
fn explained_claims(setup: &Setup, event: &Value) -> Value {
    let out = setup.run(event);
    assert_eq!(out.code, 0, "{out:?}");
    let tokens = out.json();
    let custom = |token: &str| -> Value {
        let claims = tokens["claims"][token].as_object().unwrap();
        claims
            .iter()
            .filter(|(name, _)| name.starts_with("https://"))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect::<serde_json::Map<String, Value>>()
            .into()
    };
    let decided = json!([custom("id_token"), custom("access_token"), tokens["scopes"]]);
    assert_ne!(decided[0], json!({}), "the rules set claims: {tokens}");
    decided
}

#[test]
fn bench_reports_percentiles_throughput_and_per_rule_times_as_json() {
    let setup = Setup::new("EdDSA", ALL_RULES);
    let alice = setup.write("alice.json", event("alice").to_string());
    let args = [
        "bench",
        "--config",
        setup.config.to_str().unwrap(),
        "--event",
        alice.to_str().unwrap(),
        "--iterations",
        "60",
        "--threads",
        "2",
        "--warmup",
        "5",
        "--json",
    ];
    let out = claimsmith(&args, None);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["iterations"], 60);
    assert_eq!(report["threads"], 2);
    assert_eq!(
        report["engines"],
        claimsmith_engine::SandboxConfig::default_engines()
    );
    assert_eq!(
        report["failed_logins"],
        json!({"denied": 0, "rule_failed": 0, "other": 0})
    );
    assert_eq!(report["alg"], "EdDSA");
    let us = |key: &str| {
        report[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {report}"))
    };
    assert!(us("p50_us") > 0.0 && us("p50_us") <= us("p90_us") && us("p90_us") <= us("p99_us"));
    assert!(us("rules_p50_us") > 0.0 && us("rules_p50_us") < us("p50_us"));
    assert!(us("logins_per_sec") > 0.0);
    // The whole process's CPU time over the timed logins, shared out per login.
    assert!(us("cpu_us_per_login") > 0.0, "{report}");
    let names: Vec<&str> = report["per_rule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "require-verified-email",
            "add-roles",
            "capabilities",
            "scopes-from-roles",
            "tenant-from-metadata"
        ]
    );

    // The table form names the same figures.
    let table = claimsmith(&args[..args.len() - 1], None);
    assert_eq!(table.code, 0, "{table:?}");
    assert!(table.stdout.contains("rules only"), "{}", table.stdout);
    assert!(table.stdout.contains("logins/s"), "{}", table.stdout);

    // A login that gets no tokens cannot be benchmarked: its own exit code, the reason.
    let bob = setup.write("bob.json", event("bob-unverified").to_string());
    let out = claimsmith(
        &[
            "bench",
            "--config",
            setup.config.to_str().unwrap(),
            "--event",
            bob.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("does not get tokens"), "{}", out.stderr);
}

#[test]
fn every_example_rule_passes_its_fixtures_through_the_engine() {
    // From the workspace root, `claimsmith test` builds every crate under rules/ and every
    // JavaScript action under actions/, and runs each one's fixtures/*.json.
    let out = claimsmith(&["test"], None);
    assert_eq!(out.code, 0, "{out:?}");
    let fixtures: Vec<_> = ["rules", "actions"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(support::workspace().join(dir)).unwrap())
        .flat_map(|rule| std::fs::read_dir(rule.unwrap().path().join("fixtures")).unwrap())
        .collect();
    assert!(fixtures.len() >= 28, "every example rule ships fixtures");
    // The Rust ports of Auth0 actions that read the login's time, its session and its risk.
    for port in [
        "weekday-only",
        "session-timeout",
        "adaptive-mfa",
        "mfa-factor-selection",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with("ok   ") && l.contains(port)),
            "{port}: {}",
            out.stdout
        );
    }
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("ok   "))
            .count(),
        fixtures.len(),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("{} passed, 0 failed", fixtures.len())),
        "{}",
        out.stdout
    );
}

#[test]
fn test_with_a_config_runs_fixtures_under_that_rules_limits() {
    // The config gives add-roles far too little fuel: its fixtures fail the way logins would.
    let setup = Setup::new(
        "EdDSA",
        "[[rules]]\nname = \"add-roles\"\nmodule = \"{add-roles}\"\n[rules.limits]\nfuel = 500\n",
    );
    let config = setup.config.to_str().unwrap();
    let out = claimsmith(&["test", "rules/add-roles", "--config", config], None);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("fuel limit 500)"), "{}", out.stdout);
    assert!(out.stdout.contains("0 passed, 3 failed"), "{}", out.stdout);
}
