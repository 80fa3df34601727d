//! Shared set-up for the benchmarks: the example rules built once through the same code path as
//! `claimsmith build`, issuers with fresh keys, and the benchmark events.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use claimsmith::Issuer;
use claimsmith_cli::internals as rule_crate;
use claimsmith_engine::internals;
use claimsmith_engine::{LoginEvent, Pipeline, RuleSpec, SandboxConfig};
use serde_json::{Map, Value, json};

/// The example rules, in the order the demo config runs them.
pub const RULES: [&str; 5] = [
    "require-verified-email",
    "add-roles",
    "capabilities",
    "scopes-from-roles",
    "tenant-from-metadata",
];

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is inside the workspace")
        .to_owned()
}

/// Build every example rule once; the module path of `name`.
pub fn module(name: &str) -> PathBuf {
    static BUILT: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let root = workspace();
        let target = root.join("target").join("claimsmith-rules");
        RULES
            .iter()
            .map(|name| {
                let built = rule_crate::build(&root.join("rules").join(name), &target)
                    .unwrap_or_else(|e| panic!("building rules/{name}: {e}"));
                (name.to_string(), built.module)
            })
            .collect()
    });
    built
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| panic!("no example rule {name}"))
}

/// The peer benchmark's Auth0 action (`benches/peer/add-roles.js`, unchanged) built once as a
/// JavaScript rule, through the same code path as `claimsmith build`; its module path.
pub fn js_module() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = workspace();
            let dir = root.join("target/claimsmith-peer-js/add-roles");
            std::fs::create_dir_all(&dir).expect("create the action's folder");
            std::fs::copy(
                root.join("benches/peer/add-roles.js"),
                dir.join("action.js"),
            )
            .expect("copy benches/peer/add-roles.js");
            rule_crate::build(&dir, &root.join("target/claimsmith-rules"))
                .unwrap_or_else(|e| panic!("building benches/peer/add-roles.js: {e}"))
                .module
        })
        .clone()
}

