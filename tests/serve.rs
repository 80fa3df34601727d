//! `claimsmith serve` through the real binary on a loopback port, with a real HTTP client: the
//! `claimsmith` format, the issuers' formats, authentication, bad input, limits, reload,
//! shutdown, a hostile rule under load, and isolation between concurrent logins.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use support::server::Server;
use support::{ADD_ROLES, Setup, event, fixed_rule, spin_module, workspace};

/// An HTTP client that hands back every status rather than failing on 4xx and 5xx.
fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// A response: status, a header or two, the body as JSON (`Value::Null` when empty or not JSON).
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
    text: String,
    retry_after: Option<String>,
    allow: Option<String>,
}

fn reply(mut response: ureq::http::Response<ureq::Body>) -> Reply {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (retry_after, allow) = (header("retry-after"), header("allow"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    Reply {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
        retry_after,
        allow,
    }
}

fn post(url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut request = client().post(url);
    let mut typed = false;
    for (name, value) in headers {
        typed |= name.eq_ignore_ascii_case("content-type");
        request = request.header(*name, *value);
    }
    if !typed {
        request = request.header("Content-Type", "application/json");
    }
    reply(request.send(body).expect("the request is answered"))
}

fn get(url: &str) -> Reply {
    reply(client().get(url).call().expect("the request is answered"))
}

/// A `[server]` table with the given hooks TOML after it.
fn server_table(hooks: &str) -> String {
    format!("[server]\nrequest_timeout_ms = 2000\n\n{hooks}")
}

/// A claimsmith-format hook without authentication (loopback only).
const OPEN_HOOK: &str = "[[server.hooks]]\npath = \"/hooks/login\"\nformat = \"claimsmith\"\n[server.hooks.auth]\ntype = \"none\"\n";

fn open_setup(rules: &str) -> Setup {
    Setup::new("EdDSA", &format!("{rules}\n{}", server_table(OPEN_HOOK)))
}

#[test]
fn the_claimsmith_format_answers_exactly_what_run_prints() {
    let setup = open_setup(ADD_ROLES);
    let server = Server::start(&setup.config, &[]);
    let alice = event("alice");
    let served = post(&server.url("/hooks/login"), &[], &alice.to_string());
    assert_eq!(served.status, 200, "{served:?}");
    let printed = setup.run(&alice).json();
    // Tokens differ (their times and ids); every other field is the same.
    for field in [
        "scopes",
        "app_metadata",
        "user_metadata",
        "mfa",
        "mfa_allow_remember_browser",
        "authentication",
        "session",
        "logs",
        "warnings",
    ] {
        assert_eq!(served.body[field], printed[field], "{field}");
    }
    let claims = &served.body["claims"]["id_token"];
    assert_eq!(
        claims["https://example.com/roles"],
        json!(["admin", "editor"])
    );
    assert_eq!(claims["sub"], alice["user"]["user_id"]);
    assert!(served.body["id_token"].as_str().unwrap().split('.').count() == 3);
    // The JWKS the server publishes verifies the token.
    let jwks = get(&server.url("/.well-known/jwks.json"));
    assert_eq!(jwks.status, 200);
    let audience = alice["client"]["client_id"].as_str().unwrap();
    let (_, verified) = support::verify(
        served.body["id_token"].as_str().unwrap(),
        &jwks.body,
        audience,
    );
    assert_eq!(
        verified["https://example.com/roles"],
        json!(["admin", "editor"])
    );
}

#[test]
fn denials_failures_and_bad_events_get_runs_json_with_their_status() {
    let rules = format!(
        "[[rules]]\nname = \"require-verified-email\"\nmodule = \"{{require-verified-email}}\"\non_error = \"deny\"\n\n{ADD_ROLES}"
    );
    let setup = open_setup(&rules);
    let server = Server::start(&setup.config, &[]);
    let url = server.url("/hooks/login");
    let denied = post(&url, &[], &event("bob-unverified").to_string());
    assert_eq!(denied.status, 403, "{denied:?}");
    assert_eq!(denied.body["error"], "access_denied");
    assert_eq!(denied.body["rule"], "require-verified-email");
    assert_eq!(denied.body, setup.run(&event("bob-unverified")).json());

    let missing = post(
        &url,
        &[],
        r#"{"user": {"email": "x@example.com"}, "client": {"client_id": "c"}}"#,
    );
    assert_eq!(missing.status, 400, "{missing:?}");
    assert_eq!(missing.body["error"], "invalid_request");
    assert!(
        missing.body["error_description"]
            .as_str()
            .unwrap()
            .contains("user.user_id"),
        "{missing:?}"
    );
}

#[test]
fn a_failing_rule_is_a_500_with_server_error_naming_the_rule() {
    let setup = Setup::new("EdDSA", "");
    let failing = wat::parse_str(
        r#"(module (memory (export "memory") 1)
  (func (export "claimsmith_abi_version") (result i32) (i32.const 1))
  (func (export "claimsmith_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "claimsmith_on_execute_post_login") (param i32 i32) (result i64) unreachable))"#,
    )
    .unwrap();
    let module = setup.write("trap.wasm", failing);
    let text = std::fs::read_to_string(&setup.config).unwrap()
        + &format!(
            "[[rules]]\nname = \"trap\"\nmodule = \"{}\"\non_error = \"deny\"\n\n{}",
            module.display(),
            server_table(OPEN_HOOK)
        );
    std::fs::write(&setup.config, text).unwrap();
    let server = Server::start(&setup.config, &[]);
    let failed = post(
        &server.url("/hooks/login"),
        &[],
        &event("alice").to_string(),
    );
    assert_eq!(failed.status, 500, "{failed:?}");
    assert_eq!(failed.body["error"], "server_error");
    assert_eq!(failed.body["rule"], "trap");
    let metrics = get(&server.url("/metrics")).text;
    assert!(
        metrics.contains("claimsmith_rule_failures_total{rule=\"trap\",cause=\"trap\"} 1"),
        "{metrics}"
    );
}

#[test]
fn probes_metrics_and_wrong_paths_and_methods() {
    let setup = open_setup(ADD_ROLES);
    let server = Server::start(&setup.config, &[]);
    assert_eq!(get(&server.url("/healthz")).status, 200);
    assert_eq!(get(&server.url("/readyz")).status, 200);
    let unknown = post(&server.url("/hooks/nope"), &[], "{}");
    assert_eq!(unknown.status, 404);
    let wrong = get(&server.url("/hooks/login"));
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.allow.as_deref(), Some("POST"));
    let wrong = post(&server.url("/healthz"), &[], "{}");
    assert_eq!(wrong.status, 405);
    post(
        &server.url("/hooks/login"),
        &[],
        &event("alice").to_string(),
    );
    let metrics = get(&server.url("/metrics")).text;
    for family in [
        "claimsmith_hook_requests_total{hook=\"/hooks/login\",outcome=\"ok\"} 1",
        "claimsmith_hook_duration_seconds_bucket{",
        "claimsmith_rule_duration_seconds_count{rule=\"add-roles\"} 1",
        "claimsmith_in_flight_requests 0",
        "claimsmith_config_reloads_total{result=\"ok\"} 0",
        "claimsmith_config_reloads_total{result=\"error\"} 0",
    ] {
        assert!(metrics.contains(family), "{family} in {metrics}");
    }
    // No claim values and no user in the metrics.
    assert!(!metrics.contains("admin") && !metrics.contains("alice"));
}

#[test]
fn bad_bodies_get_400_and_413_and_slow_clients_are_cut_off() {
    let setup = Setup::new(
        "EdDSA",
        &format!(
            "{ADD_ROLES}\n[server]\nmax_body_bytes = 2048\nrequest_timeout_ms = 500\n\n{OPEN_HOOK}"
        ),
    );
    let server = Server::start(&setup.config, &[]);
    let url = server.url("/hooks/login");
    let not_json = post(&url, &[], "{not json");
    assert_eq!(not_json.status, 400, "{not_json:?}");
    assert_eq!(not_json.body["error"], "invalid_request");
    let wrong_type = post(
        &url,
        &[("Content-Type", "text/plain")],
        &event("alice").to_string(),
    );
    assert_eq!(wrong_type.status, 400);
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(4096));
    assert_eq!(post(&url, &[], &big).status, 413);
    // Chunked, with no Content-Length to refuse it by: 413 once the cap is read past.
    let mut chunked = TcpStream::connect(server.address).unwrap();
    chunked
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let pad = "x".repeat(3000);
    chunked
        .write_all(
            format!(
                "POST /hooks/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{pad}\r\n0\r\n\r\n",
                pad.len()
            )
            .as_bytes(),
        )
        .unwrap();
    let answer = read_response(&mut chunked);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Headers that never finish: the server closes the connection.
    let mut slow = TcpStream::connect(server.address).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    slow.write_all(b"POST /hooks/login HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(14),
        "headers: not cut off"
    );

    // A body that never finishes: 408 once the request's deadline passes, and the connection closes.
    let answer = unfinished_body(&server, "/hooks/login");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // The server still answers.
    assert_eq!(post(&url, &[], &event("alice").to_string()).status, 200);
}

#[test]
fn api_keys_are_checked_in_headers_and_cookies() {
    let hooks = "[[server.hooks]]\npath = \"/h\"\nformat = \"claimsmith\"\n[server.hooks.auth]\ntype = \"api_key\"\nheader = \"Authorization\"\nvalue = { env = \"CLAIMSMITH_TEST_HOOK_KEY\" }\n\n[[server.hooks]]\npath = \"/c\"\nformat = \"claimsmith\"\n[server.hooks.auth]\ntype = \"api_key\"\ncookie = \"hook\"\nvalue = { env = \"CLAIMSMITH_TEST_HOOK_KEY\" }\n";
    let setup = Setup::new("EdDSA", &format!("{ADD_ROLES}\n{}", server_table(hooks)));
    let server = Server::start(
        &setup.config,
        &[("CLAIMSMITH_TEST_HOOK_KEY", "Bearer s3cret-key")],
    );
    let body = event("alice").to_string();
    let ok = post(
        &server.url("/h"),
        &[("Authorization", "Bearer s3cret-key")],
        &body,
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    for headers in [
        vec![],
        vec![("Authorization", "Bearer s3cret-kez")],
        vec![("Authorization", "bearer s3cret-key")],
        vec![("X-Other", "Bearer s3cret-key")],
    ] {
        let refused = post(&server.url("/h"), &headers, &body);
        assert_eq!(refused.status, 401, "{headers:?}");
        assert_eq!(
            refused.body,
            json!({"error": "unauthorized", "error_description": "unauthorized"})
        );
    }
    let ok = post(
        &server.url("/c"),
        &[("Cookie", "a=b; hook=Bearer s3cret-key")],
        &body,
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(
        post(&server.url("/c"), &[("Cookie", "hook=wrong")], &body).status,
        401
    );
    // The key never reaches the logs or the metrics.
    let metrics = get(&server.url("/metrics")).text;
    assert!(!metrics.contains("s3cret"));
    std::thread::sleep(Duration::from_millis(100));
    let logs = server.logs().join("\n");
    assert!(!logs.contains("s3cret"), "{logs}");
    // Why each was refused is logged, never what was sent.
    for reason in [
        "the key, cookie or signature headers are missing",
        "the API key does not match",
    ] {
        assert!(logs.contains(reason), "{reason}: {logs}");
    }
}

#[test]
fn the_config_is_refused_with_exit_2_naming_the_hook() {
    let cases = [
        (
            "[server]\nlisten = \"0.0.0.0:8787\"\n[[server.hooks]]\npath = \"/h\"\nformat = \"hydra\"\n[server.hooks.auth]\ntype = \"none\"\n",
            "server.hooks[0].auth.type",
        ),
        (
            "[server]\n[[server.hooks]]\npath = \"/h\"\nformat = \"keycloak\"\n[server.hooks.auth]\ntype = \"none\"\n",
            "server.hooks[0].format",
        ),
        (
            "[server]\n[[server.hooks]]\npath = \"/h\"\nformat = \"hydra\"\nrules = [\"nope\"]\n[server.hooks.auth]\ntype = \"none\"\n",
            "server.hooks[0].rules",
        ),
        (
            "[server]\n[[server.hooks]]\npath = \"/h\"\nformat = \"hydra\"\n[server.hooks.auth]\ntype = \"api_key\"\nheader = \"Authorization\"\nvalue = { env = \"CLAIMSMITH_TEST_UNSET_VAR\" }\n",
            "server.hooks[0].auth.value",
        ),
        (
            "[server]\n[[server.hooks]]\npath = \"/metrics\"\nformat = \"hydra\"\n[server.hooks.auth]\ntype = \"none\"\n",
            "server.hooks[0].path",
        ),
        ("[server]\nmax_in_flight = 0\n", "server.max_in_flight"),
        ("[server]\n", "server.hooks"),
        ("", "server"),
    ];
    for (table, field) in cases {
        let setup = Setup::new("EdDSA", &format!("{ADD_ROLES}\n{table}"));
        let out = support::claimsmith(&["serve", "--config", setup.config.to_str().unwrap()], None);
        assert_eq!(out.code, 2, "{table}: {out:?}");
        assert!(
            out.stderr.contains(&format!("`{field}`")),
            "{field}: {}",
            out.stderr
        );
        if !table.is_empty() {
            // `check` makes the same checks.
            let out =
                support::claimsmith(&["check", "--config", setup.config.to_str().unwrap()], None);
            assert_eq!(out.code, 2, "check: {table}: {out:?}");
            assert!(
                out.stderr.contains(&format!("`{field}`")),
                "check {field}: {}",
                out.stderr
            );
        }
    }
}

#[test]
fn check_lists_each_hook() {
    let hooks = "[[server.hooks]]\npath = \"/hooks/hydra\"\nformat = \"hydra\"\nrules = [\"add-roles\"]\n[server.hooks.auth]\ntype = \"none\"\n";
    let setup = Setup::new("EdDSA", &format!("{ADD_ROLES}\n{}", server_table(hooks)));
    let out = support::claimsmith(&["check", "--config", setup.config.to_str().unwrap()], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("hook /hooks/hydra (hydra, auth none): add-roles"),
        "{}",
        out.stdout
    );
}

/// `requests` requests in turn from each of `threads` threads at once; every status.
fn load(
    url: String,
    body: String,
    threads: usize,
    requests: usize,
) -> std::thread::JoinHandle<Vec<u16>> {
    std::thread::spawn(move || {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (url, body) = (url.clone(), body.clone());
                std::thread::spawn(move || {
                    (0..requests)
                        .map(|_| post(&url, &[], &body).status)
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

/// Wait until a scrape of `/metrics` holds `line`; that scrape.
fn wait_metric(server: &Server, line: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = get(&server.url("/metrics")).text;
        if metrics.contains(line) {
            return metrics;
        }
        assert!(Instant::now() < deadline, "never {line}: {metrics}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Four logins in flight on `server`'s `/hooks/login`: each request's head and the first half of
/// its body sent, the rest held back until [`finish`].
fn half_sent(server: &Server, body: &str) -> Vec<TcpStream> {
    let (first, _) = body.split_at(body.len() / 2);
    let streams = (0..4)
        .map(|_| partly_sent(server, "POST /hooks/login HTTP/1.1", body.len(), first))
        .collect();
    wait_in_flight(server, 4);
    streams
}

/// The rest of each body sent; each answer's head and body.
fn finish(streams: Vec<TcpStream>, body: &str) -> Vec<String> {
    let (_, rest) = body.split_at(body.len() / 2);
    streams
        .into_iter()
        .map(|mut stream| {
            stream.write_all(rest.as_bytes()).unwrap();
            read_response(&mut stream)
        })
        .collect()
}

#[test]
fn sighup_swaps_in_a_good_config_and_keeps_the_old_one_on_a_broken_one() {
    // Four logins whose bodies are half sent are in flight across each reload.
    let setup = Setup::new(
        "EdDSA",
        &format!(
            "{ADD_ROLES}\n{}",
            server_table(OPEN_HOOK)
                .replace("request_timeout_ms = 2000", "request_timeout_ms = 30000")
        ),
    );
    let text = std::fs::read_to_string(&setup.config).unwrap();
    let server = Server::start(&setup.config, &[]);
    let url = server.url("/hooks/login");
    let body = event("alice").to_string();
    let answered = |answers: &[String]| {
        for answer in answers {
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert!(answer.contains("access_token"), "{answer}");
        }
    };

    // A broken config: the old one keeps serving, the four in flight and those after.
    let streams = half_sent(&server, &body);
    std::fs::write(
        &setup.config,
        text.replace("format = \"claimsmith\"", "format = \"nope\""),
    )
    .unwrap();
    server.signal("HUP");
    wait_metric(
        &server,
        "claimsmith_config_reloads_total{result=\"error\"} 1",
    );
    answered(&finish(streams, &body));
    assert_eq!(post(&url, &[], &body).status, 200);

    // A good config that moves the hook: swapped in, and the four in flight finish on the
    // config they started on (the new one would answer them 404).
    let streams = half_sent(&server, &body);
    std::fs::write(&setup.config, text.replace("/hooks/login", "/hooks/login2")).unwrap();
    server.signal("HUP");
    wait_metric(&server, "claimsmith_config_reloads_total{result=\"ok\"} 1");
    answered(&finish(streams, &body));
    let moved = post(&server.url("/hooks/login2"), &[], &body);
    assert_eq!(moved.status, 200, "{moved:?}");
    assert_eq!(post(&url, &[], &body).status, 404);
}

#[test]
fn a_reload_cannot_open_a_hook_without_authentication_on_a_public_address() {
    // Serving on every interface, with an API key. A new config that says `listen` is loopback
    // and drops the key is refused: the server cannot move, so that hook would be open to all.
    let hooks = "[[server.hooks]]\npath = \"/h\"\nformat = \"claimsmith\"\n[server.hooks.auth]\ntype = \"api_key\"\nheader = \"Authorization\"\nvalue = { env = \"CLAIMSMITH_TEST_HOOK_KEY\" }\n";
    let setup = Setup::new(
        "EdDSA",
        &format!(
            "{ADD_ROLES}\n{}",
            server_table(hooks).replace("[server]\n", "[server]\nlisten = \"0.0.0.0:0\"\n")
        ),
    );
    let mut command = std::process::Command::new(support::bin());
    command
        .args(["serve", "--config", setup.config.to_str().unwrap()])
        .env(
            "CLAIMSMITH_CACHE_DIR",
            workspace().join("target/claimsmith-test-cache"),
        )
        .env("CLAIMSMITH_TEST_HOOK_KEY", "Bearer s3cret-key");
    let mut server = Server::spawn(&mut command, "http", Duration::from_secs(60));
    assert!(server.address.ip().is_unspecified(), "{}", server.address);
    // Reached over loopback only.
    server.address.set_ip([127, 0, 0, 1].into());
    let body = event("alice").to_string();
    assert_eq!(post(&server.url("/h"), &[], &body).status, 401);

    let text = std::fs::read_to_string(&setup.config).unwrap();
    let open = text
        .replace("listen = \"0.0.0.0:0\"", "listen = \"127.0.0.1:0\"")
        .replace(
            "type = \"api_key\"\nheader = \"Authorization\"\nvalue = { env = \"CLAIMSMITH_TEST_HOOK_KEY\" }",
            "type = \"none\"",
        );
    assert!(open.contains("type = \"none\""), "{open}");
    std::fs::write(&setup.config, open).unwrap();
    server.signal("HUP");
    wait_metric(
        &server,
        "claimsmith_config_reloads_total{result=\"error\"} 1",
    );
    assert_eq!(post(&server.url("/h"), &[], &body).status, 401);
    assert_eq!(
        post(
            &server.url("/h"),
            &[("Authorization", "Bearer s3cret-key")],
            &body
        )
        .status,
        200
    );
    std::thread::sleep(Duration::from_millis(100));
    let logs = server.logs().join("\n");
    assert!(
        logs.contains("server.hooks[0].auth.type") && logs.contains("loopback"),
        "{logs}"
    );
}

/// One HTTP/1.1 response read off `stream`: its head, and its body by `Content-Length`.
fn read_response(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = stream.read(&mut buffer).unwrap();
        assert!(read > 0, "the connection closed mid-response: {bytes:?}");
        bytes.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

/// Wait until the server's `claimsmith_in_flight_requests` gauge reads `count`.
fn wait_in_flight(server: &Server, count: usize) {
    let line = format!("claimsmith_in_flight_requests {count}\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !get(&server.url("/metrics")).text.contains(&line) {
        assert!(
            Instant::now() < deadline,
            "never {count} requests in flight"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Append to the setup's config a rule named `slow` that spins until its deadline (`limit`, with
/// fuel enough to reach it), the rule's own `setting` line, and `rest` (the `[server]` table).
fn add_slow_rule(setup: &Setup, limit: &str, setting: &str, rest: &str) {
    let module = setup.write("slow.wasm", spin_module());
    let text = std::fs::read_to_string(&setup.config).unwrap()
        + &format!(
            "[limits]\n{limit}\nfuel = 1_000_000_000_000\n\n[[rules]]\nname = \"slow\"\nmodule = \"{}\"\n{setting}\n\n{rest}",
            module.display(),
        );
    std::fs::write(&setup.config, text).unwrap();
}

/// POST to `path` a body that promises 100 bytes and sends one, and read whatever the server
/// answers until it closes the connection.
fn unfinished_body(server: &Server, path: &str) -> String {
    let mut slow = TcpStream::connect(server.address).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    write!(slow, "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{").unwrap();
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    answer
}

#[test]
fn sigterm_finishes_requests_in_flight_and_exits_0() {
    // A rule that spins until its deadline keeps requests in flight when SIGTERM comes.
    let setup = Setup::new("EdDSA", "");
    add_slow_rule(
        &setup,
        "timeout_ms = 3000",
        "on_error = \"skip\"",
        &server_table(OPEN_HOOK).replace("request_timeout_ms = 2000", "request_timeout_ms = 10000"),
    );
    let mut server = Server::start(&setup.config, &[]);
    let body = event("alice").to_string();
    let whole = format!(
        "POST /hooks/login HTTP/1.1\r\nHost: claimsmith\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // A keep-alive connection that has been answered once and waits, idle, for its next request.
    let mut idle = TcpStream::connect(server.address).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: claimsmith\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut idle).starts_with("HTTP/1.1 200"));
    // A connection made before the signal whose request is still on its way (sent after the
    // signal). Connections are accepted in the order they were made, so this one is accepted
    // before any of the four below is read.
    let mut fresh = TcpStream::connect(server.address).unwrap();
    fresh
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();

    let traffic = load(server.url("/hooks/login"), body.clone(), 4, 1);
    wait_in_flight(&server, 4);
    server.signal("TERM");
    // The idle connection is closed at once. (Were it left open until the process exits, this
    // would wait out its read timeout: the process cannot exit before `fresh` is answered.)
    let mut more = Vec::new();
    idle.read_to_end(&mut more).unwrap();
    assert!(more.is_empty(), "{}", String::from_utf8_lossy(&more));
    // The connection made before the signal is answered, and closed after its answer.
    fresh.write_all(whole.as_bytes()).unwrap();
    let mut fresh_answer = String::new();
    fresh.read_to_string(&mut fresh_answer).unwrap();
    assert!(fresh_answer.starts_with("HTTP/1.1 200"), "{fresh_answer}");
    assert!(
        fresh_answer
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{fresh_answer}"
    );
    // New connections are refused.
    assert!(TcpStream::connect(server.address).is_err());

    assert_eq!(server.wait(Duration::from_secs(30)), 0);
    let statuses = traffic.join().unwrap();
    // The spinning rule is skipped at its deadline: every login still gets its tokens.
    assert_eq!(statuses, vec![200; 4]);
}

/// A whole login sent to `server`'s `/hooks/login` on a connection of its own, once the server
/// counts it in flight; the connection, its answer unread.
fn login_in_flight(server: &Server) -> TcpStream {
    let body = event("alice").to_string();
    let stream = partly_sent(server, "POST /hooks/login HTTP/1.1", body.len(), &body);
    wait_in_flight(server, 1);
    stream
}

#[test]
fn sigterm_exits_when_the_grace_runs_out_even_with_a_rule_still_running() {
    // A rule that loops for 30 s (on a thread of its own: its deadline is over the 1 s a login
    // may hold an I/O thread), and 300 ms of grace.
    let setup = Setup::new("EdDSA", "");
    add_slow_rule(
        &setup,
        "timeout_ms = 30000",
        "",
        &format!("[server]\nrequest_timeout_ms = 60000\nshutdown_grace_ms = 300\n\n{OPEN_HOOK}"),
    );
    let mut server = Server::start(&setup.config, &[]);
    let _connection = login_in_flight(&server);
    server.signal("TERM");
    // Well before the rule's 30 s: the grace bounds the exit, not the rules still running.
    assert_eq!(server.wait(Duration::from_secs(15)), 0);
    assert!(
        server
            .logs()
            .iter()
            .any(|line| line.contains("shutdown_grace_ms passed")),
        "the log says the grace ran out"
    );
}

#[test]
fn a_looping_rule_on_one_hook_leaves_the_other_hooks_answering() {
    let setup = Setup::new("EdDSA", "");
    let module = setup.write("loop.wasm", spin_module());
    let hooks = "[[server.hooks]]\npath = \"/hooks/loop\"\nformat = \"claimsmith\"\nrules = [\"loop\"]\n[server.hooks.auth]\ntype = \"none\"\n\n[[server.hooks]]\npath = \"/hooks/roles\"\nformat = \"claimsmith\"\nrules = [\"add-roles\"]\n[server.hooks.auth]\ntype = \"none\"\n";
    let text = std::fs::read_to_string(&setup.config).unwrap()
        + &format!(
            "[limits]\ntimeout_ms = 50\nfuel = 100_000_000_000\n\n{ADD_ROLES}\n[[rules]]\nname = \"loop\"\nmodule = \"{}\"\non_error = \"deny\"\n\n{}",
            module.display(),
            server_table(hooks)
        )
        .replace("{add-roles}", &support::module("add-roles").display().to_string());
    std::fs::write(&setup.config, text).unwrap();
    let server = Server::start(&setup.config, &[]);
    let looping = load(server.url("/hooks/loop"), event("alice").to_string(), 6, 10);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let url = server.url("/hooks/roles");
    for _ in 0..30 {
        let sent = Instant::now();
        let answered = post(&url, &[], &event("alice").to_string());
        slowest = slowest.max(sent.elapsed());
        assert_eq!(answered.status, 200, "{answered:?}");
    }
    let statuses = looping.join().unwrap();
    // Every looping login failed closed at the rule's deadline, with a 500.
    assert!(statuses.iter().all(|&s| s == 500), "{statuses:?}");
    // The other hook answered each request inside its 2 s request deadline.
    assert!(
        slowest < Duration::from_secs(2),
        "slowest {slowest:?} after {:?}",
        started.elapsed()
    );
}

#[test]
fn a_deep_recursion_under_a_large_stack_bytes_fails_the_login_and_not_the_server() {
    // 2 MiB of wasm stack is more than a default 2 MiB thread has left: the server's threads
    // are made large enough, so the rule stops at its wasm limit instead of aborting the
    // process.
    let setup = Setup::new("EdDSA", "");
    let module = setup.write(
        "deep.wasm",
        wat::parse_str(
            r#"(module (memory (export "memory") 1)
  (func (export "claimsmith_abi_version") (result i32) (i32.const 1))
  (func (export "claimsmith_alloc") (param i32) (result i32) (i32.const 1024))
  (func $down (param $n i32) (result i32)
    (i32.add (call $down (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
  (func (export "claimsmith_on_execute_post_login") (param i32 i32) (result i64)
    (drop (call $down (i32.const 0))) (i64.const 0)))"#,
        )
        .unwrap(),
    );
    let text = std::fs::read_to_string(&setup.config).unwrap()
        + &format!(
            "[limits]\nstack_bytes = 2097152\nfuel = 1_000_000_000\ntimeout_ms = 1000\n\n[[rules]]\nname = \"deep\"\nmodule = \"{}\"\n\n{}",
            module.display(),
            server_table(OPEN_HOOK)
        );
    std::fs::write(&setup.config, text).unwrap();
    let server = Server::start(&setup.config, &[]);
    for _ in 0..3 {
        let answered = post(
            &server.url("/hooks/login"),
            &[],
            &event("alice").to_string(),
        );
        assert_eq!(answered.status, 500, "{answered:?}");
        let description = answered.body["error_description"].as_str().unwrap();
        assert!(
            description.contains("rule `deep`")
                && description.contains("stack limit of 2097152 bytes"),
            "{answered:?}"
        );
    }
    assert_eq!(get(&server.url("/healthz")).status, 200);
}

#[test]
fn a_reload_cannot_raise_stack_bytes_past_the_threads_the_server_started_with() {
    // Started with the default 512 KiB: its threads have 2 MiB, enough for up to 1 MiB.
    let setup = open_setup(ADD_ROLES);
    let text = std::fs::read_to_string(&setup.config).unwrap();
    let server = Server::start(&setup.config, &[]);
    let url = server.url("/hooks/login");
    let body = event("alice").to_string();
    std::fs::write(
        &setup.config,
        format!("{text}\n[limits]\nstack_bytes = 2097152\n"),
    )
    .unwrap();
    server.signal("HUP");
    wait_metric(
        &server,
        "claimsmith_config_reloads_total{result=\"error\"} 1",
    );
    assert!(
        server
            .logs()
            .iter()
            .any(|line| line.contains("limits.stack_bytes")
                && line.contains("takes effect only at a restart")),
        "{:?}",
        server.logs()
    );
    assert_eq!(post(&url, &[], &body).status, 200);
    std::fs::write(
        &setup.config,
        format!("{text}\n[limits]\nstack_bytes = 1048576\n"),
    )
    .unwrap();
    server.signal("HUP");
    wait_metric(&server, "claimsmith_config_reloads_total{result=\"ok\"} 1");
    assert_eq!(post(&url, &[], &body).status, 200);
}

#[test]
fn rules_that_could_outlast_the_request_are_answered_at_the_requests_deadline() {
    // The rule's 5 s deadline is over the request's 400 ms: it runs off the I/O thread, and the
    // request's deadline answers on time, failing closed.
    let setup = Setup::new("EdDSA", "");
    add_slow_rule(
        &setup,
        "timeout_ms = 5000",
        "",
        &format!("[server]\nrequest_timeout_ms = 400\n\n{OPEN_HOOK}"),
    );
    let server = Server::start(&setup.config, &[]);
    let sent = Instant::now();
    let answered = post(
        &server.url("/hooks/login"),
        &[],
        &event("alice").to_string(),
    );
    let took = sent.elapsed();
    assert_eq!(answered.status, 500, "{answered:?}");
    assert_eq!(answered.body["error"], "server_error");
    assert!(
        answered.body["error_description"]
            .as_str()
            .unwrap()
            .contains("within request_timeout_ms (400 ms)"),
        "{answered:?}"
    );
    assert!(took < Duration::from_secs(4), "answered after {took:?}");
}

#[test]
fn concurrent_logins_each_get_only_their_own_users_claims() {
    let setup = open_setup(ADD_ROLES);
    let server = Server::start(&setup.config, &[]);
    let url = server.url("/hooks/login");
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let url = url.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let user = format!("auth0|user-{t}-{i}");
                    let role = format!("role-{t}-{i}");
                    let mut login = event("alice");
                    login["user"]["user_id"] = json!(user);
                    login["authorization"]["roles"] = json!([role]);
                    let answer = post(&url, &[], &login.to_string());
                    assert_eq!(answer.status, 200);
                    let claims = &answer.body["claims"]["id_token"];
                    assert_eq!(claims["sub"], json!(user));
                    assert_eq!(claims["https://example.com/roles"], json!([role]));
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}

#[test]
fn more_requests_than_max_in_flight_get_503_with_retry_after() {
    let setup = Setup::new("EdDSA", "");
    add_slow_rule(
        &setup,
        "timeout_ms = 3000",
        "on_error = \"skip\"",
        &format!("[server]\nmax_in_flight = 2\nrequest_timeout_ms = 10000\n\n{OPEN_HOOK}"),
    );
    let server = Server::start(&setup.config, &[]);
    let busy = load(server.url("/hooks/login"), event("alice").to_string(), 2, 1);
    wait_in_flight(&server, 2);
    let refused = post(
        &server.url("/hooks/login"),
        &[],
        &event("alice").to_string(),
    );
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.retry_after.as_deref(), Some("1"));
    assert_eq!(busy.join().unwrap(), vec![200, 200]);
}

/// A server with three rules (`tier` sets a claim on both tokens, `deny` denies, `scope` adds a
/// scope) and, per issuer format, three hooks: `/<format>/tier`, `/<format>/deny` and
/// `/<format>/scope`, each running that one rule; `auth` is the `[server.hooks.auth]` body.
fn format_server(formats: &[(&str, &str)], env: &[(&str, &str)]) -> (Setup, Server) {
    let setup = Setup::new("EdDSA", "");
    let rules = [
        (
            "tier",
            json!([
                {"op": "set_claim", "token": "id_token", "name": "https://example.com/tier", "value": "gold"},
                {"op": "set_claim", "token": "access_token", "name": "https://example.com/tier", "value": "gold"}
            ]),
        ),
        (
            "deny",
            json!([{"op": "deny", "reason": "blocked by policy"}]),
        ),
        ("scope", json!([{"op": "add_scope", "scope": "admin:all"}])),
    ];
    let mut text = std::fs::read_to_string(&setup.config).unwrap();
    for (name, commands) in &rules {
        let module = setup.write(&format!("{name}.wasm"), fixed_rule(commands.clone()));
        text += &format!(
            "[[rules]]\nname = \"{name}\"\nmodule = \"{}\"\non_error = \"deny\"\n\n",
            module.display()
        );
    }
    text += "[server]\n";
    for (format, auth) in formats {
        for (name, _) in &rules {
            text += &format!(
                "[[server.hooks]]\npath = \"/{format}/{name}\"\nformat = \"{format}\"\nrules = [\"{name}\"]\n[server.hooks.auth]\n{auth}\n\n"
            );
        }
    }
    std::fs::write(&setup.config, text).unwrap();
    let server = Server::start(&setup.config, env);
    (setup, server)
}

/// A request of `issuer` from the server crate's fixtures (copied from each vendor's source).
fn fixture(issuer: &str, name: &str) -> String {
    std::fs::read_to_string(workspace().join(format!("server/tests/fixtures/{issuer}/{name}.json")))
        .unwrap()
}

const NO_AUTH: &str = "type = \"none\"";

#[test]
fn hydra_gets_complete_session_maps_403_on_a_denial_and_a_refusal_for_a_scope() {
    let (_setup, server) = format_server(&[("hydra", NO_AUTH)], &[]);
    let request = fixture("hydra", "token-hook");
    let added = post(&server.url("/hydra/tier"), &[], &request);
    assert_eq!(added.status, 200, "{added:?}");
    assert_eq!(
        added.body["session"]["id_token"]["https://example.com/tier"],
        "gold"
    );
    assert_eq!(
        added.body["session"]["access_token"]["https://example.com/tier"],
        "gold"
    );
    let denied = post(&server.url("/hydra/deny"), &[], &request);
    assert_eq!(denied.status, 403, "{denied:?}");
    assert!(denied.text.contains("blocked by policy"), "{denied:?}");
    // Hydra cannot change scopes: fail closed, naming the rule.
    let scope = post(&server.url("/hydra/scope"), &[], &request);
    assert!(scope.status >= 400, "{scope:?}");
    assert!(scope.text.contains("scope"), "{scope:?}");
    let bad = post(&server.url("/hydra/tier"), &[], "[1, 2]");
    assert_eq!(bad.status, 400, "{bad:?}");
}

#[test]
fn okta_always_gets_200_with_commands_or_an_error_object() {
    let (_setup, server) = format_server(&[("okta", NO_AUTH)], &[]);
    let request = fixture("okta", "token-inline-hook");
    let added = post(&server.url("/okta/tier"), &[], &request);
    assert_eq!(added.status, 200, "{added:?}");
    let commands = added.body["commands"].as_array().expect("commands");
    let types: Vec<&str> = commands
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"com.okta.identity.patch"), "{added:?}");
    assert!(types.contains(&"com.okta.access.patch"), "{added:?}");
    assert!(
        added.text.contains("https:~1~1example.com~1tier"),
        "{added:?}"
    );
    for hook in ["/okta/deny", "/okta/scope"] {
        let refused = post(&server.url(hook), &[], &request);
        // Okta issues the original token on anything but an error object: always one.
        assert_eq!(refused.status, 200, "{hook}: {refused:?}");
        assert!(
            refused.body["error"]["errorSummary"].is_string(),
            "{hook}: {refused:?}"
        );
    }
    let bad = post(&server.url("/okta/tier"), &[], "{not json");
    assert_eq!(bad.status, 200, "{bad:?}");
    assert!(bad.body["error"]["errorSummary"].is_string());
    // A body that never finishes: cut off at the request's deadline, still with an error object.
    let answer = unfinished_body(&server, "/okta/tier");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("errorSummary"), "{answer}");
}

#[test]
fn supabase_is_signed_with_standard_webhooks_and_gets_its_whole_claims_object() {
    use base64::Engine as _;
    let secret =
        base64::engine::general_purpose::STANDARD.encode(b"a supabase hook secret, 32 bytes");
    let auth = "type = \"standard_webhooks\"\nsecrets = [{ env = \"CLAIMSMITH_TEST_SUPABASE\" }]";
    let env_secret = format!("v1,whsec_{secret}");
    let (_setup, server) = format_server(
        &[("supabase", auth)],
        &[("CLAIMSMITH_TEST_SUPABASE", &env_secret)],
    );
    let request = fixture("supabase", "custom-access-token");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sign = |timestamp: u64, body: &str| {
        let key = aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            b"a supabase hook secret, 32 bytes",
        );
        let signed = format!("msg_1.{timestamp}.{body}");
        let tag = aws_lc_rs::hmac::sign(&key, signed.as_bytes());
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
        )
    };
    let headers = |timestamp: u64, signature: String| {
        vec![
            ("webhook-id".to_string(), "msg_1".to_string()),
            ("webhook-timestamp".to_string(), timestamp.to_string()),
            ("webhook-signature".to_string(), signature),
        ]
    };
    let send = |path: &str, headers: Vec<(String, String)>| {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        post(&server.url(path), &headers, &request)
    };
    let added = send("/supabase/tier", headers(now, sign(now, &request)));
    assert_eq!(added.status, 200, "{added:?}");
    let claims = &added.body["claims"];
    assert_eq!(claims["https://example.com/tier"], "gold");
    let original: Value = serde_json::from_str(&request).unwrap();
    for required in ["sub", "aud", "exp", "iat", "role"] {
        if let Some(value) = original["claims"].get(required) {
            assert_eq!(&claims[required], value, "{required} kept");
        }
    }
    // Rotation lists: a wrong signature before the right one, comma-joined.
    let listed = format!("v1,AAAA, {}", sign(now, &request));
    assert_eq!(send("/supabase/tier", headers(now, listed)).status, 200);
    // A bad HMAC and a stale timestamp: 401.
    let wrong = send("/supabase/tier", headers(now, sign(now, "other body")));
    assert_eq!(wrong.status, 401, "{wrong:?}");
    let stale = now - 3600;
    assert_eq!(
        send("/supabase/tier", headers(stale, sign(stale, &request))).status,
        401
    );
    assert_eq!(send("/supabase/tier", vec![]).status, 401);
    let denied = send("/supabase/deny", headers(now, sign(now, &request)));
    assert_eq!(denied.body["error"]["http_code"], 403, "{denied:?}");
    assert!(denied.text.contains("blocked by policy"));
}

#[test]
fn zitadel_is_signed_under_either_header_name_and_gets_append_claims() {
    let auth = "type = \"zitadel_signature\"\nsigning_key = { env = \"CLAIMSMITH_TEST_ZITADEL\" }";
    let (_setup, server) = format_server(
        &[("zitadel", auth)],
        &[("CLAIMSMITH_TEST_ZITADEL", "zitadel-signing-key")],
    );
    let request = fixture("zitadel", "preaccesstoken");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sign = |key: &[u8], timestamp: u64| {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
        let tag = aws_lc_rs::hmac::sign(&key, format!("{timestamp}.{request}").as_bytes());
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("t={timestamp},v1={hex}")
    };
    for header in ["ZITADEL-Signature", "X-Zitadel-Signature"] {
        let added = post(
            &server.url("/zitadel/tier"),
            &[(header, &sign(b"zitadel-signing-key", now))],
            &request,
        );
        assert_eq!(added.status, 200, "{header}: {added:?}");
        let claims = added.body["append_claims"]
            .as_array()
            .expect("append_claims");
        assert!(
            claims
                .iter()
                .any(|c| c["key"] == "https://example.com/tier" && c["value"] == "gold"),
            "{added:?}"
        );
    }
    let wrong = post(
        &server.url("/zitadel/tier"),
        &[("ZITADEL-Signature", &sign(b"another key", now))],
        &request,
    );
    assert_eq!(wrong.status, 401, "{wrong:?}");
    // The right key, but signed ten minutes ago: outside the five minutes' tolerance.
    let stale = post(
        &server.url("/zitadel/tier"),
        &[(
            "ZITADEL-Signature",
            &sign(b"zitadel-signing-key", now - 600),
        )],
        &request,
    );
    assert_eq!(stale.status, 401, "{stale:?}");
    let denied = post(
        &server.url("/zitadel/deny"),
        &[("ZITADEL-Signature", &sign(b"zitadel-signing-key", now))],
        &request,
    );
    assert_eq!(denied.body["forwardedStatusCode"], 403, "{denied:?}");
}

#[test]
fn cognito_gets_its_event_back_with_overrides_and_scopes() {
    let auth = "type = \"api_key\"\nheader = \"X-Api-Key\"\nvalue = \"cognito-shim-key\"";
    let (_setup, server) = format_server(&[("cognito", auth)], &[]);
    let request = fixture("cognito", "v2-authentication");
    let key = [("X-Api-Key", "cognito-shim-key")];
    let added = post(&server.url("/cognito/tier"), &key, &request);
    assert_eq!(added.status, 200, "{added:?}");
    let details = &added.body["response"]["claimsAndScopeOverrideDetails"];
    assert_eq!(
        details["idTokenGeneration"]["claimsToAddOrOverride"]["https://example.com/tier"],
        "gold"
    );
    assert_eq!(
        details["accessTokenGeneration"]["claimsToAddOrOverride"]["https://example.com/tier"],
        "gold"
    );
    let original: Value = serde_json::from_str(&request).unwrap();
    assert_eq!(added.body["userName"], original["userName"]);
    // Cognito can add scopes.
    let scope = post(&server.url("/cognito/scope"), &key, &request);
    assert_eq!(scope.status, 200, "{scope:?}");
    assert_eq!(
        scope.body["response"]["claimsAndScopeOverrideDetails"]["accessTokenGeneration"]["scopesToAdd"],
        json!(["admin:all"])
    );
    let denied = post(&server.url("/cognito/deny"), &key, &request);
    assert_eq!(denied.status, 403, "{denied:?}");
    assert!(denied.text.contains("blocked by policy"));
    assert_eq!(
        post(&server.url("/cognito/tier"), &[], &request).status,
        401
    );
}

/// An ABI version 1 module that traps: a rule that crashes.
fn trap_module() -> Vec<u8> {
    wat::parse_str(
        r#"(module (memory (export "memory") 1)
  (func (export "claimsmith_abi_version") (result i32) (i32.const 1))
  (func (export "claimsmith_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "claimsmith_on_execute_post_login") (param i32 i32) (result i64)
    unreachable))"#,
    )
    .unwrap()
}

#[test]
fn every_issuer_format_answers_no_change_a_failing_rule_and_the_deadline_over_http() {
    // `nothing` decides nothing, `fails` traps, `slow` loops past the request's deadline (300 ms;
    // the rules' own, 600 ms, add up to more, so they run on a thread of their own).
    let setup = Setup::new("EdDSA", "");
    let mut text = std::fs::read_to_string(&setup.config).unwrap()
        + "[limits]\ntimeout_ms = 600\nfuel = 1_000_000_000_000\n\n";
    let modules = [
        ("nothing", fixed_rule(json!([]))),
        ("fails", trap_module()),
        ("slow", spin_module()),
    ];
    for (name, bytes) in &modules {
        let module = setup.write(&format!("{name}.wasm"), bytes);
        text += &format!(
            "[[rules]]\nname = \"{name}\"\nmodule = \"{}\"\non_error = \"deny\"\n\n",
            module.display()
        );
    }
    text += "[server]\nrequest_timeout_ms = 300\n\n";
    let formats = [
        ("hydra", "token-hook"),
        ("okta", "token-inline-hook"),
        ("supabase", "custom-access-token"),
        ("zitadel", "preaccesstoken"),
        ("cognito", "v2-authentication"),
    ];
    for (format, _) in formats {
        for (name, _) in &modules {
            text += &format!(
                "[[server.hooks]]\npath = \"/{format}/{name}\"\nformat = \"{format}\"\nrules = [\"{name}\"]\n[server.hooks.auth]\n{NO_AUTH}\n\n"
            );
        }
    }
    std::fs::write(&setup.config, text).unwrap();
    let server = Server::start(&setup.config, &[]);
    const TIMEOUT: &str =
        "claimsmith's request deadline passed before the rules finished; the login fails closed";
    for (format, request) in formats {
        let request = fixture(format, request);
        let original: Value = serde_json::from_str(&request).unwrap();
        let url = |name: &str| server.url(&format!("/{format}/{name}"));

        // No change: each issuer's way of saying so.
        let same = post(&url("nothing"), &[], &request);
        let expected = match format {
            "hydra" => None,
            "okta" => Some(json!({"commands": []})),
            "supabase" => Some(json!({"claims": original["claims"]})),
            "zitadel" => Some(json!({})),
            _ => Some(original.clone()),
        };
        match expected {
            None => assert_eq!((same.status, same.text.as_str()), (204, ""), "{format}"),
            Some(body) => {
                assert_eq!(same.status, 200, "{format}: {same:?}");
                assert_eq!(same.body, body, "{format}");
            }
        }

        // A rule that crashes: the format's error, naming the rule.
        let failed = post(&url("fails"), &[], &request);
        let (status, message) = match format {
            "hydra" => (500, &failed.body["error_description"]),
            "okta" => (200, &failed.body["error"]["errorSummary"]),
            "supabase" => (200, &failed.body["error"]["message"]),
            "zitadel" => (200, &failed.body["forwardedErrorMessage"]),
            _ => (500, &failed.body["errorMessage"]),
        };
        assert_eq!(failed.status, status, "{format}: {failed:?}");
        let message = message.as_str().unwrap_or_default();
        assert!(
            message.contains("rule `fails`") && message.contains("fails closed"),
            "{format}: {failed:?}"
        );
        match format {
            "hydra" => assert_eq!(failed.body["error"], "server_error"),
            "supabase" => assert_eq!(failed.body["error"]["http_code"], 500),
            "zitadel" => assert_eq!(failed.body["forwardedStatusCode"], 500),
            "cognito" => assert_eq!(failed.body["errorType"], "RuleFailed"),
            _ => {}
        }

        // The request's deadline: the format's timeout answer, exactly.
        let late = post(&url("slow"), &[], &request);
        let (status, body) = match format {
            "hydra" => (
                503,
                json!({"error": "temporarily_unavailable", "error_description": TIMEOUT}),
            ),
            "okta" => (200, json!({"error": {"errorSummary": TIMEOUT}})),
            "supabase" => (
                200,
                json!({"error": {"http_code": 503, "message": TIMEOUT}}),
            ),
            "zitadel" => (
                200,
                json!({"forwardedStatusCode": 503, "forwardedErrorMessage": TIMEOUT}),
            ),
            _ => (
                504,
                json!({"errorType": "Timeout", "errorMessage": TIMEOUT}),
            ),
        };
        assert_eq!((late.status, &late.body), (status, &body), "{format}");
    }
    let metrics = get(&server.url("/metrics")).text;
    assert!(
        metrics
            .contains("claimsmith_hook_requests_total{hook=\"/okta/slow\",outcome=\"timeout\"} 1"),
        "{metrics}"
    );
}

#[test]
fn tls_serves_https_with_the_configured_certificate() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let setup = Setup::new("EdDSA", "");
    setup.write("cert.pem", certified.cert.pem());
    setup.write("key.pem", certified.signing_key.serialize_pem());
    let text = std::fs::read_to_string(&setup.config).unwrap()
        + &format!("{ADD_ROLES}\n[server]\ntls = {{ cert = \"cert.pem\", key = \"key.pem\" }}\n\n{OPEN_HOOK}")
            .replace("{add-roles}", &support::module("add-roles").display().to_string());
    std::fs::write(&setup.config, text).unwrap();
    let server = Server::start_with_scheme(&setup.config, &[], "https");
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let roots = ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
        ureq::tls::Certificate::from_der(certified.cert.der()).to_owned(),
    ]));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::Rustls)
                .root_certs(roots)
                .build(),
        )
        .build()
        .into();
    let url = format!("https://localhost:{}/hooks/login", server.address.port());
    let answer = reply(
        agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(event("alice").to_string())
            .expect("an HTTPS answer"),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.body["claims"]["id_token"]["https://example.com/roles"],
        json!(["admin", "editor"])
    );
    // Plain HTTP on the TLS port gets no answer.
    let plain = client()
        .post(&url.replace("https", "http"))
        .header("Content-Type", "application/json")
        .send("{}");
    assert!(plain.is_err() || plain.unwrap().status().as_u16() >= 400);
}

#[test]
fn each_request_gets_one_access_log_line_without_claims_or_secrets_and_json_on_request() {
    let setup = open_setup(ADD_ROLES);
    let server = Server::start(&setup.config, &[("CLAIMSMITH_LOG_FORMAT", "json")]);
    assert_eq!(
        post(
            &server.url("/hooks/login"),
            &[],
            &event("alice").to_string()
        )
        .status,
        200
    );
    assert_eq!(post(&server.url("/hooks/login"), &[], "{}").status, 400);
    assert_eq!(get(&server.url("/hooks/login")).status, 405);
    assert_eq!(post(&server.url("/nowhere"), &[], "{}").status, 404);
    // Probes are not logged.
    assert_eq!(get(&server.url("/healthz")).status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lines = Vec::new();
    let access_lines = |lines: &[String]| -> Vec<Value> {
        lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["target"] == "claimsmith::access")
            .collect()
    };
    while access_lines(&lines).len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        lines.extend(server.logs());
    }
    // Time for a line too many to show.
    std::thread::sleep(Duration::from_millis(100));
    lines.extend(server.logs());
    let access = access_lines(&lines);
    assert_eq!(access.len(), 4, "{lines:#?}");
    let fields = &access[0]["fields"];
    assert_eq!(fields["hook"], "/hooks/login");
    assert_eq!(fields["status"], 200);
    assert_eq!(fields["format"], "claimsmith");
    assert!(fields["duration_us"].is_u64());
    assert_eq!(access[1]["fields"]["status"], 400);
    assert_eq!(access[2]["fields"]["status"], 405);
    assert_eq!(access[2]["fields"]["hook"], "/hooks/login");
    assert!(access[2]["fields"]["duration_us"].is_u64());
    assert_eq!(access[3]["fields"]["status"], 404);
    assert_eq!(access[3]["fields"]["path"], "/nowhere");
    // No claim value, user or email in any line.
    for line in &lines {
        assert!(
            !line.contains("editor") && !line.contains("alice@"),
            "{line}"
        );
    }
}

#[test]
fn the_outcome_format_answers_only_what_the_rules_decided() {
    let (_setup, server) = format_server(&[("outcome", NO_AUTH)], &[]);
    let login = event("alice").to_string();
    let tier = post(&server.url("/outcome/tier"), &[], &login);
    assert_eq!(tier.status, 200, "{tier:?}");
    assert_eq!(
        tier.body,
        json!({
            "id_token": {"https://example.com/tier": "gold"},
            "access_token": {"https://example.com/tier": "gold"},
            "scopes_added": [],
            "scopes_removed": [],
            "app_metadata": {},
            "user_metadata": {},
            "mfa": [],
            "mfa_allow_remember_browser": false,
            "authentication": [],
            "session": {"expires_at": null, "idle_expires_at": null},
            "logs": [],
            "id_token_removed": [],
            "access_token_removed": [],
        })
    );
    let scope = post(&server.url("/outcome/scope"), &[], &login);
    assert_eq!(
        scope.body["scopes_added"],
        json!(["admin:all"]),
        "{scope:?}"
    );
    assert_eq!(scope.body["id_token"], json!({}));
    let denied = post(&server.url("/outcome/deny"), &[], &login);
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.body,
        json!({"error": "access_denied", "error_description": "blocked by policy", "rule": "deny"})
    );
    let bad = post(
        &server.url("/outcome/tier"),
        &[],
        r#"{"client": {"client_id": "c"}}"#,
    );
    assert_eq!(bad.status, 400, "{bad:?}");
    assert_eq!(bad.body["error"], "invalid_request");
}

/// A connection to `server` on which `head` (a request line and any headers, without the blank
/// line) was sent with a JSON `Content-Length` of `length` and `part` of the body.
fn partly_sent(server: &Server, head: &str, length: usize, part: &str) -> TcpStream {
    let mut stream = TcpStream::connect(server.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "{head}\r\nHost: claimsmith\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n{part}"
    )
    .unwrap();
    stream
}

#[test]
fn callers_without_the_key_or_a_current_signature_are_refused_before_their_body() {
    let hooks = "[[server.hooks]]\npath = \"/key\"\nformat = \"claimsmith\"\n[server.hooks.auth]\ntype = \"api_key\"\nheader = \"Authorization\"\nvalue = { env = \"CLAIMSMITH_TEST_HOOK_KEY\" }\n\n[[server.hooks]]\npath = \"/signed\"\nformat = \"claimsmith\"\n[server.hooks.auth]\ntype = \"zitadel_signature\"\nsigning_key = { env = \"CLAIMSMITH_TEST_ZITADEL\" }\n";
    let setup = Setup::new(
        "EdDSA",
        &format!("{ADD_ROLES}\n[server]\nmax_in_flight = 2\nrequest_timeout_ms = 10000\n\n{hooks}"),
    );
    let server = Server::start(
        &setup.config,
        &[
            ("CLAIMSMITH_TEST_HOOK_KEY", "Bearer s3cret-key"),
            ("CLAIMSMITH_TEST_ZITADEL", "zitadel-signing-key"),
        ],
    );
    // Each sends its head and one byte of a 100-byte body, and is refused at once: a key is
    // checked on the headers, and so is a signature's presence and time. None holds a place.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stale = format!("ZITADEL-Signature: t={},v1=00", now - 3600);
    let mut held = Vec::new();
    for head in [
        "POST /key HTTP/1.1".to_owned(),
        "POST /key HTTP/1.1\r\nAuthorization: Bearer wrong".to_owned(),
        "POST /signed HTTP/1.1".to_owned(),
        format!("POST /signed HTTP/1.1\r\n{stale}"),
    ] {
        let mut stream = partly_sent(&server, &head, 100, "{");
        let answer = read_response(&mut stream);
        assert!(answer.starts_with("HTTP/1.1 401"), "{head}: {answer}");
        held.push(stream);
    }
    assert!(
        get(&server.url("/metrics"))
            .text
            .contains("claimsmith_in_flight_requests 0\n")
    );
    let body = event("alice").to_string();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"zitadel-signing-key");
    let tag = aws_lc_rs::hmac::sign(&key, format!("{now}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let signed = post(
        &server.url("/signed"),
        &[("ZITADEL-Signature", &format!("t={now},v1={hex}"))],
        &body,
    );
    assert_eq!(signed.status, 200, "{signed:?}");
    let keyed = post(
        &server.url("/key"),
        &[("Authorization", "Bearer s3cret-key")],
        &body,
    );
    assert_eq!(keyed.status, 200, "{keyed:?}");
    drop(held);
}

#[test]
fn a_caller_that_goes_away_is_counted_abandoned_and_leaves_the_in_flight_gauge() {
    // The rule's deadline (3 s) is over the request's (2 s): it runs on a thread of its own
    // while the request waits, and the caller closes the connection meanwhile.
    let setup = Setup::new("EdDSA", "");
    add_slow_rule(
        &setup,
        "timeout_ms = 3000",
        "on_error = \"skip\"",
        &server_table(OPEN_HOOK),
    );
    let server = Server::start(&setup.config, &[]);
    let stream = login_in_flight(&server);
    stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(stream);
    wait_metric(
        &server,
        "claimsmith_hook_requests_total{hook=\"/hooks/login\",outcome=\"abandoned\"} 1",
    );
    wait_in_flight(&server, 0);
    std::thread::sleep(Duration::from_millis(100));
    let logs = server.logs().join("\n");
    assert!(
        logs.contains("hook request abandoned: the caller closed the connection"),
        "{logs}"
    );
}

#[test]
fn rules_run_where_the_request_was_read_only_within_what_is_left_of_its_deadline() {
    // The rule's deadline equals the request's (2 s), so it may run on the I/O thread; but the
    // body takes 1.5 s to come, leaving less than the rule could take. It must then run where
    // the request's deadline still answers on time: at 2 s, not at 1.5 + 2 s.
    let setup = Setup::new("EdDSA", "");
    add_slow_rule(&setup, "timeout_ms = 2000", "", &server_table(OPEN_HOOK));
    let server = Server::start(&setup.config, &[]);
    let body = event("alice").to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let sent = Instant::now();
    let mut stream = partly_sent(&server, "POST /hooks/login HTTP/1.1", body.len(), first);
    std::thread::sleep(Duration::from_millis(1500));
    stream.write_all(rest.as_bytes()).unwrap();
    let answer = read_response(&mut stream);
    let took = sent.elapsed();
    assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
    assert!(
        answer.contains("within request_timeout_ms (2000 ms)"),
        "{answer}"
    );
    assert!(
        took < Duration::from_millis(3000),
        "answered after {took:?}"
    );
}
