//! The server's Prometheus metrics: requests and their time by hook, each rule's time and
//! failures, shadow rules' results and time, requests in flight, config reloads. Labels carry hook paths, rule names and
//! outcome kinds only: never a claim value, a user or a secret.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use claimsmith_engine::{RuleStatus, RuleTrace, ShadowReport};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookOutcome {
    hook: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookLabel {
    hook: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabel {
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleCause {
    rule: String,
    cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShadowLabel {
    rule: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadResult {
    result: &'static str,
}

/// How a hook request ended, the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestOutcome {
    /// The rules ran and their decision was answered (changes or none).
    Ok,
    /// A rule denied the login.
    Denied,
    /// A rule failed (or the format could not carry what the rules decided).
    Failed,
    /// claimsmith's request deadline passed.
    Timeout,
    /// Bad body, content type or event.
    BadRequest,
    /// Authentication refused.
    Unauthorized,
    /// Over `max_body_bytes`.
    TooLarge,
    /// Over `max_in_flight`.
    Overloaded,
    /// The caller closed the connection before the answer.
    Abandoned,
}

impl RequestOutcome {
    fn label(self) -> &'static str {
        match self {
            RequestOutcome::Ok => "ok",
            RequestOutcome::Denied => "denied",
            RequestOutcome::Failed => "failed",
            RequestOutcome::Timeout => "timeout",
            RequestOutcome::BadRequest => "bad_request",
            RequestOutcome::Unauthorized => "unauthorized",
            RequestOutcome::TooLarge => "too_large",
            RequestOutcome::Overloaded => "overloaded",
            RequestOutcome::Abandoned => "abandoned",
        }
    }
}

fn latency_histogram() -> Histogram {
    // 20 us to about 5 s.
    Histogram::new(exponential_buckets(0.000_02, 2.0, 18))
}

/// Every metric the server keeps, and the registry they are read from.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<HookOutcome, Counter>,
    hook_duration: Family<HookLabel, Histogram, fn() -> Histogram>,
    rule_duration: Family<RuleLabel, Histogram, fn() -> Histogram>,
    rule_failures: Family<RuleCause, Counter>,
    shadow_logins: Family<ShadowLabel, Counter>,
    shadow_duration: Family<RuleLabel, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    reloads: Family<ReloadResult, Counter>,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<HookOutcome, Counter>::default();
        registry.register(
            "claimsmith_hook_requests",
            "Hook requests, by hook path and outcome (abandoned: the caller closed the connection first)",
            requests.clone(),
        );
        let hook_duration: Family<HookLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "claimsmith_hook_duration_seconds",
            "Time of a hook request, from its headers to its response (or to the caller's going away)",
            hook_duration.clone(),
        );
        let rule_duration: Family<RuleLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "claimsmith_rule_duration_seconds",
            "Time of one rule's run in a fresh instance, instantiation included",
            rule_duration.clone(),
        );
        let rule_failures = Family::<RuleCause, Counter>::default();
        registry.register(
            "claimsmith_rule_failures",
            "Rule runs that failed, by rule and kind of failure",
            rule_failures.clone(),
        );
        let shadow_logins = Family::<ShadowLabel, Counter>::default();
        registry.register(
            "claimsmith_shadow_logins",
            "Logins a shadow rule ran on, by rule and how its decision compared with the login's (same, differs, would_deny, failed)",
            shadow_logins.clone(),
        );
        let shadow_duration: Family<RuleLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "claimsmith_shadow_duration_seconds",
            "Time of one shadow rule's run and comparison (not in the rules' time)",
            shadow_duration.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "claimsmith_in_flight_requests",
            "Hook requests holding one of max_in_flight's places now",
            in_flight.clone(),
        );
        let reloads = Family::<ReloadResult, Counter>::default();
        // Both results from the start, at zero: an alert on errors needs the series to exist.
        for result in ["ok", "error"] {
            let _ = reloads.get_or_create(&ReloadResult { result });
        }
        registry.register(
            "claimsmith_config_reloads",
            "Config reloads (SIGHUP), by result",
            reloads.clone(),
        );
        Metrics {
            registry,
            requests,
            hook_duration,
            rule_duration,
            rule_failures,
            shadow_logins,
            shadow_duration,
            in_flight,
            reloads,
        }
    }

    /// A hook request answered.
    pub(crate) fn request(&self, hook: &str, outcome: RequestOutcome, took: Duration) {
        self.requests
            .get_or_create(&HookOutcome {
                hook: hook.to_owned(),
                outcome: outcome.label(),
            })
            .inc();
        self.hook_duration
            .get_or_create(&HookLabel {
                hook: hook.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// The rules' runs in one login.
    pub(crate) fn rules(&self, traces: &[RuleTrace]) {
        for trace in traces {
            self.rule_duration
                .get_or_create(&RuleLabel {
                    rule: trace.rule.clone(),
                })
                .observe(trace.duration.as_secs_f64());
            if let RuleStatus::Failed { kind, .. } = &trace.status {
                self.rule_failures
                    .get_or_create(&RuleCause {
                        rule: trace.rule.clone(),
                        cause: kind,
                    })
                    .inc();
            }
        }
    }

    /// The shadow rules' reports of one login.
    pub(crate) fn shadows(&self, reports: &[ShadowReport]) {
        for report in reports {
            self.shadow_logins
                .get_or_create(&ShadowLabel {
                    rule: report.rule.clone(),
                    result: report.result.label(),
                })
                .inc();
            self.shadow_duration
                .get_or_create(&RuleLabel {
                    rule: report.rule.clone(),
                })
                .observe(report.duration.as_secs_f64());
        }
    }

    pub(crate) fn in_flight(&self) -> &Gauge {
        &self.in_flight
    }

    /// A reload finished.
    pub(crate) fn reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&ReloadResult {
                result: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    /// Every metric in the text exposition format.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}
