//! Rule fixtures: a login event, the rule's configuration and what the rule should decide, run
//! through the engine as a real login would be (sandbox, limits, claim policy) and compared.
//!
//! A fixture file is `{ "event": {..}, "login_time": .., "configuration": {..}, "secrets": {..},
//! "namespaces": [..], "expect": {..} }`; only `event` is required. `login_time` pins the
//! login's time (RFC 3339 text, or milliseconds since the epoch), so that rules that read the
//! clock test the same every day; it sets the event's `login_time`, which may be given there
//! instead. Without either, the login runs at the host's clock, as a real one does.
//! Expectations are partial: only what is named is checked.
//! - `id_token` / `access_token`: claims the rule set on that token; a claim expected as `null`
//!   must not be set;
//! - `scopes_added` / `scopes_removed`: the scopes the rule itself added or removed, as sets;
//! - `mfa`: the MFA providers asked for, in order;
//! - `authentication`: the authentication requests, as the outcome lists them (`[{"kind":
//!   "challenge_with", "factor": {"type": "otp"}, "additional_factors": []}]`);
//! - `session`: the session's expiry, `{"expires_at": ms or null, "idle_expires_at": ms or null}`;
//! - `denied`: the deny reason, or `null` for "not denied". Whether or not it is named, a denial
//!   nobody expected fails the fixture, and so does a rule failure (skipped or not);
//! - `shadow`: the rule run as a shadow rule, `{"result": "same" | "differs" | "would_deny" |
//!   "failed", "claims": [{"token", "claim", "kind"}], "scopes_added": [..], "scopes_removed":
//!   [..]}`: with a config whose entry for this module has `shadows = "X"`, against X's decision
//!   (X run as the config has it, the rule in its place); else against a login with no rules.
//!   `claims` and the scopes, when named, must match exactly (a candidate that "changes nothing"
//!   is `{"result": "same"}`).
//!
//! Given an issuer config ([`RunSettings`]), fixtures run under its namespaces, claim cap and
//! sandbox, and under the rule's own limits, `on_error` and namespaces when the config runs
//! this module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use claimsmith_engine::{
    LoginError, Pipeline, RuleMode, RuleResult, RuleSpec, RuleStatus, SandboxConfig, ShadowResult,
};

/// Namespaces a fixture's claims may use when neither the fixture nor a config names any.
pub const DEFAULT_NAMESPACES: &[&str] = &["https://example.com/"];

/// What fixtures run under besides their own configuration: an issuer config's policy and
/// sandbox, and the rule's own settings there (limits, `on_error`, narrowed namespaces).
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The claim policy's namespaces (a fixture's own `namespaces` win).
    pub namespaces: Vec<String>,
    /// The cap on custom claims per token.
    pub claims_bytes: usize,
    /// Engine-wide sandbox settings.
    pub sandbox: SandboxConfig,
    /// The rule's entry in the config, when the config runs this module.
    pub rule: Option<RuleSpec>,
    /// Where compiled modules are cached, if that folder can be used.
    pub cache: Option<std::path::PathBuf>,
    /// The enforcing rule this module shadows in the config (`shadows = "X"`): X's settings
    /// and module bytes, for `expect.shadow`.
    pub shadows: Option<(RuleSpec, Vec<u8>)>,
}

impl Default for RunSettings {
    /// No config: [`DEFAULT_NAMESPACES`] and every default.
    fn default() -> Self {
        RunSettings {
            namespaces: DEFAULT_NAMESPACES.iter().map(|s| s.to_string()).collect(),
            claims_bytes: 100 * 1024,
            sandbox: SandboxConfig::default(),
            rule: None,
            cache: None,
            shadows: None,
        }
    }
}

/// One fixture file, parsed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// The login event, as an issuer would hand it in.
    pub event: Value,
    /// The login's time: RFC 3339 text or milliseconds since the epoch; sets `event.login_time`.
    pub login_time: Option<Value>,
    /// The rule's `event.configuration` (its `[rules.config]`).
    #[serde(default)]
    pub configuration: Map<String, Value>,
    /// The rule's `event.secrets`.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Claim namespaces for this fixture's policy.
    pub namespaces: Option<Vec<String>>,
    /// What the rule should decide.
    #[serde(default)]
    pub expect: Expect,
}

