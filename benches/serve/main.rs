//! The hook-server benchmark: the real `claimsmith serve` (the release binary `cargo bench`
//! built) driven over loopback by a real HTTP client at a fixed concurrency, and the same
//! Hydra token hook served by Node.js (`benches/serve/node-hook.mjs`, the same Auth0 Action as
//! the add-roles rule) with a fresh `vm` context per request and with one shared context.
//!
//! Scenarios, all on one `claimsmith serve` with a hook per scenario:
//! - the one-rule Hydra hook: add-roles on Hydra's token-hook request
//!   (server/tests/fixtures/hydra/token-hook.json);
//! - the five-rule pipeline on the same Hydra hook: every example rule, on that request with an
//!   email and `email_verified` added to the ID token's `ext` claims (the fixture has none, and
//!   require-verified-email would deny it);
//! - the one-rule hook in each other issuer's format (okta, supabase, zitadel, cognito), each on
//!   its fixture;
//! - the `claimsmith` format (signed tokens) with add-roles on benches/events/login-1k.json;
//! - Node.js's two modes on the Hydra request (skipped, saying so, without `node` on PATH).
//!
//! The load generator runs in this process: tokio with hyper's HTTP/1.1 client, one keep-alive
//! connection per task (the task drives its connection itself), each task sending its next
//! request once the last is answered; each request's latency is timed in the client, from
//! sending to the whole body read. Every response's status is checked (the run fails on any
//! non-2xx answer: a benchmark of errors is worthless) and the first body of every turn is
//! checked for the claims the rules set.
//!
//! The scenarios take turns, as in the peer harness: `SERVE_ROUNDS` rounds (default 5), each
//! a turn of every scenario in an order shuffled from round to round, a turn being fresh
//! connections, a 250 ms warm-up and `SERVE_SECONDS` seconds measured (default 2). Requests/s
//! is the median of the rounds; p50 and p99 are over all the measured requests. The server runs
//! with `CLAIMSMITH_LOG=warn` (no access log line per request) unless `SERVE_LOG` sets another
//! level; its stderr goes to a file.
//!
//! `cargo bench -p claimsmith-cli --bench serve`. `SERVE_CONNECTIONS` (default 32) sets the
//! connections, `SERVE_CLIENT_THREADS` (default 1) the load generator's threads, and
//! `SERVE_SCENARIOS` (comma-separated prefixes: `hydra: add`, `Node.js`) keeps only the scenarios whose names start with one.
//! `SERVE_BASELINE_BIN=path/to/claimsmith` serves the same config from that build too, each
//! claimsmith scenario again as `baseline ..`, taking turns with the rest: an A/B of a change.

#[path = "../support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use claimsmith_cli::internals::Latencies;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// Untimed requests at the start of every turn.
const WARMUP: Duration = Duration::from_millis(250);

/// The roles claim every scenario's rules set.
const ROLES: &str = "https://example.com/roles";

/// Which server a scenario's requests go to.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    Claimsmith,
    /// `SERVE_BASELINE_BIN`, another build of claimsmith on the same config (A/B of a change).
    Baseline,
    NodeFresh,
    NodeShared,
}

#[derive(Clone)]
struct Scenario {
    name: &'static str,
    target: Target,
    path: &'static str,
    body: Bytes,
    /// What the first answer of a turn must hold.
    check: fn(u16, &Value) -> Result<(), String>,
}

/// What one turn measured.
struct Turn {
    requests: usize,
    window: Duration,
    latencies: Vec<Duration>,
    non_2xx: usize,
    /// The first non-2xx answer: status and body.
    first_error: Option<(u16, String)>,
    /// The first answer: status and body.
    first: Option<(u16, Bytes)>,
}

