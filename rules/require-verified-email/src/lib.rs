//! `require-verified-email`: refuse logins from users whose email address is not verified.
//!
//! The classic post-login gate: `if (!event.user.email_verified) api.access.deny(reason)`. A user
//! with no email address at all is refused too, since nothing about them can be verified.
//! Connections whose identity provider vouches for the user some other way (enterprise SAML, a
//! passwordless SMS connection) can be exempted by name:
//!
//! ```toml
//! [rules.config]
//! exempt_connections = ["acme-saml", "sms"]
//! reason = "Please verify your email address before logging in."
//! ```
//!
//! Both keys are optional. A key that is present with the wrong type fails the rule with a
//! message naming it, rather than letting unverified users in.

use claimsmith_sdk::{Api, Event, Value};

/// Used when the rule's configuration names no `reason`.
pub const DEFAULT_REASON: &str = "Please verify your email address before logging in.";

/// Deny the login when the user's email is missing or unverified, unless the connection is
/// listed in `exempt_connections`.
pub fn on_execute_post_login(event: &Event, api: &mut Api) {
    let reason = match event.config("reason") {
        None => DEFAULT_REASON,
        Some(Value::String(reason)) if !reason.trim().is_empty() => reason,
        Some(other) => panic!("configuration `reason` must be a non-empty string, got {other}"),
    };
    if exempt_connections(event).contains(&event.connection.name.as_str()) {
        return;
    }
    let has_email = event
        .user
        .email
        .as_deref()
        .is_some_and(|e| !e.trim().is_empty());
    if !has_email || !event.user.email_verified {
        api.access().deny(reason);
    }
}

/// The configured `exempt_connections`, empty when absent; panics naming the key when it is not
/// an array of strings.
fn exempt_connections(event: &Event) -> Vec<&str> {
    let Some(value) = event.config("exempt_connections") else {
        return Vec::new();
    };
    value
        .as_array()
        .and_then(|list| list.iter().map(Value::as_str).collect())
        .unwrap_or_else(|| {
            panic!("configuration `exempt_connections` must be an array of connection names, got {value}")
        })
}

claimsmith_sdk::export_rule!(
    on_execute_post_login,
    reads = [user, connection, configuration]
);

#[cfg(test)]
mod tests {
    use super::*;
    use claimsmith_sdk::{json, testing};

    #[test]
    fn a_verified_email_passes() {
        let event = testing::event(json!({
            "user": {"user_id": "auth0|1", "email": "ada@example.com", "email_verified": true},
            "connection": {"name": "Username-Password-Authentication"}
        }));
        let result = testing::run(RULE, &event);
        assert_eq!(result.denied(), None);
        assert!(result.commands.is_empty());
    }

    #[test]
    fn an_unverified_email_is_denied_with_the_default_reason() {
        let event = testing::event(json!({
            "user": {"user_id": "auth0|2", "email": "bob@example.com", "email_verified": false},
            "connection": {"name": "Username-Password-Authentication"}
        }));
        let result = testing::run(RULE, &event);
        assert_eq!(result.denied(), Some(DEFAULT_REASON));
    }

    #[test]
    fn the_reason_is_configurable() {
        let event = testing::event(json!({
            "user": {"user_id": "auth0|3", "email": "bob@example.com"},
            "configuration": {"reason": "Check your inbox first."}
        }));
        let result = testing::run(RULE, &event);
        assert_eq!(result.denied(), Some("Check your inbox first."));
    }

    #[test]
    fn a_user_without_an_email_is_denied_even_if_marked_verified() {
        for email in [json!(null), json!(""), json!("  ")] {
            let event = testing::event(json!({
                "user": {"user_id": "auth0|4", "email": email, "email_verified": true},
                "connection": {"name": "Username-Password-Authentication"}
            }));
            let result = testing::run(RULE, &event);
            assert_eq!(result.denied(), Some(DEFAULT_REASON), "email {email}");
        }
    }

    #[test]
    fn an_exempt_connection_skips_the_check_but_only_that_connection() {
        let config = json!({"exempt_connections": ["acme-saml", "sms"]});
        let exempt = testing::event(json!({
            "user": {"user_id": "samlp|acme|5"},
            "connection": {"name": "acme-saml", "strategy": "samlp"},
            "configuration": config
        }));
        assert_eq!(testing::run(RULE, &exempt).denied(), None);

        let not_exempt = testing::event(json!({
            "user": {"user_id": "auth0|5", "email": "eve@example.com", "email_verified": false},
            "connection": {"name": "Username-Password-Authentication"},
            "configuration": config
        }));
        assert_eq!(
            testing::run(RULE, &not_exempt).denied(),
            Some(DEFAULT_REASON)
        );
    }

    #[test]
    #[should_panic(expected = "configuration `exempt_connections` must be an array")]
    fn exempt_connections_as_a_string_fails_the_rule() {
        let event = testing::event(json!({
            "user": {"user_id": "auth0|6", "email": "a@example.com", "email_verified": true},
            "configuration": {"exempt_connections": "acme-saml"}
        }));
        testing::run(RULE, &event);
    }

    #[test]
    #[should_panic(expected = "configuration `reason` must be a non-empty string")]
    fn a_reason_that_is_not_a_string_fails_the_rule() {
        let event = testing::event(json!({
            "user": {"user_id": "auth0|7", "email": "a@example.com", "email_verified": true},
            "configuration": {"reason": 42}
        }));
        testing::run(RULE, &event);
    }
}