/// A pipeline running the JavaScript add-roles action ([`js_module`]), its compiled code from
/// the artifact cache after the first run (a 7 MB module takes seconds to compile).
pub fn js_pipeline() -> Pipeline {
    let spec = RuleSpec {
        name: "add-roles-js".into(),
        configuration: configuration("add-roles"),
        ..RuleSpec::default()
    };
    Pipeline::builder()
        .artifact_cache_if_usable(workspace().join("target/claimsmith-test-cache"))
        .namespaces(["https://example.com/"])
        .rule_file(spec, js_module())
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The benchmark login: 1.2 KB, a user with two roles.
pub fn event_path() -> PathBuf {
    workspace().join("benches/events/login-1k.json")
}

/// The ~1 KB benchmark login (alice, admin and editor, with an API).
pub fn event_json() -> Vec<u8> {
    std::fs::read(event_path()).expect("benches/events")
}

pub fn event_value() -> Value {
    serde_json::from_slice(&event_json()).expect("the bench event is JSON")
}

/// add-roles' input for the native baseline: the benchmark login with the rule's
/// `configuration` and no `secrets`, as JSON bytes.
pub fn native_input() -> Vec<u8> {
    let mut input = event_value();
    input["configuration"] = Value::Object(configuration("add-roles"));
    input["secrets"] = json!({});
    serde_json::to_vec(&input).expect("JSON")
}

/// One add-roles login natively: the input parsed into an `Event`, the rule, the result
/// serialized and parsed back, as the wasm path does on each side of the boundary.
pub fn native_login(input: &[u8]) -> claimsmith_engine::RuleResult {
    let event: claimsmith_sdk::Event = serde_json::from_slice(input).unwrap();
    let result = native_rule(&event);
    let bytes = serde_json::to_vec(&result).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// add-roles called directly on the whole event, as native Rust would: no copy of the event
/// for its declared parts (`testing::run` makes one, to hand a test what the module sees).
pub fn native_rule(event: &claimsmith_sdk::Event) -> claimsmith_engine::RuleResult {
    let mut api = claimsmith_sdk::Api::new();
    add_roles::on_execute_post_login(event, &mut api);
    api.into_result()
}

/// The order of `n` batches in round `round` of a bench whose runtimes take turns: a shuffle
/// seeded by the round, the same in every run. A rotation would leave each runtime following
/// the same one in most rounds, and whatever one leaves behind (caches, the CPU's clock) would
/// then weigh on the next alone.
pub fn turns(round: usize, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    // xorshift64, seeded by the round.
    let mut state = (round as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for i in (1..n).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

/// The median of `values` (the mean of the middle two for an even count), the lowest and the
/// highest. `values` must not be empty.
pub fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n.is_multiple_of(2) {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    } else {
        values[n / 2]
    };
    (median, values[0], values[n - 1])
}

/// A count from the environment variable `name`; `default` if it is unset, not a number or 0.
pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(default)
}

/// Each example rule's configuration, as in examples/claimsmith.toml.
pub fn configuration(name: &str) -> Map<String, Value> {
    let value = match name {
        "require-verified-email" => json!({"exempt_connections": ["corporate-saml"]}),
        "capabilities" => json!({"namespace": "https://example.com", "capabilities": {
            "export-report": ["read:reports", "export:reports"], "edit-user": ["update:users"]}}),
        "scopes-from-roles" => json!({"scopes_by_role": {
            "admin": ["read:reports", "write:reports", "admin:users"],
            "editor": ["read:reports", "write:reports"], "viewer": ["read:reports"]}}),
        _ => json!({"namespace": "https://example.com"}),
    };
    value.as_object().cloned().expect("an object")
}

/// A pipeline of `rules` (names of example rules; repeats get numbered names).
pub fn pipeline(rules: &[&str]) -> Pipeline {
    pipeline_with(SandboxConfig::default(), rules)
}

/// [`pipeline`] with sandbox settings of its own.
pub fn pipeline_with(config: SandboxConfig, rules: &[&str]) -> Pipeline {
    let modules: Vec<(&str, PathBuf)> = rules.iter().map(|name| (*name, module(name))).collect();
    pipeline_of_modules(config, &modules)
}

/// A pipeline of the given module files, each with the configuration of the example rule it
/// names; the rules are named after it, numbered in order.
pub fn pipeline_of_modules(config: SandboxConfig, modules: &[(&str, PathBuf)]) -> Pipeline {
    let mut pipeline = Pipeline::builder()
        .sandbox(config)
        .namespaces(["https://example.com/"]);
    for (i, (name, path)) in modules.iter().enumerate() {
        let spec = RuleSpec {
            name: format!("{name}-{i}"),
            configuration: configuration(name),
            ..RuleSpec::default()
        };
        pipeline = pipeline.rule_file(spec, path);
    }
    pipeline.build().unwrap_or_else(|e| panic!("{e}"))
}

/// `n` rules cycling through the five examples.
pub fn rule_names(n: usize) -> Vec<&'static str> {
    RULES.iter().cycle().take(n).copied().collect()
}

/// An issuer signing with a fresh key of `alg`, running `rules`; keep the folder alive.
pub fn issuer(alg: &str, rules: &[&str]) -> (Issuer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = claimsmith::generate_pem(alg).expect("keygen");
    std::fs::write(dir.path().join("signing.pem"), pem).expect("write key");
    let mut text = format!(
        "issuer = \"https://login.example.com/\"\nnamespaces = [\"https://example.com/\"]\n\n\
         [[keys]]\nkid = \"bench\"\nalg = \"{alg}\"\nprivate_key = \"signing.pem\"\n"
    );
    for (i, name) in rules.iter().enumerate() {
        let config = inline_toml(&Value::Object(configuration(name)));
        text.push_str(&format!(
            "\n[[rules]]\nname = \"{name}-{i}\"\nmodule = {:?}\nconfig = {config}\n",
            module(name).display().to_string()
        ));
    }
    let path = dir.path().join("claimsmith.toml");
    std::fs::write(&path, text).expect("write config");
    let issuer = Issuer::from_config_file(&path).expect("issuer loads");
    (issuer, dir)
}

/// The bench event with `roles` roles (claim size axis) and `padding` extra bytes of
/// user_metadata the rules never read (event size axis).
pub fn sized_event(roles: usize, padding: usize) -> LoginEvent {
    let mut event = event_value();
    event["authorization"]["roles"] = json!(
        (0..roles)
            .map(|i| format!("role-{i:04}"))
            .collect::<Vec<_>>()
    );
    event["user"]["user_metadata"]["notes"] = json!("x".repeat(padding));
    internals::event_from_value(event).expect("a valid event")
}

/// JSON as a TOML inline value (strings, numbers, booleans, arrays, tables).
fn inline_toml(value: &Value) -> String {
    match value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline_toml).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let members: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{} = {}", Value::String(k.clone()), inline_toml(v)))
                .collect();
            format!("{{ {} }}", members.join(", "))
        }
        Value::Null => "\"\"".into(),
        other => other.to_string(),
    }
}
