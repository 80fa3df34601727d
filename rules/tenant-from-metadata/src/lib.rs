//! `tenant-from-metadata`: the user's tenant, from `app_metadata`, into the access token.
//!
//! Multi-tenant APIs scope every query by tenant. Putting `event.user.app_metadata.tenant` into
//! the access token as `{namespace}/tenant` lets the API decide without calling back to the
//! authorization server. `app_metadata` is the right source: the user cannot change it.
//!
//! ```toml
//! [rules.config]
//! namespace = "https://example.com"
//! required = true
//! ```
//!
//! With `required` (default `false`), a user without a tenant is refused with
//! "No tenant is assigned to this account."; otherwise the claim is left out and a warning is
//! logged. A tenant that is not a non-empty string counts as no tenant. Only the access token gets
//! the claim, and only when one is issued (the login names a `resource_server`).

use claimsmith_sdk::{Api, Event, Value};

/// Used when the rule's configuration names no `namespace`.
pub const DEFAULT_NAMESPACE: &str = "https://example.com";

/// The reason given when `required` is set and the user has no tenant.
pub const NO_TENANT_REASON: &str = "No tenant is assigned to this account.";

/// Put `event.user.app_metadata.tenant` into the access token as `{namespace}/tenant`.
pub fn on_execute_post_login(event: &Event, api: &mut Api) {
    let namespace = event.config_str("namespace").unwrap_or(DEFAULT_NAMESPACE);
    let required = match event.config("required") {
        None => false,
        Some(Value::Bool(flag)) => *flag,
        Some(other) => panic!("configuration `required` must be a boolean, got {other}"),
    };
    let tenant = match event.user.app_metadata.get("tenant") {
        Some(Value::String(tenant)) if !tenant.trim().is_empty() => tenant.as_str(),
        found => {
            if required {
                api.access().deny(NO_TENANT_REASON);
            } else {
                let what = match found {
                    None | Some(Value::Null) => "no app_metadata.tenant".to_string(),
                    Some(other) => {
                        format!("app_metadata.tenant is not a non-empty string ({other})")
                    }
                };
                api.log().warn(format!(
                    "user {}: {what}; no tenant claim set",
                    event.user.user_id
                ));
            }
            return;
        }
    };
    if event.resource_server.is_some() {
        let claim = format!("{}/tenant", namespace.trim_end_matches('/'));
        api.access_token().set_custom_claim(claim, tenant);
    }
}

claimsmith_sdk::export_rule!(
    on_execute_post_login,
    reads = [user, resource_server, configuration]
);

#[cfg(test)]
mod tests {
    use super::*;
    use claimsmith_sdk::{Command, LogLevel, TokenKind, json, testing};

    fn event_with(app_metadata: Value, configuration: Value) -> Event {
        testing::event(json!({
            "user": {"user_id": "auth0|1", "app_metadata": app_metadata},
            "client": {"client_id": "spa-client"},
            "resource_server": {"identifier": "https://api.example.com"},
            "configuration": configuration
        }))
    }

    #[test]
    fn the_tenant_goes_into_the_access_token_only() {
        let event = event_with(
            json!({"tenant": "acme", "plan": "pro"}),
            json!({"namespace": "https://acme.test/"}),
        );
        let result = testing::run(RULE, &event);
        assert_eq!(
            result.access_token_claim("https://acme.test/tenant"),
            Some(&json!("acme"))
        );
        assert_eq!(result.id_token_claim("https://acme.test/tenant"), None);
        assert_eq!(result.denied(), None);
    }

    #[test]
    fn without_a_tenant_the_default_is_a_warning_and_no_claim() {
        let event = event_with(json!({"plan": "free"}), json!({}));
        let result = testing::run(RULE, &event);
        assert_eq!(result.denied(), None);
        assert_eq!(
            result.access_token_claim("https://example.com/tenant"),
            None
        );
        assert!(matches!(
            result.commands.as_slice(),
            [Command::Log { level: LogLevel::Warn, message }] if message.contains("auth0|1")
        ));
    }

    #[test]
    fn required_denies_a_user_without_a_tenant() {
        for metadata in [
            json!({}),
            json!({"tenant": ""}),
            json!({"tenant": 7}),
            json!({"tenant": null}),
        ] {
            let event = event_with(metadata.clone(), json!({"required": true}));
            let result = testing::run(RULE, &event);
            assert_eq!(
                result.denied(),
                Some(NO_TENANT_REASON),
                "app_metadata {metadata}"
            );
            assert_eq!(
                result.access_token_claim("https://example.com/tenant"),
                None
            );
        }
    }

    #[test]
    fn required_lets_a_user_with_a_tenant_through() {
        let event = event_with(json!({"tenant": "globex"}), json!({"required": true}));
        let result = testing::run(RULE, &event);
        assert_eq!(result.denied(), None);
        assert_eq!(
            result.claim(TokenKind::AccessToken, "https://example.com/tenant"),
            Some(&json!("globex"))
        );
    }

    #[test]
    fn without_an_api_no_claim_is_set() {
        let mut event = event_with(json!({"tenant": "acme"}), json!({}));
        event.resource_server = None;
        let result = testing::run(RULE, &event);
        assert!(result.commands.is_empty());
    }

    #[test]
    #[should_panic(expected = "configuration `required` must be a boolean")]
    fn required_as_a_string_fails_the_rule() {
        let event = event_with(json!({"tenant": "acme"}), json!({"required": "true"}));
        testing::run(RULE, &event);
    }
}
