//! One HTTP request, answered: the probes, the metrics and the JWKS, and each hook's request
//! (authenticated, size-capped, turned into a login event, run through the hook's rules on the
//! rule threads under the request's deadline, and answered in the hook's format). Every answer
//! is complete: tokens or claims the rules decided, or the format's denial or error.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use claimsmith::LoginFailure;
use claimsmith_engine::{LoginError, Outcome};

use crate::config::{Format, HookConfig, RESERVED_PATHS};
use crate::decision::decision;
use crate::deployment::Deployment;
use crate::hook::{Reply, Verdict};
use crate::metrics::RequestOutcome;
use crate::server::Shared;

/// The response type every answer has.
pub(crate) type Answer = Response<Full<Bytes>>;

/// Answer one request.
pub(crate) async fn answer(shared: &Shared, request: Request<Incoming>) -> Answer {
    let deployment = shared.current.get();
    let path = request.uri().path().to_owned();
    if RESERVED_PATHS.contains(&path.as_str()) {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            unmatched(&path, StatusCode::METHOD_NOT_ALLOWED);
            return method_not_allowed("GET, HEAD");
        }
        // Probes and scrapes are not logged: they come every few seconds.
        return match path.as_str() {
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" if shared.ready.load(Ordering::Acquire) => text(StatusCode::OK, "ready\n"),
            "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
            "/metrics" => {
                let mut response = text(StatusCode::OK, &shared.metrics.encode());
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                response
            }
            _ => json_response(StatusCode::OK, &deployment.issuer.jwks()),
        };
    }
    let Some(hook) = deployment.hook(&path) else {
        unmatched(&path, StatusCode::NOT_FOUND);
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "not_found", "error_description": format!("no hook at {path}")}),
        );
    };
    let started = Instant::now();
    if request.method() != Method::POST {
        let response = method_not_allowed("POST");
        access(shared, hook, &response, RequestOutcome::BadRequest, started);
        return response;
    }
    let deadline = tokio::time::Instant::now() + deployment.server.request_timeout;
    // Logged and counted when the request is answered, or as abandoned if the caller closes
    // the connection first (hyper then drops this future).
    let mut record = Record {
        shared,
        hook,
        started,
        answered: false,
    };
    let (response, outcome) = hook_request(shared, &deployment, hook, request, deadline).await;
    record.answered = true;
    access(shared, hook, &response, outcome, started);
    response
}

/// A hook request's access log line and count, kept even when it ends without an answer: the
/// caller went away (`abandoned`), or the request's task panicked (`failed`).
struct Record<'a> {
    shared: &'a Shared,
    hook: &'a HookConfig,
    started: Instant,
    answered: bool,
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let took = self.started.elapsed();
        let panicked = std::thread::panicking();
        let outcome = if panicked {
            RequestOutcome::Failed
        } else {
            RequestOutcome::Abandoned
        };
        self.shared.metrics.request(&self.hook.path, outcome, took);
        let (hook, format) = (&self.hook.path, self.hook.format.name());
        let duration_us = took.as_micros() as u64;
        if panicked {
            tracing::error!(target: "claimsmith::access", %hook, format, ?outcome, duration_us,
                "hook request panicked; the connection is closed without an answer");
        } else {
            tracing::info!(target: "claimsmith::access", %hook, format, ?outcome, duration_us,
                "hook request abandoned: the caller closed the connection before the answer");
        }
    }
}

/// A request holding one of max_in_flight's places, counted in `claimsmith_in_flight_requests`
/// until this is dropped, answered or not.
struct InFlight(prometheus_client::metrics::gauge::Gauge);

