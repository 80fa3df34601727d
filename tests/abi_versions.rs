//! Every guest ABI version side by side. Modules built with this SDK speak version 6 (only the
//! members of the event the rule declares it reads, each in a binary part of its own); the same
//! rules built with the SDK's `abi-v4` feature speak version 4 (every member, the fields added
//! by versions 3 and 4 each in a part of their own), as modules built before version 6 do, with
//! `abi-v3` version 3, with `abi-v2` version 2, and with `abi-v1` version 1 (JSON both ways), as
//! modules built before version 2 do. One host runs them all, and they decide the same on every
//! sample login; on a login with the fields added in version 3, each sees the fields its version
//! carries, and a version 6 module sees only the members it declares.

mod support;

use std::path::PathBuf;

use claimsmith_cli::internals as rule_crate;
use claimsmith_engine::internals;
use claimsmith_engine::{LoginEvent, Pipeline, Reads, RuleSpec, SandboxConfig};
use serde_json::{Map, Value, json};

const RULES: [&str; 6] = [
    "require-verified-email",
    "add-roles",
    "add-groups",
    "capabilities",
    "scopes-from-roles",
    "tenant-from-metadata",
];

/// The example rules built as version 1 modules, in a target folder of their own.
fn version_1_module(rule: &str) -> PathBuf {
    module_of_version(rule, 1)
}

/// The example rules built as version 2 modules, in a target folder of their own.
fn version_2_module(rule: &str) -> PathBuf {
    module_of_version(rule, 2)
}

fn module_of_version(rule: &str, version: i32) -> PathBuf {
    let target = support::workspace().join(format!("target/claimsmith-test-abi-v{version}"));
    rule_crate::build_with_features(
        &support::workspace().join("rules").join(rule),
        &target,
        &[&format!("claimsmith-sdk/abi-v{version}")],
    )
    .unwrap_or_else(|e| panic!("building {rule} for ABI version {version}: {e}"))
    .module
}

fn configuration(rule: &str) -> Map<String, Value> {
    let value = match rule {
        "capabilities" => json!({"namespace": "https://example.com", "capabilities": {
            "export-report": ["read:reports", "export:reports"], "edit-user": ["update:users"]}}),
        "scopes-from-roles" => json!({"scopes_by_role": {
            "admin": ["read:reports", "admin:users"], "editor": ["read:reports"]}}),
        "require-verified-email" => json!({"exempt_connections": ["corporate-saml"]}),
        _ => json!({"namespace": "https://example.com"}),
    };
    value.as_object().unwrap().clone()
}

fn pipeline(modules: &[(&str, PathBuf)]) -> Pipeline {
    named_pipeline(
        &modules
            .iter()
            .map(|(rule, path)| (rule.to_string(), *rule, path.clone()))
            .collect::<Vec<_>>(),
    )
}

/// A pipeline of `(name, rule, module)`: each rule under its own name, with the rule's settings.
fn named_pipeline(modules: &[(String, &str, PathBuf)]) -> Pipeline {
    let mut pipeline = Pipeline::builder()
        .sandbox(SandboxConfig::default())
        .namespaces(["https://example.com/"]);
    for (name, rule, path) in modules {
        let spec = RuleSpec {
            name: name.clone(),
            configuration: configuration(rule),
            secrets: [("API_KEY".to_owned(), "s3cr3t-value".to_owned())].into(),
            ..RuleSpec::default()
        };
        pipeline = pipeline.rule_file(spec, path);
    }
    pipeline.build().unwrap()
}

/// What a login ended with, everything but timings and resource use.
fn decided(pipeline: &Pipeline, event: &LoginEvent) -> Value {
    match pipeline.run(event) {
        Ok(outcome) => json!({
            "id_token": outcome.id_token,
            "access_token": outcome.access_token,
            "scopes": outcome.scopes,
            "app_metadata": outcome.app_metadata,
            "user_metadata": outcome.user_metadata,
            "mfa": outcome.mfa,
            "logs": outcome.logs,
            "commands": outcome.rules.iter().map(|r| &r.commands).collect::<Vec<_>>(),
        }),
        Err(error) => json!({"error": error.to_string()}),
    }
}