fn main() {
    let connections = support::env_count("SERVE_CONNECTIONS", 32);
    let seconds = support::env_count("SERVE_SECONDS", 2);
    let rounds = support::env_count("SERVE_ROUNDS", 5);
    let client_threads = support::env_count("SERVE_CLIENT_THREADS", 1);
    let log = std::env::var("SERVE_LOG").unwrap_or_else(|_| "warn".to_owned());

    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path());
    let runtime = client_runtime(client_threads);
    let claimsmith = Server::start(
        "claimsmith serve",
        Command::new(env!("CARGO_BIN_EXE_claimsmith"))
            .args(["serve", "--config", config.to_str().expect("UTF-8 path")])
            .args(["--listen", "127.0.0.1:0"])
            .env("CLAIMSMITH_LOG", &log)
            .env(
                "CLAIMSMITH_CACHE_DIR",
                support::workspace().join("target/claimsmith-bench-cache"),
            ),
        &dir.path().join("claimsmith.log"),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let baseline = std::env::var_os("SERVE_BASELINE_BIN").map(|bin| {
        Server::start(
            "the baseline claimsmith serve",
            Command::new(bin)
                .args(["serve", "--config", config.to_str().expect("UTF-8 path")])
                .args(["--listen", "127.0.0.1:0"])
                .env("CLAIMSMITH_LOG", &log)
                .env(
                    "CLAIMSMITH_CACHE_DIR",
                    support::workspace().join("target/claimsmith-bench-cache"),
                ),
            &dir.path().join("baseline.log"),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    });

    let script = support::workspace().join("benches/serve/node-hook.mjs");
    let node_config = serde_json::to_string(&support::configuration("add-roles")).expect("JSON");
    let node = ["fresh_vm", "shared_context"].map(|mode| {
        Server::start(
            "node node-hook.mjs",
            Command::new("node").arg(&script).args([
                "--mode",
                mode,
                "--port",
                "0",
                "--config-json",
                &node_config,
            ]),
            &dir.path().join(format!("node-{mode}.log")),
        )
    });
    let (node, node_version) = match node {
        [Ok(fresh), Ok(shared)] => {
            let version = Command::new("node")
                .arg("--version")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default();
            (Some([fresh, shared]), version)
        }
        [Err(why), _] | [_, Err(why)] => {
            println!("Node.js servers skipped: {why}; measuring claimsmith alone.\n");
            (None, String::new())
        }
    };

    // `SERVE_SCENARIOS=hydra,okta` keeps the scenarios whose names start with one of the words.
    let only = std::env::var("SERVE_SCENARIOS").unwrap_or_default();
    let wanted =
        |name: &str| only.is_empty() || only.split(',').any(|w| name.starts_with(w.trim()));
    let mut scenarios = scenarios();
    if baseline.is_some() {
        let ours: Vec<Scenario> = scenarios
            .iter()
            .filter(|s| s.target == Target::Claimsmith)
            .cloned()
            .collect();
        for mut scenario in ours {
            scenario.target = Target::Baseline;
            scenario.name = format!("baseline {}", scenario.name).leak();
            scenarios.push(scenario);
        }
    }
    let scenarios: Vec<Scenario> = scenarios
        .into_iter()
        .filter(|s| node.is_some() || !matches!(s.target, Target::NodeFresh | Target::NodeShared))
        .filter(|s| wanted(s.name))
        .collect();
    let compare = [HYDRA_ONE, NODE_FRESH, NODE_SHARED]
        .iter()
        .all(|name| scenarios.iter().any(|s| s.name == *name));
    let address = |target: Target| match (target, &node) {
        (Target::Claimsmith, _) => claimsmith.address,
        (Target::Baseline, _) => baseline.as_ref().expect("a baseline server").address,
        (Target::NodeFresh, Some([fresh, _])) => fresh.address,
        (Target::NodeShared, Some([_, shared])) => shared.address,
        _ => unreachable!("Node.js scenarios run only with node"),
    };

    // Every scenario answers as it should before anything is timed; Node.js answers Hydra's
    // request exactly as claimsmith does.
    let mut hydra_answer = None;
    for scenario in &scenarios {
        let (status, body) = runtime
            .block_on(one_request(address(scenario.target), scenario))
            .unwrap_or_else(|e| panic!("{}: {e}", scenario.name));
        let value = check(scenario, status, &body).unwrap_or_else(|e| panic!("{e}"));
        match (scenario.name, &hydra_answer) {
            (HYDRA_ONE, _) => hydra_answer = Some(value),
            (NODE_FRESH | NODE_SHARED, Some(ours)) => assert_eq!(
                &value, ours,
                "{} answers Hydra's request differently from claimsmith",
                scenario.name
            ),
            _ => {}
        }
    }

    println!(
        "claimsmith serve and {}: {connections} keep-alive connections, {rounds} rounds taking turns, \
         {seconds} s measured per turn (after {} ms of warm-up); load generator in-process on {client_threads} \
         thread(s); {} cores; server log level {log}\n",
        if node.is_some() {
            format!("Node.js {node_version} (node:http)")
        } else {
            "no Node.js".to_owned()
        },
        WARMUP.as_millis(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );

    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); scenarios.len()];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); scenarios.len()];
    let mut non_2xx = vec![0usize; scenarios.len()];
    let mut first_error: Option<String> = None;
    for round in 0..rounds {
        for i in support::turns(round, scenarios.len()) {
            let scenario = &scenarios[i];
            let turn = runtime
                .block_on(turn(
                    address(scenario.target),
                    scenario,
                    connections,
                    Duration::from_secs(seconds as u64),
                ))
                .unwrap_or_else(|e| panic!("{}: {e}", scenario.name));
            if let Some((status, body)) = &turn.first {
                check(scenario, *status, body).unwrap_or_else(|e| panic!("{e}"));
            }
            if let Some((status, body)) = turn.first_error
                && first_error.is_none()
            {
                first_error = Some(format!("{}: {status} {body}", scenario.name));
            }
            non_2xx[i] += turn.non_2xx;
            rates[i].push(turn.requests as f64 / turn.window.as_secs_f64());
            samples[i].extend(turn.latencies);
        }
    }

    struct Row {
        rate: (f64, f64, f64),
        p50_ms: f64,
        p99_ms: f64,
    }
    let rows: Vec<Row> = samples
        .into_iter()
        .zip(&rates)
        .map(|(samples, rates)| {
            let latencies = Latencies::new(samples);
            Row {
                rate: support::spread(rates.clone()),
                p50_ms: latencies.percentile_us(50.0) / 1000.0,
                p99_ms: latencies.percentile_us(99.0) / 1000.0,
            }
        })
        .collect();

    println!(
        "| scenario | requests/s (median of {rounds} rounds) | lowest-highest round | p50 ms | p99 ms | non-2xx |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for ((scenario, row), errors) in scenarios.iter().zip(&rows).zip(&non_2xx) {
        println!(
            "| {} | {:.0} | {:.0}-{:.0} | {:.2} | {:.2} | {errors} |",
            scenario.name, row.rate.0, row.rate.1, row.rate.2, row.p50_ms, row.p99_ms
        );
    }

    if compare {
        let at = |name: &str| {
            scenarios
                .iter()
                .position(|s| s.name == name)
                .expect("a scenario")
        };
        let (ours, fresh, shared) = (at(HYDRA_ONE), at(NODE_FRESH), at(NODE_SHARED));
        println!(
            "\nThe Hydra token hook, add-roles / the same Auth0 Action ({connections} connections):\n"
        );
        println!("| runtime | requests/s (median of rounds) | p50 ms | p99 ms |");
        println!("|---|---:|---:|---:|");
        for (label, i) in [
            ("claimsmith serve (fresh wasm instance per request)", ours),
            ("Node.js node:http, fresh vm context per request", fresh),
            ("Node.js node:http, one shared context", shared),
        ] {
            println!(
                "| {label} | {:.0} | {:.2} | {:.2} |",
                rows[i].rate.0, rows[i].p50_ms, rows[i].p99_ms
            );
        }
        println!("\nratios of requests/s, per round: median (lowest-highest)");
        for (label, other) in [
            ("claimsmith / Node.js fresh context", fresh),
            ("claimsmith / Node.js shared context", shared),
        ] {
            let ratios: Vec<f64> = rates[ours]
                .iter()
                .zip(&rates[other])
                .map(|(a, b)| a / b)
                .collect();
            let (median, lowest, highest) = support::spread(ratios);
            println!("  {label}: {median:.2} x ({lowest:.2}-{highest:.2} x)");
        }
    }

    drop(node);
    drop(baseline);
    drop(claimsmith);
    let errors: usize = non_2xx.iter().sum();
    if errors > 0 {
        eprintln!(
            "\n{errors} non-2xx answers: these figures are not a benchmark. The first: {}",
            first_error.unwrap_or_default()
        );
        std::process::exit(1);
    }
}

