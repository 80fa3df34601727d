//! Shadow rules and pinned modules through the real binary: a candidate for `add-roles` that
//! drops one role changes no login and reports the claim and token of each login it would
//! change; candidates that loop, deny or fail are reported and change nothing; `claimsmith test`
//! compares a candidate under a config; a module with one byte changed is refused at load and on
//! the server's reload, naming both hashes; the server counts shadow results.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use support::{ADD_ROLES, Setup, bin, claimsmith, event, fixed_rule, spin_module, workspace};

const CANDIDATE: &str = "[[rules]]\nname = \"add-roles-v2\"\nmodule = \"{add-roles-candidate}\"\nmode = \"shadow\"\nshadows = \"add-roles\"\n[rules.config]\nnamespace = \"https://example.com\"\ndrop = \"editor\"\n";

/// Decoded claims of both tokens, less what differs per minting (`iat`, `exp`, `jti`).
fn claims(output: &Value) -> Value {
    let mut claims = output["claims"].clone();
    for token in ["id_token", "access_token"] {
        if let Some(map) = claims[token].as_object_mut() {
            for field in ["iat", "exp", "jti", "nbf", "auth_time"] {
                map.remove(field);
            }
        }
    }
    json!({"claims": claims, "scopes": output["scopes"], "app_metadata": output["app_metadata"], "user_metadata": output["user_metadata"], "mfa": output["mfa"]})
}

fn explain(setup: &Setup, event: &Value) -> support::Output {
    claimsmith(
        &[
            "run",
            "--config",
            setup.config.to_str().unwrap(),
            "--event",
            "-",
            "--explain",
            "--json",
        ],
        Some(&event.to_string()),
    )
}

#[test]
fn a_candidate_that_drops_a_role_changes_no_login_and_names_the_claim_and_token() {
    let plain = Setup::new("EdDSA", ADD_ROLES);
    let shadowed = Setup::new("EdDSA", &format!("{ADD_ROLES}\n{CANDIDATE}"));
    for (name, differs) in [("alice", true), ("bob-unverified", false)] {
        let login = event(name);
        let without = plain.run(&login);
        let with = explain(&shadowed, &login);
        assert_eq!(with.code, 0, "{with:?}");
        assert_eq!(claims(&without.json()), claims(&with.json()), "{name}");
        let report = &with.json()["shadow"][0];
        assert_eq!(report["rule"], "add-roles-v2");
        assert_eq!(report["shadows"], "add-roles");
        if differs {
            assert_eq!(report["result"], "differs", "{report}");
            let changes: Vec<(String, String, String)> = report["changes"]["claims"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    let text = |f: &str| c[f].as_str().unwrap().to_owned();
                    (text("token"), text("claim"), text("kind"))
                })
                .collect();
            let roles = "https://example.com/roles".to_string();
            assert_eq!(
                changes,
                [
                    ("id_token".into(), roles.clone(), "changed".into()),
                    ("access_token".into(), roles, "changed".into()),
                ]
            );
            // Values only with shadow_values = true.
            assert!(report["changes"]["claims"][0].get("shadow").is_none());
        } else {
            assert_eq!(report["result"], "same", "{report}");
        }
        assert!(report["duration_us"].as_f64().unwrap() > 0.0);
    }
    // The text explanation names the claim and token too, and values when asked for.
    let valued = Setup::with_header(
        "EdDSA",
        "shadow_values = true",
        &format!("{ADD_ROLES}\n{CANDIDATE}"),
    );
    let out = claimsmith(
        &[
            "run",
            "--config",
            valued.config.to_str().unwrap(),
            "--event",
            "-",
            "--explain",
        ],
        Some(&event("alice").to_string()),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("shadow add-roles-v2 (candidate for add-roles) — DIFFERS")
            && out.stderr.contains(
                "id_token claim https://example.com/roles would be changed: [\"admin\",\"editor\"] -> [\"admin\"]"
            ),
        "{}",
        out.stderr
    );
}