/// The expectations of a fixture; `None` means "not checked".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Claims on the ID token (`null`: must be absent).
    pub id_token: Option<Map<String, Value>>,
    /// Claims on the access token (`null`: must be absent).
    pub access_token: Option<Map<String, Value>>,
    /// Scopes the rule added.
    pub scopes_added: Option<Vec<String>>,
    /// Scopes the rule removed.
    pub scopes_removed: Option<Vec<String>>,
    /// MFA providers asked for, in order.
    pub mfa: Option<Vec<String>>,
    /// Authentication requests, as the outcome serializes them.
    pub authentication: Option<Value>,
    /// The session's expiry, as the outcome serializes it.
    pub session: Option<Value>,
    /// `Some(None)`: not denied; `Some(Some(reason))`: denied with this reason.
    #[serde(default, deserialize_with = "present")]
    pub denied: Option<Option<String>>,
    /// What the rule, run as a shadow rule, would change.
    pub shadow: Option<ExpectShadow>,
}

/// `expect.shadow`: the shadow report's result, and when named, exactly what it changes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectShadow {
    /// `same`, `differs`, `would_deny` or `failed`.
    pub result: String,
    /// Exactly these claim changes.
    pub claims: Option<Vec<ExpectClaimChange>>,
    /// Exactly these scopes added.
    pub scopes_added: Option<Vec<String>>,
    /// Exactly these scopes removed.
    pub scopes_removed: Option<Vec<String>>,
}

/// One expected claim change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectClaimChange {
    /// `id_token` or `access_token`.
    pub token: String,
    /// The claim's name.
    pub claim: String,
    /// `set`, `changed`, `removed` or `kept`.
    pub kind: String,
}

/// A named field that may be `null`: present-and-null is `Some(None)`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Why a fixture could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// Unreadable file.
    #[error("{}: {source}", path.display())]
    Read {
        /// The fixture file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a fixture: bad JSON, a missing `event`, an unknown field.
    #[error("{}: not a valid fixture: {message}", path.display())]
    Invalid {
        /// The fixture file.
        path: PathBuf,
        /// What is wrong, with the field path.
        message: String,
    },
    /// The module or the fixture's settings cannot be loaded.
    #[error("{}: {message}", path.display())]
    Load {
        /// The fixture file.
        path: PathBuf,
        /// The cause.
        message: String,
    },
}

/// One difference between what a fixture expects and what the rule did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What differs: `id_token claim "…"`, `scopes_added`, `denied`, `rule`.
    pub what: String,
    /// The expected value, as JSON text.
    pub expected: String,
    /// The actual value, as JSON text (or `(not set)`).
    pub actual: String,
}