const HYDRA_ONE: &str = "hydra: add-roles";
const NODE_FRESH: &str = "Node.js fresh vm context: hydra";
const NODE_SHARED: &str = "Node.js shared context: hydra";

fn scenarios() -> Vec<Scenario> {
    let fixture = |path: &str| -> Bytes {
        std::fs::read(
            support::workspace()
                .join("server/tests/fixtures")
                .join(path),
        )
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .into()
    };
    let hydra = fixture("hydra/token-hook.json");
    // require-verified-email denies a login without a verified email: give the session one,
    // where Hydra's consent puts profile claims (the ID token's `ext`).
    let mut verified: Value = serde_json::from_slice(&hydra).expect("JSON fixture");
    let ext = &mut verified["session"]["id_token"]["id_token_claims"]["ext"];
    ext["email"] = json!("alice@acme.example");
    ext["email_verified"] = json!(true);
    let verified = Bytes::from(serde_json::to_vec(&verified).expect("JSON"));
    let scenario = |name, target, path, body: &Bytes, check| Scenario {
        name,
        target,
        path,
        body: body.clone(),
        check,
    };
    vec![
        scenario(
            HYDRA_ONE,
            Target::Claimsmith,
            "/hooks/hydra",
            &hydra,
            hydra_check,
        ),
        scenario(
            "hydra: five rules",
            Target::Claimsmith,
            "/hooks/hydra-five",
            &verified,
            |status, body| {
                hydra_check(status, body)?;
                if body["session"]["id_token"]["https://example.com/capabilities"].is_null() {
                    return Err("no capabilities claim in session.id_token".into());
                }
                Ok(())
            },
        ),
        scenario(
            "okta: add-roles",
            Target::Claimsmith,
            "/hooks/okta",
            &fixture("okta/token-inline-hook.json"),
            |_, body| mentions_roles(&body["commands"]),
        ),
        scenario(
            "supabase: add-roles",
            Target::Claimsmith,
            "/hooks/supabase",
            &fixture("supabase/custom-access-token.json"),
            |_, body| mentions_roles(&body["claims"]),
        ),
        scenario(
            "zitadel: add-roles",
            Target::Claimsmith,
            "/hooks/zitadel",
            &fixture("zitadel/preaccesstoken.json"),
            |_, body| mentions_roles(body),
        ),
        scenario(
            "cognito: add-roles",
            Target::Claimsmith,
            "/hooks/cognito",
            &fixture("cognito/v2-authentication.json"),
            |_, body| mentions_roles(&body["response"]),
        ),
        scenario(
            "claimsmith (signed tokens): add-roles",
            Target::Claimsmith,
            "/hooks/login",
            &Bytes::from(support::event_json()),
            |_, body| {
                let signed = body["id_token"]
                    .as_str()
                    .is_some_and(|t| t.split('.').count() == 3);
                if !signed || body["claims"]["id_token"][ROLES] != json!(["admin", "editor"]) {
                    return Err("no signed ID token with the roles claim".into());
                }
                Ok(())
            },
        ),
        scenario(
            NODE_FRESH,
            Target::NodeFresh,
            "/hooks/hydra",
            &hydra,
            hydra_check,
        ),
        scenario(
            NODE_SHARED,
            Target::NodeShared,
            "/hooks/hydra",
            &hydra,
            hydra_check,
        ),
    ]
}

