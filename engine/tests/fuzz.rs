//! Fuzzing the places a hostile module's output lands: the result parsers (JSON for ABI version
//! 1, binary for version 2) and the claim policy. Runs briefly in `cargo test`; for a long run:
//! `PROPTEST_CASES=200000 cargo test --release -p claimsmith-engine --test fuzz`.

use claimsmith_engine::Command;
use claimsmith_engine::internals::{
    ClaimPolicy, Draft, Stop, apply, is_reserved, parse_binary_result, parse_result,
};
use claimsmith_sdk::binary_result;
use proptest::prelude::*;
use serde_json::{Value, json};

const SECRET: &str = "sk_live_fuzz_0123";

fn policy() -> ClaimPolicy {
    ClaimPolicy::new(vec!["https://example.com/".into()])
        .unwrap()
        .with_max_claims_bytes(2048)
        .with_secrets([("KEY".to_string(), SECRET.to_string())])
}

/// Claim names: namespaced, reserved, lookalike, empty, random.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}".prop_map(|s| format!("https://example.com/{s}")),
        Just("sub".to_string()),
        Just("scope".to_string()),
        Just("https://example.com/".to_string()),
        Just("https://example.com.evil/x".to_string()),
        Just(format!("https://example.com/{SECRET}")),
        ".{0,20}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        Just(Value::from(format!("x{SECRET}x"))),
        "[a-z]{500,900}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn command() -> impl Strategy<Value = Value> {
    let token = prop_oneof![
        Just("id_token"),
        Just("access_token"),
        Just("refresh_token")
    ];
    prop_oneof![
        (token.clone(), name(), value())
            .prop_map(|(t, n, v)| json!({"op": "set_claim", "token": t, "name": n, "value": v})),
        (token, name()).prop_map(|(t, n)| json!({"op": "remove_claim", "token": t, "name": n})),
        ".{0,12}".prop_map(|s| json!({"op": "add_scope", "scope": s})),
        ".{0,12}".prop_map(|s| json!({"op": "remove_scope", "scope": s})),
        ".{0,12}".prop_map(|k| json!({"op": "set_app_metadata", "key": k, "value": SECRET})),
        ".{0,30}".prop_map(|m| json!({"op": "log", "level": "info", "message": m})),
        ".{0,30}".prop_map(|m| json!({"op": "deny", "reason": m})),
        ".{0,8}".prop_map(|op| json!({"op": op})),
    ]
}

/// What must hold of any draft the policy let through.
fn assert_policy_held(draft: &Draft) {
    for claims in [&draft.id_token, &draft.access_token] {
        let text = serde_json::to_string(claims).unwrap();
        assert!(text.len() <= 2048, "size cap broken: {}", text.len());
        assert!(!text.contains(SECRET), "secret leaked into claims");
        for name in claims.keys() {
            assert!(
                name.starts_with("https://example.com/") && name.len() > 20,
                "un-namespaced claim {name}"
            );
            assert!(!is_reserved(name));
        }
    }
    for scope in &draft.scopes {
        assert!(
            !scope.is_empty() && !scope.contains(char::is_whitespace) && !scope.contains(SECRET)
        );
    }
    assert!(
        !serde_json::to_string(&draft.app_metadata)
            .unwrap()
            .contains(SECRET)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_result(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_binary_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_binary_result(&bytes);
        // Past the magic, so the parser reads counts, ops, tags and lengths from random bytes.
        let mut with_magic = binary_result::MAGIC.to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = parse_binary_result(&with_magic);
    }

    #[test]
    fn every_result_reads_back_the_same_from_the_binary_form(commands in prop::collection::vec(command(), 0..12)) {
        let bytes = serde_json::to_vec(&json!({"commands": commands})).unwrap();
        let Ok(result) = parse_result(&bytes) else { return Ok(()) };
        let binary = binary_result::encode(&result);
        prop_assert_eq!(parse_binary_result(&binary).unwrap(), result);
        // Any cut of a valid result is refused, never misread.
        for cut in [0, 4, binary.len() / 2, binary.len().saturating_sub(1)] {
            if cut < binary.len() {
                prop_assert!(parse_binary_result(&binary[..cut]).is_err());
            }
        }
    }

    #[test]
    fn arbitrary_commands_never_break_the_policy(commands in prop::collection::vec(command(), 0..12)) {
        let bytes = serde_json::to_vec(&json!({"commands": commands})).unwrap();
        let Ok(result) = parse_result(&bytes) else { return Ok(()) };
        let policy = policy();
        let mut draft = Draft::default();
        let mut logs = Vec::new();
        match apply(&policy, policy.namespaces(), &result.commands, &mut draft, &mut |_, m| logs.push(m.to_owned())) {
            Ok(()) => assert_policy_held(&draft),
            Err(Stop::Denied(reason)) => prop_assert!(!reason.contains(SECRET), "deny reasons are redacted"),
            Err(Stop::Failed(_)) => {}
        }
        // Commands the policy accepts one by one are accepted the same way in one batch.
        let accepted: Vec<Command> = result.commands.into_iter().filter(|c| {
            let mut single = Draft::default();
            apply(&policy, policy.namespaces(), std::slice::from_ref(c), &mut single, &mut |_, _| {}).is_ok()
        }).collect();
        let mut batch = Draft::default();
        if apply(&policy, policy.namespaces(), &accepted, &mut batch, &mut |_, _| {}).is_ok() {
            assert_policy_held(&batch);
        }
    }
}