impl Fixture {
    /// Read and parse a fixture file.
    pub fn load(path: &Path) -> Result<Fixture, FixtureError> {
        let bytes = std::fs::read(path).map_err(|source| FixtureError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let at = e.path().to_string();
            let cause = e.into_inner();
            FixtureError::Invalid {
                path: path.to_owned(),
                message: if at == "." {
                    cause.to_string()
                } else {
                    format!("{at}: {cause}")
                },
            }
        })
    }

    /// Run the fixture against `module` (wasm bytes) and list every mismatch; empty means pass.
    pub fn check(
        &self,
        path: &Path,
        module: &[u8],
        settings: &RunSettings,
    ) -> Result<Vec<Mismatch>, FixtureError> {
        let load = |message: String| FixtureError::Load {
            path: path.to_owned(),
            message,
        };
        let namespaces = self
            .namespaces
            .clone()
            .unwrap_or_else(|| settings.namespaces.clone());
        // One fixture, one login at a time: one engine is enough, and nothing to prewarm.
        let mut builder = Pipeline::builder()
            .sandbox(SandboxConfig {
                engines: 1,
                prewarm: 0,
                ..settings.sandbox.clone()
            })
            .namespaces(namespaces)
            .max_claims_bytes(settings.claims_bytes);
        if let Some(cache) = &settings.cache {
            builder = builder.artifact_cache_if_usable(cache);
        }
        let name = path
            .parent()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "rule".into());
        let configured = settings.rule.clone().unwrap_or_default();
        let spec = RuleSpec {
            name,
            configuration: self.configuration.clone(),
            secrets: self.secrets.clone(),
            // A fixture's own namespaces replace the policy's, so they also replace a narrowing.
            namespaces: configured.namespaces.filter(|_| self.namespaces.is_none()),
            // The module as built, run as a rule of its own (`expect.shadow` runs it as a shadow).
            mode: RuleMode::Enforce,
            shadows: None,
            sha256: None,
            ..configured
        };
        let shadow_pipeline = match &self.expect.shadow {
            None => None,
            Some(_) => {
                let mut shadow_builder = Pipeline::builder()
                    .sandbox(SandboxConfig {
                        engines: 1,
                        prewarm: 0,
                        ..settings.sandbox.clone()
                    })
                    .namespaces(
                        self.namespaces
                            .clone()
                            .unwrap_or_else(|| settings.namespaces.clone()),
                    )
                    .max_claims_bytes(settings.claims_bytes);
                let mut shadow_spec = RuleSpec {
                    mode: RuleMode::Shadow,
                    ..spec.clone()
                };
                if let Some((target, bytes)) = &settings.shadows {
                    let target = RuleSpec {
                        sha256: None,
                        ..target.clone()
                    };
                    shadow_spec.name = format!("{} (candidate)", spec.name);
                    shadow_spec.shadows = Some(target.name.clone());
                    shadow_builder = shadow_builder.rule(target, bytes.clone());
                }
                Some(shadow_builder.rule(shadow_spec, module))
            }
        };
        let build_error = |e| match e {
            claimsmith_engine::BuildError::Namespaces(e) => load(format!("namespaces: {e}")),
            other => load(other.to_string()),
        };
        let pipeline = builder.rule(spec, module).build().map_err(build_error)?;
        let mut event = self.event.clone();
        if let Some(at) = &self.login_time {
            let ms = match at {
                Value::String(text) => {
                    claimsmith_sdk::time::parse_rfc3339(text).and_then(|ms| u64::try_from(ms).ok())
                }
                other => other.as_u64(),
            }
            .filter(|ms| *ms > 0)
            .ok_or_else(|| {
                load(format!(
                    "login_time: {at} is neither RFC 3339 text nor milliseconds since the epoch"
                ))
            })?;
            if let Value::Object(map) = &mut event {
                map.insert("login_time".into(), ms.into());
            }
        }
        // The one way into a login: the same checks as a real login's event.
        let shadow_event = event.clone();
        let event = pipeline
            .event_from_value(event)
            .map_err(|e| load(format!("event: {e}")))?;
        let mut mismatches = self.compare(pipeline.run(&event));
        if let (Some(builder), Some(expect)) = (shadow_pipeline, &self.expect.shadow) {
            let pipeline = builder.build().map_err(build_error)?;
            let event = pipeline
                .event_from_value(shadow_event)
                .map_err(|e| load(format!("event: {e}")))?;
            match pipeline.run(&event) {
                Ok(outcome) => match outcome.shadows.first() {
                    Some(report) => compare_shadow(expect, &report.result, &mut mismatches),
                    None => mismatches.push(Mismatch {
                        what: "shadow".into(),
                        expected: expect.result.clone(),
                        actual: "(no shadow report)".into(),
                    }),
                },
                Err(error) => mismatches.push(Mismatch {
                    what: "shadow".into(),
                    expected: expect.result.clone(),
                    actual: format!("the login itself ended: {error}"),
                }),
            }
        }
        Ok(mismatches)
    }

    fn compare(&self, run: Result<claimsmith_engine::Outcome, LoginError>) -> Vec<Mismatch> {
        let expect = &self.expect;
        let mut out = Vec::new();
        let outcome = match run {
            Ok(outcome) => outcome,
            Err(LoginError::Denied(denied)) => {
                let expected = match &expect.denied {
                    Some(Some(reason)) if *reason == denied.reason => return out,
                    Some(Some(reason)) => json_text(&Value::String(reason.clone())),
                    Some(None) | None => "not denied".into(),
                };
                out.push(Mismatch {
                    what: format!("denied (by rule {})", denied.rule),
                    expected,
                    actual: json_text(&Value::String(denied.reason)),
                });
                return out;
            }
            Err(LoginError::RuleFailed(failed)) => {
                out.push(Mismatch {
                    what: "rule".into(),
                    expected: "runs to completion".into(),
                    actual: format!("failed: {}", failed.cause),
                });
                return out;
            }
        };
        for trace in &outcome.rules {
            if let RuleStatus::Failed { cause, .. } = &trace.status {
                out.push(Mismatch {
                    what: format!("rule {} (on_error = \"skip\")", trace.rule),
                    expected: "runs to completion".into(),
                    actual: format!("failed and was skipped: {cause}"),
                });
            }
        }
        if let Some(Some(reason)) = &expect.denied {
            out.push(Mismatch {
                what: "denied".into(),
                expected: json_text(&Value::String(reason.clone())),
                actual: "not denied".into(),
            });
        }
        for (token, expected, actual) in [
            ("id_token", &expect.id_token, &outcome.id_token),
            ("access_token", &expect.access_token, &outcome.access_token),
        ] {
            for (name, want) in expected.iter().flatten() {
                let got = actual.get(name);
                let same = match (want, got) {
                    (Value::Null, None) => true,
                    (want, Some(got)) => want == got,
                    (_, None) => false,
                };
                if !same {
                    out.push(Mismatch {
                        what: format!("{token} claim {}", json_text(&Value::String(name.clone()))),
                        expected: if want.is_null() {
                            "(not set)".into()
                        } else {
                            json_text(want)
                        },
                        actual: got.map(json_text).unwrap_or_else(|| "(not set)".into()),
                    });
                }
            }
        }
        for (what, expected, actual) in [
            (
                "mfa",
                expect.mfa.as_ref().map(|m| serde_json::json!(m)),
                serde_json::json!(outcome.mfa),
            ),
            (
                "authentication",
                expect.authentication.clone(),
                serde_json::json!(outcome.authentication),
            ),
            (
                "session",
                expect.session.clone(),
                serde_json::json!(outcome.session),
            ),
        ] {
            if let Some(expected) = expected
                && expected != actual
            {
                out.push(Mismatch {
                    what: what.into(),
                    expected: json_text(&expected),
                    actual: json_text(&actual),
                });
            }
        }
        let commands = outcome
            .rules
            .iter()
            .flat_map(|trace| trace.commands.iter().cloned())
            .collect();
        let result = RuleResult { commands };
        for (what, expected, actual) in [
            ("scopes_added", &expect.scopes_added, result.scopes_added()),
            (
                "scopes_removed",
                &expect.scopes_removed,
                result.scopes_removed(),
            ),
        ] {
            let Some(expected) = expected else { continue };
            let want: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
            let got: BTreeSet<&str> = actual.into_iter().collect();
            if want != got {
                out.push(Mismatch {
                    what: what.into(),
                    expected: json_text(&serde_json::json!(want)),
                    actual: json_text(&serde_json::json!(got)),
                });
            }
        }
        out
    }
}