/// Hydra's 200 with the roles claim in both maps.
fn hydra_check(status: u16, body: &Value) -> Result<(), String> {
    let session = &body["session"];
    if status != 200
        || session["access_token"][ROLES].is_null()
        || session["id_token"][ROLES].is_null()
    {
        return Err("no roles claim in session.access_token and session.id_token".into());
    }
    Ok(())
}

/// `value` carries the roles claim somewhere (Okta's JSON Patch paths escape the slashes) and
/// no error.
fn mentions_roles(value: &Value) -> Result<(), String> {
    let text = value.to_string();
    if value.get("error").is_some() || value.get("forwardedStatusCode").is_some() {
        return Err(format!("an error answer: {text}"));
    }
    if !(text.contains("example.com/roles") || text.contains("example.com~1roles")) {
        return Err(format!("no roles claim in {text}"));
    }
    Ok(())
}

/// A scenario's answer: 2xx, JSON, and what the scenario's check wants.
fn check(scenario: &Scenario, status: u16, body: &[u8]) -> Result<Value, String> {
    let text = String::from_utf8_lossy(body);
    if !(200..300).contains(&status) {
        return Err(format!("{}: answered {status}: {text}", scenario.name));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("{}: the answer is not JSON ({e}): {text}", scenario.name))?;
    (scenario.check)(status, &value).map_err(|e| format!("{}: {e}: {text}", scenario.name))?;
    Ok(value)
}

