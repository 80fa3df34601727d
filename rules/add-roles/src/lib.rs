//! `add-roles`: the user's roles into both tokens under the configured namespace.
//!
//! The post-login action from the Auth0 community thread, as a claimsmith rule:
//! `api.idToken.setCustomClaim(namespace + '/roles', event.authorization.roles)` and the same on
//! the access token, so the client can show role-based UI and the API can decide on roles.

use claimsmith_sdk::{Api, Event};

/// Used when the rule's configuration names no `namespace`.
pub const DEFAULT_NAMESPACE: &str = "https://example.com";

/// Put `event.authorization.roles` into both tokens as `{namespace}/roles`.
pub fn on_execute_post_login(event: &Event, api: &mut Api) {
    let namespace = event.config_str("namespace").unwrap_or(DEFAULT_NAMESPACE);
    let claim = format!("{}/roles", namespace.trim_end_matches('/'));
    let roles = &event.authorization.roles;
    api.id_token().set_custom_claim(claim.as_str(), roles);
    api.access_token().set_custom_claim(claim, roles);
}

claimsmith_sdk::export_rule!(
    on_execute_post_login,
    reads = [authorization, configuration]
);

#[cfg(test)]
mod tests {
    use super::*;
    use claimsmith_sdk::{json, testing};

    #[test]
    fn roles_go_into_both_tokens_under_the_configured_namespace() {
        let event = testing::event(json!({
            "user": {"user_id": "auth0|1"},
            "authorization": {"roles": ["admin", "editor"]},
            "configuration": {"namespace": "https://acme.test/"}
        }));
        let result = testing::run(RULE, &event);
        assert_eq!(
            result.id_token_claim("https://acme.test/roles"),
            Some(&json!(["admin", "editor"]))
        );
        assert_eq!(
            result.access_token_claim("https://acme.test/roles"),
            Some(&json!(["admin", "editor"]))
        );
    }

    #[test]
    fn a_user_without_roles_gets_an_empty_list_not_a_missing_claim() {
        let event = testing::event(json!({"user": {"user_id": "auth0|2"}}));
        let result = testing::run(RULE, &event);
        assert_eq!(
            result.id_token_claim("https://example.com/roles"),
            Some(&json!([]))
        );
    }
}
