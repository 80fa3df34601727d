//! Hostile rule modules: hand-written WAT that loops, grows memory, recurses, lies about its
//! result, breaks the claim policy, leaks secrets, imports what it must not, or skips the ABI.
//!
//! Each module is written to the set-up folder, configured as a `[[rules]]` entry and run through
//! the real `claimsmith` binary (exit code, OAuth error object, stderr) and, where a typed error
//! says more, through the library [`Issuer`]. Every failure must name the rule and the limit or
//! fault, and no failed login may carry a token.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use claimsmith::{ConfigError, Issuer, LoginFailure, Tokens};
use claimsmith_engine::{LoadErrorKind, PolicyViolation, RuleFailed, RuleFailure, TokenKind};
use support::{Output, Setup};

/// Signing algorithm of every set-up here (fast to generate and to verify).
const ALG: &str = "ES256";

/// Where the template puts its data segment.
const DATA_AT: u32 = 1024;

/// A WebAssembly page.
const PAGE: u32 = 64 * 1024;

/// The secret the leak tests configure.
const SECRET: &str = "sk_live_abcdef123456";

// ---------------------------------------------------------------------------------------------
// The WAT template
// ---------------------------------------------------------------------------------------------

/// A guest-ABI v1 module with parts to vary: the entry function's body, `claimsmith_alloc`'s and
/// `claimsmith_abi_version`'s bodies, imports, extra fields, memory size, and a data segment at
/// [`DATA_AT`]. The host's input goes to the first page after the data.
#[derive(Clone)]
struct Wasm {
    imports: String,
    extra: String,
    entry: String,
    alloc: Option<String>,
    abi_version: String,
    pages: Option<u32>,
    data: Vec<u8>,
}

impl Wasm {
    /// A valid module whose `claimsmith_on_execute_post_login(ptr, len) -> i64` runs `body`.
    fn entry(body: &str) -> Wasm {
        Wasm {
            imports: String::new(),
            extra: String::new(),
            entry: body.to_owned(),
            alloc: None,
            abi_version: "(i32.const 1)".into(),
            pages: None,
            data: Vec::new(),
        }
    }

    /// A valid module that returns exactly `result` (placed in a data segment), whatever the input.
    fn returning(result: &[u8]) -> Wasm {
        Wasm::entry(&format!(
            "(i64.const {})",
            packed(DATA_AT, result.len() as u32)
        ))
        .data(result)
    }

    /// A module returning `{"commands": commands}`.
    fn commands(commands: Value) -> Wasm {
        Wasm::returning(&serde_json::to_vec(&json!({ "commands": commands })).unwrap())
    }

    fn data(mut self, data: &[u8]) -> Wasm {
        self.data = data.to_vec();
        self
    }

    fn import(mut self, import: &str) -> Wasm {
        self.imports.push_str(import);
        self.imports.push('\n');
        self
    }

    fn extra(mut self, extra: &str) -> Wasm {
        self.extra.push_str(extra);
        self.extra.push('\n');
        self
    }

    fn alloc(mut self, body: &str) -> Wasm {
        self.alloc = Some(body.to_owned());
        self
    }

    fn abi_version(mut self, body: &str) -> Wasm {
        self.abi_version = body.to_owned();
        self
    }

    fn pages(mut self, pages: u32) -> Wasm {
        self.pages = Some(pages);
        self
    }

    /// Where `claimsmith_alloc` puts the input: the first page boundary after the data.
    fn input_at(&self) -> u32 {
        (DATA_AT + self.data.len() as u32).div_ceil(PAGE).max(1) * PAGE
    }

    /// Initial memory: everything up to the input, plus one page for it.
    fn initial_pages(&self) -> u32 {
        self.pages.unwrap_or(self.input_at() / PAGE + 1)
    }

    fn wat(&self) -> String {
        let alloc = self
            .alloc
            .clone()
            .unwrap_or_else(|| format!("(i32.const {})", self.input_at()));
        format!(
            r#"(module
  {imports}
  (memory (export "memory") {pages})
  {extra}
  (func (export "claimsmith_abi_version") (result i32) {abi})
  (func (export "claimsmith_alloc") (param $len i32) (result i32) {alloc})
  (func (export "claimsmith_on_execute_post_login") (param $ptr i32) (param $len i32) (result i64)
    {entry})
  (data (i32.const {DATA_AT}) "{data}")
)"#,
            imports = self.imports,
            pages = self.initial_pages(),
            extra = self.extra,
            abi = self.abi_version,
            entry = self.entry,
            data = wat_string(&self.data),
        )
    }

    /// The module's bytes.
    fn bytes(&self) -> Vec<u8> {
        let wat = self.wat();
        wat::parse_str(&wat).unwrap_or_else(|e| panic!("bad test WAT: {e}\n{wat}"))
    }

    /// The module's bytes with export `name` dropped (the item stays, unexported).
    fn bytes_without_export(&self, name: &str) -> Vec<u8> {
        let wat = self.wat();
        let export = format!("(export \"{name}\")");
        assert!(wat.contains(&export), "the template exports {name}");
        wat::parse_str(wat.replace(&export, "")).unwrap()
    }
}

/// The guest ABI's packed result location.
fn packed(ptr: u32, len: u32) -> i64 {
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}

/// `bytes` as the inside of a WAT string literal.
fn wat_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b" :,{}[]_-./@|".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\{b:02x}"));
        }
    }
    out
}

/// A `set_claim` command.
fn set_claim(token: &str, name: &str, value: Value) -> Value {
    json!({"op": "set_claim", "token": token, "name": name, "value": value})
}

// ---------------------------------------------------------------------------------------------
// Set-ups and runs
// ---------------------------------------------------------------------------------------------

/// The minimal valid login event.
fn event() -> Value {
    json!({
        "user": {"user_id": "u1"},
        "client": {"client_id": "c1"},
        "resource_server": {"identifier": "https://api.example.com"}
    })
}

/// A set-up with top-level TOML `header` and the rules `(name, module, extra TOML)`, in order;
/// each module is written to `<name>.wasm` in the set-up folder (paths resolve against it).
fn setup_rules(header: &str, rules: &[(&str, Vec<u8>, &str)]) -> Setup {
    let toml: String = rules
        .iter()
        .map(|(name, _, extra)| {
            format!("[[rules]]\nname = \"{name}\"\nmodule = \"{name}.wasm\"\n{extra}\n")
        })
        .collect();
    let setup = Setup::with_header(ALG, header, &toml);
    for (name, bytes, _) in rules {
        setup.write(&format!("{name}.wasm"), bytes);
    }
    setup
}

/// A set-up with one rule `name` running `bytes`.
fn one_rule(name: &str, bytes: Vec<u8>, extra: &str) -> Setup {
    setup_rules("", &[(name, bytes, extra)])
}

