//! `weekday-only`: refuse logins on Saturdays and Sundays (the Auth0 action "allow access only
//! on weekdays"), in UTC or in the UTC offset the configuration names.
//!
//! The time is the login's (`event.login_time`, guest ABI version 4): a module has no clock, and
//! every rule of a login sees the same instant, so fixtures that pin it test the same any day.
//!
//! Configuration: `utc_offset_minutes` (a number, default 0: UTC), and `reason` (the denial's
//! text, default "Logins are allowed on weekdays only.").

use claimsmith_sdk::{Api, Event};

/// The denial's text when the configuration gives none.
pub const DEFAULT_REASON: &str = "Logins are allowed on weekdays only.";

/// Deny the login if, at the configured offset, it happens on a Saturday or a Sunday.
pub fn on_execute_post_login(event: &Event, api: &mut Api) {
    let offset = event
        .config("utc_offset_minutes")
        .and_then(|v| v.as_i64())
        .unwrap_or(0)
        .clamp(-18 * 60, 18 * 60) as i32;
    let day = event.login_weekday(offset);
    if day.is_weekend() {
        let reason = event.config_str("reason").unwrap_or(DEFAULT_REASON);
        api.log().info(format!("login on a {}: denied", day.name()));
        api.access().deny(reason);
    }
}

claimsmith_sdk::export_rule!(on_execute_post_login, reads = [configuration]);

#[cfg(test)]
mod tests {
    use super::*;
    use claimsmith_sdk::{json, testing};

    /// Friday 2026-12-04 23:30 UTC.
    const FRIDAY_LATE: u64 = 1_796_427_000_000;

    #[test]
    fn a_weekday_login_passes_and_a_weekend_one_is_denied() {
        let friday = testing::event(json!({"login_time": FRIDAY_LATE}));
        assert_eq!(testing::run(RULE, &friday).denied(), None);
        let saturday = testing::event(json!({"login_time": FRIDAY_LATE + 3_600_000}));
        assert_eq!(testing::run(RULE, &saturday).denied(), Some(DEFAULT_REASON));
    }

    #[test]
    fn the_configured_offset_moves_the_day() {
        // Already Saturday in UTC+01:00.
        let event = testing::event(json!({
            "login_time": FRIDAY_LATE,
            "configuration": {"utc_offset_minutes": 60, "reason": "closed"}
        }));
        assert_eq!(testing::run(RULE, &event).denied(), Some("closed"));
        // Still Friday in UTC−05:00 an hour later.
        let event = testing::event(json!({
            "login_time": FRIDAY_LATE + 3_600_000,
            "configuration": {"utc_offset_minutes": -300}
        }));
        assert_eq!(testing::run(RULE, &event).denied(), None);
    }
}