/// `expect.shadow` against a shadow report.
fn compare_shadow(expect: &ExpectShadow, result: &ShadowResult, out: &mut Vec<Mismatch>) {
    if expect.result != result.label() {
        let detail = match result {
            ShadowResult::WouldDeny { reason } => format!(" ({reason})"),
            ShadowResult::Failed { cause, .. } => format!(" ({cause})"),
            _ => String::new(),
        };
        out.push(Mismatch {
            what: "shadow result".into(),
            expected: expect.result.clone(),
            actual: format!("{}{detail}", result.label()),
        });
    }
    let empty = claimsmith_engine::ShadowChanges::default();
    let changes = match result {
        ShadowResult::Differs { changes } => changes,
        _ => &empty,
    };
    if let Some(claims) = &expect.claims {
        let mut want = claims.clone();
        want.sort();
        let mut got: Vec<ExpectClaimChange> = changes
            .claims
            .iter()
            .map(|c| ExpectClaimChange {
                token: c.token.to_string(),
                claim: c.claim.clone(),
                kind: c.kind.as_str().into(),
            })
            .collect();
        got.sort();
        if want != got {
            out.push(Mismatch {
                what: "shadow claims".into(),
                expected: json_text(&serde_json::json!(want)),
                actual: json_text(&serde_json::json!(got)),
            });
        }
    }
    for (what, expected, actual) in [
        (
            "shadow scopes_added",
            &expect.scopes_added,
            &changes.scopes_added,
        ),
        (
            "shadow scopes_removed",
            &expect.scopes_removed,
            &changes.scopes_removed,
        ),
    ] {
        let Some(expected) = expected else { continue };
        let want: BTreeSet<&String> = expected.iter().collect();
        let got: BTreeSet<&String> = actual.iter().collect();
        if want != got {
            out.push(Mismatch {
                what: what.into(),
                expected: json_text(&serde_json::json!(want)),
                actual: json_text(&serde_json::json!(got)),
            });
        }
    }
}