/// Run the binary with `args`, extra environment and `stdin`.
fn run_with_env(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(support::bin())
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run claimsmith");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// No token, signed or decoded, anywhere in a failed run's output.
fn assert_no_token(out: &Output) {
    assert!(
        !out.stdout.contains("eyJ") && !out.stderr.contains("eyJ"),
        "a failed login printed something token-like: {out:?}"
    );
    if let Ok(Value::Object(body)) = serde_json::from_str::<Value>(&out.stdout) {
        for key in ["id_token", "access_token", "claims"] {
            assert!(
                !body.contains_key(key),
                "a failed login printed `{key}`: {out:?}"
            );
        }
    }
}

/// `claimsmith run` fails closed: exit 4, `server_error` naming `rule` and each of `needles`, no
/// token. The error description.
fn expect_rule_failed(setup: &Setup, rule: &str, needles: &[&str]) -> String {
    let out = setup.run(&event());
    assert_eq!(
        out.code, 4,
        "a failing rule must fail the login closed: {out:?}"
    );
    assert_no_token(&out);
    let body = out.json();
    assert_eq!(body["error"], "server_error", "{out:?}");
    assert_eq!(body["rule"], rule, "{out:?}");
    let description = body["error_description"]
        .as_str()
        .expect("error_description")
        .to_owned();
    assert!(
        description.contains(&format!("rule `{rule}`")),
        "{description:?} must name the rule"
    );
    for needle in needles {
        assert!(
            description.contains(needle),
            "{description:?} must mention {needle:?}"
        );
    }
    description
}

/// The library login on [`event`] fails with a rule failure of `rule`; the failure.
fn library_failure(setup: &Setup, rule: &str) -> RuleFailed {
    let issuer = Issuer::from_config_file(&setup.config).expect("the config loads");
    match issuer.login_json(event().to_string().as_bytes()) {
        Err(LoginFailure::RuleFailed(failed)) => {
            assert_eq!(failed.rule, rule);
            assert!(
                failed.to_string().contains(&format!("rule `{rule}`")),
                "{failed}"
            );
            failed
        }
        Ok(tokens) => panic!(
            "the login succeeded with claims {:?}",
            tokens.id_token_claims
        ),
        Err(other) => panic!("expected a rule failure, got {other}"),
    }
}

/// A successful library login on `event`.
fn library_login(issuer: &Issuer, event: &Value) -> Tokens {
    issuer
        .login_json(event.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("the login failed: {e}"))
}

/// `claimsmith check` and `claimsmith run` both refuse the config with exit 2, naming `rule` and
/// each of `needles` on stderr with nothing on stdout; the library says why.
fn expect_load_error(setup: &Setup, rule: &str, needles: &[&str]) -> LoadErrorKind {
    let config = setup.config.to_str().unwrap();
    let check = support::claimsmith(&["check", "--config", config], None);
    let run = setup.run(&event());
    for (command, out) in [("check", &check), ("run", &run)] {
        assert_eq!(
            out.code, 2,
            "`claimsmith {command}` must refuse the module: {out:?}"
        );
        assert!(
            out.stdout.trim().is_empty(),
            "`claimsmith {command}` printed {out:?}"
        );
        assert!(
            out.stderr.contains(&format!("rule `{rule}`")),
            "{command}: {out:?}"
        );
        for needle in needles {
            assert!(
                out.stderr.contains(needle),
                "{command}: stderr must mention {needle:?}: {out:?}"
            );
        }
    }
    match Issuer::from_config_file(&setup.config) {
        Err(ConfigError::Rule { source, .. }) => {
            assert_eq!(source.rule, rule);
            source.kind
        }
        Err(other) => panic!("expected a rule load error, got {other}"),
        Ok(_) => panic!("the module loaded"),
    }
}

// ---------------------------------------------------------------------------------------------
// Runaway compute, memory and stack
// ---------------------------------------------------------------------------------------------

const INFINITE_LOOP: &str = "(loop $spin (br $spin)) (i64.const 0)";

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    let setup = one_rule(
        "spinner",
        Wasm::entry(INFINITE_LOOP).bytes(),
        "[rules.limits]\nfuel = 1000000\ntimeout_ms = 30000",
    );
    expect_rule_failed(&setup, "spinner", &["fuel limit 1000000"]);
    let failed = library_failure(&setup, "spinner");
    assert_eq!(
        failed.cause,
        RuleFailure::FuelExhausted { limit: 1_000_000 }
    );
    let trace = failed.rules.last().expect("a trace of the failed rule");
    assert!(
        trace.fuel_used >= 990_000,
        "the whole budget was burnt: {}",
        trace.fuel_used
    );
}

#[test]
fn an_infinite_loop_with_fuel_to_spare_hits_the_deadline() {
    let setup = one_rule(
        "spinner",
        Wasm::entry(INFINITE_LOOP).bytes(),
        "[rules.limits]\nfuel = 10000000000\ntimeout_ms = 20",
    );
    expect_rule_failed(&setup, "spinner", &["deadline", "timeout limit 20 ms"]);
    let started = Instant::now();
    let failed = library_failure(&setup, "spinner");
    assert_eq!(failed.cause, RuleFailure::Timeout { limit_ms: 20 });
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped near its deadline: {:?}",
        started.elapsed()
    );
}

#[test]
fn endless_memory_growth_stops_at_the_memory_limit() {
    let grow = "(loop $more (drop (memory.grow (i32.const 1))) (br $more)) (i64.const 0)";
    let setup = one_rule(
        "hog",
        Wasm::entry(grow).bytes(),
        "[rules.limits]\nmemory_bytes = 1048576\ntimeout_ms = 30000",
    );
    expect_rule_failed(&setup, "hog", &["memory limit of 1048576 bytes"]);
    match library_failure(&setup, "hog").cause {
        RuleFailure::MemoryLimit {
            limit: 1_048_576,
            requested,
        } => assert!(requested > 1_048_576, "{requested}"),
        other => panic!("expected the memory limit, got {other:?}"),
    }
}

#[test]
fn initial_memory_over_the_limit_is_refused_at_load() {
    let setup = one_rule(
        "big-memory",
        Wasm::commands(json!([])).pages(32).bytes(),
        "[rules.limits]\nmemory_bytes = 1048576",
    );
    let kind = expect_load_error(
        &setup,
        "big-memory",
        &[
            "2097152 bytes of initial memory",
            "memory limit of 1048576 bytes",
        ],
    );
    assert!(
        matches!(
            kind,
            LoadErrorKind::InitialMemory {
                declared: 2_097_152,
                limit: 1_048_576
            }
        ),
        "{kind:?}"
    );
}

/// A rule's tables hold at most this many elements (`table.grow` past it returns -1).
const TABLE_CAP: u32 = 20_000;

#[test]
fn endless_table_growth_stops_at_the_table_cap() {
    // Grow by 1,000 until `table.grow` refuses, then trap unless the table is exactly at the cap.
    let grow = format!(
        "(block $full (loop $more
           (br_if $full (i32.eq (table.grow $t (ref.null func) (i32.const 1000)) (i32.const -1)))
           (br $more)))
         (if (i32.ne (table.size $t) (i32.const {TABLE_CAP})) (then unreachable))"
    );
    let mut module = Wasm::commands(json!([set_claim(
        "id_token",
        "https://example.com/table",
        json!("full")
    )]))
    .extra("(table $t 0 funcref)");
    module.entry = format!("{grow} {}", module.entry);
    let setup = one_rule("table-hog", module.bytes(), "");
    let issuer = Issuer::from_config_file(&setup.config).expect("the config loads");
    let tokens = library_login(&issuer, &event());
    assert_eq!(
        tokens.id_token_claims["https://example.com/table"],
        json!("full")
    );
}

#[test]
fn an_initial_table_over_the_cap_is_refused_at_load() {
    let module = Wasm::commands(json!([])).extra(&format!("(table {} funcref)", TABLE_CAP + 1));
    expect_load_error(
        &setup_rules("", &[("big-table", module.bytes(), "")]),
        "big-table",
        &[&format!("exceeds the limit of {TABLE_CAP}")],
    );
}