/// The config: a fresh EdDSA key, the five example rules (configured as in
/// examples/claimsmith.toml) and one hook per scenario, without authentication (loopback).
fn write_config(dir: &Path) -> PathBuf {
    let modules = build_rules();
    std::fs::write(
        dir.join("signing.pem"),
        claimsmith::generate_pem("EdDSA").expect("keygen"),
    )
    .expect("write key");
    let mut text = String::from(
        "issuer = \"https://login.example.com/\"\nnamespaces = [\"https://example.com/\"]\n\n\
         [[keys]]\nkid = \"bench\"\nalg = \"EdDSA\"\nprivate_key = \"signing.pem\"\n",
    );
    for name in support::RULES {
        let module = &modules[support::RULES
            .iter()
            .position(|r| *r == name)
            .expect("a rule")];
        // As in examples/claimsmith.toml.
        let on_error = match name {
            "require-verified-email" => "on_error = \"deny\"\n",
            "tenant-from-metadata" => "on_error = \"skip\"\n",
            _ => "",
        };
        text.push_str(&format!(
            "\n[[rules]]\nname = \"{name}\"\nmodule = {:?}\n{on_error}config = {}\n",
            module.display().to_string(),
            toml_inline(&Value::Object(support::configuration(name)))
        ));
    }
    text.push_str("\n[server]\n");
    let hooks = [
        ("/hooks/hydra", "hydra", Some("add-roles")),
        ("/hooks/hydra-five", "hydra", None),
        ("/hooks/okta", "okta", Some("add-roles")),
        ("/hooks/supabase", "supabase", Some("add-roles")),
        ("/hooks/zitadel", "zitadel", Some("add-roles")),
        ("/hooks/cognito", "cognito", Some("add-roles")),
        ("/hooks/login", "claimsmith", Some("add-roles")),
    ];
    for (path, format, rule) in hooks {
        let rules = rule
            .map(|r| format!("rules = [\"{r}\"]\n"))
            .unwrap_or_default();
        text.push_str(&format!(
            "\n[[server.hooks]]\npath = \"{path}\"\nformat = \"{format}\"\n{rules}[server.hooks.auth]\ntype = \"none\"\n"
        ));
    }
    let path = dir.join("claimsmith.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// The example rules built by the real `claimsmith build`, in [`support::RULES`] order.
fn build_rules() -> Vec<PathBuf> {
    let out = Command::new(env!("CARGO_BIN_EXE_claimsmith"))
        .arg("build")
        .args(support::RULES.iter().map(|name| format!("rules/{name}")))
        .current_dir(support::workspace())
        .stderr(Stdio::inherit())
        .output()
        .expect("run claimsmith build");
    assert!(out.status.success(), "claimsmith build failed");
    let built: Vec<PathBuf> = String::from_utf8(out.stdout)
        .expect("UTF-8 paths")
        .lines()
        .map(PathBuf::from)
        .collect();
    support::RULES
        .iter()
        .map(|name| {
            let file = format!("{}.wasm", name.replace('-', "_"));
            built
                .iter()
                .find(|p| p.file_name().is_some_and(|f| f == file.as_str()))
                .unwrap_or_else(|| panic!("{name} was not built: {built:?}"))
                .clone()
        })
        .collect()
}

/// JSON as a TOML inline value.
fn toml_inline(value: &Value) -> String {
    match value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml_inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let members: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{} = {}", Value::String(k.clone()), toml_inline(v)))
                .collect();
            format!("{{ {} }}", members.join(", "))
        }
        other => other.to_string(),
    }
}

