//! The `[server]` table of the issuer's config: where `claimsmith serve` listens, its limits,
//! TLS, and each hook (path, format, the rules it runs, how its caller authenticates). Read from
//! the same file as the issuer's config and checked against it; secrets come from the
//! environment (or the file) and are resolved here, once per load.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::auth::HookAuth;
use crate::hook::IssuerFormat;
use claimsmith::{Config, ConfigError, SecretSource};
use claimsmith_engine::ObjectsOnly;

/// Where the server listens when neither `[server] listen` nor `--listen` says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";

/// Paths the server answers itself; no hook may take one.
pub(crate) const RESERVED_PATHS: [&str; 4] =
    ["/healthz", "/readyz", "/metrics", "/.well-known/jwks.json"];

/// The checked `[server]` table.
pub(crate) struct ServerConfig {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub max_in_flight: usize,
    pub shutdown_grace: Duration,
    pub tls: Option<TlsFiles>,
    pub hooks: Vec<HookConfig>,
}

/// `tls = { cert = .., key = .. }`, resolved against the config's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What a hook speaks: claimsmith's own event and tokens, or an issuer's hook format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// A login event in, `claimsmith run`'s JSON (signed tokens) out.
    Claimsmith,
    /// A login event in, only what the rules decided out (the issuer signs its own tokens).
    Outcome,
    /// An issuer's request in, that issuer's response out.
    Issuer(IssuerFormat),
}

impl Format {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Claimsmith => "claimsmith",
            Format::Outcome => "outcome",
            Format::Issuer(format) => format.name(),
        }
    }
}

/// One checked `[[server.hooks]]` entry.
pub(crate) struct HookConfig {
    pub path: String,
    pub format: Format,
    /// Indexes into the issuer's rules, in config order; `None`: every rule.
    pub rules: Option<Vec<usize>>,
    pub auth: HookAuth,
}

const FORMATS: &[&str] = &[
    "claimsmith",
    "outcome",
    "hydra",
    "okta",
    "supabase",
    "zitadel",
    "cognito",
];

const AUTH_TYPES: &[&str] = &["none", "api_key", "standard_webhooks", "zitadel_signature"];

#[derive(Deserialize)]
struct RawDocument {
    /// Everything else belongs to the issuer's config, which checks it.
    server: Option<RawServer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "the `[server]` table")]
struct RawServer {
    listen: Option<String>,
    max_body_bytes: Option<usize>,
    request_timeout_ms: Option<u64>,
    max_in_flight: Option<usize>,
    shutdown_grace_ms: Option<u64>,
    tls: Option<RawTls>,
    #[serde(default)]
    hooks: Vec<RawHook>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a `tls` table (`cert`, `key`)")]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a `[[server.hooks]]` table (`path`, `format`, `rules`, `auth`)"
)]
struct RawHook {
    path: String,
    format: String,
    rules: Option<Vec<String>>,
    auth: Option<RawAuth>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a `[server.hooks.auth]` table")]
struct RawAuth {
    #[serde(rename = "type")]
    kind: String,
    header: Option<String>,
    cookie: Option<String>,
    value: Option<SecretSource>,
    secrets: Option<Vec<SecretSource>>,
    signing_key: Option<SecretSource>,
}

impl ServerConfig {
    /// Read the `[server]` table from the config file `config` was loaded from, with `listen`
    /// in place of the file's address when given (`--listen`).
    pub(crate) fn load(
        config: &Config,
        listen: Option<SocketAddr>,
    ) -> Result<ServerConfig, ConfigError> {
        let path = &config.path;
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        ServerConfig::parse(&text, config, listen)
    }

