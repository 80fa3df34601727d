//! The rule author's path through the real binary, exactly as README.md and
//! docs/writing-rules.md walk it: scaffold a rule, test it natively and against its fixture,
//! add a claim, watch the fixture fail with a diff, fix the rule, build it, add it to the example
//! config, and get a signed token carrying the claim. Plus how `new` joins a workspace.

mod support;

use std::path::Path;
use std::process::Command;

use support::{claimsmith_in, workspace};

/// Shared build output, so cargo reuses compiled dependencies across runs.
fn target(sub: &str) -> String {
    workspace().join("target").join(sub).display().to_string()
}

fn cargo_test(dir: &Path) -> std::process::Output {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--quiet"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target("claimsmith-scaffold-native"))
        .output()
        .expect("run cargo test")
}

#[test]
fn a_new_rule_goes_from_scaffold_to_a_claim_in_a_signed_token() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path();
    let rules_target = target("claimsmith-rules");

    // 1. Scaffold, outside any workspace: the crate stands alone.
    let out = claimsmith_in(root, &["new", "email-domain"], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("a crate of its own"), "{}", out.stdout);
    let rule = root.join("rules/email-domain");
    for file in ["Cargo.toml", "src/lib.rs", "fixtures/example.json"] {
        assert!(rule.join(file).is_file(), "{file} was created");
    }

    // 2. As created, it passes its native unit tests and its fixture through the engine.
    let native = cargo_test(&rule);
    assert!(
        native.status.success(),
        "cargo test of the new crate: {}",
        String::from_utf8_lossy(&native.stderr)
    );
    let args = ["test", "rules/email-domain", "--target-dir", &rules_target];
    let out = claimsmith_in(root, &args, None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("ok   email-domain/example.json"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("1 passed, 0 failed"), "{}", out.stdout);

    // 3. Expect a new claim first: the fixture fails, with a diff naming the claim.
    let fixture = rule.join("fixtures/example.json");
    let mut expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&fixture).unwrap()).unwrap();
    expected["expect"]["id_token"]["https://example.com/login_count"] = 12.into();
    std::fs::write(&fixture, serde_json::to_string_pretty(&expected).unwrap()).unwrap();
    let out = claimsmith_in(root, &args, None);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("FAIL email-domain/example.json"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "  id_token claim \"https://example.com/login_count\"\n    - expected: 12\n    + actual:   (not set)"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("0 passed, 1 failed"), "{}", out.stdout);

    // 4. Add the claim to the rule: the fixture passes.
    let lib = rule.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    let anchor = "// Exports the function";
    assert!(source.contains(anchor));
    let source = source.replacen(
        "    }\n}\n\n// Exports the function",
        "    }\n    api.id_token()\n        .set_custom_claim(format!(\"{namespace}/login_count\"), event.stats.logins_count);\n}\n\n// Exports the function",
        1,
    );
    std::fs::write(&lib, source.clone()).unwrap();
    // The rule reads `stats` without declaring it: the host never hands it over, so it reads
    // as empty and the fixture still fails.
    let out = claimsmith_in(root, &args, None);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .contains("    - expected: 12\n    + actual:   0\n"),
        "{}",
        out.stdout
    );
    // Declared: the fixture passes.
    let declared = "reads = [user, configuration]";
    assert!(source.contains(declared));
    let source = source.replacen(declared, "reads = [user, stats, configuration]", 1);
    std::fs::write(&lib, source).unwrap();
    let out = claimsmith_in(root, &args, None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("1 passed, 0 failed"), "{}", out.stdout);

    // 5. Build: the module path on stdout, size and exports on stderr.
    let out = claimsmith_in(
        root,
        &["build", "rules/email-domain", "--target-dir", &rules_target],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    let module = out.stdout.trim().to_owned();
    assert!(module.ends_with("email_domain.wasm"), "{module}");
    assert!(out.stderr.contains("bytes, exports"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("  reads: user, stats, login_time, configuration (ABI version 6)"),
        "{}",
        out.stderr
    );

    // 6. Add it to (a copy of) the example config and log Alice in.
    let examples = workspace().join("examples");
    let config = std::fs::read_to_string(examples.join("claimsmith.toml"))
        .unwrap()
        .replace(
            "\"../target/",
            &format!("\"{}/target/", workspace().display()),
        );
    std::fs::create_dir_all(root.join("keys")).unwrap();
    for (alg, file) in [
        ("RS256", "signing-rs256.pem"),
        ("EdDSA", "signing-eddsa.pem"),
    ] {
        let path = root.join("keys").join(file);
        let out = claimsmith_in(
            root,
            &["keygen", "--alg", alg, "--out", path.to_str().unwrap()],
            None,
        );
        assert_eq!(out.code, 0, "{out:?}");
    }
    let config = format!(
        "{config}\n[[rules]]\nname = \"email-domain\"\nmodule = {module:?}\n[rules.config]\nnamespace = \"https://example.com\"\n"
    );
    std::fs::write(root.join("claimsmith.toml"), config).unwrap();
    let alice = examples.join("events/alice.json");
    let out = claimsmith_in(
        root,
        &[
            "run",
            "--config",
            "claimsmith.toml",
            "--event",
            alice.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    let tokens = out.json();
    let jwks = claimsmith_in(root, &["jwks", "--config", "claimsmith.toml"], None).json();
    let (_, claims) = support::verify(tokens["id_token"].as_str().unwrap(), &jwks, "spa-client");
    assert_eq!(claims["https://example.com/email_domain"], "acme.example");
    assert_eq!(claims["https://example.com/login_count"], 12);
    assert_eq!(
        claims["https://example.com/roles"],
        serde_json::json!(["admin", "editor"])
    );
}

#[test]
fn new_joins_the_enclosing_workspace_and_refuses_clashes() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path();
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = [\"tools/x\"]\n",
    )
    .unwrap();

    let out = claimsmith_in(root, &["new", "tiers"], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("added to the workspace"),
        "{}",
        out.stdout
    );
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&manifest).unwrap();
    assert_eq!(
        doc["workspace"]["members"],
        toml::Value::Array(vec!["tools/x".into(), "rules/tiers".into()])
    );
    let crate_manifest = std::fs::read_to_string(root.join("rules/tiers/Cargo.toml")).unwrap();
    assert!(!crate_manifest.contains("[workspace]"), "{crate_manifest}");

    // A glob that covers the folder leaves the manifest alone.
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nmembers = [\"rules/*\"]\n",
    )
    .unwrap();
    let out = claimsmith_in(root, &["new", "other", "--dir", "rules"], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("in the workspace of"), "{}", out.stdout);
    assert_eq!(
        std::fs::read_to_string(root.join("Cargo.toml")).unwrap(),
        "[workspace]\nmembers = [\"rules/*\"]\n"
    );

    // Cargo agrees both crates are members.
    let metadata = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root.join("rules/other"))
        .output()
        .unwrap();
    assert!(
        metadata.status.success(),
        "{}",
        String::from_utf8_lossy(&metadata.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout).unwrap();
    let names: Vec<&str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"other") && names.contains(&"tiers"),
        "{names:?}"
    );

    // Clashes and bad names: exit 2, the cause named, nothing overwritten.
    let out = claimsmith_in(root, &["new", "tiers"], None);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    let out = claimsmith_in(root, &["new", "tiers", "--dir", "experiments"], None);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("already has a package named \"tiers\""),
        "{}",
        out.stderr
    );
    assert!(!root.join("experiments").exists(), "nothing is left behind");
    let out = claimsmith_in(root, &["new", "Bad_Name"], None);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("\"Bad_Name\" is not a usable rule name"),
        "{}",
        out.stderr
    );
}

