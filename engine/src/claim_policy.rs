//! What a rule's commands may do to the tokens: allowed namespaces, reserved claims, size caps
//! and the secret guard. Violations are errors naming the claim, never silent drops.

use serde_json::{Map, Value};

use crate::reserved_claims::is_reserved;
use claimsmith_sdk::TokenKind;

/// The policy every rule's commands are checked against.
#[derive(Clone)]
pub struct ClaimPolicy {
    namespaces: Vec<String>,
    max_claims_bytes: usize,
    secrets: Vec<(String, String)>,
}

/// A command that breaks the policy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyViolation {
    /// The claim name is reserved.
    #[error("claim `{claim}` on the {token} is reserved and cannot be set or removed by a rule")]
    Reserved {
        /// The token.
        token: TokenKind,
        /// The claim.
        claim: String,
    },
    /// `scope` set as a claim.
    #[error("claim `scope` on the {token} can change only through add_scope / remove_scope")]
    ScopeAsClaim {
        /// The token.
        token: TokenKind,
    },
    /// The claim is outside every namespace the rule may use.
    #[error("claim `{claim}` on the {token} is outside the allowed namespaces [{allowed}]")]
    Namespace {
        /// The token.
        token: TokenKind,
        /// The claim.
        claim: String,
        /// The namespaces, comma-separated.
        allowed: String,
    },
    /// The custom claims of a token grew past the cap.
    #[error("custom claims on the {token} are {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// The token.
        token: TokenKind,
        /// Serialized size.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// A configured secret's value would leave the issuer.
    #[error("{target} would carry the value of secret `{secret}`; secrets never leave the issuer")]
    SecretLeak {
        /// Where it would go (`claim x on the id_token`, `scope`, `app_metadata key k`).
        target: String,
        /// The secret's name (never its value).
        secret: String,
    },
    /// A scope that is not an RFC 6749 scope token: empty, or with a space, a quote, a
    /// backslash, a control character or anything outside printable ASCII.
    #[error(
        "scope {0:?} is not a valid scope token (non-empty, printable ASCII without spaces, quotes or backslashes)"
    )]
    InvalidScope(String),
}

impl std::fmt::Debug for ClaimPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret_names: Vec<&str> = self.secrets.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ClaimPolicy")
            .field("namespaces", &self.namespaces)
            .field("max_claims_bytes", &self.max_claims_bytes)
            .field("secrets", &secret_names)
            .finish()
    }
}

impl ClaimPolicy {
    /// A policy allowing claims under `namespaces` (`http(s)://` prefixes).
    pub fn new(namespaces: Vec<String>) -> Result<ClaimPolicy, String> {
        for ns in &namespaces {
            check_namespace(ns)?;
        }
        Ok(ClaimPolicy {
            namespaces,
            max_claims_bytes: 100 * 1024,
            secrets: Vec::new(),
        })
    }

    /// Cap the serialized custom claims per token (default 100 KiB).
    pub fn with_max_claims_bytes(mut self, bytes: usize) -> Self {
        self.max_claims_bytes = bytes;
        self
    }

    /// Register secret values (name, value) that must never appear in tokens or metadata.
    pub fn with_secrets(mut self, secrets: impl IntoIterator<Item = (String, String)>) -> Self {
        self.add_secrets(secrets);
        self
    }

    /// Register more secret values (name, value). A value that JSON escapes (a quote, a
    /// backslash, a control character) is registered as escaped too: a rule that logs the
    /// JSON of its secrets (`console.log(event.secrets)`) writes that form.
    pub fn add_secrets(&mut self, secrets: impl IntoIterator<Item = (String, String)>) {
        for (name, value) in secrets {
            if value.is_empty() {
                continue;
            }
            let quoted = Value::String(value.clone()).to_string();
            let escaped = &quoted[1..quoted.len() - 1];
            if escaped != value {
                self.secrets.push((name.clone(), escaped.to_owned()));
            }
            self.secrets.push((name, value));
        }
    }

    /// The allowed namespaces.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// The custom claims cap per token.
    pub fn max_claims_bytes(&self) -> usize {
        self.max_claims_bytes
    }