fn json_text(value: &Value) -> String {
    serde_json::to_string(value).expect("JSON serializes")
}

/// The fixture files (`*.json`) in `dir`, sorted; none when it does not exist.
pub fn discover_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// A readable diff of a failing fixture, one block per mismatch.
pub fn diff(mismatches: &[Mismatch]) -> String {
    let mut out = String::new();
    for m in mismatches {
        out.push_str(&format!(
            "  {}\n    - expected: {}\n    + actual:   {}\n",
            m.what, m.expected, m.actual
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimsmith_engine::{Denied, Outcome, RuleTrace};
    use claimsmith_sdk::Command;
    use serde_json::json;

    fn fixture(expect: Value) -> Fixture {
        serde_json::from_value(json!({"event": {}, "expect": expect})).unwrap()
    }

    fn outcome(commands: Vec<Command>, id_token: Value) -> Outcome {
        Outcome {
            id_token: id_token.as_object().cloned().unwrap(),
            rules: vec![RuleTrace {
                rule: "r".into(),
                status: RuleStatus::Applied,
                commands,
                fuel_used: 0,
                peak_memory_bytes: 0,
                duration: Default::default(),
            }],
            ..Outcome::default()
        }
    }

    #[test]
    fn only_named_expectations_are_checked() {
        let f = fixture(json!({"id_token": {"https://e.test/a": 1}}));
        let ok = outcome(
            vec![],
            json!({"https://e.test/a": 1, "https://e.test/b": 2}),
        );
        assert!(f.compare(Ok(ok)).is_empty());
    }

    #[test]
    fn a_wrong_or_missing_claim_shows_expected_and_actual() {
        let f = fixture(json!({"id_token": {"https://e.test/a": 1, "https://e.test/b": "x"}}));
        let got = f.compare(Ok(outcome(vec![], json!({"https://e.test/a": 2}))));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].what, "id_token claim \"https://e.test/a\"");
        assert_eq!(
            (got[0].expected.as_str(), got[0].actual.as_str()),
            ("1", "2")
        );
        assert_eq!(got[1].actual, "(not set)");
    }

    #[test]
    fn null_means_the_claim_must_be_absent() {
        let f = fixture(json!({"id_token": {"https://e.test/a": null}}));
        assert!(f.compare(Ok(outcome(vec![], json!({})))).is_empty());
        let got = f.compare(Ok(outcome(vec![], json!({"https://e.test/a": true}))));
        assert_eq!(got[0].expected, "(not set)");
    }

    #[test]
    fn scopes_compare_as_sets_of_what_the_rule_did() {
        let f = fixture(json!({"scopes_added": ["b", "a"], "scopes_removed": []}));
        let add = |s: &str| Command::AddScope { scope: s.into() };
        assert!(
            f.compare(Ok(outcome(vec![add("a"), add("b")], json!({}))))
                .is_empty()
        );
        let got = f.compare(Ok(outcome(vec![add("a")], json!({}))));
        assert_eq!(got[0].what, "scopes_added");
        assert_eq!(got[0].actual, "[\"a\"]");
    }

    #[test]
    fn denials_must_be_expected_and_match() {
        let denied = || {
            Err(LoginError::Denied(Denied {
                rule: "r".into(),
                reason: "no".into(),
                rules: vec![],
            }))
        };
        assert!(
            fixture(json!({"denied": "no"}))
                .compare(denied())
                .is_empty()
        );
        assert_eq!(
            fixture(json!({"denied": "other"})).compare(denied()).len(),
            1
        );
        assert_eq!(
            fixture(json!({})).compare(denied())[0].expected,
            "not denied"
        );
        assert_eq!(fixture(json!({"denied": null})).compare(denied()).len(), 1);
        let got = fixture(json!({"denied": "no"})).compare(Ok(outcome(vec![], json!({}))));
        assert_eq!(got[0].actual, "not denied");
    }

    #[test]
    fn unknown_expectations_are_refused_with_their_path() {
        let dir = std::env::temp_dir().join(format!("claimsmith-fixture-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("typo.json");
        std::fs::write(&path, r#"{"event": {}, "expect": {"id_tokens": {}}}"#).unwrap();
        let err = Fixture::load(&path).unwrap_err().to_string();
        assert!(err.contains("expect") && err.contains("id_tokens"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