#[test]
fn test_reports_a_broken_fixture_with_its_field_and_exits_2() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path();
    assert_eq!(claimsmith_in(root, &["new", "typo"], None).code, 0);
    std::fs::write(
        root.join("rules/typo/fixtures/bad.json"),
        r#"{"event": {}, "expect": {"id_tokens": {}}}"#,
    )
    .unwrap();
    let out = claimsmith_in(
        root,
        &[
            "test",
            "rules/typo",
            "--target-dir",
            &target("claimsmith-rules"),
        ],
        None,
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("ERR  typo/bad.json"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("expect.id_tokens: unknown field `id_tokens`"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("ok   typo/example.json"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_fixture_event_without_a_user_id_fails_as_a_real_login_does() {
    // Fixtures take the one way into a login (`Pipeline::event_from_value`), so an event a real
    // login refuses is refused here too, with the same words.
    let home = tempfile::tempdir().unwrap();
    let root = home.path();
    assert_eq!(claimsmith_in(root, &["new", "nouser"], None).code, 0);
    std::fs::write(
        root.join("rules/nouser/fixtures/no-user.json"),
        r#"{"event": {"client": {"client_id": "spa"}}, "expect": {}}"#,
    )
    .unwrap();
    let out = claimsmith_in(
        root,
        &[
            "test",
            "rules/nouser",
            "--target-dir",
            &target("claimsmith-rules"),
        ],
        None,
    );
    assert_eq!(out.code, 2, "{out:?}");
    let refused = "event field `user.user_id` is required";
    assert!(
        out.stdout.contains("ERR  nouser/no-user.json"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(refused), "{}", out.stdout);
    assert!(
        out.stdout.contains("ok   nouser/example.json"),
        "{}",
        out.stdout
    );
}