impl InFlight {
    fn count(gauge: &prometheus_client::metrics::gauge::Gauge) -> InFlight {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A hook's request answered: counted in the metrics, and its access log line (no claim, no
/// secret, nothing the caller sent but the path).
fn access(
    shared: &Shared,
    hook: &HookConfig,
    response: &Answer,
    outcome: RequestOutcome,
    started: Instant,
) {
    let took = started.elapsed();
    shared.metrics.request(&hook.path, outcome, took);
    tracing::info!(
        target: "claimsmith::access",
        hook = %hook.path,
        format = hook.format.name(),
        status = response.status().as_u16(),
        outcome = ?outcome,
        duration_us = took.as_micros() as u64,
        "hook request"
    );
}

/// The access log line of a request to no hook (not counted in the metrics: its path is the
/// caller's choice, and would make a label per path).
fn unmatched(path: &str, status: StatusCode) {
    tracing::info!(
        target: "claimsmith::access",
        path = %path,
        status = status.as_u16(),
        "no hook at this path"
    );
}

/// What the rules' run ended in, before it is put in the hook's format.
enum Ran {
    Tokens(Result<claimsmith::Tokens, LoginFailure>),
    Outcome(Result<Outcome, LoginError>),
}

async fn hook_request(
    shared: &Shared,
    deployment: &Arc<Deployment>,
    hook: &HookConfig,
    request: Request<Incoming>,
    deadline: tokio::time::Instant,
) -> (Answer, RequestOutcome) {
    let refuse = |status: u16, message: &str, outcome| {
        (reply_response(&error_reply(hook, status, message)), outcome)
    };
    if !is_json(request.headers().get(CONTENT_TYPE)) {
        return refuse(
            400,
            "the body must be JSON (Content-Type: application/json)",
            RequestOutcome::BadRequest,
        );
    }
    let cap = deployment.server.max_body_bytes;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > cap as u64) {
        return refuse(
            413,
            &format!("the body is over {cap} bytes"),
            RequestOutcome::TooLarge,
        );
    }
    // What the headers alone can show is checked before the body is read and before a place is
    // taken: a key in a header or a cookie whole; a signature's headers there, well-formed and
    // fresh. A caller without the key, or with no current signature, holds no place.
    let checked = match hook
        .auth
        .verify_headers(request.headers(), SystemTime::now())
    {
        Ok(checked) => checked,
        Err(failure) => return unauthorized(hook, failure),
    };
    // A place is taken before the body is read: max_in_flight × max_body_bytes bounds the
    // memory bodies can hold at once.
    let Ok(permit) = Arc::clone(&shared.in_flight).try_acquire_owned() else {
        let reply = error_reply(hook, 503, "too many requests in flight: retry shortly");
        let mut response = reply_response(&reply);
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        return (response, RequestOutcome::Overloaded);
    };
    let _in_flight = InFlight::count(shared.metrics.in_flight());
    let body = request.into_body();
    let body = match tokio::time::timeout_at(deadline, Limited::new(body, cap).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            return refuse(
                413,
                &format!("the body is over {cap} bytes"),
                RequestOutcome::TooLarge,
            );
        }
        Ok(Err(_)) => {
            return refuse(
                400,
                "the body could not be read",
                RequestOutcome::BadRequest,
            );
        }
        Err(_) => {
            // 408 in the format's error shape; Okta's error object keeps its 200 (Okta issues
            // the original token on any other status).
            let mut response = reply_response(&error_reply(hook, 408, "the body came too slowly"));
            response
                .headers_mut()
                .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
            return (response, RequestOutcome::Timeout);
        }
    };
    if let Err(failure) = hook.auth.verify_body(checked, &body) {
        return unauthorized(hook, failure);
    }
    let mut issuer_request = match hook.format {
        Format::Claimsmith | Format::Outcome => None,
        Format::Issuer(format) => match format.request(&body) {
            Ok(request) => Some(request),
            Err(reply) => return (reply_response(&reply), RequestOutcome::BadRequest),
        },
    };
    let event = match &mut issuer_request {
        // Signed tokens are made from the typed event; the outcome alone needs only the parts
        // the rules read.
        None if hook.format == Format::Outcome => deployment
            .issuer
            .pipeline()
            .event_from_json(&body)
            .map_err(Into::into),
        None => deployment.issuer.event_from_json(&body),
        // The response needs only the request's state, not the event built from it.
        Some(request) => deployment
            .issuer
            .event_from_event(std::mem::take(&mut request.event)),
    };
    let event = match event {
        Ok(event) => event,
        Err(failure) => {
            return refuse(400, &failure.to_string(), RequestOutcome::BadRequest);
        }
    };
    let signed = hook.format == Format::Claimsmith;
    // Inline only while the rules' deadlines fit in what is left of the request's.
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let seat = if deployment.runs_inline(hook, left) {
        // Measured again once seated: waiting for a seat takes from the deadline too.
        shared.inline.take().await.filter(|_| {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            deployment.runs_inline(hook, left)
        })
    } else {
        None
    };
    let ran = if let Some(_seat) = seat {
        // The rules run here, on the I/O thread that read the request: a login's rules take
        // microseconds, and handing them to another thread cost more than running them (the
        // kernel's wake-ups and switches; docs/performance-log.md). The rules' own deadlines
        // (`timeout_ms`, which add up to no more than the request's) bound how long they hold
        // this thread, and another I/O thread stays free meanwhile (`InlineSeats`).
        let _permit = permit;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_rules(deployment, hook.rules.as_deref(), signed, &event)
        })) {
            // Rules that finished after the request's deadline: the issuer gave up waiting.
            Ok(ran) => (tokio::time::Instant::now() <= deadline).then_some(ran),
            Err(_) => {
                tracing::error!(target: "claimsmith::server", hook = %hook.path, "a login panicked");
                return refuse(500, "internal error", RequestOutcome::Failed);
            }
        }
    } else {
        // No seat free within SEAT_WAIT, or the rules' deadlines add up to more than the
        // request's: run them on a thread of their own, so that the request's deadline answers
        // on time whatever they do.
        let deployment = Arc::clone(deployment);
        let rules = hook.rules.clone();
        let run = tokio::task::spawn_blocking(move || {
            // Rules that outlive the request's deadline still count against max_in_flight.
            let _permit = permit;
            run_rules(&deployment, rules.as_deref(), signed, &event)
        });
        match tokio::time::timeout_at(deadline, run).await {
            Ok(Ok(ran)) => Some(ran),
            Ok(Err(panic)) => {
                tracing::error!(target: "claimsmith::server", hook = %hook.path, error = %panic, "a login's thread panicked");
                return refuse(500, "internal error", RequestOutcome::Failed);
            }
            Err(_) => None,
        }
    };
    match (ran, &issuer_request) {
        (None, Some(request)) => {
            let Format::Issuer(format) = hook.format else {
                unreachable!("an issuer request has an issuer format")
            };
            let reply = format.respond(request, Verdict::Timeout);
            (reply_response(&reply), RequestOutcome::Timeout)
        }
        (None, None) => {
            let body = json!({"error": "server_error", "error_description": format!("the rules did not finish within request_timeout_ms ({} ms)", deployment.server.request_timeout.as_millis())});
            (
                json_response(StatusCode::INTERNAL_SERVER_ERROR, &body),
                RequestOutcome::Timeout,
            )
        }
        (Some(Ran::Tokens(result)), _) => {
            let traces = match &result {
                Ok(tokens) => &tokens.outcome.rules,
                Err(LoginFailure::Denied(denied)) => &denied.rules,
                Err(LoginFailure::RuleFailed(failed)) => &failed.rules,
                Err(_) => &Vec::new(),
            };
            shared.metrics.rules(traces);
            if let Ok(tokens) = &result {
                shared.metrics.shadows(&tokens.outcome.shadows);
            }
            match result {
                Ok(tokens) => (
                    json_response(StatusCode::OK, &tokens.to_json()),
                    RequestOutcome::Ok,
                ),
                Err(failure) => {
                    let (status, outcome) = match failure {
                        LoginFailure::Denied(_) => (StatusCode::FORBIDDEN, RequestOutcome::Denied),
                        LoginFailure::BadEvent(_) => {
                            (StatusCode::BAD_REQUEST, RequestOutcome::BadRequest)
                        }
                        _ => (StatusCode::INTERNAL_SERVER_ERROR, RequestOutcome::Failed),
                    };
                    (json_response(status, &failure.to_json()), outcome)
                }
            }
        }
        (Some(Ran::Outcome(result)), Some(request)) => {
            let Format::Issuer(format) = hook.format else {
                unreachable!("an issuer request has an issuer format")
            };
            let (verdict, outcome) = match &result {
                Ok(outcome) => {
                    shared.metrics.rules(&outcome.rules);
                    shared.metrics.shadows(&outcome.shadows);
                    (Verdict::Outcome(outcome), RequestOutcome::Ok)
                }
                Err(LoginError::Denied(denied)) => {
                    shared.metrics.rules(&denied.rules);
                    (Verdict::Denied(denied), RequestOutcome::Denied)
                }
                Err(LoginError::RuleFailed(failed)) => {
                    shared.metrics.rules(&failed.rules);
                    (Verdict::Failed(failed), RequestOutcome::Failed)
                }
            };
            let reply = format.respond(request, verdict);
            // The format refused what the rules decided (a command it cannot carry): a failure.
            let outcome = if outcome == RequestOutcome::Ok && reply_is_refusal(format, &reply) {
                RequestOutcome::Failed
            } else {
                outcome
            };
            (reply_response(&reply), outcome)
        }
        (Some(Ran::Outcome(result)), None) => {
            // The outcome format: the decision alone; denials and failures as `claimsmith`'s.
            let traces = match &result {
                Ok(outcome) => &outcome.rules,
                Err(LoginError::Denied(denied)) => &denied.rules,
                Err(LoginError::RuleFailed(failed)) => &failed.rules,
            };
            shared.metrics.rules(traces);
            if let Ok(outcome) = &result {
                shared.metrics.shadows(&outcome.shadows);
            }
            match result {
                Ok(outcome) => (
                    json_response(StatusCode::OK, &decision(&outcome)),
                    RequestOutcome::Ok,
                ),
                Err(LoginError::Denied(denied)) => (
                    json_response(
                        StatusCode::FORBIDDEN,
                        &LoginFailure::Denied(denied).to_json(),
                    ),
                    RequestOutcome::Denied,
                ),
                Err(LoginError::RuleFailed(failed)) => (
                    json_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &LoginFailure::RuleFailed(failed).to_json(),
                    ),
                    RequestOutcome::Failed,
                ),
            }
        }
    }
}