/// A function that calls itself without end (not a tail call: it adds after the call).
const RECURSE: &str = "(func $down (param $n i32) (result i32)
    (i32.add (call $down (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))";

#[test]
fn deep_recursion_overflows_the_stack_limit() {
    let recursive = Wasm::entry("(drop (call $down (i32.const 0))) (i64.const 0)").extra(RECURSE);
    let limits = "[rules.limits]\nfuel = 1000000000\ntimeout_ms = 30000";
    let setup = one_rule("recursive", recursive.bytes(), limits);
    expect_rule_failed(&setup, "recursive", &["stack limit of 524288 bytes"]);
    assert_eq!(
        library_failure(&setup, "recursive").cause,
        RuleFailure::StackOverflow { limit: 524_288 }
    );

    // The engine-wide stack cap is configurable and is the one named.
    let setup = setup_rules(
        "[limits]\nstack_bytes = 65536",
        &[("recursive", recursive.bytes(), limits)],
    );
    expect_rule_failed(&setup, "recursive", &["stack limit of 65536 bytes"]);
    assert_eq!(
        library_failure(&setup, "recursive").cause,
        RuleFailure::StackOverflow { limit: 65_536 }
    );
}

#[test]
fn a_wasm_stack_larger_than_the_threads_fails_closed_rather_than_aborting_the_process() {
    let recursive = Wasm::entry("(drop (call $down (i32.const 0))) (i64.const 0)").extra(RECURSE);
    let limits = "[rules.limits]\nfuel = 1000000000\ntimeout_ms = 30000";
    let setup = setup_rules(
        "[limits]\nstack_bytes = 2097152",
        &[("recursive", recursive.bytes(), limits)],
    );
    // The CLI runs logins on its main thread (8 MiB): the wasm limit stops the rule.
    expect_rule_failed(&setup, "recursive", &["stack limit of 2097152 bytes"]);
    // Loading calls the module's ABI version, so it too needs the stack: refused on a 2 MiB
    // thread, naming the rule.
    let error = on_thread(2 << 20, || {
        Issuer::from_config_file(&setup.config)
            .expect_err("refused at load")
            .to_string()
    });
    assert!(
        error.contains("recursive") && error.contains("was not run"),
        "{error}"
    );
    // Loaded on a large thread, then logins on threads of other sizes. (16 MiB: glibc hands a
    // finished thread's stack to a new thread that asks for as little as a quarter of it.)
    let issuer = on_thread(16 << 20, || {
        Issuer::from_config_file(&setup.config).expect("the config loads")
    });
    let stack = issuer.config().sandbox.thread_stack_bytes();
    assert_eq!(stack, (2 << 20) + (1 << 20));
    let login = || match issuer.login_json(event().to_string().as_bytes()) {
        Err(LoginFailure::RuleFailed(failed)) => failed.cause,
        other => panic!(
            "expected a rule failure, got {:?}",
            other.map(|t| t.id_token_claims)
        ),
    };
    // On a 2 MiB thread (Rust's and tokio's default) the recursion would overflow the thread
    // before the wasm limit, which aborts the process: the rule is not started, and the login
    // fails closed.
    let cause = on_thread(2 << 20, login);
    assert!(
        matches!(cause, RuleFailure::ThreadStack { left, needed } if left < 2 << 20 && needed > 2 << 20),
        "{cause:?}"
    );
    assert!(
        cause.to_string().contains("threads with larger stacks"),
        "{cause}"
    );
    // A thread of the size the sandbox asks for runs the rule to the wasm limit.
    assert_eq!(
        on_thread(stack, login),
        RuleFailure::StackOverflow { limit: 2_097_152 }
    );
}

/// `run` on a thread of `stack` bytes, and what it returned.
fn on_thread<T: Send>(stack: usize, run: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(stack)
            .spawn_scoped(scope, run)
            .unwrap()
            .join()
            .unwrap()
    })
}

// ---------------------------------------------------------------------------------------------
// Lying about the result
// ---------------------------------------------------------------------------------------------

#[test]
fn a_result_outside_memory_is_refused() {
    // Default template memory: 2 pages (131072 bytes).
    for (ptr, len) in [(0x7fff_0000_u32, 16_u32), (131_000, 1_000), (u32::MAX, 1)] {
        let module = Wasm::entry(&format!("(i64.const {})", packed(ptr, len)));
        let setup = one_rule("liar", module.bytes(), "");
        expect_rule_failed(
            &setup,
            "liar",
            &[
                &format!("result at {ptr}"),
                "outside its 131072-byte memory",
            ],
        );
        assert_eq!(
            library_failure(&setup, "liar").cause,
            RuleFailure::ResultOutOfBounds {
                ptr: ptr as usize,
                len: len as usize,
                memory: 131_072
            }
        );
    }
}

#[test]
fn a_huge_result_length_is_refused_before_anything_is_copied() {
    let module = Wasm::entry(&format!("(i64.const {})", packed(DATA_AT, 0xFFFF_FFF0)));
    let setup = one_rule("huge", module.bytes(), "");
    expect_rule_failed(
        &setup,
        "huge",
        &["4294967280 bytes", "result limit of 262144 bytes"],
    );
    assert_eq!(
        library_failure(&setup, "huge").cause,
        RuleFailure::ResultTooLarge {
            size: 0xFFFF_FFF0,
            limit: 262_144
        }
    );

    // A real, in-bounds result over a configured result limit.
    let result = serde_json::to_vec(&json!({"commands": [set_claim("id_token", "https://example.com/x", json!("y".repeat(200)))]})).unwrap();
    let setup = one_rule(
        "wordy",
        Wasm::returning(&result).bytes(),
        "[rules.limits]\nresult_bytes = 64",
    );
    expect_rule_failed(&setup, "wordy", &["result limit of 64 bytes"]);
    assert_eq!(
        library_failure(&setup, "wordy").cause,
        RuleFailure::ResultTooLarge {
            size: result.len(),
            limit: 64
        }
    );
}

