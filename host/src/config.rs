//! The issuer's TOML config: issuer URL, token lifetimes, claim namespaces, signing keys, rules
//! and limits. Every path is relative to the config file; unknown keys are rejected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::error::ConfigError;
use claimsmith_engine::{
    Limits, ModuleDigest, ObjectsOnly, OnError, Reads, RuleMode, RuleSpec, SandboxConfig,
};

/// Token lifetimes must sit in this range, in seconds (one minute to thirty days).
pub const TTL_RANGE: std::ops::RangeInclusive<u64> = 60..=30 * 24 * 3600;

/// A checked config with every path resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file.
    pub path: PathBuf,
    /// `iss` of every token.
    pub issuer: String,
    /// ID token lifetime.
    pub id_token_ttl: Duration,
    /// Access token lifetime.
    pub access_token_ttl: Duration,
    /// Allowed claim-name prefixes.
    pub namespaces: Vec<String>,
    /// Signing keys; the first signs, all are published.
    pub keys: Vec<KeyConfig>,
    /// Rules, in the order they run.
    pub rules: Vec<RuleConfig>,
    /// Engine-wide sandbox settings.
    pub sandbox: SandboxConfig,
    /// Cap on the serialized custom claims per token.
    pub claims_bytes: usize,
    /// Where compiled modules are cached across restarts.
    pub cache: CacheSetting,
    /// `shadow_values`: whether shadow reports carry claim values (default: names only).
    pub shadow_values: bool,
}

/// Where compiled rule modules are cached (`cache_dir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheSetting {
    /// `cache_dir` named this folder: it must be usable.
    Dir(PathBuf),
    /// No `cache_dir`: the per-user default, if there is one; unusable means no cache.
    Default(Option<PathBuf>),
    /// `cache_dir = ""`: compile every module at every start.
    Off,
}

impl CacheSetting {
    /// The per-user default: `$CLAIMSMITH_CACHE_DIR`, else `$XDG_CACHE_HOME/claimsmith`, else
    /// `$HOME/.cache/claimsmith`.
    pub fn default_dir() -> Option<PathBuf> {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        var("CLAIMSMITH_CACHE_DIR")
            .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("claimsmith")))
            .or_else(|| var("HOME").map(|d| d.join(".cache").join("claimsmith")))
    }
}

/// One `[[keys]]` entry.
#[derive(Debug, Clone)]
pub struct KeyConfig {
    /// Key id, in every token header and the JWKS.
    pub kid: String,
    /// JWS algorithm name.
    pub alg: String,
    /// PKCS#8 PEM file.
    pub private_key: PathBuf,
}

/// One `[[rules]]` entry.
#[derive(Debug, Clone)]
pub struct RuleConfig {
    /// Name, settings, configuration, secrets and limits.
    pub spec: RuleSpec,
    /// The module file.
    pub module: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "the config's top-level table")]
struct RawConfig {
    issuer: String,
    id_token_ttl: Option<u64>,
    access_token_ttl: Option<u64>,
    namespaces: Vec<String>,
    cache_dir: Option<PathBuf>,
    #[serde(default)]
    shadow_values: bool,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    keys: Vec<RawKey>,
    #[serde(default)]
    rules: Vec<RawRule>,
    /// `claimsmith serve`'s own table: not the issuer's, read and checked by the server.
    #[serde(default)]
    #[allow(dead_code)]
    server: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a `[[keys]]` table (`kid`, `alg`, `private_key`)"
)]
struct RawKey {
    kid: String,
    alg: String,
    private_key: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a `[[rules]]` table")]
struct RawRule {
    name: String,
    module: PathBuf,
    on_error: Option<OnError>,
    namespaces: Option<Vec<String>>,
    #[serde(default)]
    config: toml::Table,
    #[serde(default)]
    secrets: BTreeMap<String, SecretSource>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    mode: RuleMode,
    #[serde(default)]
    shadows: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    reads: Option<Vec<String>>,
}

/// A secret's value as a config gives it: the text itself, or `{ env = "NAME" }` to read it
/// from the environment (rule secrets, and the hook server's keys). Its `Debug` form never
/// shows the text.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The secret itself, written in the config.
    Literal(String),
    /// The environment variable that holds it.
    Env(String),
}

impl SecretSource {
    /// The secret's text, or `None` when there is none ([`SecretSource::read`] says why).
    pub fn value(&self) -> Option<String> {
        self.read().ok()
    }

    /// The secret's text, or why there is none: its environment variable is not set or not
    /// UTF-8, or the text is empty.
    pub fn read(&self) -> Result<String, SecretError> {
        let value = match self {
            SecretSource::Literal(value) => value.clone(),
            SecretSource::Env(name) => std::env::var(name).map_err(|e| match e {
                std::env::VarError::NotPresent => SecretError::Unset(name.clone()),
                std::env::VarError::NotUnicode(_) => SecretError::NotUnicode(name.clone()),
            })?,
        };
        if value.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(value)
    }
}