    /// [`ServerConfig::load`] on the config's text.
    pub(crate) fn parse(
        text: &str,
        config: &Config,
        listen: Option<SocketAddr>,
    ) -> Result<ServerConfig, ConfigError> {
        let path = &config.path;
        let raw = toml::Deserializer::parse(text)
            .and_then(|de| RawDocument::deserialize(ObjectsOnly(de)))
            .map_err(|mut e| {
                // Without the input the message ends with the key path, not the source line.
                e.set_input(None);
                ConfigError::parse(path, text, e.span(), &e.to_string())
            })?;
        let check = Check { path, config };
        let Some(raw) = raw.server else {
            return Err(check.invalid(
                "server",
                "missing: `claimsmith serve` needs a [server] table with at least one [[server.hooks]] entry",
            ));
        };
        let listen = match listen {
            Some(listen) => listen,
            None => check.listen(raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN))?,
        };
        let max_body_bytes = check.in_range(
            "server.max_body_bytes",
            raw.max_body_bytes.unwrap_or(256 * 1024),
            1024..=16 * 1024 * 1024,
            "bytes",
        )?;
        let request_timeout_ms = check.in_range(
            "server.request_timeout_ms",
            raw.request_timeout_ms.unwrap_or(2000),
            1..=60_000,
            "ms",
        )?;
        let max_in_flight = check.in_range(
            "server.max_in_flight",
            raw.max_in_flight.unwrap_or(256),
            1..=65_536,
            "requests",
        )?;
        let shutdown_grace_ms = check.in_range(
            "server.shutdown_grace_ms",
            raw.shutdown_grace_ms.unwrap_or(10_000),
            0..=600_000,
            "ms",
        )?;
        let tls = raw.tls.map(|tls| TlsFiles {
            cert: check.relative(&tls.cert),
            key: check.relative(&tls.key),
        });
        if raw.hooks.is_empty() {
            return Err(check.invalid(
                "server.hooks",
                "at least one [[server.hooks]] entry is needed: there is nothing to serve",
            ));
        }
        let mut hooks: Vec<HookConfig> = Vec::new();
        for (i, hook) in raw.hooks.into_iter().enumerate() {
            let hook = check.hook(i, hook, listen)?;
            if hooks.iter().any(|h| h.path == hook.path) {
                return Err(check.invalid(
                    format!("server.hooks[{i}].path"),
                    format!("{:?}: another hook already has this path", hook.path),
                ));
            }
            hooks.push(hook);
        }
        // An answer the issuer no longer waits for is lost, and Okta then issues the token
        // without the rules' claims: the request's deadline must end before the issuer's.
        for (i, hook) in hooks.iter().enumerate() {
            let Format::Issuer(format) = hook.format else {
                continue;
            };
            if let Some(limit) = format.issuer_timeout()
                && u128::from(request_timeout_ms) >= limit.as_millis()
            {
                return Err(check.invalid(
                    "server.request_timeout_ms",
                    format!(
                        "{request_timeout_ms} ms is not under {}'s own {} s hook timeout (server.hooks[{i}], {:?}): an answer after it is lost{}; set it below {} (default 2000)",
                        format.title(),
                        limit.as_secs(),
                        hook.path,
                        if format == IssuerFormat::Okta {
                            ", and Okta then issues the token without your claims"
                        } else {
                            ""
                        },
                        limit.as_millis(),
                    ),
                ));
            }
        }
        Ok(ServerConfig {
            listen,
            max_body_bytes,
            request_timeout: Duration::from_millis(request_timeout_ms),
            max_in_flight,
            shutdown_grace: Duration::from_millis(shutdown_grace_ms),
            tls,
            hooks,
        })
    }

    /// This config as served on `address`, the socket the server already listens on: a reload
    /// cannot move the server, so a hook without authentication must still be on a loopback
    /// address there, whatever the file's `listen` now says.
    pub(crate) fn served_on(
        mut self,
        address: SocketAddr,
        path: &Path,
    ) -> Result<Self, ConfigError> {
        if !address.ip().is_loopback()
            && let Some(i) = self
                .hooks
                .iter()
                .position(|hook| matches!(hook.auth, HookAuth::None))
        {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                field: format!("server.hooks[{i}].auth.type"),
                message: format!(
                    "\"none\" is allowed only on a loopback address, and the server listens on {address} (a new `listen` takes effect only at a restart): use api_key, standard_webhooks or zitadel_signature"
                ),
            });
        }
        self.listen = address;
        Ok(self)
    }
}