#[test]
fn malformed_results_name_what_is_wrong() {
    let cases: &[(&str, &[u8], &str)] = &[
        ("not-utf8", b"{\"commands\":[\xff\xfe]}", "not valid UTF-8"),
        ("not-json", b"{\"commands\": [", "not a valid command list"),
        ("empty", b"", "not a valid command list"),
        ("not-object", b"[1, 2, 3]", "not a valid command list"),
        ("unknown-op", br#"{"commands":[{"op":"grant_admin","who":"me"}]}"#, "grant_admin"),
        (
            "missing-field",
            br#"{"commands":[{"op":"set_claim","token":"id_token","name":"https://example.com/x"}]}"#,
            "missing field `value`",
        ),
        ("unknown-token", br#"{"commands":[{"op":"set_claim","token":"refresh_token","name":"https://example.com/x","value":1}]}"#, "refresh_token"),
        ("extra-field", br#"{"commands":[],"admin":true}"#, "unknown field `admin`"),
    ];
    for &(rule, result, needle) in cases {
        let setup = one_rule(rule, Wasm::returning(result).bytes(), "");
        expect_rule_failed(&setup, rule, &[needle]);
        let cause = library_failure(&setup, rule).cause;
        match (&cause, rule) {
            (RuleFailure::InvalidUtf8(_), "not-utf8") => {}
            (RuleFailure::InvalidResult(_), _) if rule != "not-utf8" => {
                assert!(cause.to_string().contains(needle), "{rule}: {cause}")
            }
            _ => panic!("{rule}: unexpected cause {cause:?}"),
        }
    }
}

#[test]
fn an_alloc_pointer_outside_memory_is_refused() {
    let setup = one_rule(
        "bad-alloc",
        Wasm::commands(json!([])).alloc("(i32.const -16)").bytes(),
        "",
    );
    expect_rule_failed(
        &setup,
        "bad-alloc",
        &["claimsmith_alloc returned 4294967280", "outside its"],
    );
    assert!(matches!(
        library_failure(&setup, "bad-alloc").cause,
        RuleFailure::AllocOutOfBounds {
            ptr: 0xFFFF_FFF0,
            ..
        }
    ),);
}

#[test]
fn an_input_over_the_input_limit_is_refused_before_the_module_runs() {
    let setup = one_rule(
        "small-input",
        Wasm::commands(json!([])).bytes(),
        "[rules.limits]\ninput_bytes = 1024",
    );
    let mut event = event();
    event["user"]["app_metadata"] = json!({"padding": "p".repeat(2000)});
    let out = setup.run(&event);
    assert_eq!(out.code, 4, "{out:?}");
    assert_no_token(&out);
    let description = out.json()["error_description"].as_str().unwrap().to_owned();
    assert!(
        description.contains("rule `small-input`")
            && description.contains("input limit of 1024 bytes"),
        "{description}"
    );
    let issuer = Issuer::from_config_file(&setup.config).unwrap();
    match issuer.login_json(event.to_string().as_bytes()) {
        Err(LoginFailure::RuleFailed(f)) => {
            assert!(
                matches!(f.cause, RuleFailure::InputTooLarge { limit: 1024, size } if size > 2000),
                "{:?}",
                f.cause
            )
        }
        other => panic!(
            "expected InputTooLarge, got {:?}",
            other.map(|t| t.id_token_claims)
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// The claim policy
// ---------------------------------------------------------------------------------------------

#[test]
fn reserved_scope_unnamespaced_and_lookalike_claims_are_refused_by_name() {
    use PolicyViolation::{Namespace, Reserved, ScopeAsClaim};
    let id = TokenKind::IdToken;
    let at = TokenKind::AccessToken;
    let cases: Vec<(Value, PolicyViolation, &str)> = vec![
        (
            set_claim("id_token", "sub", json!("admin")),
            Reserved {
                token: id,
                claim: "sub".into(),
            },
            "claim `sub` on the id_token is reserved",
        ),
        (
            set_claim("access_token", "aud", json!("https://other.example.com")),
            Reserved {
                token: at,
                claim: "aud".into(),
            },
            "claim `aud` on the access_token is reserved",
        ),
        (
            json!({"op": "remove_claim", "token": "access_token", "name": "sub"}),
            Reserved {
                token: at,
                claim: "sub".into(),
            },
            "claim `sub` on the access_token is reserved",
        ),
        (
            set_claim("access_token", "scope", json!("admin:all")),
            ScopeAsClaim { token: at },
            "claim `scope` on the access_token can change only through add_scope",
        ),
        // `roles` is un-namespaced and on the reserved list, which is checked first.
        (
            set_claim("id_token", "roles", json!(["admin"])),
            Reserved {
                token: id,
                claim: "roles".into(),
            },
            "claim `roles` on the id_token",
        ),
        (
            set_claim("id_token", "plan", json!("enterprise")),
            Namespace {
                token: id,
                claim: "plan".into(),
                allowed: "https://example.com/".into(),
            },
            "claim `plan` on the id_token is outside the allowed namespaces",
        ),
        (
            set_claim("id_token", "https://example.com.evil/x", json!(1)),
            Namespace {
                token: id,
                claim: "https://example.com.evil/x".into(),
                allowed: "https://example.com/".into(),
            },
            "claim `https://example.com.evil/x` on the id_token is outside",
        ),
        (
            set_claim("access_token", "https://example.com", json!(1)),
            Namespace {
                token: at,
                claim: "https://example.com".into(),
                allowed: "https://example.com/".into(),
            },
            "claim `https://example.com` on the access_token is outside",
        ),
        (
            set_claim("id_token", "https://example.com/", json!(1)),
            Namespace {
                token: id,
                claim: "https://example.com/".into(),
                allowed: "https://example.com/".into(),
            },
            "claim `https://example.com/` on the id_token is outside",
        ),
    ];
    for (command, violation, needle) in cases {
        // A valid claim first: the rule's commands apply all or none.
        let commands = json!([
            set_claim("id_token", "https://example.com/ok", json!(true)),
            command
        ]);
        let setup = one_rule("grabby", Wasm::commands(commands).bytes(), "");
        expect_rule_failed(&setup, "grabby", &[needle]);
        let failed = library_failure(&setup, "grabby");
        assert_eq!(failed.cause, RuleFailure::Policy(violation), "{needle}");
    }
}

#[test]
fn oversized_claims_are_refused_naming_the_token_and_the_limit() {
    let commands = json!([set_claim(
        "id_token",
        "https://example.com/blob",
        json!("x".repeat(2000))
    )]);
    let setup = setup_rules(
        "[limits]\nclaims_bytes = 1024",
        &[("bloat", Wasm::commands(commands).bytes(), "")],
    );
    expect_rule_failed(
        &setup,
        "bloat",
        &[
            "custom claims on the id_token",
            "over the limit of 1024 bytes",
        ],
    );
    match library_failure(&setup, "bloat").cause {
        RuleFailure::Policy(PolicyViolation::TooLarge {
            token: TokenKind::IdToken,
            size,
            limit: 1024,
        }) => {
            assert!(size > 2000, "{size}")
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }

    // A real claim over the default 100 KiB cap, on the access token.
    let commands = json!([set_claim(
        "access_token",
        "https://example.com/blob",
        json!("x".repeat(110_000))
    )]);
    let setup = one_rule("bloat", Wasm::commands(commands).bytes(), "");
    expect_rule_failed(
        &setup,
        "bloat",
        &[
            "custom claims on the access_token",
            "over the limit of 102400 bytes",
        ],
    );
    assert!(matches!(
        library_failure(&setup, "bloat").cause,
        RuleFailure::Policy(PolicyViolation::TooLarge {
            token: TokenKind::AccessToken,
            limit: 102_400,
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

fn secret_rule_toml() -> String {
    format!("[rules.secrets]\nAPI_KEY = \"{SECRET}\"")
}

/// `claimsmith run` on `setup` in every output mode: plain, --explain, --explain --json, trace
/// logging.
fn outputs_in_every_mode(setup: &Setup) -> Vec<Output> {
    let config = setup.config.to_str().unwrap();
    let event = event().to_string();
    let base = ["run", "--config", config, "--event", "-"];
    let mut outs = Vec::new();
    for (extra, env) in [
        (&[][..], &[][..]),
        (&["--explain"][..], &[][..]),
        (&["--explain", "--json"][..], &[][..]),
        (&["--explain"][..], &[("CLAIMSMITH_LOG", "trace")][..]),
    ] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        outs.push(run_with_env(&args, env, &event));
    }
    outs
}

/// [`outputs_in_every_mode`], each checked to never carry the secret value.
fn runs_without_the_secret(setup: &Setup) -> Vec<Output> {
    let outs = outputs_in_every_mode(setup);
    for out in &outs {
        assert!(
            !out.stdout.contains(SECRET) && !out.stderr.contains(SECRET),
            "the secret value was printed: {out:?}"
        );
    }
    outs
}

#[test]
fn a_secret_variable_unset_or_not_utf8_is_refused_naming_the_field() {
    use std::os::unix::ffi::OsStrExt;
    let setup = one_rule(
        "keyed",
        Wasm::commands(json!([])).bytes(),
        "[rules.secrets]\nAPI_KEY = { env = \"CLAIMSMITH_TEST_API_KEY\" }",
    );
    let config = setup.config.to_str().unwrap();
    for (value, reason) in [
        (
            None,
            "environment variable CLAIMSMITH_TEST_API_KEY is not set",
        ),
        (
            Some(std::ffi::OsStr::from_bytes(b"sk_\xff")),
            "environment variable CLAIMSMITH_TEST_API_KEY is not valid UTF-8",
        ),
    ] {
        let mut check = Command::new(support::bin());
        check.args(["check", "--config", config]);
        match value {
            Some(value) => check.env("CLAIMSMITH_TEST_API_KEY", value),
            None => check.env_remove("CLAIMSMITH_TEST_API_KEY"),
        };
        let out = check.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("`rules[0].secrets.API_KEY`") && stderr.contains(reason),
            "{stderr}"
        );
    }
}

#[test]
fn a_config_that_does_not_parse_never_prints_a_secret_written_in_it() {
    let setup = one_rule(
        "keyed",
        Wasm::commands(json!([])).bytes(),
        // The error is on the line that holds the secret: the parser's own message quotes it.
        &format!("secrets = {{ API_KEY = \"{SECRET}\", COUNT = 7 }}"),
    );
    let config = setup.config.to_str().unwrap();
    let out = support::claimsmith(&["check", "--config", config], None);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("line ") && !out.stderr.contains(SECRET),
        "{out:?}"
    );
}

#[test]
fn a_secret_in_a_claim_value_fails_naming_the_secret_never_its_value() {
    let commands = json!([
        {"op": "log", "level": "warn", "message": format!("about to leak {SECRET}")},
        set_claim("id_token", "https://example.com/key", json!({"nested": [format!("Bearer {SECRET}")]})),
    ]);
    let setup = one_rule(
        "leaky",
        Wasm::commands(commands).bytes(),
        &secret_rule_toml(),
    );
    let description = expect_rule_failed(
        &setup,
        "leaky",
        &[
            "secret `API_KEY`",
            "claim `https://example.com/key` on the id_token",
        ],
    );
    assert!(!description.contains(SECRET));
    for out in runs_without_the_secret(&setup) {
        assert_eq!(out.code, 4, "{out:?}");
        assert_no_token(&out);
    }
    let failed = library_failure(&setup, "leaky");
    assert!(
        matches!(&failed.cause, RuleFailure::Policy(PolicyViolation::SecretLeak { secret, .. }) if secret == "API_KEY"),
        "{:?}",
        failed.cause
    );
    assert!(!failed.to_string().contains(SECRET) && !format!("{failed:?}").contains(SECRET));
}

#[test]
fn a_secret_in_a_deny_reason_or_a_log_line_is_redacted() {
    let commands = json!([
        {"op": "log", "level": "error", "message": format!("key={SECRET}")},
        {"op": "deny", "reason": format!("upstream refused key {SECRET}")},
    ]);
    let setup = one_rule(
        "denier",
        Wasm::commands(commands).bytes(),
        &secret_rule_toml(),
    );
    for out in runs_without_the_secret(&setup) {
        assert_eq!(out.code, 3, "{out:?}");
        assert_no_token(&out);
        let body = out.json();
        assert_eq!(body["error"], "access_denied");
        assert_eq!(body["error_description"], "upstream refused key [REDACTED]");
    }

    // Logged through the host import, then returning normally.
    let message = format!("calling upstream with {SECRET}");
    let module = Wasm::entry(&format!(
        "(call $log (i32.const 3) (i32.const {DATA_AT}) (i32.const {})) (i64.const {})",
        message.len(),
        packed(DATA_AT + message.len() as u32, 15)
    ))
    .import(r#"(import "claimsmith" "log" (func $log (param i32 i32 i32)))"#)
    .data(format!("{message}{{\"commands\":[]}}").as_bytes());
    let setup = one_rule("chatty", module.bytes(), &secret_rule_toml());
    for out in runs_without_the_secret(&setup) {
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(
            out.json()["logs"][0]["message"],
            "calling upstream with [REDACTED]",
            "{out:?}"
        );
    }
}

/// Every place a rule can put a secret value, failing closed or skipped: no output of the binary
/// (stdout, stderr, `--explain`, trace logging) and no library error or token carries it.
#[test]
fn a_secret_never_reaches_any_output_whatever_carries_it() {
    let namespaced = format!("https://example.com/{SECRET}");
    let commands = |commands: Value| Wasm::commands(commands);
    let cases: Vec<(&str, Wasm)> = vec![
        (
            "claim-name",
            commands(json!([set_claim("id_token", &namespaced, json!(1))])),
        ),
        (
            "unnamespaced-claim-name",
            commands(json!([set_claim("id_token", SECRET, json!(1))])),
        ),
        (
            "removed-claim-name",
            commands(json!([{"op": "remove_claim", "token": "access_token", "name": namespaced}])),
        ),
        (
            "claim-value",
            commands(json!([set_claim(
                "access_token",
                "https://example.com/k",
                json!([1, {"k": SECRET}])
            )])),
        ),
        (
            "scope",
            commands(json!([{"op": "add_scope", "scope": SECRET}])),
        ),
        (
            "removed-scope",
            commands(json!([{"op": "remove_scope", "scope": SECRET}])),
        ),
        (
            "invalid-scope",
            commands(json!([{"op": "add_scope", "scope": format!("key {SECRET}")}])),
        ),
        (
            "metadata-key",
            commands(json!([{"op": "set_app_metadata", "key": SECRET, "value": 1}])),
        ),
        (
            "metadata-value",
            commands(json!([{"op": "set_user_metadata", "key": "k", "value": {"v": SECRET}}])),
        ),
        (
            "mfa-provider",
            commands(json!([{"op": "enable_mfa", "provider": SECRET}])),
        ),
        ("unknown-op", commands(json!([{"op": SECRET}]))),
        (
            "unknown-field",
            commands(json!([{"op": "add_scope", "scope": "read", SECRET: 1}])),
        ),
        (
            "panic",
            failing(&format!("upstream rejected {SECRET}"), "unreachable"),
        ),
        (
            "after-deny",
            commands(
                json!([{"op": "deny", "reason": "no"}, set_claim("id_token", "https://example.com/k", json!(SECRET))]),
            ),
        ),
    ];
    let mut leaks = Vec::new();
    for on_error in ["deny", "skip"] {
        for (case, module) in &cases {
            let what = format!("{case} (on_error = {on_error})");
            let extra = format!("on_error = \"{on_error}\"\n{}", secret_rule_toml());
            let setup = one_rule("leaky", module.bytes(), &extra);
            let expected = match (*case, on_error) {
                ("after-deny", _) => 3,
                (_, "deny") => 4,
                _ => 0,
            };
            for out in outputs_in_every_mode(&setup) {
                assert_eq!(out.code, expected, "{what}: {out:?}");
                if expected != 0 {
                    assert_no_token(&out);
                }
                if out.stdout.contains(SECRET) || out.stderr.contains(SECRET) {
                    leaks.push(format!(
                        "{what}: stdout {} stderr {}",
                        out.stdout.trim(),
                        out.stderr.trim()
                    ));
                }
            }
            let issuer = Issuer::from_config_file(&setup.config).unwrap();
            let text = match issuer.login_json(event().to_string().as_bytes()) {
                Ok(tokens) => format!("{tokens:?}"),
                Err(err) => format!("{err} {err:?}"),
            };
            if text.contains(SECRET) {
                leaks.push(format!("{what}: library: {text}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "the secret value was printed:\n{}",
        leaks.join("\n")
    );
}

/// A secret cut in two by a length cap (the 16 KiB kept of a `claimsmith.fail` message, the
/// 4096-byte log budget of the `claimsmith.log` import) must not leave its first half behind:
/// redaction has to see the whole value before anything is cut.
#[test]
fn a_secret_cut_at_a_message_cap_leaves_no_part_of_it() {
    let half = &SECRET[..SECRET.len() / 2];
    // The `claimsmith.fail` cap (engine/src/engine.rs) less 10 bytes of padding: the cap keeps
    // the first 10 bytes of the secret.
    const FAIL_CAP: usize = 16 << 10;
    let panic = format!("{}{SECRET}", "p".repeat(FAIL_CAP - 10));
    // 4086 bytes of padding: the 4096-byte log budget keeps the first 10 bytes of the secret.
    let line = format!("{}{SECRET}", "l".repeat(4086));
    let empty = br#"{"commands":[]}"#;
    let logging = Wasm::entry(&format!(
        "(call $log (i32.const 2) (i32.const {DATA_AT}) (i32.const {})) (i64.const {})",
        line.len(),
        packed(DATA_AT + line.len() as u32, empty.len() as u32)
    ))
    .import(r#"(import "claimsmith" "log" (func $log (param i32 i32 i32)))"#)
    .data(&[line.as_bytes(), empty].concat());
    let mut leaks = Vec::new();
    for (case, module) in [("fail", failing(&panic, "unreachable")), ("log", logging)] {
        let setup = one_rule("cutter", module.bytes(), &secret_rule_toml());
        let outputs = outputs_in_every_mode(&setup);
        // Not vacuous: the message reached the output, and the cap cut it right in the secret.
        let padding = if case == "fail" {
            "pppppppp"
        } else {
            "llllllll"
        };
        assert!(
            outputs
                .iter()
                .any(|o| o.stdout.contains(padding) || o.stderr.contains(padding)),
            "{case}: the message never reached the output"
        );
        for out in outputs {
            if out.stdout.contains(half) || out.stderr.contains(half) {
                let at = out
                    .stdout
                    .find(half)
                    .map(|i| &out.stdout[i.saturating_sub(8)..]);
                leaks.push(format!(
                    "{case}: exit {}, stdout ...{}",
                    out.code,
                    at.unwrap_or("(stderr)")
                        .chars()
                        .take(80)
                        .collect::<String>()
                ));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "the first half of the secret ({half:?}) was printed:\n{}",
        leaks.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Modules the loader must refuse
// ---------------------------------------------------------------------------------------------

#[test]
fn wasi_and_other_foreign_imports_are_refused_at_load() {
    let cases = [
        (
            r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
            "wasi_snapshot_preview1",
            "fd_write",
        ),
        (
            r#"(import "env" "abort" (func (param i32 i32 i32 i32)))"#,
            "env",
            "abort",
        ),
        (
            r#"(import "claimsmith" "exec" (func (param i32 i32)))"#,
            "claimsmith",
            "exec",
        ),
        (
            r#"(import "claimsmith" "heap" (memory 1))"#,
            "claimsmith",
            "heap",
        ),
    ];
    for (import, module, name) in cases {
        let setup = one_rule(
            "importer",
            Wasm::commands(json!([])).import(import).bytes(),
            "",
        );
        let kind = expect_load_error(
            &setup,
            "importer",
            &[&format!("imports `{module}::{name}`"), "no WASI"],
        );
        assert!(
            matches!(&kind, LoadErrorKind::ForbiddenImport { module: m, name: n } if m == module && n == name),
            "{kind:?}"
        );
    }
    // The allowed import with another signature.
    let wrong =
        Wasm::commands(json!([])).import(r#"(import "claimsmith" "log" (func (param i64)))"#);
    let setup = one_rule("importer", wrong.bytes(), "");
    let kind = expect_load_error(
        &setup,
        "importer",
        &["imports `claimsmith::log` as func (i64) -> ()"],
    );
    assert!(
        matches!(kind, LoadErrorKind::WrongImport { .. }),
        "{kind:?}"
    );
}

#[test]
fn a_wrong_abi_version_is_refused_at_load() {
    let setup = one_rule(
        "future",
        Wasm::commands(json!([]))
            .abi_version("(i32.const 7)")
            .bytes(),
        "",
    );
    let kind = expect_load_error(
        &setup,
        "future",
        &["claimsmith_abi_version() returned 7", "ABI versions 1 to 6"],
    );
    assert!(matches!(kind, LoadErrorKind::AbiVersion(7)), "{kind:?}");
}

/// A version 6 module that declares `reads` in a `claimsmith.reads` custom section (appended:
/// a custom section may stand anywhere in a module).
fn declaring(reads: &str) -> Vec<u8> {
    let bytes = Wasm::commands(json!([]))
        .abi_version("(i32.const 6)")
        .bytes();
    with_reads_section(bytes, reads.as_bytes())
}

/// `module` with a `claimsmith.reads` custom section holding `reads` appended.
fn with_reads_section(mut module: Vec<u8>, reads: &[u8]) -> Vec<u8> {
    let name = b"claimsmith.reads";
    let mut section = vec![name.len() as u8];
    section.extend(name);
    section.extend(reads);
    module.push(0);
    let mut size = section.len();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        module.push(if size == 0 { byte } else { byte | 0x80 });
        if size == 0 {
            break;
        }
    }
    module.extend(section);
    module
}

#[test]
fn a_version_6_modules_reads_section_is_one_short_list_and_its_names_are_quoted_safely() {
    // Two sections: refused, not merged.
    let twice = with_reads_section(declaring("authorization"), b"user");
    let setup = one_rule("twice", twice, "");
    let kind = expect_load_error(&setup, "twice", &["`claimsmith.reads` sections (2,"]);
    assert!(
        matches!(kind, LoadErrorKind::ReadsSection { sections: 2, .. }),
        "{kind:?}"
    );
    // One section far longer than every member's name: refused without reading it.
    let long = declaring(&"user ".repeat(400));
    let setup = one_rule("long", long, "");
    let kind = expect_load_error(&setup, "long", &["(1, 2000 bytes)"]);
    assert!(
        matches!(
            kind,
            LoadErrorKind::ReadsSection {
                sections: 1,
                bytes: 2000
            }
        ),
        "{kind:?}"
    );
    // A name with terminal escapes in it is escaped and cut short in the error.
    let hostile = format!("user \u{1b}[2J{}", "x".repeat(200));
    let setup = one_rule("escapes", declaring(&hostile), "");
    let kind = expect_load_error(&setup, "escapes", &["`\\u{1b}[2Jxxx", "…` is not a part"]);
    assert!(matches!(kind, LoadErrorKind::UnknownRead(_)), "{kind:?}");
}

#[test]
fn a_version_6_module_that_declares_an_unknown_member_is_refused_at_load() {
    let setup = one_rule("greedy", declaring("user emails"), "");
    let kind = expect_load_error(
        &setup,
        "greedy",
        &[
            "claimsmith.reads",
            "`emails` is not a part of the login event",
        ],
    );
    assert!(matches!(kind, LoadErrorKind::UnknownRead(_)), "{kind:?}");
}

#[test]
fn a_module_that_reads_more_than_the_config_allows_is_refused_at_load() {
    let setup = one_rule(
        "nosy",
        declaring("user, authorization"),
        "reads = [\"authorization\"]",
    );
    let kind = expect_load_error(
        &setup,
        "nosy",
        &[
            "its module reads user",
            "reads = [authorization, login_time]",
        ],
    );
    assert!(matches!(kind, LoadErrorKind::ReadsMore { .. }), "{kind:?}");
    // A module of an older version is handed every member: it cannot be narrowed.
    let setup = one_rule(
        "old",
        Wasm::commands(json!([])).bytes(),
        "reads = [\"authorization\"]",
    );
    let kind = expect_load_error(&setup, "old", &["ABI version 1", "`reads`"]);
    assert!(
        matches!(kind, LoadErrorKind::ReadsUndeclared(1)),
        "{kind:?}"
    );
}

#[test]
fn an_abi_version_that_never_returns_is_stopped_at_load() {
    let module = Wasm::commands(json!([])).abi_version("(loop $spin (br $spin)) (i32.const 1)");
    let setup = one_rule(
        "stuck",
        module.bytes(),
        "[rules.limits]\nfuel = 1000000\ntimeout_ms = 30000",
    );
    let kind = expect_load_error(
        &setup,
        "stuck",
        &["checking the ABI version", "fuel limit 1000000"],
    );
    assert!(matches!(kind, LoadErrorKind::Start(_)), "{kind:?}");

    // A start function that traps never gets to run a login either.
    let module = Wasm::commands(json!([])).extra("(func $boom unreachable) (start $boom)");
    let setup = one_rule("stuck", module.bytes(), "");
    let kind = expect_load_error(
        &setup,
        "stuck",
        &["checking the ABI version", "unreachable"],
    );
    assert!(matches!(kind, LoadErrorKind::Start(_)), "{kind:?}");
}

#[test]
fn each_missing_export_is_refused_by_name() {
    let module = Wasm::commands(json!([]));
    for export in [
        "memory",
        "claimsmith_abi_version",
        "claimsmith_alloc",
        "claimsmith_on_execute_post_login",
    ] {
        let setup = one_rule("partial", module.bytes_without_export(export), "");
        let kind = expect_load_error(&setup, "partial", &[&format!("missing export `{export}`")]);
        assert!(
            matches!(kind, LoadErrorKind::MissingExport(name) if name == export),
            "{kind:?}"
        );
    }
    // Present, with the wrong signature.
    let wat = module.wat().replace(
        "(func (export \"claimsmith_alloc\") (param $len i32) (result i32)",
        "(func (export \"claimsmith_alloc\") (param $len i64) (result i32)",
    );
    let setup = one_rule("partial", wat::parse_str(wat).unwrap(), "");
    let kind = expect_load_error(
        &setup,
        "partial",
        &["export `claimsmith_alloc` is func (i64) -> (i32)"],
    );
    assert!(
        matches!(
            kind,
            LoadErrorKind::WrongExport {
                name: "claimsmith_alloc",
                ..
            }
        ),
        "{kind:?}"
    );
}

#[test]
fn bytes_that_are_not_a_core_module_are_refused_at_load() {
    let cases: &[(&str, &[u8], &str)] = &[
        ("text", b"not wasm", "not a WebAssembly module"),
        ("empty", b"", "not a WebAssembly module"),
        ("magic-only", b"\0asm", "not a WebAssembly module"),
        ("component", b"\0asm\x0d\x00\x01\x00", "component"),
        (
            "garbage",
            b"\0asm\x01\x00\x00\x00\xff\xff\xff",
            "invalid WebAssembly module",
        ),
    ];
    for &(rule, bytes, needle) in cases {
        let setup = one_rule(rule, bytes.to_vec(), "");
        let kind = expect_load_error(&setup, rule, &[needle]);
        match (rule, &kind) {
            ("garbage", LoadErrorKind::Invalid(_)) => {}
            (_, LoadErrorKind::NotWasm(_)) if rule != "garbage" => {}
            _ => panic!("{rule}: unexpected {kind:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Traps, panics and on_error
// ---------------------------------------------------------------------------------------------

#[test]
fn a_skipped_rule_contributes_nothing_and_the_login_goes_on() {
    let claim = |name: &str| {
        Wasm::commands(json!([set_claim(
            "id_token",
            &format!("https://example.com/{name}"),
            json!(true)
        )]))
        .bytes()
    };
    let half = Wasm::commands(json!([
        set_claim("id_token", "https://example.com/half", json!(true)),
        set_claim("access_token", "https://example.com/half", json!(true)),
        set_claim("id_token", "sub", json!("admin")),
    ]))
    .bytes();
    let setup = setup_rules(
        "",
        &[
            ("before", claim("before"), ""),
            (
                "trapper",
                Wasm::entry("unreachable").bytes(),
                "on_error = \"skip\"",
            ),
            ("half", half, "on_error = \"skip\""),
            ("after", claim("after"), ""),
        ],
    );
    let out = setup.run(&event());
    assert_eq!(out.code, 0, "skipped rules do not fail the login: {out:?}");
    let body = out.json();
    let id = &body["claims"]["id_token"];
    assert_eq!(id["sub"], "u1", "{body}");
    assert_eq!(id["https://example.com/before"], true, "{body}");
    assert_eq!(id["https://example.com/after"], true, "{body}");
    assert!(
        id.get("https://example.com/half").is_none(),
        "a skipped rule's claims are dropped: {body}"
    );
    assert!(
        body["claims"]["access_token"]
            .get("https://example.com/half")
            .is_none(),
        "{body}"
    );
    let warnings = body["warnings"].to_string();
    for needle in [
        "rule `trapper`",
        "unreachable",
        "rule `half`",
        "claim `sub` on the id_token is reserved",
        "skipped",
    ] {
        assert!(
            warnings.contains(needle),
            "warnings must mention {needle:?}: {warnings}"
        );
    }

    // The same through the library, with traces.
    let issuer = Issuer::from_config_file(&setup.config).unwrap();
    let tokens = library_login(&issuer, &event());
    assert!(
        !tokens
            .id_token_claims
            .contains_key("https://example.com/half")
    );
    assert!(
        tokens.warnings.iter().any(|w| w.contains("rule `trapper`")),
        "{:?}",
        tokens.warnings
    );
    let statuses: Vec<String> = tokens
        .outcome
        .rules
        .iter()
        .map(|r| format!("{}:{:?}", r.rule, r.status))
        .collect();
    assert_eq!(tokens.outcome.rules.len(), 4, "{statuses:?}");
}

#[test]
fn a_trap_fails_the_login_closed_by_default() {
    let setup = one_rule("trapper", Wasm::entry("unreachable").bytes(), "");
    expect_rule_failed(&setup, "trapper", &["trapped", "unreachable"]);
    match library_failure(&setup, "trapper").cause {
        RuleFailure::Trap(message) => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    // `on_error = "deny"` spelled out is the same.
    let setup = one_rule(
        "trapper",
        Wasm::entry("unreachable").bytes(),
        "on_error = \"deny\"",
    );
    expect_rule_failed(&setup, "trapper", &["trapped"]);
    // A trap partway through a later rule: an earlier rule's claims do not leak out either.
    let setup = setup_rules(
        "",
        &[
            (
                "first",
                Wasm::commands(json!([set_claim(
                    "id_token",
                    "https://example.com/first",
                    json!(1)
                )]))
                .bytes(),
                "",
            ),
            (
                "trapper",
                Wasm::entry("(i64.div_u (i64.const 1) (i64.const 0))").bytes(),
                "",
            ),
        ],
    );
    expect_rule_failed(&setup, "trapper", &["trapped", "divide by zero"]);
}

const FAIL_IMPORT: &str = r#"(import "claimsmith" "fail" (func $fail (param i32 i32)))"#;

/// A module that reports `message` through `claimsmith.fail`, then runs `after`.
fn failing(message: &str, after: &str) -> Wasm {
    Wasm::entry(&format!(
        "(call $fail (i32.const {DATA_AT}) (i32.const {})) {after}",
        message.len()
    ))
    .import(FAIL_IMPORT)
    .data(message.as_bytes())
}

#[test]
fn claimsmith_fail_reports_the_message_as_a_panic() {
    let setup = one_rule(
        "failer",
        failing("tenant missing in app_metadata", "unreachable").bytes(),
        "",
    );
    expect_rule_failed(
        &setup,
        "failer",
        &["panicked: tenant missing in app_metadata"],
    );
    assert_eq!(
        library_failure(&setup, "failer").cause,
        RuleFailure::Panicked("tenant missing in app_metadata".into())
    );

    // Reporting a failure and then returning a valid result is still a failure.
    let empty = br#"{"commands":[]}"#;
    let message = "gave up";
    let module = Wasm::entry(&format!(
        "(call $fail (i32.const {DATA_AT}) (i32.const {})) (i64.const {})",
        message.len(),
        packed(DATA_AT + message.len() as u32, empty.len() as u32)
    ))
    .import(FAIL_IMPORT)
    .data(&[message.as_bytes(), empty].concat());
    let setup = one_rule("failer", module.bytes(), "");
    expect_rule_failed(&setup, "failer", &["panicked: gave up"]);

    // A message pointer outside memory neither crashes the host nor hides the failure.
    let module =
        Wasm::entry("(call $fail (i32.const -100) (i32.const 50)) unreachable").import(FAIL_IMPORT);
    let setup = one_rule("failer", module.bytes(), "");
    expect_rule_failed(
        &setup,
        "failer",
        &["panicked: <text at", "outside the module's memory>"],
    );
}

#[test]
fn a_rust_panic_reported_by_the_sdk_hook_names_the_panic() {
    // What the SDK's panic hook sends: `PanicHookInfo`'s Display, then `panic = "abort"` traps.
    let message = "panicked at src/lib.rs:14:37:\ncalled `Option::unwrap()` on a `None` value";
    let setup = one_rule("rusty", failing(message, "unreachable").bytes(), "");
    let description = expect_rule_failed(
        &setup,
        "rusty",
        &[
            "panicked: panicked at src/lib.rs:14:37",
            "called `Option::unwrap()` on a `None` value",
        ],
    );
    assert_eq!(description, format!("rule `rusty` panicked: {message}"));
    assert_eq!(
        library_failure(&setup, "rusty").cause,
        RuleFailure::Panicked(message.into())
    );
}

// ---------------------------------------------------------------------------------------------
// Isolation between logins
// ---------------------------------------------------------------------------------------------

#[test]
fn every_login_gets_a_fresh_instance() {
    let result = serde_json::to_string(&json!({"commands": [
        set_claim("id_token", "https://example.com/global", json!(0)),
        set_claim("id_token", "https://example.com/low_memory", json!(0)),
        set_claim("id_token", "https://example.com/grown_memory", json!(0)),
    ]}))
    .unwrap();
    let digits: Vec<u32> = result
        .match_indices("\"value\":0")
        .map(|(i, _)| DATA_AT + i as u32 + 8)
        .collect();
    assert_eq!(digits.len(), 3);
    // Three counters, each bumped once per call and written as the digit of its claim: a
    // mutable global, a word at address 16 (in the pool's kept-resident region) and a word in a
    // page the module grows itself.
    let body = format!(
        "(global.set $calls (i32.add (global.get $calls) (i32.const 1)))
         (i32.store8 (i32.const {g}) (i32.add (i32.const 48) (global.get $calls)))
         (i32.store (i32.const 16) (i32.add (i32.load (i32.const 16)) (i32.const 1)))
         (i32.store8 (i32.const {l}) (i32.add (i32.const 48) (i32.load (i32.const 16))))
         (local.set $page (memory.grow (i32.const 1)))
         (if (i32.lt_s (local.get $page) (i32.const 0)) (then unreachable))
         (local.set $at (i32.add (i32.mul (local.get $page) (i32.const {PAGE})) (i32.const 16)))
         (i32.store (local.get $at) (i32.add (i32.load (local.get $at)) (i32.const 1)))
         (i32.store8 (i32.const {m}) (i32.add (i32.const 48) (i32.load (local.get $at))))
         (i64.const {packed})",
        g = digits[0],
        l = digits[1],
        m = digits[2],
        packed = packed(DATA_AT, result.len() as u32),
    );
    let module = Wasm::entry(&format!("(local $page i32) (local $at i32) {body}"))
        .extra("(global $calls (mut i32) (i32.const 0))")
        .data(result.as_bytes());
    let setup = one_rule("counter", module.bytes(), "");
    let issuer = Issuer::from_config_file(&setup.config).unwrap();
    for login in 1..=3 {
        let tokens = library_login(&issuer, &event());
        for claim in ["global", "low_memory", "grown_memory"] {
            assert_eq!(
                tokens.id_token_claims[&format!("https://example.com/{claim}")],
                json!(1),
                "login {login}: counter `{claim}` survived from an earlier login"
            );
        }
    }
    // And through the binary.
    let out = setup.run(&event());
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.json()["claims"]["id_token"]["https://example.com/global"],
        1
    );
}

#[test]
fn concurrent_logins_see_only_their_own_user() {
    const THREADS: usize = 8;
    const LOGINS: usize = 25;
    let setup = Setup::new(ALG, support::ADD_ROLES);
    let issuer = Issuer::from_config_file(&setup.config).unwrap();
    let jwks = serde_json::to_value(issuer.jwks()).unwrap();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (issuer, jwks) = (&issuer, &jwks);
                scope.spawn(move || {
                    for i in 0..LOGINS {
                        let user = format!("auth0|user-{t}-{i}");
                        let roles = json!([format!("role-{t}-{i}"), format!("thread-{t}")]);
                        let event = json!({
                            "user": {"user_id": user},
                            "authorization": {"roles": roles},
                            "client": {"client_id": "c1"},
                            "resource_server": {"identifier": "https://api.example.com"}
                        });
                        let tokens = library_login(issuer, &event);
                        let access = tokens.access_token.as_deref().expect("an access token");
                        for (token, audience) in [
                            (tokens.id_token.as_str(), "c1"),
                            (access, "https://api.example.com"),
                        ] {
                            let (_, claims) = support::verify(token, jwks, audience);
                            assert_eq!(claims["sub"], json!(user), "thread {t} login {i}");
                            assert_eq!(
                                claims["https://example.com/roles"], roles,
                                "thread {t} login {i}"
                            );
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("a login thread panicked");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Log flooding
// ---------------------------------------------------------------------------------------------

#[test]
fn a_log_flood_is_cut_at_the_log_limit() {
    let line = "x".repeat(100);
    let empty = br#"{"commands":[]}"#;
    let body = format!(
        "(local $i i32)
         (block $done (loop $next
           (br_if $done (i32.ge_u (local.get $i) (i32.const 1000)))
           (call $log (i32.const 2) (i32.const {DATA_AT}) (i32.const 100))
           (local.set $i (i32.add (local.get $i) (i32.const 1)))
           (br $next)))
         (i64.const {})",
        packed(DATA_AT + 100, empty.len() as u32)
    );
    let module = Wasm::entry(&body)
        .import(r#"(import "claimsmith" "log" (func $log (param i32 i32 i32)))"#)
        .data(&[line.as_bytes(), empty].concat());
    let setup = one_rule("flood", module.bytes(), "");
    let out = setup.run(&event());
    assert_eq!(out.code, 0, "{out:?}");
    let body = out.json();
    let logs = body["logs"].as_array().expect("logs");
    let (marker, lines) = logs.split_last().expect("some logs");
    let kept: usize = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap().len())
        .sum();
    assert!(
        kept <= 4096,
        "kept {kept} log bytes past the 4096-byte limit"
    );
    assert!(kept >= 4000, "kept only {kept} log bytes");
    let marker = marker["message"].as_str().unwrap();
    assert!(
        marker.contains("log bytes dropped") && marker.contains("log limit of 4096 bytes"),
        "{marker}"
    );
    assert!(logs.iter().all(|l| l["rule"] == "flood"));
}

#[cfg(unix)]
#[test]
fn a_module_path_to_an_endless_file_is_refused_at_the_size_limit() {
    // /dev/zero reports size 0 and never ends: reading stops one byte past `module_bytes`.
    let toml = "[[rules]]\nname = \"endless\"\nmodule = \"/dev/zero\"\n[rules.limits]\nmodule_bytes = 65536\n";
    let setup = Setup::with_header(ALG, "", toml);
    let kind = expect_load_error(&setup, "endless", &["65536"]);
    assert!(
        matches!(
            kind,
            LoadErrorKind::TooLarge {
                size: 65537,
                limit: 65536
            }
        ),
        "{kind:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Guest ABI version 2: the binary result is read as hostile input too
// ---------------------------------------------------------------------------------------------

/// A binary result of version 2, written by hand from docs/abi.md section 9: the magic, the
/// text's length, the text, then the structure (a count, then each command).
#[derive(Default)]
struct BinaryResult {
    text: Vec<u8>,
    structure: Vec<u8>,
    count: u32,
}

impl BinaryResult {
    /// A command given as its structure bytes and the text its strings take.
    fn command(mut self, structure: &[u8], text: &[u8]) -> BinaryResult {
        self.structure.extend_from_slice(structure);
        self.text.extend_from_slice(text);
        self.count += 1;
        self
    }

    /// `set_claim` on the ID token with a string value.
    fn set_claim(self, name: &str, value: &str) -> BinaryResult {
        let mut structure = vec![1, 0];
        structure.extend_from_slice(&(name.len() as u32).to_le_bytes());
        structure.push(6);
        structure.extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.command(&structure, format!("{name}{value}").as_bytes())
    }

    fn bytes(&self) -> Vec<u8> {
        let mut bytes = b"CSR1".to_vec();
        bytes.extend_from_slice(&(self.text.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&self.text);
        bytes.extend_from_slice(&self.count.to_le_bytes());
        bytes.extend_from_slice(&self.structure);
        bytes
    }
}

#[test]
fn a_version_2_module_gets_the_binary_event_and_its_binary_result_is_applied() {
    // Returns the result only if the input starts with the binary event's magic "CSE1";
    // otherwise a result that is not even the binary form.
    let good = BinaryResult::default()
        .set_claim("https://example.com/abi", "two")
        .bytes();
    let wasm = Wasm::entry(&format!(
        "(if (result i64) (i32.eq (i32.load (local.get $ptr)) (i32.const 0x31455343))
           (then (i64.const {}))
           (else (i64.const {})))",
        packed(DATA_AT, good.len() as u32),
        packed(DATA_AT, 1),
    ))
    .data(&good)
    .abi_version("(i32.const 2)");
    let setup = one_rule("binary", wasm.bytes(), "");
    let issuer = Issuer::from_config_file(&setup.config).unwrap();
    assert_eq!(issuer.pipeline().rules()[0].abi_version(), 2);
    let tokens = library_login(&issuer, &event());
    assert_eq!(tokens.id_token_claims["https://example.com/abi"], "two");
}

#[test]
fn a_broken_version_2_result_fails_the_rule_naming_the_field() {
    let name = "https://example.com/x";
    let len = |n: usize| (n as u32).to_le_bytes();
    let mut bad_token = vec![1, 9];
    bad_token.extend_from_slice(&len(name.len()));
    bad_token.push(0);
    let mut deny = vec![5];
    deny.extend_from_slice(&len(2));
    let mut deep = vec![1, 0];
    deep.extend_from_slice(&len(name.len()));
    for _ in 0..200 {
        deep.push(7);
        deep.extend_from_slice(&len(1));
    }
    deep.push(0);
    let mut huge = b"CSR1".to_vec();
    huge.extend_from_slice(&len(0));
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    let mut trailing = BinaryResult::default().bytes();
    trailing.push(0);
    let cases: [(&str, Vec<u8>, &[&str]); 7] = [
        (
            "json",
            br#"{"commands":[]}"#.to_vec(),
            &["binary result", "wrong magic"],
        ),
        (
            "token",
            BinaryResult::default()
                .command(&bad_token, name.as_bytes())
                .bytes(),
            &["unknown token", "at byte 35 (reading set_claim.token)"],
        ),
        (
            "utf8",
            BinaryResult::default()
                .command(&deny, &[0xC3, 0x28])
                .bytes(),
            &["the result's text", "not UTF-8"],
        ),
        (
            "overrun",
            BinaryResult::default().command(&deny, b"n").bytes(),
            &["deny.reason", "runs past the text"],
        ),
        ("count", huge, &["commands", "runs past the end"]),
        ("trailing", trailing, &["bytes left over"]),
        (
            "deep",
            BinaryResult::default()
                .command(&deep, name.as_bytes())
                .bytes(),
            &["set_claim.value", "nest too deep"],
        ),
    ];
    for (name, result, needles) in cases {
        let setup = one_rule(
            name,
            Wasm::returning(&result)
                .abi_version("(i32.const 2)")
                .bytes(),
            "",
        );
        expect_rule_failed(&setup, name, needles);
        let failed = library_failure(&setup, name);
        assert!(
            matches!(failed.cause, RuleFailure::InvalidResult(_)),
            "{name}: {:?}",
            failed.cause
        );
    }
}

#[test]
fn a_version_2_result_still_meets_the_claim_policy() {
    let result = BinaryResult::default()
        .set_claim("sub", "someone-else")
        .bytes();
    let setup = one_rule(
        "impostor",
        Wasm::returning(&result)
            .abi_version("(i32.const 2)")
            .bytes(),
        "",
    );
    let failed = library_failure(&setup, "impostor");
    assert!(
        matches!(failed.cause, RuleFailure::Policy(_)),
        "{:?}",
        failed.cause
    );
    expect_rule_failed(&setup, "impostor", &["sub"]);
}