/// Why a [`SecretSource`] gives no secret; never holds the secret's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The environment variable it names is not set.
    #[error("environment variable {0} is not set")]
    Unset(String),
    /// The environment variable it names is set to something that is not UTF-8.
    #[error("environment variable {0} is not valid UTF-8")]
    NotUnicode(String),
    /// The secret is empty.
    #[error("is empty")]
    Empty,
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Literal(_) => f.write_str("Literal([REDACTED])"),
            SecretSource::Env(name) => f.debug_tuple("Env").field(name).finish(),
        }
    }
}

// Read by hand rather than `#[serde(untagged)]`: untagged enums are read from serde's own buffer,
// where `ObjectsOnly` cannot see, so `{ env = .. }` could be given as `["NAME"]`; and the errors
// say what is wanted instead of "did not match any variant".
impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error, MapAccess, Unexpected, Visitor};

        struct Source;

        impl<'de> Visitor<'de> for Source {
            type Value = SecretSource;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, or a table with `env` naming an environment variable")
            }

            fn visit_str<E: Error>(self, value: &str) -> Result<SecretSource, E> {
                Ok(SecretSource::Literal(value.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretSource, A::Error> {
                let mut env = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "env" if env.is_some() => return Err(Error::duplicate_field("env")),
                        "env" => env = Some(map.next_value::<String>()?),
                        // How TOML hands over a date or time: not a table of ours.
                        private if private.starts_with("$__toml_private") => {
                            return Err(Error::invalid_type(Unexpected::Other("a date"), &self));
                        }
                        other => return Err(Error::unknown_field(other, &["env"])),
                    }
                }
                env.map(SecretSource::Env)
                    .ok_or_else(|| Error::missing_field("env"))
            }
        }

        deserializer.deserialize_any(Source)
    }
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, expecting = "a `limits` table")]
struct RawLimits {
    fuel: Option<u64>,
    timeout_ms: Option<u64>,
    memory_bytes: Option<usize>,
    input_bytes: Option<usize>,
    result_bytes: Option<usize>,
    log_bytes: Option<usize>,
    module_bytes: Option<usize>,
    // Engine-wide only:
    stack_bytes: Option<usize>,
    claims_bytes: Option<usize>,
    max_concurrent_instances: Option<u32>,
    engines: Option<usize>,
    prewarm: Option<u32>,
}

impl Config {
    /// Read and check the config at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Check config `text` as if read from `path` (paths resolve against its folder).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        // Every table from a table: `ObjectsOnly` refuses one given as an array of its fields.
        let raw = toml::Deserializer::parse(text)
            .and_then(|de| RawConfig::deserialize(ObjectsOnly(de)))
            .map_err(|mut e| {
                // Without the input the message ends with the key path, not the source line.
                e.set_input(None);
                ConfigError::parse(path, text, e.span(), &e.to_string())
            })?;
        let check = Check {
            path,
            base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let issuer = check.issuer(raw.issuer)?;
        let id_token_ttl = check.ttl("id_token_ttl", raw.id_token_ttl, 3600)?;
        let access_token_ttl = check.ttl("access_token_ttl", raw.access_token_ttl, 86400)?;
        let keys = check.keys(raw.keys)?;
        check.global_limits(&raw.limits)?;
        let rules = check.rules(&raw.limits, raw.rules)?;
        let sandbox = check.sandbox(&raw.limits, &rules)?;
        Ok(Config {
            path: path.to_owned(),
            issuer,
            id_token_ttl,
            access_token_ttl,
            namespaces: raw.namespaces,
            keys,
            rules,
            sandbox,
            claims_bytes: raw.limits.claims_bytes.unwrap_or(100 * 1024),
            cache: check.cache(raw.cache_dir),
            shadow_values: raw.shadow_values,
        })
    }
}

/// The checks of a parsed config, one concern each, naming the field at fault.
struct Check<'a> {
    path: &'a Path,
    /// The config file's folder, which every path in it is relative to.
    base: PathBuf,
}

