//! `add-roles-candidate`: `add-roles` with one role left out of the tokens, the example of a
//! candidate run beside the rule it would replace (`mode = "shadow"`, `shadows = "add-roles"`;
//! docs/deploy.md, "Safe rollout").
//!
//! Configuration: `namespace` as for `add-roles`, and `drop`, the role kept out of the tokens.

use claimsmith_sdk::{Api, Event};

/// Used when the rule's configuration names no `namespace`.
pub const DEFAULT_NAMESPACE: &str = "https://example.com";

/// Put `event.authorization.roles`, less the configured `drop` role, into both tokens as
/// `{namespace}/roles`.
pub fn on_execute_post_login(event: &Event, api: &mut Api) {
    let namespace = event.config_str("namespace").unwrap_or(DEFAULT_NAMESPACE);
    let claim = format!("{}/roles", namespace.trim_end_matches('/'));
    let dropped = event.config_str("drop");
    let roles: Vec<&String> = event
        .authorization
        .roles
        .iter()
        .filter(|role| Some(role.as_str()) != dropped)
        .collect();
    api.id_token().set_custom_claim(claim.as_str(), &roles);
    api.access_token().set_custom_claim(claim, &roles);
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
    fn the_dropped_role_stays_out_of_both_tokens() {
        let event = testing::event(json!({
            "user": {"user_id": "auth0|1"},
            "authorization": {"roles": ["admin", "editor"]},
            "configuration": {"drop": "editor"}
        }));
        let result = testing::run(RULE, &event);
        assert_eq!(
            result.id_token_claim("https://example.com/roles"),
            Some(&json!(["admin"]))
        );
        assert_eq!(
            result.access_token_claim("https://example.com/roles"),
            Some(&json!(["admin"]))
        );
    }
}