    /// Check that `narrowed` namespaces of a rule each sit under a global one.
    pub fn check_narrowing(&self, narrowed: &[String]) -> Result<(), String> {
        for ns in narrowed {
            check_namespace(ns)?;
            if !self
                .namespaces
                .iter()
                .any(|global| ns == global || under_namespace(ns, global))
            {
                return Err(format!(
                    "namespace {ns:?} is not under any global namespace [{}]",
                    self.namespaces.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// May a rule limited to `namespaces` set or remove `name` on `token`?
    pub fn check_claim_name(
        &self,
        token: TokenKind,
        name: &str,
        namespaces: &[String],
    ) -> Result<(), PolicyViolation> {
        self.check_secret_free(name, || format!("a claim name on the {token}"))?;
        if name == "scope" {
            return Err(PolicyViolation::ScopeAsClaim { token });
        }
        if is_reserved(name) {
            return Err(PolicyViolation::Reserved {
                token,
                claim: name.to_owned(),
            });
        }
        if !namespaces.iter().any(|ns| under_namespace(name, ns)) {
            return Err(PolicyViolation::Namespace {
                token,
                claim: name.to_owned(),
                allowed: namespaces.join(", "),
            });
        }
        Ok(())
    }

    /// May `value` go into claim `name` on `token`?
    pub fn check_claim_value(
        &self,
        token: TokenKind,
        name: &str,
        value: &Value,
    ) -> Result<(), PolicyViolation> {
        if self.secrets.is_empty() {
            return Ok(());
        }
        let mut result = Ok(());
        visit_strings(value, &mut |s| {
            if result.is_ok() {
                result = self.check_secret_free(s, || format!("claim `{name}` on the {token}"));
            }
        });
        result
    }

    /// May `scope` be added?
    pub fn check_scope(&self, scope: &str) -> Result<(), PolicyViolation> {
        self.check_secret_free(scope, || "a scope".to_owned())?;
        // RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
        if scope.is_empty()
            || !scope
                .bytes()
                .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
        {
            return Err(PolicyViolation::InvalidScope(scope.to_owned()));
        }
        Ok(())
    }

    /// May `provider` be named in an MFA request?
    pub fn check_mfa_provider(&self, provider: &str) -> Result<(), PolicyViolation> {
        self.check_secret_free(provider, || "an MFA provider".to_owned())
    }

    /// May the factor be sent to the issuer: no secret in its type or options.
    pub fn check_factor(&self, factor: &claimsmith_sdk::Factor) -> Result<(), PolicyViolation> {
        self.check_secret_free(&factor.kind, || "a factor".to_owned())?;
        let mut result = Ok(());
        for (name, value) in &factor.options {
            let mut check = |s: &str| {
                if result.is_ok() {
                    result = self.check_secret_free(s, || format!("factor option `{name}`"));
                }
            };
            check(name);
            visit_strings(value, &mut check);
        }
        result
    }

    /// May `value` be stored under metadata `key` (`what` is `app_metadata` or `user_metadata`)?
    pub fn check_metadata(
        &self,
        what: &str,
        key: &str,
        value: &Value,
    ) -> Result<(), PolicyViolation> {
        self.check_secret_free(key, || format!("{what} key `{key}`"))?;
        let mut result = Ok(());
        visit_strings(value, &mut |s| {
            if result.is_ok() {
                result = self.check_secret_free(s, || format!("{what} key `{key}`"));
            }
        });
        result
    }

    /// Check the serialized size of a token's custom claims against the cap.
    pub fn check_size(
        &self,
        token: TokenKind,
        claims: &Map<String, Value>,
    ) -> Result<usize, PolicyViolation> {
        let size = claims_size(claims);
        if size > self.max_claims_bytes {
            return Err(PolicyViolation::TooLarge {
                token,
                size,
                limit: self.max_claims_bytes,
            });
        }
        Ok(size)
    }

    /// Replace every secret value in `text` with `[REDACTED]` (logs, deny reasons). Where
    /// secrets overlap (one inside another, or one's end another's start), the whole stretch
    /// they cover is one `[REDACTED]`, so no part of either is left.
    pub fn redact(&self, text: &str) -> String {
        let mut spans = Vec::new();
        for (_, secret) in &self.secrets {
            // Every occurrence, overlapping ones included (`aa` twice in `aaa`).
            let mut from = 0;
            while let Some(at) = text[from..].find(secret.as_str()) {
                let start = from + at;
                spans.push((start, start + secret.len()));
                from = start + text[start..].chars().next().map_or(1, char::len_utf8);
            }
        }
        if spans.is_empty() {
            return text.to_owned();
        }
        spans.sort_unstable();
        let mut redacted = String::with_capacity(text.len());
        let mut copied = 0;
        let mut spans = spans.into_iter().peekable();
        while let Some((start, mut end)) = spans.next() {
            while let Some(&(next, next_end)) = spans.peek() {
                if next > end {
                    break;
                }
                end = end.max(next_end);
                spans.next();
            }
            redacted.push_str(&text[copied..start]);
            redacted.push_str("[REDACTED]");
            copied = end;
        }
        redacted.push_str(&text[copied..]);
        redacted
    }

    fn check_secret_free(
        &self,
        text: &str,
        target: impl FnOnce() -> String,
    ) -> Result<(), PolicyViolation> {
        match self
            .secrets
            .iter()
            .find(|(_, secret)| text.contains(secret.as_str()))
        {
            Some((name, _)) => Err(PolicyViolation::SecretLeak {
                target: target(),
                secret: name.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// Serialized JSON size of a claims object.
pub fn claims_size(claims: &Map<String, Value>) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, claims).expect("a JSON map serializes");
    counter.0
}

fn visit_strings(value: &Value, visit: &mut impl FnMut(&str)) {
    match value {
        Value::String(s) => visit(s),
        Value::Array(items) => items.iter().for_each(|v| visit_strings(v, visit)),
        Value::Object(map) => {
            for (k, v) in map {
                visit(k);
                visit_strings(v, visit);
            }
        }
        Value::Number(n) => visit(&n.to_string()),
        Value::Bool(_) | Value::Null => {}
    }
}

fn check_namespace(ns: &str) -> Result<(), String> {
    let rest = ns
        .strip_prefix("https://")
        .or_else(|| ns.strip_prefix("http://"))
        .ok_or_else(|| format!("namespace {ns:?} must start with https:// or http://"))?;
    // The authority: up to the path, query or fragment; a host before any port, no user info.
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty()
        || authority.starts_with(':')
        || authority.contains(|c: char| c == '@' || c.is_whitespace() || c.is_control())
    {
        return Err(format!("namespace {ns:?} has no host"));
    }
    Ok(())
}

/// `name` sits under `namespace`: it starts with it, has more after it, and the namespace ends at
/// a path boundary (so `https://example.com` does not admit `https://example.com.evil/x`).
fn under_namespace(name: &str, namespace: &str) -> bool {
    let Some(rest) = name.strip_prefix(namespace) else {
        return false;
    };
    if namespace.ends_with('/') {
        return !rest.is_empty();
    }
    rest.len() > 1 && rest.starts_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> ClaimPolicy {
        ClaimPolicy::new(vec![
            "https://example.com/".into(),
            "https://acme.test".into(),
        ])
        .unwrap()
        .with_secrets([("API_KEY".to_string(), "sk_live_123".to_string())])
    }

    #[test]
    fn namespaced_claims_pass_and_lookalike_hosts_do_not() {
        let p = policy();
        let ns = p.namespaces().to_vec();
        assert!(
            p.check_claim_name(TokenKind::IdToken, "https://example.com/roles", &ns)
                .is_ok()
        );
        assert!(
            p.check_claim_name(TokenKind::IdToken, "https://acme.test/tenant", &ns)
                .is_ok()
        );
        for bad in [
            "https://acme.test.evil/x",
            "https://acme.test",
            "https://example.com/",
            "roles2",
            "email",
        ] {
            assert!(
                matches!(
                    p.check_claim_name(TokenKind::IdToken, bad, &ns),
                    Err(PolicyViolation::Namespace { .. })
                ),
                "{bad} must be rejected"
            );
        }
    }

    #[test]
    fn reserved_and_scope_claims_are_refused_by_name() {
        let p = policy();
        let ns = p.namespaces().to_vec();
        let err = p
            .check_claim_name(TokenKind::AccessToken, "sub", &ns)
            .unwrap_err();
        assert!(err.to_string().contains("`sub`"), "{err}");
        assert_eq!(
            p.check_claim_name(TokenKind::AccessToken, "scope", &ns),
            Err(PolicyViolation::ScopeAsClaim {
                token: TokenKind::AccessToken
            })
        );
    }

    #[test]
    fn secrets_are_caught_anywhere_in_a_value_and_redacted_in_text() {
        let p = policy();
        let err = p
            .check_claim_value(
                TokenKind::IdToken,
                "https://example.com/x",
                &json!({"a": ["prefix-sk_live_123"]}),
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("secret `API_KEY`") && !err.to_string().contains("sk_live"),
            "{err}"
        );
        assert_eq!(p.redact("key=sk_live_123!"), "key=[REDACTED]!");
        assert!(p.check_scope("sk_live_123").is_err());
        assert!(
            p.check_metadata("app_metadata", "k", &json!("sk_live_123"))
                .is_err()
        );
    }

    #[test]
    fn secrets_are_redacted_as_json_writes_them_too() {
        let p = ClaimPolicy::new(vec!["https://example.com/".into()])
            .unwrap()
            .with_secrets([
                ("QUOTE".to_string(), "pa\"ss".to_string()),
                ("SLASH".to_string(), "c:\\key".to_string()),
                ("LINE".to_string(), "one\ntwo".to_string()),
            ]);
        let logged = serde_json::json!({"QUOTE": "pa\"ss", "SLASH": "c:\\key", "LINE": "one\ntwo"})
            .to_string();
        let redacted = p.redact(&logged);
        for leaked in ["pa\\\"ss", "c:\\\\key", "one\\ntwo", "ss", "key", "two"] {
            assert!(!redacted.contains(leaked), "{leaked} in {redacted}");
        }
        assert_eq!(p.redact("raw pa\"ss"), "raw [REDACTED]");
        // A claim carrying the escaped form is refused as the secret itself is.
        assert!(
            p.check_claim_value(
                TokenKind::IdToken,
                "https://example.com/x",
                &Value::String("one\\ntwo".into())
            )
            .is_err()
        );
    }

    #[test]
    fn overlapping_secrets_are_redacted_whole_in_any_order() {
        for secrets in [
            vec![("A", "abc"), ("B", "abc:s3cr3t")],
            vec![("B", "abc:s3cr3t"), ("A", "abc")],
        ] {
            let p = ClaimPolicy::new(vec!["https://example.com/".into()])
                .unwrap()
                .with_secrets(secrets.into_iter().map(|(n, v)| (n.into(), v.into())));
            assert_eq!(p.redact("bad key abc:s3cr3t!"), "bad key [REDACTED]!");
            assert_eq!(p.redact("abc then abc"), "[REDACTED] then [REDACTED]");
        }
        // One's end another's start, and a secret overlapping itself.
        let p = ClaimPolicy::new(vec!["https://example.com/".into()])
            .unwrap()
            .with_secrets([("X".into(), "1234".into()), ("Y".into(), "3456".into())])
            .with_secrets([("Z".into(), "zz".into())]);
        assert_eq!(p.redact("<123456>"), "<[REDACTED]>");
        assert_eq!(p.redact("zzz é"), "[REDACTED] é");
        assert_eq!(p.redact("no secret here"), "no secret here");
    }

    #[test]
    fn scopes_are_rfc_6749_scope_tokens() {
        let p = policy();
        for good in [
            "read:reports",
            "openid",
            "https://api.example.com/x!#$%&'()*+,-./;<=>?@[]^_`{|}~",
        ] {
            assert!(p.check_scope(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a b",
            "a\"b",
            "a\\b",
            "admin\u{0}",
            "admin\u{200B}",
            "ädmin",
            "a\u{7f}",
            "tab\tbed",
        ] {
            assert!(
                matches!(p.check_scope(bad), Err(PolicyViolation::InvalidScope(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_namespace_needs_a_host() {
        for good in [
            "https://example.com/",
            "http://localhost:8080/x",
            "https://a.example",
        ] {
            assert!(ClaimPolicy::new(vec![good.into()]).is_ok(), "{good}");
        }
        for bad in [
            "https://",
            "https:///x",
            "https://:443/",
            "https://?/",
            "https://#x",
            "https://@/",
            "https://user@example.com/",
            "https://exa mple.com/",
        ] {
            let err = ClaimPolicy::new(vec![bad.into()]).unwrap_err();
            assert!(err.contains("has no host"), "{bad}: {err}");
        }
    }

    #[test]
    fn size_is_measured_as_serialized_json() {
        let p = policy().with_max_claims_bytes(20);
        let mut claims = Map::new();
        claims.insert("https://a/b".into(), json!("x"));
        assert_eq!(p.check_size(TokenKind::IdToken, &claims), Ok(19));
        claims.insert("https://a/c".into(), json!("y"));
        assert!(matches!(
            p.check_size(TokenKind::IdToken, &claims),
            Err(PolicyViolation::TooLarge { size: 37, .. })
        ));
    }

    #[test]
    fn narrowing_must_stay_inside_the_global_namespaces() {
        let p = policy();
        assert!(
            p.check_narrowing(&["https://example.com/app/".into()])
                .is_ok()
        );
        assert!(p.check_narrowing(&["https://example.com/".into()]).is_ok());
        assert!(p.check_narrowing(&["https://other.test/".into()]).is_err());
        assert!(ClaimPolicy::new(vec!["example.com/".into()]).is_err());
    }
}
