//! `session-timeout`: session lifetimes from metadata (the Auth0 action "session timeouts from
//! metadata"): end the session a set time after the login, end it when idle, and refuse a login
//! whose session is older than allowed.
//!
//! Hours come from `app_metadata.session_timeout_hours` / `app_metadata.idle_timeout_hours` (per
//! user), else the configuration's `session_timeout_hours` / `idle_timeout_hours`. With
//! `max_session_age_hours` (configuration), a login in a session created longer ago than that is
//! denied: the user must sign in again. All times are from `event.login_time` (ABI version 4).

use claimsmith_sdk::{Api, Event};

const HOUR_MS: u64 = 3_600_000;

/// The hours under `key`: the user's `app_metadata` first, then the configuration.
fn hours(event: &Event, key: &str) -> Option<f64> {
    event
        .user
        .app_metadata
        .get(key)
        .or_else(|| event.config(key))
        .and_then(|v| v.as_f64())
        .filter(|h| h.is_finite() && *h > 0.0)
}

/// Deny a login in a session older than `max_session_age_hours`; otherwise set the session's
/// expiry and idle expiry from the login's time.
pub fn on_execute_post_login(event: &Event, api: &mut Api) {
    if let (Some(max), Some(created)) = (
        hours(event, "max_session_age_hours"),
        event.session.as_ref().and_then(|s| s.created_at.as_deref()),
    ) && event
        .ms_since(created)
        .is_some_and(|age| age as f64 > max * HOUR_MS as f64)
    {
        api.access()
            .deny("Your session is too old: please sign in again.");
        return;
    }
    if let Some(h) = hours(event, "session_timeout_hours") {
        api.session()
            .set_expires_at(event.login_time + (h * HOUR_MS as f64) as u64);
    }
    if let Some(h) = hours(event, "idle_timeout_hours") {
        api.session()
            .set_idle_expires_at(event.login_time + (h * HOUR_MS as f64) as u64);
    }
}

claimsmith_sdk::export_rule!(
    on_execute_post_login,
    reads = [user, session, configuration]
);

#[cfg(test)]
mod tests {
    use super::*;
    use claimsmith_sdk::{Command, json, testing};

    const LOGIN: u64 = 1_796_405_400_000; // 2026-12-04T17:30:00Z

    #[test]
    fn the_users_timeout_wins_over_the_configuration() {
        let event = testing::event(json!({
            "login_time": LOGIN,
            "user": {"app_metadata": {"session_timeout_hours": 8}},
            "configuration": {"session_timeout_hours": 24, "idle_timeout_hours": 0.5}
        }));
        let result = testing::run(RULE, &event);
        assert_eq!(
            result.commands,
            [
                Command::SetSessionExpiresAt {
                    expires_at: LOGIN + 8 * HOUR_MS
                },
                Command::SetSessionIdleExpiresAt {
                    idle_expires_at: LOGIN + HOUR_MS / 2
                }
            ]
        );
    }

    #[test]
    fn an_old_session_is_denied_and_a_young_one_is_not() {
        let event = |created: &str| {
            testing::event(json!({
                "login_time": LOGIN,
                "session": {"id": "s", "created_at": created},
                "configuration": {"max_session_age_hours": 12}
            }))
        };
        let old = testing::run(RULE, &event("2026-12-03T17:29:59Z"));
        assert!(old.denied().is_some());
        let young = testing::run(RULE, &event("2026-12-04T06:00:00Z"));
        assert!(young.denied().is_none() && young.commands.is_empty());
    }
}