impl Check<'_> {
    fn invalid(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// The top-level `[limits]` per-rule values: each, when given, greater than zero (even where
    /// every rule sets its own).
    fn global_limits(&self, global: &RawLimits) -> Result<(), ConfigError> {
        let given = [
            ("fuel", global.fuel.map(|v| v as usize)),
            ("timeout_ms", global.timeout_ms.map(|v| v as usize)),
            ("memory_bytes", global.memory_bytes),
            ("input_bytes", global.input_bytes),
            ("result_bytes", global.result_bytes),
            ("log_bytes", global.log_bytes),
            ("module_bytes", global.module_bytes),
        ];
        match given.iter().find(|(_, value)| *value == Some(0)) {
            Some((key, _)) => {
                Err(self.invalid(format!("limits.{key}"), "must be greater than zero"))
            }
            None => Ok(()),
        }
    }

    /// `iss`: an https:// URL with a host, or http:// on localhost.
    fn issuer(&self, issuer: String) -> Result<String, ConfigError> {
        // OIDC Core section 2: `iss` has no query or fragment.
        if (url_host(&issuer, "https://").is_some() || is_local_http(&issuer))
            && !issuer.contains(['?', '#'])
        {
            return Ok(issuer);
        }
        Err(self.invalid(
            "issuer",
            format!(
                "{issuer:?} must be an https:// URL with a host and no query or fragment (http:// only for localhost)"
            ),
        ))
    }

    /// A token lifetime in [`TTL_RANGE`].
    fn ttl(&self, field: &str, value: Option<u64>, default: u64) -> Result<Duration, ConfigError> {
        let value = Duration::from_secs(value.unwrap_or(default));
        ttl_in_range(value).map_err(|message| self.invalid(field, message))?;
        Ok(value)
    }

    /// At least one key, each with a unique, non-empty id.
    fn keys(&self, raw: Vec<RawKey>) -> Result<Vec<KeyConfig>, ConfigError> {
        if raw.is_empty() {
            return Err(self.invalid(
                "keys",
                "at least one [[keys]] entry is needed to sign tokens",
            ));
        }
        let mut keys: Vec<KeyConfig> = Vec::new();
        for (i, key) in raw.into_iter().enumerate() {
            if key.kid.trim().is_empty() {
                return Err(self.invalid(format!("keys[{i}].kid"), "must not be empty"));
            }
            if keys.iter().any(|k| k.kid == key.kid) {
                return Err(self.invalid(
                    format!("keys[{i}].kid"),
                    format!("duplicate key id {:?}", key.kid),
                ));
            }
            keys.push(KeyConfig {
                kid: key.kid,
                alg: key.alg,
                private_key: self.base.join(key.private_key),
            });
        }
        Ok(keys)
    }

    /// Every rule, in order, with unique names.
    fn rules(&self, global: &RawLimits, raw: Vec<RawRule>) -> Result<Vec<RuleConfig>, ConfigError> {
        let mut rules: Vec<RuleConfig> = Vec::new();
        for (i, rule) in raw.into_iter().enumerate() {
            if rules.iter().any(|r| r.spec.name == rule.name) {
                return Err(self.invalid(
                    format!("rules[{i}].name"),
                    format!("duplicate rule name {:?}", rule.name),
                ));
            }
            rules.push(self.rule(i, global, rule)?);
        }
        for (i, rule) in rules.iter().enumerate() {
            let Some(name) = &rule.spec.shadows else {
                continue;
            };
            match rules.iter().find(|r| &r.spec.name == name) {
                Some(target) if target.spec.mode == RuleMode::Enforce => {}
                Some(_) => {
                    return Err(self.invalid(
                        format!("rules[{i}].shadows"),
                        format!("{name:?} is a shadow rule itself: a candidate stands in for an enforcing rule"),
                    ));
                }
                None => {
                    return Err(self.invalid(
                        format!("rules[{i}].shadows"),
                        format!("no rule is named {name:?}"),
                    ));
                }
            }
        }
        Ok(rules)
    }

    /// One `[[rules]]` entry: its limits, configuration and resolved secrets.
    fn rule(&self, i: usize, global: &RawLimits, rule: RawRule) -> Result<RuleConfig, ConfigError> {
        let field = |name: &str| format!("rules[{i}].{name}");
        if rule.name.trim().is_empty() {
            return Err(self.invalid(field("name"), "must not be empty"));
        }
        for (key, value) in [
            ("stack_bytes", rule.limits.stack_bytes.is_some()),
            ("claims_bytes", rule.limits.claims_bytes.is_some()),
            (
                "max_concurrent_instances",
                rule.limits.max_concurrent_instances.is_some(),
            ),
            ("engines", rule.limits.engines.is_some()),
            ("prewarm", rule.limits.prewarm.is_some()),
        ] {
            if value {
                return Err(self.invalid(
                    field(&format!("limits.{key}")),
                    "is engine-wide: set it in the top-level [limits]",
                ));
            }
        }
        let shadow = rule.mode == RuleMode::Shadow;
        if shadow && rule.on_error.is_some() {
            return Err(self.invalid(
                field("on_error"),
                "a shadow rule never fails or changes a login: set on_error when it is promoted to mode = \"enforce\"",
            ));
        }
        if !shadow && rule.shadows.is_some() {
            return Err(self.invalid(
                field("shadows"),
                "names the rule a shadow rule stands in for: it needs mode = \"shadow\"",
            ));
        }
        let sha256 = match &rule.sha256 {
            None => None,
            Some(text) => Some(ModuleDigest::from_hex(text).ok_or_else(|| {
                self.invalid(
                    field("sha256"),
                    format!("{text:?} is not a SHA-256: 64 lowercase hex digits, as `claimsmith build` and `claimsmith check` print it"),
                )
            })?),
        };
        let reads = rule
            .reads
            .as_ref()
            .map(|names| Reads::from_names(names.iter().map(String::as_str)))
            .transpose()
            .map_err(|unknown| self.invalid(field("reads"), unknown.to_string()))?;
        let limits = limits_of(global, &rule.limits)
            .map_err(|(key, message)| self.invalid(field(&format!("limits.{key}")), message))?;
        if let Some((at, what)) = not_json(&rule.config) {
            return Err(self.invalid(field(&format!("config.{at}")), what));
        }
        let Ok(Value::Object(configuration)) = serde_json::to_value(&rule.config) else {
            return Err(self.invalid(field("config"), "cannot be represented as JSON"));
        };
        let mut secrets = BTreeMap::new();
        for (name, source) in rule.secrets {
            let value = source
                .read()
                .map_err(|e| self.invalid(field(&format!("secrets.{name}")), e.to_string()))?;
            secrets.insert(name, value);
        }
        if rule
            .module
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("js"))
        {
            let dir = rule.module.parent().unwrap_or(Path::new("."));
            return Err(self.invalid(
                field("module"),
                format!(
                    "{} is JavaScript source, not a module: build it with `claimsmith build {}` \
                     (its folder, holding it as action.js) and name the module it prints",
                    rule.module.display(),
                    if dir.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        dir
                    }
                    .display()
                ),
            ));
        }
        Ok(RuleConfig {
            module: self.base.join(&rule.module),
            spec: RuleSpec {
                name: rule.name,
                on_error: rule.on_error.unwrap_or_default(),
                namespaces: rule.namespaces,
                configuration,
                secrets,
                limits,
                mode: rule.mode,
                shadows: rule.shadows,
                sha256,
                reads,
            },
        })
    }

    /// The engine-wide settings of the top-level `[limits]`; memory slots as large as the
    /// largest rule's memory limit.
    fn sandbox(
        &self,
        global: &RawLimits,
        rules: &[RuleConfig],
    ) -> Result<SandboxConfig, ConfigError> {
        let defaults = SandboxConfig::default();
        let max_memory = rules
            .iter()
            .map(|r| r.spec.limits.memory_bytes)
            .max()
            .unwrap_or(0);
        let sandbox = SandboxConfig {
            max_wasm_stack: global.stack_bytes.unwrap_or(defaults.max_wasm_stack),
            max_memory_bytes: max_memory.max(defaults.max_memory_bytes),
            max_concurrent_instances: global
                .max_concurrent_instances
                .unwrap_or(defaults.max_concurrent_instances),
            engines: global.engines.unwrap_or(defaults.engines),
            prewarm: global.prewarm.unwrap_or(defaults.prewarm),
        };
        // wasmtime builds no engine with more (its stacks for async calls are 2 MiB).
        if !(16 << 10..=2 << 20).contains(&sandbox.max_wasm_stack) {
            return Err(self.invalid(
                "limits.stack_bytes",
                format!(
                    "{} is out of range: must be between 16 KiB and 2 MiB (16384 to 2097152 bytes)",
                    sandbox.max_wasm_stack
                ),
            ));
        }
        if global.claims_bytes.is_some_and(|b| b < 1024) {
            return Err(self.invalid("limits.claims_bytes", "must be at least 1024 bytes"));
        }
        if sandbox.max_concurrent_instances == 0 {
            return Err(self.invalid("limits.max_concurrent_instances", "must be at least 1"));
        }
        if !(1..=64).contains(&sandbox.engines) {
            return Err(self.invalid("limits.engines", "must be between 1 and 64"));
        }
        if let Err(why) = sandbox.check_prewarm(rules.len()) {
            return Err(self.invalid(
                "limits.prewarm",
                format!("{why}: lower it or raise limits.max_concurrent_instances"),
            ));
        }
        Ok(sandbox)
    }

    /// `cache_dir`: absent for the per-user default, `""` for none, else a folder.
    fn cache(&self, cache_dir: Option<PathBuf>) -> CacheSetting {
        match cache_dir {
            None => CacheSetting::Default(CacheSetting::default_dir()),
            Some(dir) if dir.as_os_str().is_empty() => CacheSetting::Off,
            Some(dir) => CacheSetting::Dir(self.base.join(dir)),
        }
    }
}

