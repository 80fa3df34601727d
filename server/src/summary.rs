//! What `claimsmith check` says of the `[server]` table: each hook's path, format,
//! authentication and rules, once the table has passed every check `serve` makes.

use claimsmith::{Config, ConfigError};

use crate::config::ServerConfig;

/// One hook as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSummary {
    /// Its path.
    pub path: String,
    /// Its format (`claimsmith`, `hydra`, ...).
    pub format: &'static str,
    /// How its caller authenticates (`api_key`, `standard_webhooks`, ...).
    pub auth: &'static str,
    /// The rules it runs, in order.
    pub rules: Vec<String>,
}

/// Check the `[server]` table of the file `config` was loaded from, as `serve` would (its
/// secrets read from the environment): its hooks, or `None` when the file has no `[server]`.
pub fn check(config: &Config) -> Result<Option<Vec<HookSummary>>, ConfigError> {
    let text = std::fs::read_to_string(&config.path).map_err(|source| ConfigError::Read {
        path: config.path.clone(),
        source,
    })?;
    if !has_server_table(&text) {
        return Ok(None);
    }
    let server = ServerConfig::parse(&text, config, None)?;
    let names = |rules: &Option<Vec<usize>>| -> Vec<String> {
        let every: Vec<usize> = (0..config.rules.len()).collect();
        rules
            .as_ref()
            .unwrap_or(&every)
            .iter()
            .map(|&i| config.rules[i].spec.name.clone())
            .collect()
    };
    Ok(Some(
        server
            .hooks
            .iter()
            .map(|hook| HookSummary {
                path: hook.path.clone(),
                format: hook.format.name(),
                auth: hook.auth.kind(),
                rules: names(&hook.rules),
            })
            .collect(),
    ))
}

fn has_server_table(text: &str) -> bool {
    text.parse::<toml::Table>()
        .map(|table| table.contains_key("server"))
        .unwrap_or(true)
}
