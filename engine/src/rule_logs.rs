//! A rule's log lines on their way to `tracing` (target `claimsmith::rule`, field `rule`) and
//! into the outcome: secret values redacted, capped at the rule's log limit with a marker for
//! what was cut.

use crate::claim_policy::ClaimPolicy;
use crate::outcome::RuleLog;
use crate::rule::Rule;
use claimsmith_sdk::LogLevel;

/// A rule's log lines on their way to `tracing` and the outcome: secrets redacted, capped at the
/// rule's log limit.
pub(crate) struct LogSink<'a> {
    rule: &'a Rule,
    policy: &'a ClaimPolicy,
    out: &'a mut Vec<RuleLog>,
    used: usize,
    pub(crate) dropped: usize,
}

impl<'a> LogSink<'a> {
    pub(crate) fn new(rule: &'a Rule, policy: &'a ClaimPolicy, out: &'a mut Vec<RuleLog>) -> Self {
        LogSink {
            rule,
            policy,
            out,
            used: 0,
            dropped: 0,
        }
    }

    pub(crate) fn push(&mut self, level: LogLevel, message: &str) {
        let budget = self.rule.limits.log_bytes.saturating_sub(self.used);
        let mut message = self.policy.redact(message);
        if message.len() > budget {
            self.dropped += message.len() - budget;
            let mut cut = budget;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        if message.is_empty() {
            return;
        }
        self.used += message.len();
        emit(&self.rule.name, level, &message);
        self.out.push(RuleLog {
            rule: self.rule.name.clone(),
            level,
            message,
        });
    }

    pub(crate) fn finish(self) {
        if self.dropped > 0 {
            let message = format!(
                "[{} log bytes dropped: over the log limit of {} bytes]",
                self.dropped, self.rule.limits.log_bytes
            );
            emit(&self.rule.name, LogLevel::Warn, &message);
            self.out.push(RuleLog {
                rule: self.rule.name.clone(),
                level: LogLevel::Warn,
                message,
            });
        }
    }
}

fn emit(rule: &str, level: LogLevel, message: &str) {
    match level {
        LogLevel::Trace => tracing::trace!(target: "claimsmith::rule", rule, "{message}"),
        LogLevel::Debug => tracing::debug!(target: "claimsmith::rule", rule, "{message}"),
        LogLevel::Info => tracing::info!(target: "claimsmith::rule", rule, "{message}"),
        LogLevel::Warn => tracing::warn!(target: "claimsmith::rule", rule, "{message}"),
        LogLevel::Error => tracing::error!(target: "claimsmith::rule", rule, "{message}"),
    }
}