/// The checks of the `[server]` table, naming the field at fault.
struct Check<'a> {
    path: &'a Path,
    config: &'a Config,
}

impl Check<'_> {
    fn invalid(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            field: field.into(),
            message: message.into(),
        }
    }

    fn relative(&self, file: &Path) -> PathBuf {
        self.path
            .parent()
            .map(|dir| dir.join(file))
            .unwrap_or_else(|| file.to_owned())
    }

    fn listen(&self, text: &str) -> Result<SocketAddr, ConfigError> {
        text.parse().map_err(|_| {
            self.invalid(
                "server.listen",
                format!(
                    "{text:?} is not an address and port (127.0.0.1:8787, [::1]:8787, 0.0.0.0:8787)"
                ),
            )
        })
    }

    fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
        &self,
        field: &str,
        value: T,
        range: std::ops::RangeInclusive<T>,
        unit: &str,
    ) -> Result<T, ConfigError> {
        if range.contains(&value) {
            return Ok(value);
        }
        Err(self.invalid(
            field,
            format!(
                "{value} is out of range ({} to {} {unit})",
                range.start(),
                range.end()
            ),
        ))
    }

    fn hook(&self, i: usize, raw: RawHook, listen: SocketAddr) -> Result<HookConfig, ConfigError> {
        let field = |name: &str| format!("server.hooks[{i}].{name}");
        let path = raw.path;
        if !path.starts_with('/') || path.contains(['?', '#', ' ']) {
            return Err(self.invalid(
                field("path"),
                format!(
                    "{path:?} must be an absolute path such as \"/hooks/hydra\", without a query"
                ),
            ));
        }
        if RESERVED_PATHS.contains(&path.as_str()) {
            return Err(self.invalid(
                field("path"),
                format!("{path:?} is the server's own (one of {RESERVED_PATHS:?})"),
            ));
        }
        let format = match raw.format.as_str() {
            "claimsmith" => Format::Claimsmith,
            "outcome" => Format::Outcome,
            "hydra" => Format::Issuer(IssuerFormat::Hydra),
            "okta" => Format::Issuer(IssuerFormat::Okta),
            "supabase" => Format::Issuer(IssuerFormat::Supabase),
            "zitadel" => Format::Issuer(IssuerFormat::Zitadel),
            "cognito" => Format::Issuer(IssuerFormat::Cognito),
            other => {
                return Err(self.invalid(
                    field("format"),
                    format!("{other:?} is not a hook format (one of {FORMATS:?})"),
                ));
            }
        };
        let rules = match raw.rules {
            None => None,
            Some(names) => Some(self.rules(&field("rules"), &names)?),
        };
        let Some(auth) = raw.auth else {
            return Err(self.invalid(
                field("auth"),
                "missing: say how the hook's caller authenticates ([server.hooks.auth] type = \"api_key\", \"standard_webhooks\" or \"zitadel_signature\"; \"none\" only on a loopback address)",
            ));
        };
        let auth = self.auth(&field("auth"), auth, listen)?;
        Ok(HookConfig {
            path,
            format,
            rules,
            auth,
        })
    }

    /// Rule names to indexes, in the config's order (the order rules always run in).
    fn rules(&self, field: &str, names: &[String]) -> Result<Vec<usize>, ConfigError> {
        if names.is_empty() {
            return Err(self.invalid(field, "is empty: leave `rules` out to run every rule"));
        }
        let mut indexes = Vec::new();
        for name in names {
            let Some(index) = self
                .config
                .rules
                .iter()
                .position(|rule| &rule.spec.name == name)
            else {
                let known: Vec<&str> = self
                    .config
                    .rules
                    .iter()
                    .map(|r| r.spec.name.as_str())
                    .collect();
                return Err(self.invalid(
                    field,
                    format!("no rule is named {name:?} (the config's rules: {known:?})"),
                ));
            };
            if indexes.contains(&index) {
                return Err(self.invalid(field, format!("names {name:?} twice")));
            }
            indexes.push(index);
        }
        indexes.sort_unstable();
        Ok(indexes)
    }

    fn auth(&self, field: &str, raw: RawAuth, listen: SocketAddr) -> Result<HookAuth, ConfigError> {
        let sub = |name: &str| format!("{field}.{name}");
        let allowed: &[&str] = match raw.kind.as_str() {
            "none" => &[],
            "api_key" => &["header", "cookie", "value"],
            "standard_webhooks" => &["secrets"],
            "zitadel_signature" => &["signing_key"],
            other => {
                return Err(self.invalid(
                    sub("type"),
                    format!("{other:?} is not an authentication type (one of {AUTH_TYPES:?})"),
                ));
            }
        };
        for (name, given) in [
            ("header", raw.header.is_some()),
            ("cookie", raw.cookie.is_some()),
            ("value", raw.value.is_some()),
            ("secrets", raw.secrets.is_some()),
            ("signing_key", raw.signing_key.is_some()),
        ] {
            if given && !allowed.contains(&name) {
                return Err(self.invalid(
                    sub(name),
                    format!("is not a setting of type = {:?}", raw.kind),
                ));
            }
        }
        let secret = |name: &str, source: &SecretSource| -> Result<String, ConfigError> {
            source
                .read()
                .map_err(|e| self.invalid(sub(name), e.to_string()))
        };
        let setup =
            |name: &str, e: crate::auth::AuthSetupError| self.invalid(sub(name), e.to_string());
        match raw.kind.as_str() {
            "none" => {
                if !listen.ip().is_loopback() {
                    return Err(self.invalid(
                        sub("type"),
                        format!(
                            "\"none\" is allowed only on a loopback address, and the server listens on {listen}: use api_key, standard_webhooks or zitadel_signature"
                        ),
                    ));
                }
                Ok(HookAuth::None)
            }
            "api_key" => {
                let Some(source) = &raw.value else {
                    return Err(self.invalid(sub("value"), "missing: the key the caller sends"));
                };
                let value = secret("value", source)?;
                match (raw.header, raw.cookie) {
                    (Some(header), None) => {
                        HookAuth::api_key_header(&header, value).map_err(|e| setup("header", e))
                    }
                    (None, Some(cookie)) => {
                        HookAuth::api_key_cookie(&cookie, value).map_err(|e| setup("cookie", e))
                    }
                    _ => Err(self.invalid(
                        field,
                        "an api_key names exactly one of `header` (\"Authorization\", say) and `cookie`",
                    )),
                }
            }
            "standard_webhooks" => {
                let sources = raw.secrets.unwrap_or_default();
                if sources.is_empty() {
                    return Err(self.invalid(
                        sub("secrets"),
                        "missing: at least one secret (whsec_... or v1,whsec_...)",
                    ));
                }
                let mut secrets = Vec::new();
                for (j, source) in sources.iter().enumerate() {
                    secrets.push(secret(&format!("secrets[{j}]"), source)?);
                }
                HookAuth::standard_webhooks(secrets).map_err(|e| setup("secrets", e))
            }
            "zitadel_signature" => {
                let Some(source) = &raw.signing_key else {
                    return Err(
                        self.invalid(sub("signing_key"), "missing: the target's signing key")
                    );
                };
                let key = secret("signing_key", source)?;
                HookAuth::zitadel_signature(key).map_err(|e| setup("signing_key", e))
            }
            _ => unreachable!("checked above"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "issuer = \"https://login.example.com/\"\nnamespaces = [\"https://example.com/\"]\n[[keys]]\nkid = \"k1\"\nalg = \"EdDSA\"\nprivate_key = \"keys/signing.pem\"\n";

    fn parse(server: &str, listen: Option<SocketAddr>) -> Result<ServerConfig, ConfigError> {
        let text = format!("{BASE}{server}");
        let path = Path::new("/etc/claimsmith/claimsmith.toml");
        let config = Config::parse(&text, path).expect("the issuer's part is valid");
        ServerConfig::parse(&text, &config, listen)
    }

    const OPEN: &str = "[server]\n[[server.hooks]]\npath = \"/h\"\nformat = \"hydra\"\n[server.hooks.auth]\ntype = \"none\"\n";

    #[test]
    fn every_setting_has_the_documented_default() {
        let server = parse(OPEN, None).unwrap();
        assert_eq!(server.listen, "127.0.0.1:8787".parse().unwrap());
        assert_eq!(server.max_body_bytes, 262_144);
        assert_eq!(server.request_timeout, Duration::from_millis(2000));
        assert_eq!(server.max_in_flight, 256);
        assert_eq!(server.shutdown_grace, Duration::from_millis(10_000));
        assert_eq!(server.tls, None);
        assert_eq!(server.hooks[0].rules, None);
        // `--listen` stands in for the file's address.
        let other = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(parse(OPEN, Some(other)).unwrap().listen, other);
    }

    #[test]
    fn a_hook_without_authentication_stays_on_loopback_where_the_server_already_listens() {
        let path = Path::new("/etc/claimsmith/claimsmith.toml");
        let loopback: SocketAddr = "127.0.0.1:8787".parse().unwrap();
        let public: SocketAddr = "0.0.0.0:8787".parse().unwrap();
        let served = parse(OPEN, None).unwrap().served_on(loopback, path);
        assert_eq!(served.unwrap().listen, loopback);
        let refused = parse(OPEN, None)
            .unwrap()
            .served_on(public, path)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            refused.contains("server.hooks[0].auth.type") && refused.contains("0.0.0.0:8787"),
            "{refused}"
        );
        // On a public address from the start: refused at load, naming the hook.
        let refused = parse(OPEN, Some(public))
            .err()
            .expect("refused")
            .to_string();
        assert!(refused.contains("server.hooks[0].auth.type"), "{refused}");
    }

    #[test]
    fn the_request_deadline_ends_before_the_issuers_own_timeout() {
        let hook = |format: &str, timeout: u64| {
            format!(
                "[server]\nrequest_timeout_ms = {timeout}\n[[server.hooks]]\npath = \"/a\"\nformat = \"hydra\"\n[server.hooks.auth]\ntype = \"none\"\n[[server.hooks]]\npath = \"/b\"\nformat = \"{format}\"\n[server.hooks.auth]\ntype = \"none\"\n"
            )
        };
        // Okta fails open on a late answer: 3 s and over refused, naming the hook.
        let refused = parse(&hook("okta", 3000), None)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            refused.contains("server.request_timeout_ms")
                && refused.contains("server.hooks[1]")
                && refused.contains("\"/b\"")
                && refused.contains("Okta's own 3 s hook timeout")
                && refused.contains("without your claims"),
            "{refused}"
        );
        assert!(parse(&hook("okta", 2999), None).is_ok());
        for format in ["supabase", "cognito"] {
            let refused = parse(&hook(format, 5000), None)
                .err()
                .expect("refused")
                .to_string();
            assert!(refused.contains("own 5 s hook timeout"), "{refused}");
            assert!(parse(&hook(format, 4999), None).is_ok());
        }
        let refused = parse(&hook("hydra", 30_000), None)
            .err()
            .expect("refused")
            .to_string();
        assert!(refused.contains("server.hooks[0]"), "{refused}");
        // Zitadel's is the target's own; claimsmith's own formats have none.
        for format in ["zitadel", "claimsmith", "outcome"] {
            let text = hook(format, 29_999).replace("format = \"hydra\"", "format = \"zitadel\"");
            assert!(
                parse(&text.replace("29999", "60000"), None).is_ok(),
                "{format}"
            );
        }
    }
}