#[test]
fn candidates_that_loop_deny_or_fail_are_reported_and_change_no_login() {
    let mut rules = ADD_ROLES.to_owned();
    for (name, shadows) in [
        ("loops", "shadows = \"add-roles\"\n"),
        ("denies", ""),
        ("fails", "shadows = \"add-roles\"\n"),
    ] {
        // Paths are relative to the config's folder, where the modules are written below.
        rules.push_str(&format!(
            "[[rules]]\nname = \"{name}\"\nmodule = \"{name}.wasm\"\nmode = \"shadow\"\n{shadows}[rules.limits]\nfuel = 100000\n"
        ));
    }
    let setup = Setup::new("EdDSA", &rules);
    setup.write("loops.wasm", spin_module());
    setup.write(
        "denies.wasm",
        fixed_rule(json!([{"op": "deny", "reason": "not yet"}])),
    );
    setup.write(
        "fails.wasm",
        fixed_rule(
            json!([{"op": "set_claim", "token": "id_token", "name": "https://elsewhere.test/x", "value": 1}]),
        ),
    );
    let plain = Setup::new("EdDSA", ADD_ROLES).run(&event("alice"));
    let out = explain(&setup, &event("alice"));
    assert_eq!(out.code, 0, "{out:?}");
    let output = out.json();
    assert_eq!(claims(&plain.json()), claims(&output));
    let results: Vec<(&str, &str)> = output["shadow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["rule"].as_str().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        results,
        [
            ("loops", "failed"),
            ("denies", "would_deny"),
            ("fails", "failed")
        ]
    );
    assert_eq!(output["shadow"][0]["kind"], "fuel_exhausted");
    assert_eq!(output["shadow"][1]["reason"], "not yet");
    assert_eq!(output["shadow"][2]["kind"], "policy");
    // The enforced trace is the enforcing rule's alone.
    assert_eq!(output["explain"].as_array().unwrap().len(), 1);
}

#[test]
fn claimsmith_test_compares_a_candidate_under_the_config() {
    let setup = Setup::new("EdDSA", &format!("{ADD_ROLES}\n{CANDIDATE}"));
    let fixtures = setup.dir.path().join("compare");
    std::fs::create_dir(&fixtures).unwrap();
    let write = |name: &str, login: Value, shadow: Value| {
        let fixture = json!({
            "event": login,
            "configuration": {"namespace": "https://example.com", "drop": "editor"},
            "expect": {"shadow": shadow}
        });
        std::fs::write(fixtures.join(name), fixture.to_string()).unwrap();
    };
    write(
        "alice.json",
        event("alice"),
        json!({"result": "differs", "claims": [
            {"token": "id_token", "claim": "https://example.com/roles", "kind": "changed"},
            {"token": "access_token", "claim": "https://example.com/roles", "kind": "changed"}
        ], "scopes_added": []}),
    );
    write(
        "bob.json",
        event("bob-unverified"),
        json!({"result": "same"}),
    );
    let args = |config: &str| {
        vec![
            "test".to_owned(),
            "rules/add-roles-candidate".into(),
            "--config".into(),
            config.into(),
            "--fixtures".into(),
            fixtures.display().to_string(),
        ]
    };
    let config = setup.config.to_str().unwrap();
    let argv = args(config);
    let out = claimsmith(&argv.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("2 passed, 0 failed"), "{}", out.stdout);
    // A fixture that says "changes nothing" for alice fails, naming what it changes.
    write("alice.json", event("alice"), json!({"result": "same"}));
    let out = claimsmith(&argv.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("shadow result") && out.stdout.contains("differs"),
        "{}",
        out.stdout
    );
    // A mistyped or empty fixtures folder is an error, not "0 passed, 0 failed".
    let mut mistyped = argv.clone();
    *mistyped.last_mut().unwrap() = format!("{}-typo", fixtures.display());
    let out = claimsmith(
        &mistyped.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("-typo: no such folder"),
        "{}",
        out.stderr
    );
    let empty = tempfile::tempdir().unwrap();
    *mistyped.last_mut().unwrap() = empty.path().display().to_string();
    let out = claimsmith(
        &mistyped.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no *.json fixtures"), "{}", out.stderr);
}

#[test]
fn build_and_check_print_the_sha256_a_pinned_module_must_have() {
    let module = support::module("add-roles");
    let bytes = std::fs::read(&module).unwrap();
    let digest = claimsmith::ModuleDigest::of(&bytes).to_string();
    let built = claimsmith(&["build", "rules/add-roles"], None);
    assert_eq!(built.code, 0, "{built:?}");
    assert!(
        built.stderr.contains(&format!("sha256 = \"{digest}\"")),
        "{}",
        built.stderr
    );
    assert_eq!(built.stdout.lines().count(), 1, "stdout: one module path");
    let setup = Setup::new(
        "EdDSA",
        &format!(
            "[[rules]]\nname = \"add-roles\"\nmodule = \"{{add-roles}}\"\nsha256 = \"{digest}\"\n"
        ),
    );
    let check = claimsmith(&["check", "--config", setup.config.to_str().unwrap()], None);
    assert_eq!(check.code, 0, "{check:?}");
    let mut lines = check.stdout.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("ok: 1 key(s), 1 rule(s): add-roles")
    );
    assert_eq!(
        lines.next().unwrap(),
        format!("rule add-roles: sha256 = \"{digest}\"")
    );
    // One byte changed: refused, naming the rule and both hashes.
    let mut changed = bytes.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    let copy = setup.write("add_roles.wasm", &changed);
    let actual = claimsmith::ModuleDigest::of(&changed).to_string();
    std::fs::write(
        &setup.config,
        std::fs::read_to_string(&setup.config)
            .unwrap()
            .replace(&module.display().to_string(), &copy.display().to_string()),
    )
    .unwrap();
    let check = claimsmith(&["check", "--config", setup.config.to_str().unwrap()], None);
    assert_ne!(check.code, 0, "{check:?}");
    assert!(
        check.stderr.contains("add-roles")
            && check.stderr.contains(&digest)
            && check.stderr.contains(&actual),
        "{}",
        check.stderr
    );
}