/// A token lifetime in [`TTL_RANGE`], or why not (for a config read from TOML or built by hand).
pub(crate) fn ttl_in_range(ttl: Duration) -> Result<(), String> {
    if TTL_RANGE.contains(&ttl.as_secs()) {
        return Ok(());
    }
    Err(format!(
        "{} seconds is out of range ({} to {} seconds)",
        ttl.as_secs(),
        TTL_RANGE.start(),
        TTL_RANGE.end()
    ))
}

/// The first value in a rule's `config` that JSON cannot carry, by its dotted path, and why: a
/// date or time (TOML's own type), or a float that is not finite.
fn not_json(table: &toml::Table) -> Option<(String, &'static str)> {
    fn at(value: &toml::Value, path: String) -> Option<(String, &'static str)> {
        match value {
            toml::Value::Datetime(_) => Some((
                path,
                "is a TOML date or time, which JSON cannot carry: write it as a string",
            )),
            toml::Value::Float(f) if !f.is_finite() => {
                Some((path, "is not a finite number, which JSON cannot carry"))
            }
            toml::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| at(item, format!("{path}[{i}]"))),
            toml::Value::Table(table) => table
                .iter()
                .find_map(|(key, item)| at(item, format!("{path}.{key}"))),
            _ => None,
        }
    }
    table.iter().find_map(|(key, value)| at(value, key.clone()))
}

