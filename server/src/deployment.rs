//! One loaded config, as the server answers with it: the issuer (rules, keys, claim policy) and
//! its hooks by path. Built whole before it serves; a reload builds a new one beside it and
//! swaps it in only once all of it loaded, so a request runs start to end on one deployment.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use claimsmith::{Config, ConfigError, Issuer};
use claimsmith_engine::RuleMode;

use crate::config::{HookConfig, ServerConfig};

/// A config loaded and ready to serve.
pub(crate) struct Deployment {
    pub issuer: Issuer,
    pub server: ServerConfig,
    /// Hook path → index in `server.hooks`.
    by_path: HashMap<String, usize>,
    /// Per hook (as `server.hooks`): its rules' deadlines added up (shadow rules included), or
    /// `None` when that is over the request's, so they never run on the I/O thread (`answer`).
    worst: Vec<Option<Duration>>,
}

impl Deployment {
    /// Load the config at `path`: the issuer's part (keys, rules, compiled modules) and the
    /// `[server]` table, each checked.
    /// `thread_stack`: for a reload, the stack the server's threads were made with; a config
    /// whose `stack_bytes` needs more is refused before its rules are loaded.
    pub(crate) fn load(
        path: &Path,
        listen: Option<SocketAddr>,
        thread_stack: Option<usize>,
    ) -> Result<Deployment, ConfigError> {
        let config = Config::load(path)?;
        if let Some(threads) = thread_stack
            && config.sandbox.thread_stack_bytes() > threads
        {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                field: "limits.stack_bytes".into(),
                message: format!(
                    "{} needs threads of {} bytes of stack, and the server's were started with {threads}: a stack_bytes this large takes effect only at a restart",
                    config.sandbox.max_wasm_stack,
                    config.sandbox.thread_stack_bytes()
                ),
            });
        }
        let server = ServerConfig::load(&config, listen)?;
        let issuer = Issuer::from_config(config)?;
        let by_path = server
            .hooks
            .iter()
            .enumerate()
            .map(|(i, hook)| (hook.path.clone(), i))
            .collect();
        let rules = issuer.pipeline().rules();
        let worst = server
            .hooks
            .iter()
            .map(|hook| {
                // A subset's logins may run the shadow rules too: count them all.
                let worst: Duration = rules
                    .iter()
                    .enumerate()
                    .filter(|(i, rule)| {
                        hook.rules.as_ref().is_none_or(|chosen| chosen.contains(i))
                            || rule.mode() == RuleMode::Shadow
                    })
                    .map(|(_, rule)| rule.limits().timeout)
                    .sum();
                (worst <= server.request_timeout).then_some(worst)
            })
            .collect();
        Ok(Deployment {
            issuer,
            server,
            by_path,
            worst,
        })
    }

    /// This deployment as served on `address`, the socket the server listens on already
    /// ([`ServerConfig::served_on`]): what a reload swaps in.
    pub(crate) fn served_on(
        mut self,
        address: SocketAddr,
        path: &Path,
    ) -> Result<Self, ConfigError> {
        self.server = self.server.served_on(address, path)?;
        Ok(self)
    }

    /// Whether `hook`'s rules may run on the thread that read the request, with `left` of the
    /// request's deadline to go: only when their deadlines add up to no more than that, so that
    /// it still answers in time, and to no more than [`INLINE_AT_MOST`], so that a looping rule
    /// holds an I/O thread (and whatever tokio queued on it) only briefly.
    pub(crate) fn runs_inline(&self, hook: &HookConfig, left: Duration) -> bool {
        self.by_path
            .get(&hook.path)
            .and_then(|&i| self.worst[i])
            .is_some_and(|worst| worst <= left && worst <= INLINE_AT_MOST)
    }

    /// The hook at `path`, if any.
    pub(crate) fn hook(&self, path: &str) -> Option<&HookConfig> {
        self.by_path.get(path).map(|&i| &self.server.hooks[i])
    }
}

/// The longest the rules of one login may hold an I/O thread: rules whose deadlines add up to
/// more run on a thread of their own. Rules take microseconds; the default deadline is 50 ms.
pub(crate) const INLINE_AT_MOST: Duration = Duration::from_secs(1);

/// The deployment now serving; swapped whole on reload.
pub(crate) struct Current(RwLock<Arc<Deployment>>);

impl Current {
    pub(crate) fn new(deployment: Deployment) -> Current {
        Current(RwLock::new(Arc::new(deployment)))
    }

    /// The deployment a new request runs on, to its end.
    pub(crate) fn get(&self) -> Arc<Deployment> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Serve `next` from now on; requests already running finish on the one they started on.
    pub(crate) fn swap(&self, next: Deployment) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
    }
}