/// `claimsmith serve` on `config`; its address once it listens.
fn serve(config: &std::path::Path) -> (std::process::Child, String) {
    let mut child = Command::new(bin())
        .args(["serve", "--config", config.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0"])
        .env(
            "CLAIMSMITH_CACHE_DIR",
            workspace().join("target/claimsmith-test-cache"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let address = loop {
        let line = lines.next().expect("the server started").unwrap();
        if let Some(url) = line.strip_prefix("listening on http://") {
            break url.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, address)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

#[test]
fn the_server_counts_shadow_results_and_a_reload_refuses_a_changed_pinned_module() {
    let hook = "[server]\n[[server.hooks]]\npath = \"/hooks/login\"\nformat = \"claimsmith\"\n[server.hooks.auth]\ntype = \"none\"\n";
    let digest =
        claimsmith::ModuleDigest::of(&std::fs::read(support::module("add-roles")).unwrap());
    let pinned = ADD_ROLES.replace(
        "module = \"{add-roles}\"\n",
        &format!("module = \"{{add-roles}}\"\nsha256 = \"{digest}\"\n"),
    );
    let setup = Setup::new("EdDSA", &format!("{pinned}\n{CANDIDATE}\n{hook}"));
    let (mut child, address) = serve(&setup.config);
    let agent = agent();
    for name in ["alice", "alice", "bob-unverified"] {
        let response = agent
            .post(&format!("http://{address}/hooks/login"))
            .header("content-type", "application/json")
            .send(event(name).to_string())
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let metrics = || {
        agent
            .get(&format!("http://{address}/metrics"))
            .call()
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap()
    };
    let text = metrics();
    for line in [
        "claimsmith_shadow_logins_total{rule=\"add-roles-v2\",result=\"differs\"} 2",
        "claimsmith_shadow_logins_total{rule=\"add-roles-v2\",result=\"same\"} 1",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    // The module changes under the pin: the reload is refused, the old config keeps serving.
    let module = support::module("add-roles");
    let mut changed = std::fs::read(&module).unwrap();
    changed[10] ^= 1;
    let copy = setup.write("add_roles.wasm", &changed);
    std::fs::write(
        &setup.config,
        std::fs::read_to_string(&setup.config)
            .unwrap()
            .replace(&module.display().to_string(), &copy.display().to_string()),
    )
    .unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !metrics().contains("claimsmith_config_reloads_total{result=\"error\"} 1") {
        assert!(Instant::now() < deadline, "no refused reload counted");
        std::thread::sleep(Duration::from_millis(50));
    }
    let response = agent
        .post(&format!("http://{address}/hooks/login"))
        .header("content-type", "application/json")
        .send(event("alice").to_string())
        .unwrap();
    assert_eq!(response.status(), 200);
    let _ = child.kill();
    let _ = child.wait();
}