#[test]
fn modules_of_every_version_of_the_same_rules_decide_the_same() {
    let v1: Vec<_> = RULES.iter().map(|r| (*r, version_1_module(r))).collect();
    let v2: Vec<_> = RULES.iter().map(|r| (*r, version_2_module(r))).collect();
    let v3: Vec<_> = RULES
        .iter()
        .map(|r| (*r, module_of_version(r, 3)))
        .collect();
    let v4: Vec<_> = RULES
        .iter()
        .map(|r| (*r, module_of_version(r, 4)))
        .collect();
    let v6: Vec<_> = RULES.iter().map(|r| (*r, support::module(r))).collect();
    let (v1, v2, v3, v4, v6) = (
        pipeline(&v1),
        pipeline(&v2),
        pipeline(&v3),
        pipeline(&v4),
        pipeline(&v6),
    );
    for (pipeline, version) in [(&v1, 1), (&v2, 2), (&v3, 3), (&v4, 4), (&v6, 6)] {
        for rule in pipeline.rules() {
            assert_eq!(rule.abi_version(), version, "{}", rule.name());
        }
    }

    let mut rich = support::event("alice");
    rich["user"]["app_metadata"]["plan"] =
        json!({"tier": "pro", "seats": 12, "ratio": 0.5, "debt": -3});
    rich["request"]["geoip"] = json!({"countryCode": "FR", "latitude": 48.85});
    rich["organization"] = json!({"id": "org_1", "name": "acme", "metadata": {"region": "eu"}});
    rich["something_new"] = json!(["ignored", "by", "both"]);
    let events = [
        support::event("alice"),
        support::event("bob-unverified"),
        support::event("carol-no-api"),
        rich,
    ];
    for event in events {
        let event = v1.event_from_value(event).unwrap();
        let (one, two, three) = (
            decided(&v1, &event),
            decided(&v2, &event),
            decided(&v3, &event),
        );
        assert_eq!(one, two);
        assert_eq!(one, three);
        assert_eq!(one, decided(&v4, &event));
        assert_eq!(one, decided(&v6, &event));
    }
    // Version 6 modules read only what they declare; the older ones are handed everything.
    let reads: Vec<String> = v6.rules().iter().map(|r| r.reads().to_string()).collect();
    assert_eq!(
        reads,
        [
            "user, connection, login_time, configuration",
            "authorization, login_time, configuration",
            "user, issuer_claims, login_time, configuration",
            "authorization, login_time, configuration",
            "authorization, transaction, resource_server, login_time, configuration",
            "user, resource_server, login_time, configuration",
        ]
    );
    assert!(v4.rules().iter().all(|r| r.reads() == Reads::ALL));
    // The comparison is not vacuous: alice gets claims and bob is denied.
    let alice = v2.event_from_value(support::event("alice")).unwrap();
    assert_eq!(
        decided(&v2, &alice)["id_token"]["https://example.com/roles"],
        json!(["admin", "editor"])
    );
    let bob = v1
        .event_from_value(support::event("bob-unverified"))
        .unwrap();
    assert!(decided(&v1, &bob)["error"].is_string());
}

#[test]
fn one_pipeline_runs_a_module_of_each_version_and_each_sees_the_fields_its_version_carries() {
    // add-groups puts `user.groups` into each token where `issuer_claims` does not already hold
    // the claim: a module that sees both sets the access token's only.
    // Version 5 is what the JavaScript runtime speaks; a hand-made module stands in for it here
    // (tests/js_actions.rs runs real ones): it finds `login_time` last in its JSON input and
    // sets a claim only then.
    let dir = tempfile::tempdir().unwrap();
    let v5 = dir.path().join("v5.wasm");
    std::fs::write(&v5, version_5_module()).unwrap();
    let modules: Vec<_> = [
        (1, version_1_module("add-groups")),
        (2, version_2_module("add-groups")),
        (3, module_of_version("add-groups", 3)),
        (4, module_of_version("add-groups", 4)),
        (5, v5),
        (6, support::module("add-groups")),
    ]
    .into_iter()
    .map(|(version, path)| (format!("add-groups-v{version}"), "add-groups", path))
    .collect();
    let pipeline = named_pipeline(&modules);
    let versions: Vec<_> = pipeline.rules().iter().map(|r| r.abi_version()).collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);

    let mut event = support::event("alice");
    event["user"]["groups"] = json!(["engineering", "CN=Admins,OU=Groups,DC=acme"]);
    event["issuer_claims"] = json!({
        "id_token": {"https://example.com/groups": ["from-the-issuer"]},
        "access_token": {"tid": "t-1"}
    });
    let bytes = serde_json::to_vec(&event).unwrap();
    let event = pipeline.event_from_json(&bytes).unwrap();
    let outcome = pipeline.run(&event).unwrap();
    let commands: Vec<Value> = outcome
        .rules
        .iter()
        .map(|r| serde_json::to_value(&r.commands).unwrap())
        .collect();
    let access_token_only = json!([{
        "op": "set_claim", "token": "access_token", "name": "https://example.com/groups",
        "value": ["engineering", "CN=Admins,OU=Groups,DC=acme"]
    }]);
    // Version 1 reads the JSON, every member; version 3 the binary form with the added part.
    assert_eq!(commands[0], access_token_only, "version 1");
    assert_eq!(commands[2], access_token_only, "version 3");
    assert_eq!(commands[3], access_token_only, "version 4");
    assert_eq!(
        commands[4],
        json!([{"op": "set_claim", "token": "access_token", "name": "https://example.com/v5",
                "value": true}]),
        "version 5"
    );
    // Version 6 reads `user` and `issuer_claims`, as it declares.
    assert_eq!(commands[5], access_token_only, "version 6");
    // Version 2's binary form has neither field: no groups, so nothing to do.
    assert_eq!(commands[1], json!([]), "version 2");
    assert_eq!(
        outcome.access_token["https://example.com/groups"],
        json!(["engineering", "CN=Admins,OU=Groups,DC=acme"])
    );
    assert!(outcome.id_token.get("https://example.com/groups").is_none());
}