fn client_runtime(threads: usize) -> tokio::runtime::Runtime {
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder.enable_all().build().expect("tokio runtime")
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;
type Connection =
    hyper::client::conn::http1::Connection<TokioIo<tokio::net::TcpStream>, Full<Bytes>>;

/// A keep-alive HTTP/1.1 connection to `address`: the handle that sends requests, and the
/// connection itself, which the same task drives while it waits for each answer ([`exchange`]):
/// no hand-off to a task of its own, so the load generator costs the two cores less.
async fn connect(address: SocketAddr) -> Result<(Sender, Connection), String> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("connect to {address}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))
}

/// Send one request on `sender`, driving `connection` until it is answered: its status and body.
async fn exchange(
    sender: &mut Sender,
    connection: &mut std::pin::Pin<&mut Connection>,
    scenario: &Scenario,
) -> Result<(u16, Bytes), String> {
    tokio::select! {
        // The connection first: what it reads is then taken in the same poll.
        biased;
        ended = connection.as_mut() => Err(match ended {
            Ok(()) => "the server closed the connection".to_owned(),
            Err(e) => format!("connection: {e}"),
        }),
        answered = send(sender, scenario) => answered,
    }
}

/// Send one request; its status and body.
async fn send(sender: &mut Sender, scenario: &Scenario) -> Result<(u16, Bytes), String> {
    let request = Request::post(scenario.path)
        .header(HOST, "127.0.0.1")
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(scenario.body.clone()))
        .expect("a valid request");
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("response body: {e}"))?
        .to_bytes();
    Ok((status, body))
}

async fn one_request(address: SocketAddr, scenario: &Scenario) -> Result<(u16, Bytes), String> {
    let (mut sender, connection) = connect(address).await?;
    let mut connection = std::pin::pin!(connection);
    exchange(&mut sender, &mut connection, scenario).await
}

/// One turn: `connections` connections sending requests back to back through the warm-up and
/// then `measured`; the requests sent in the measured window counted and timed.
async fn turn(
    address: SocketAddr,
    scenario: &Scenario,
    connections: usize,
    measured: Duration,
) -> Result<Turn, String> {
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(connect(address).await?);
    }
    let scenario = Arc::new(scenario.clone());
    let from = Instant::now() + WARMUP;
    let until = from + measured;
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|(mut sender, connection)| {
            let scenario = Arc::clone(&scenario);
            tokio::spawn(async move {
                let mut connection = std::pin::pin!(connection);
                let mut turn = Turn {
                    requests: 0,
                    window: measured,
                    latencies: Vec::with_capacity(1 << 14),
                    non_2xx: 0,
                    first_error: None,
                    first: None,
                };
                loop {
                    let sent = Instant::now();
                    if sent >= until {
                        break;
                    }
                    let (status, body) = exchange(&mut sender, &mut connection, &scenario).await?;
                    let took = sent.elapsed();
                    if !(200..300).contains(&status) {
                        turn.non_2xx += 1;
                        if turn.first_error.is_none() {
                            turn.first_error =
                                Some((status, String::from_utf8_lossy(&body).into_owned()));
                        }
                    }
                    if turn.first.is_none() {
                        turn.first = Some((status, body));
                    }
                    if sent >= from {
                        turn.requests += 1;
                        turn.latencies.push(took);
                    }
                }
                Ok::<Turn, String>(turn)
            })
        })
        .collect();
    let mut all = Turn {
        requests: 0,
        window: measured,
        latencies: Vec::new(),
        non_2xx: 0,
        first_error: None,
        first: None,
    };
    for task in tasks {
        let turn = task.await.map_err(|e| format!("a client task: {e}"))??;
        all.requests += turn.requests;
        all.latencies.extend(turn.latencies);
        all.non_2xx += turn.non_2xx;
        all.first_error = all.first_error.or(turn.first_error);
        all.first = all.first.or(turn.first);
    }
    Ok(all)
}

/// A server process (`claimsmith serve` or node-hook.mjs), its stderr in a file, killed and
/// reaped on drop.
struct Server {
    child: Child,
    address: SocketAddr,
}

impl Server {
    /// Start `command` and wait for its `listening on http://ADDR` line.
    fn start(what: &str, command: &mut Command, log: &Path) -> Result<Server, String> {
        let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .map_err(|e| format!("cannot run {what} ({e})"))?;
        let mut server = Server {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(address) = text
                .lines()
                .find_map(|line| line.strip_prefix("listening on http://"))
            {
                server.address = address
                    .trim()
                    .parse()
                    .map_err(|e| format!("{what} printed {address:?}: {e}"))?;
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("{what} exited ({status}): {text}"));
            }
            if Instant::now() > deadline {
                return Err(format!("{what} did not start: {text}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
