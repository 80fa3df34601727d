//! Both guest ABI versions side by side. Modules built with this SDK speak version 2 (the event
//! and the result in binary form); the same rules built with the SDK's `abi-v1` feature speak
//! version 1 (JSON both ways), as modules built before version 2 do. One host runs both, and they
//! decide the same on every sample login.

mod support;

use std::path::PathBuf;

use claimsmith_cli::internals as rule_crate;
use claimsmith_engine::internals;
use claimsmith_engine::{LoginEvent, Pipeline, RuleSpec, SandboxConfig};
use serde_json::{Map, Value, json};

const RULES: [&str; 5] = [
    "require-verified-email",
    "add-roles",
    "capabilities",
    "scopes-from-roles",
    "tenant-from-metadata",
];

/// The example rules built as version 1 modules, in a target folder of their own.
fn version_1_module(rule: &str) -> PathBuf {
    let target = support::workspace().join("target/claimsmith-test-abi-v1");
    rule_crate::build_with_features(
        &support::workspace().join("rules").join(rule),
        &target,
        &["claimsmith-sdk/abi-v1"],
    )
    .unwrap_or_else(|e| panic!("building {rule} for ABI version 1: {e}"))
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
    let mut pipeline = Pipeline::builder()
        .sandbox(SandboxConfig::default())
        .namespaces(["https://example.com/"]);
    for (rule, path) in modules {
        let spec = RuleSpec {
            name: rule.to_string(),
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
fn version_1_and_version_2_modules_of_the_same_rules_decide_the_same() {
    let v1: Vec<_> = RULES.iter().map(|r| (*r, version_1_module(r))).collect();
    let v2: Vec<_> = RULES.iter().map(|r| (*r, support::module(r))).collect();
    let (v1, v2) = (pipeline(&v1), pipeline(&v2));
    for rule in v1.rules() {
        assert_eq!(rule.abi_version(), 1, "{}", rule.name());
    }
    for rule in v2.rules() {
        assert_eq!(rule.abi_version(), 2, "{}", rule.name());
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
        let (one, two) = (decided(&v1, &event), decided(&v2, &event));
        assert_eq!(one, two);
    }
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
fn a_pipeline_keeps_the_callers_event_bytes_only_for_version_1_rules() {
    let v1 = pipeline(&[("add-roles", version_1_module("add-roles"))]);
    let v2 = pipeline(&[("add-roles", support::module("add-roles"))]);
    let mut event = support::event("alice");
    event["something_new"] = json!({"kept": true});
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
    // A pipeline of version 2 rules only has no use for the bytes: the same checked event,
    // the same decisions.
    let for_v2 = v2.event_from_json(&bytes).unwrap();
    assert_eq!(for_v2.event(), for_v1.event());
    assert!(members(&for_v2).get("something_new").is_none());
    assert_eq!(decided(&v2, &for_v2), decided(&v2, &from_json));
    assert_eq!(
        decided(&v2, &for_v2)["id_token"]["https://example.com/roles"],
        json!(["admin", "editor"])
    );
    // Bad input is refused the same way.
    let err = v2
        .event_from_json(br#"{"user": {"app_metadata": []}}"#)
        .unwrap_err();
    assert!(err.to_string().contains("user.app_metadata"), "{err}");
}