#[test]
fn a_pipeline_keeps_the_callers_event_bytes_only_for_version_1_rules_or_a_borrowed_parse() {
    let v1 = pipeline(&[("add-roles", version_1_module("add-roles"))]);
    let v2 = pipeline(&[("add-roles", version_2_module("add-roles"))]);
    let v6 = pipeline(&[("add-roles", support::module("add-roles"))]);
    let mixed = pipeline(&[
        ("add-roles", support::module("add-roles")),
        ("add-groups", version_2_module("add-groups")),
    ]);
    let mut event = support::event("alice");
    event["something_new"] = json!({"kept": true});
    // Pinned: each parse would otherwise take the host's clock, and the events are compared.
    event["login_time"] = json!(1_796_405_400_000u64);
    let bytes = serde_json::to_vec(&event).unwrap();
    let prefix = internals::input_prefix(&Map::new(), &Map::new());
    let members = |event: &LoginEvent| -> Value {
        serde_json::from_slice(&internals::json_input(event, &prefix)).unwrap()
    };

    let from_json = internals::event_from_json(&bytes).unwrap();

    // A version 1 rule sees the member the host does not know, as `LoginEvent::from_json` gives.
    let for_v1 = v1.event_from_json(&bytes).unwrap();
    assert_eq!(members(&for_v1)["something_new"], json!({"kept": true}));
    assert_eq!(members(&for_v1), members(&from_json));
    // A pipeline of version 2 rules only (or with one) has no use for the bytes: the same
    // checked event, the same decisions.
    for typed in [&v2, &mixed] {
        let for_v2 = typed.event_from_json(&bytes).unwrap();
        assert_eq!(for_v2.event(), for_v1.event());
        assert!(members(&for_v2).get("something_new").is_none());
        assert_eq!(decided(typed, &for_v2), decided(typed, &from_json));
    }
    assert_eq!(
        decided(&v2, &v2.event_from_json(&bytes).unwrap())["id_token"]["https://example.com/roles"],
        json!(["admin", "editor"])
    );
    // A pipeline of version 6 rules only parses borrowed, into the parts its rules read, and
    // keeps the bytes for the typed event, if asked for: the same event, the same decisions.
    let for_v6 = v6.event_from_json(&bytes).unwrap();
    assert_eq!(decided(&v6, &for_v6), decided(&v6, &from_json));
    assert_eq!(for_v6.event(), for_v1.event());
    assert_eq!(members(&for_v6), members(&from_json));
    let typed = v6.event_from_json_typed(&bytes).unwrap();
    assert_eq!(typed.event(), for_v1.event());
    assert!(members(&typed).get("something_new").is_none());
    // Bad input is refused the same way, by every parse.
    let bad = br#"{"user": {"app_metadata": []}}"#;
    for err in [
        v2.event_from_json(bad).unwrap_err(),
        v6.event_from_json(bad).unwrap_err(),
        v6.event_from_json_typed(bad).unwrap_err(),
    ] {
        assert!(err.to_string().contains("user.app_metadata"), "{err}");
    }
}