/// The host of a URL under `scheme` (`"https://"`, `"http://"`): its authority up to the path,
/// query or fragment, without brackets for IPv6; `None` without a host, with user info, or with
/// a port that is not digits.
fn url_host<'u>(url: &'u str, scheme: &str) -> Option<&'u str> {
    let rest = url.strip_prefix(scheme)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']')?,
        None => authority.split_at(authority.find(':').unwrap_or(authority.len())),
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = !host.is_empty()
        && !host.contains(|c: char| c == '@' || c.is_whitespace() || c.is_control());
    (port_ok && host_ok).then_some(host)
}

/// An `http://` URL whose host is `localhost`, `127.0.0.1` or `[::1]`, with or without a port.
fn is_local_http(url: &str) -> bool {
    matches!(
        url_host(url, "http://"),
        Some("localhost" | "127.0.0.1" | "::1")
    )
}

/// A rule's limits: its own, else the global `[limits]`, else the defaults; zero is refused.
fn limits_of(global: &RawLimits, rule: &RawLimits) -> Result<Limits, (&'static str, String)> {
    let defaults = Limits::default();
    fn pick<T: Copy + PartialEq + Default + std::fmt::Display>(
        key: &'static str,
        rule: Option<T>,
        global: Option<T>,
        default: T,
    ) -> Result<T, (&'static str, String)> {
        let value = rule.or(global).unwrap_or(default);
        if value == T::default() {
            return Err((key, "must be greater than zero".into()));
        }
        Ok(value)
    }
    Ok(Limits {
        fuel: pick("fuel", rule.fuel, global.fuel, defaults.fuel)?,
        timeout: Duration::from_millis(pick(
            "timeout_ms",
            rule.timeout_ms,
            global.timeout_ms,
            defaults.timeout.as_millis() as u64,
        )?),
        memory_bytes: pick(
            "memory_bytes",
            rule.memory_bytes,
            global.memory_bytes,
            defaults.memory_bytes,
        )?,
        input_bytes: pick(
            "input_bytes",
            rule.input_bytes,
            global.input_bytes,
            defaults.input_bytes,
        )?,
        result_bytes: pick(
            "result_bytes",
            rule.result_bytes,
            global.result_bytes,
            defaults.result_bytes,
        )?,
        log_bytes: pick(
            "log_bytes",
            rule.log_bytes,
            global.log_bytes,
            defaults.log_bytes,
        )?,
        module_bytes: pick(
            "module_bytes",
            rule.module_bytes,
            global.module_bytes,
            defaults.module_bytes,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
issuer = "https://login.example.com/"
namespaces = ["https://example.com/"]
[[keys]]
kid = "k1"
alg = "RS256"
private_key = "keys/signing.pem"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/claimsmith/claimsmith.toml"))
    }

    #[test]
    fn paths_resolve_against_the_config_folder_and_defaults_apply() {
        let config = parse(&format!("{BASE}\n[[rules]]\nname = \"r\"\nmodule = \"r.wasm\"\n[rules.config]\nnamespace = \"https://example.com\"\n")).unwrap();
        assert_eq!(
            config.keys[0].private_key,
            Path::new("/etc/claimsmith/keys/signing.pem")
        );
        assert_eq!(config.rules[0].module, Path::new("/etc/claimsmith/r.wasm"));
        assert_eq!(config.rules[0].spec.limits, Limits::default());
        assert_eq!(
            config.rules[0].spec.configuration["namespace"],
            "https://example.com"
        );
        assert_eq!(config.id_token_ttl, Duration::from_secs(3600));
    }

    #[test]
    fn a_typo_is_an_error_with_line_and_column() {
        let err = parse(&BASE.replace("issuer =", "isuser ="))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("claimsmith.toml") && err.contains("isuser") && err.contains("line 2"),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_ttls_and_duplicate_names_are_named() {
        let err = parse(&format!("id_token_ttl = 5\n{BASE}"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`id_token_ttl`") && err.contains("out of range"),
            "{err}"
        );
        let js = parse(&format!(
            "{BASE}[[rules]]\nname = \"w\"\nmodule = \"actions/w/action.js\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            js.contains("`rules[0].module`: actions/w/action.js is JavaScript source"),
            "{js}"
        );
        assert!(js.contains("`claimsmith build actions/w`"), "{js}");
        let err = parse(&format!("{BASE}[[rules]]\nname = \"a\"\nmodule = \"a.wasm\"\n[[rules]]\nname = \"a\"\nmodule = \"b.wasm\"\n")).unwrap_err().to_string();
        assert!(
            err.contains("`rules[1].name`") && err.contains("duplicate"),
            "{err}"
        );
        let err = parse(&format!(
            "{BASE}[[keys]]\nkid = \"k1\"\nalg = \"ES256\"\nprivate_key = \"x.pem\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("`keys[1].kid`"), "{err}");
    }

    #[test]
    fn secrets_come_from_literals_or_the_environment() {
        let text = format!(
            "{BASE}[[rules]]\nname = \"a\"\nmodule = \"a.wasm\"\n[rules.secrets]\nLIT = \"v\"\nENV = {{ env = \"CLAIMSMITH_TEST_UNSET_VAR\" }}\n"
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("`rules[0].secrets.ENV`") && err.contains("CLAIMSMITH_TEST_UNSET_VAR"),
            "{err}"
        );
    }

    #[test]
    fn a_table_given_as_an_array_of_its_values_is_refused_where_it_stands() {
        let head =
            "issuer = \"https://login.example.com/\"\nnamespaces = [\"https://example.com/\"]\n";
        let rule = "[[rules]]\nname = \"a\"\nmodule = \"a.wasm\"\n";
        for (text, expected, line) in [
            (
                format!("{head}keys = [[\"k1\", \"EdDSA\", \"k.pem\"]]\n"),
                "a `[[keys]]` table",
                3,
            ),
            (
                // Every field of `limits` has to be given for the derive to take the array.
                format!("{head}limits = [5, 7, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"),
                "a `limits` table",
                3,
            ),
            (
                format!(
                    "{head}rules = [[\"a\", \"a.wasm\", \"deny\", [\"https://example.com/\"]]]\n"
                ),
                "a `[[rules]]` table",
                3,
            ),
            (
                format!("{head}{rule}limits = [9, 7, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"),
                "a `limits` table",
                6,
            ),
        ] {
            // serde's derive alone takes each of these, the values in field order.
            assert!(toml::from_str::<RawConfig>(&text).is_ok(), "{text}");
            let err = parse(&text).unwrap_err().to_string();
            assert!(
                err.contains("claimsmith.toml")
                    && err.contains(&format!("invalid type: sequence, expected {expected}"))
                    && err.contains(&format!("line {line}")),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn the_objects_only_check_keeps_what_toml_reads_by_struct_name() {
        // `Spanned` is read by name, as a struct: the check must pass the name on.
        #[derive(Deserialize)]
        struct Named {
            name: toml::Spanned<String>,
        }
        let text = "name = \"a\"\n";
        let named = Named::deserialize(ObjectsOnly(toml::Deserializer::parse(text).unwrap()));
        let name = named.unwrap().name;
        assert_eq!((name.get_ref().as_str(), name.span()), ("a", 7..10));
    }

    #[test]
    fn a_secret_is_a_string_or_an_env_table_and_nothing_else() {
        let text = |secret: &str| {
            format!(
                "{BASE}[[rules]]\nname = \"a\"\nmodule = \"a.wasm\"\n[rules.secrets]\nS = {secret}\n"
            )
        };
        let config = parse(&text("\"v\"")).unwrap();
        assert_eq!(config.rules[0].spec.secrets["S"], "v");
        // A variable every process here has, so the test sets none (tests share the environment).
        let config = parse(&text("{ env = \"PATH\" }")).unwrap();
        assert_eq!(
            config.rules[0].spec.secrets["S"],
            std::env::var("PATH").unwrap()
        );
        for (secret, expected) in [
            (
                "[\"PATH\"]",
                "invalid type: sequence, expected a string, or a table with `env`",
            ),
            (
                "7",
                "invalid type: integer `7`, expected a string, or a table",
            ),
            (
                "{ env = [\"X\"] }",
                "invalid type: sequence, expected a string",
            ),
            ("{ name = \"X\" }", "unknown field `name`, expected `env`"),
            ("{}", "missing field `env`"),
            (
                "1979-05-27",
                "invalid type: a date, expected a string, or a table",
            ),
        ] {
            let err = parse(&text(secret)).unwrap_err().to_string();
            assert!(
                err.contains(expected) && err.contains("line 12"),
                "{secret}: {err}"
            );
        }
    }

    #[test]
    fn per_rule_limits_override_global_ones_and_engine_limits_stay_global() {
        let text = format!(
            "{BASE}[limits]\nfuel = 5\ntimeout_ms = 7\n[[rules]]\nname = \"a\"\nmodule = \"a.wasm\"\n[rules.limits]\nfuel = 9\n"
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.rules[0].spec.limits.fuel, 9);
        assert_eq!(
            config.rules[0].spec.limits.timeout,
            Duration::from_millis(7)
        );
        let text = format!(
            "{BASE}[[rules]]\nname = \"a\"\nmodule = \"a.wasm\"\n[rules.limits]\nstack_bytes = 9\n"
        );
        assert!(
            parse(&text)
                .unwrap_err()
                .to_string()
                .contains("engine-wide")
        );
        for (stack, ok) in [
            (16_383, false),
            (16_384, true),
            (2_097_152, true),
            (2_097_153, false),
        ] {
            let text = format!("{BASE}[limits]\nstack_bytes = {stack}\n");
            match parse(&text) {
                Ok(config) => assert!(ok, "{stack}: {:?}", config.sandbox),
                Err(e) => assert!(
                    !ok && e.to_string().contains("between 16 KiB and 2 MiB"),
                    "{stack}: {e}"
                ),
            }
        }
    }

    #[test]
    fn reads_names_members_of_the_event_and_prewarm_is_engine_wide_and_bounded() {
        let rule = "[[rules]]\nname = \"a\"\nmodule = \"a.wasm\"\n";
        let config = parse(&format!("{BASE}{rule}")).unwrap();
        assert_eq!(config.rules[0].spec.reads, None);
        assert_eq!(config.sandbox.prewarm, 0);
        let config = parse(&format!(
            "{BASE}{rule}reads = [\"authorization\", \"configuration\"]\n"
        ))
        .unwrap();
        assert_eq!(
            config.rules[0].spec.reads.unwrap().to_string(),
            "authorization, login_time, configuration"
        );
        let err = parse(&format!("{BASE}{rule}reads = [\"roles\"]\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rules[0].reads")
                && err.contains("`roles` is not a part of the login event"),
            "{err}"
        );
        let config = parse(&format!("{BASE}[limits]\nprewarm = 2\nengines = 1\n{rule}")).unwrap();
        assert_eq!(config.sandbox.prewarm, 2);
        let err = parse(&format!(
            "{BASE}[limits]\nprewarm = 2\nengines = 1\nmax_concurrent_instances = 7\n{rule}"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("limits.prewarm") && err.contains("more than half of its 7"),
            "{err}"
        );
        let err = parse(&format!("{BASE}{rule}[rules.limits]\nprewarm = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("engine-wide"), "{err}");
    }

    #[test]
    fn engines_default_to_the_cpus_and_are_set_engine_wide_only() {
        let rule = "[[rules]]\nname = \"a\"\nmodule = \"a.wasm\"\n";
        let config = parse(&format!("{BASE}{rule}")).unwrap();
        assert_eq!(config.sandbox.engines, SandboxConfig::default_engines());
        let config = parse(&format!("{BASE}[limits]\nengines = 3\n{rule}")).unwrap();
        assert_eq!(config.sandbox.engines, 3);
        for bad in ["0", "65"] {
            let err = parse(&format!("{BASE}[limits]\nengines = {bad}\n{rule}"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("limits.engines") && err.contains("between 1 and 64"),
                "{err}"
            );
        }
        let err = parse(&format!("{BASE}{rule}[rules.limits]\nengines = 2\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("engine-wide"), "{err}");
    }

    #[test]
    fn shadow_rules_and_pinned_digests_are_checked_naming_the_field() {
        let rule = |name: &str, extra: &str| {
            format!("[[rules]]\nname = \"{name}\"\nmodule = \"{name}.wasm\"\n{extra}")
        };
        let digest = "ab".repeat(32);
        let text = format!(
            "shadow_values = true\n{BASE}{}{}",
            rule("a", &format!("sha256 = \"{digest}\"\n")),
            rule("c", "mode = \"shadow\"\nshadows = \"a\"\n")
        );
        let config = parse(&text).unwrap();
        assert!(config.shadow_values);
        assert_eq!(config.rules[0].spec.sha256.unwrap().to_string(), digest);
        assert_eq!(config.rules[1].spec.mode, RuleMode::Shadow);
        assert_eq!(config.rules[1].spec.shadows.as_deref(), Some("a"));
        for (extra, field, message) in [
            ("sha256 = \"AB\"\n", "rules[1].sha256", "64 lowercase hex"),
            (
                &format!("sha256 = \"{}\"\n", "AB".repeat(32)),
                "rules[1].sha256",
                "64 lowercase hex",
            ),
            ("shadows = \"a\"\n", "rules[1].shadows", "mode = \"shadow\""),
            (
                "mode = \"shadow\"\nshadows = \"zz\"\n",
                "rules[1].shadows",
                "no rule is named \"zz\"",
            ),
            (
                "mode = \"shadow\"\nshadows = \"c\"\n",
                "rules[1].shadows",
                "shadow rule itself",
            ),
            (
                "mode = \"shadow\"\non_error = \"skip\"\n",
                "rules[1].on_error",
                "never fails",
            ),
            ("mode = \"watch\"\n", "", "unknown variant `watch`"),
        ] {
            let text = format!(
                "{BASE}{}{}{}",
                rule("a", ""),
                rule("b", extra),
                rule("c", "mode = \"shadow\"\n")
            );
            let err = parse(&text).unwrap_err().to_string();
            assert!(
                err.contains(field) && err.contains(message),
                "{extra}: {err}"
            );
        }
    }

    #[test]
    fn http_is_local_only_on_a_loopback_host() {
        for local in [
            "http://localhost",
            "http://localhost:8080/",
            "http://127.0.0.1:3000/tenant",
            "http://[::1]",
            "http://[::1]:8443/x",
        ] {
            assert!(is_local_http(local), "{local}");
        }
        for remote in [
            "https://localhost",
            "http://example.com",
            "http://localhost.example.com/",
            "http://localhost@example.com/",
            "http://127.0.0.1.nip.io/",
            "http://[::1",
            "http://[::2]/",
            "http://[::1]x/",
            "http://localhost:/",
            "http://localhost:80x/",
        ] {
            assert!(!is_local_http(remote), "{remote}");
        }
    }

    #[test]
    fn a_parse_error_names_line_and_column_but_never_quotes_the_line() {
        let text = format!(
            "{BASE}\n[[rules]]\nname = \"r\"\nmodule = \"r.wasm\"\nsecrets = {{ API_KEY = \"sk_live_123\", N = 7 }}\n"
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(!err.contains("sk_live_123"), "{err}");
        assert!(
            err.contains("line 12, column 42") && err.contains("in `rules.secrets.N`"),
            "{err}"
        );
        // A secret written where a table belongs: serde's message would quote the string.
        let text = format!(
            "{BASE}\n[[rules]]\nname = \"r\"\nmodule = \"r.wasm\"\nsecrets = \"sk_live_\\\"123\"\n"
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            !err.contains("sk_live")
                && !err.contains("123")
                && err.contains("invalid type: a string"),
            "{err}"
        );
        let err = parse(&format!("{BASE}\nid_token_ttl = \"é\" + 1\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 9, column 20"), "{err}");
    }

    #[test]
    fn zero_in_the_top_level_limits_is_refused_even_where_every_rule_sets_its_own() {
        let rule = "[[rules]]\nname = \"r\"\nmodule = \"r.wasm\"\n[rules.limits]\nfuel = 5\n";
        let err = parse(&format!("{BASE}\n[limits]\nfuel = 0\n{rule}"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`limits.fuel`") && err.contains("greater than zero"),
            "{err}"
        );
        let err = parse(&format!("{BASE}\n[limits]\ntimeout_ms = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`limits.timeout_ms`"), "{err}");
    }

    #[test]
    fn rule_config_that_json_cannot_carry_is_refused_by_path() {
        let rule = "[[rules]]\nname = \"r\"\nmodule = \"r.wasm\"\n[rules.config]\n";
        for (config, field) in [
            ("since = 1979-05-27\n", "`rules[0].config.since`"),
            ("ratio = nan\n", "`rules[0].config.ratio`"),
            (
                "[rules.config.a]\nb = [1.0, -inf]\n",
                "`rules[0].config.a.b[1]`",
            ),
        ] {
            let err = parse(&format!("{BASE}\n{rule}{config}"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(field) && err.contains("JSON"),
                "{config}: {err}"
            );
        }
        assert!(parse(&format!("{BASE}\n{rule}ok = [1.5, \"1979-05-27\"]\n")).is_ok());
    }

    #[test]
    fn the_issuer_needs_a_host() {
        for bad in [
            "https://",
            "https:///x",
            "https://:443/",
            "https://user@login.example.com/",
            "https://login.example.com/?tenant=a",
            "https://login.example.com/#x",
        ] {
            let err = parse(&BASE.replace("https://login.example.com/", bad))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("`issuer`") && err.contains("with a host"),
                "{bad}: {err}"
            );
        }
        for good in [
            "https://login.example.com:8443/tenant",
            "http://[::1]:8080/",
        ] {
            assert!(
                parse(&BASE.replace("https://login.example.com/", good)).is_ok(),
                "{good}"
            );
        }
    }
}