/// The 401 every scheme answers; why goes to the log only, the caller learns no more than
/// "unauthorized".
fn unauthorized(hook: &HookConfig, failure: crate::auth::AuthFailure) -> (Answer, RequestOutcome) {
    tracing::warn!(target: "claimsmith::server", hook = %hook.path, reason = failure.reason(), "authentication failed");
    (
        reply_response(&error_reply(hook, 401, "unauthorized")),
        RequestOutcome::Unauthorized,
    )
}

/// Run `rules` (every rule: `None`) on `event`: signed tokens for a `claimsmith` hook (`signed`),
/// the outcome for the others.
fn run_rules(
    deployment: &Deployment,
    rules: Option<&[usize]>,
    signed: bool,
    event: &claimsmith_engine::LoginEvent,
) -> Ran {
    let issuer = &deployment.issuer;
    if signed {
        // A claimsmith hook with a subset of rules signs what those rules decided.
        return Ran::Tokens(match rules {
            None => issuer.login(event),
            Some(rules) => issuer.login_only(event, rules),
        });
    }
    Ran::Outcome(match rules {
        None => issuer.pipeline().run(event),
        Some(rules) => issuer.pipeline().run_only(event, rules),
    })
}

/// Whether an issuer format's reply to an applied outcome is its error shape (fail closed).
fn reply_is_refusal(format: crate::hook::IssuerFormat, reply: &Reply) -> bool {
    use crate::hook::IssuerFormat;
    match format {
        IssuerFormat::Okta | IssuerFormat::Supabase => reply
            .body
            .as_ref()
            .is_some_and(|body| body.get("error").is_some()),
        IssuerFormat::Zitadel => reply
            .body
            .as_ref()
            .is_some_and(|body| body.get("forwardedStatusCode").is_some()),
        _ => reply.status >= 400,
    }
}

/// The hook's format's error reply, or claimsmith's OAuth-style one.
fn error_reply(hook: &HookConfig, status: u16, message: &str) -> Reply {
    match hook.format {
        Format::Issuer(format) => format.error(status, message),
        Format::Claimsmith | Format::Outcome => {
            let error = match status {
                400 | 413 => "invalid_request",
                401 => "unauthorized",
                503 => "temporarily_unavailable",
                _ => "server_error",
            };
            Reply {
                status,
                body: Some(json!({"error": error, "error_description": message})),
            }
        }
    }
}

fn is_json(content_type: Option<&HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let media = value.split(';').next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case("application/json")
}

fn reply_response(reply: &Reply) -> Answer {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match &reply.body {
        Some(body) => json_response(status, body),
        None => {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = status;
            response
        }
    }
}

fn json_response(status: StatusCode, body: &Value) -> Answer {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn text(status: StatusCode, body: &str) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn method_not_allowed(allow: &'static str) -> Answer {
    let mut response = json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({"error": "method_not_allowed", "error_description": format!("allowed: {allow}")}),
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}