#[test]
fn only_versions_4_and_6_see_the_login_time_and_a_version_3_module_cannot_send_its_commands() {
    // Saturday 2026-12-05 09:00 UTC. weekday-only denies on a weekend: built for version 4 or 6
    // it reads the pinned time; built for version 3 it reads no time at all (the epoch, a
    // Thursday), exactly as a module built before version 4 would.
    let v3 = pipeline(&[("weekday-only", module_of_version("weekday-only", 3))]);
    let v4 = pipeline(&[("weekday-only", module_of_version("weekday-only", 4))]);
    let v6 = pipeline(&[("weekday-only", support::module("weekday-only"))]);
    assert_eq!(v3.rules()[0].abi_version(), 3);
    assert_eq!(v4.rules()[0].abi_version(), 4);
    assert_eq!(v6.rules()[0].abi_version(), 6);
    assert_eq!(
        v6.rules()[0].reads().to_string(),
        "login_time, configuration"
    );
    let mut event = support::event("alice");
    event["login_time"] = json!(1_796_461_200_000u64);
    let event = v4.event_from_value(event).unwrap();
    assert_eq!(event.login_time(), 1_796_461_200_000);
    assert!(
        decided(&v4, &event)["error"]
            .as_str()
            .unwrap()
            .contains("weekdays only")
    );
    assert_eq!(decided(&v6, &event), decided(&v4, &event));
    assert!(decided(&v3, &event)["error"].is_null());
    // mfa-factor-selection built for version 3 still returns enroll_with: the host refuses it.
    let v3 = pipeline(&[(
        "mfa-factor-selection",
        module_of_version("mfa-factor-selection", 3),
    )]);
    let event = v3.event_from_value(support::event("alice")).unwrap();
    let error = decided(&v3, &event)["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("enroll_with needs ABI version 4; this module speaks version 3"),
        "{error}"
    );
    let v4 = pipeline(&[(
        "mfa-factor-selection",
        support::module("mfa-factor-selection"),
    )]);
    let outcome = v4.run(&event).unwrap();
    assert_eq!(outcome.authentication[0].op(), "enroll_with");
}

#[test]
fn a_version_6_module_is_handed_what_it_declares_and_the_config_may_narrow_it_only() {
    let build = |reads: Option<&str>, path: PathBuf| {
        let spec = RuleSpec {
            name: "add-roles".into(),
            configuration: configuration("add-roles"),
            reads: reads.map(|names| Reads::parse(names).unwrap()),
            ..RuleSpec::default()
        };
        Pipeline::builder()
            .namespaces(["https://example.com/"])
            .rule_file(spec, path)
            .build()
    };
    let v6 = support::module("add-roles");
    // Allowing what it declares, or more, loads it, still handed only what it declares.
    for allowed in [
        "authorization configuration",
        "user authorization configuration secrets",
    ] {
        let pipeline = build(Some(allowed), v6.clone()).unwrap();
        assert_eq!(
            pipeline.rules()[0].reads().to_string(),
            "authorization, login_time, configuration"
        );
        let alice = pipeline.event_from_value(support::event("alice")).unwrap();
        assert_eq!(
            decided(&pipeline, &alice)["id_token"]["https://example.com/roles"],
            json!(["admin", "editor"])
        );
    }
    // Allowing less refuses it at load, naming the rule and what it reads beyond.
    let err = build(Some("authorization"), v6).unwrap_err().to_string();
    assert!(
        err.contains("rule `add-roles`") && err.contains("its module reads configuration"),
        "{err}"
    );
    // A module of an older version is handed everything: it cannot be narrowed.
    let err = build(
        Some("authorization configuration"),
        module_of_version("add-roles", 4),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("ABI version 4"), "{err}");
}

/// A version 5 module (JSON in and out, `login_time` the input's last member) in WAT: it sets
/// `https://example.com/v5` on the access token when its input ends with `,"login_time":N}`
/// (it checks for the member's name in the input's last 40 bytes), and nothing otherwise.
fn version_5_module() -> Vec<u8> {
    let result = r#"{"commands":[{"op":"set_claim","token":"access_token","name":"https://example.com/v5","value":true}]}"#;
    let empty = r#"{"commands":[]}"#;
    let escape = |text: &str| text.replace('"', "\\\"");
    wat::parse_str(format!(
        r#"(module
  (memory (export "memory") 4)
  (func (export "claimsmith_abi_version") (result i32) (i32.const 5))
  (func (export "claimsmith_alloc") (param i32) (result i32) (i32.const 65536))
  (func (export "claimsmith_on_execute_post_login") (param $ptr i32) (param $len i32) (result i64)
    (local $at i32) (local $end i32)
    ;; look for `"login_time":` in the last 40 bytes
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (local.set $at (i32.sub (local.get $end) (i32.const 40)))
    (block $found
      (loop $scan
        (br_if $found (i32.and
          (i64.eq (i64.load (local.get $at)) (i64.load (i32.const 512)))
          (i32.eq (i32.load (i32.add (local.get $at) (i32.const 8))) (i32.load (i32.const 520)))))
        (local.set $at (i32.add (local.get $at) (i32.const 1)))
        (br_if $scan (i32.lt_u (local.get $at) (i32.sub (local.get $end) (i32.const 12)))))
      (return (i64.const {empty_packed})))
    (i64.const {packed}))
  (data (i32.const 512) "\"login_time\"")
  (data (i32.const 1024) "{result}")
  (data (i32.const 2048) "{empty}"))"#,
        result = escape(result),
        empty = escape(empty),
        packed = (1024u64 << 32) | result.len() as u64,
        empty_packed = (2048u64 << 32) | empty.len() as u64,
    ))
    .unwrap()
}
