//! `add-groups`: the user's groups into both tokens under the configured namespace, unless the
//! issuer already put that claim in the token.
//!
//! `event.user.groups` comes from Active Directory and other enterprise connections, or from an
//! issuer that keeps groups; `event.issuer_claims` holds what a hook-calling issuer already put
//! in each token. Both arrive in guest ABI version 3 (`docs/abi.md`), which this SDK builds.

use claimsmith_sdk::{Api, Event};

/// Used when the rule's configuration names no `namespace`.
pub const DEFAULT_NAMESPACE: &str = "https://example.com";

/// Put `event.user.groups` into each token as `{namespace}/groups`, where the issuer did not
/// already set that claim; nothing for a user without groups.
pub fn on_execute_post_login(event: &Event, api: &mut Api) {
    let groups = &event.user.groups;
    if groups.is_empty() {
        return;
    }
    let namespace = event.config_str("namespace").unwrap_or(DEFAULT_NAMESPACE);
    let claim = format!("{}/groups", namespace.trim_end_matches('/'));
    if !event.issuer_claims.id_token.contains_key(&claim) {
        api.id_token().set_custom_claim(claim.as_str(), groups);
    }
    if !event.issuer_claims.access_token.contains_key(&claim) {
        api.access_token().set_custom_claim(claim, groups);
    }
}

claimsmith_sdk::export_rule!(
    on_execute_post_login,
    reads = [user, issuer_claims, configuration]
);

#[cfg(test)]
mod tests {
    use super::*;
    use claimsmith_sdk::{json, testing};

    #[test]
    fn groups_go_into_both_tokens_under_the_configured_namespace() {
        let event = testing::event(json!({
            "user": {"user_id": "auth0|1", "groups": ["engineering", "admins"]},
            "configuration": {"namespace": "https://acme.test/"}
        }));
        let result = testing::run(RULE, &event);
        for claim in [
            result.id_token_claim("https://acme.test/groups"),
            result.access_token_claim("https://acme.test/groups"),
        ] {
            assert_eq!(claim, Some(&json!(["engineering", "admins"])));
        }
    }

    #[test]
    fn a_claim_the_issuer_already_set_is_left_alone() {
        let event = testing::event(json!({
            "user": {"user_id": "auth0|1", "groups": ["engineering"]},
            "issuer_claims": {"id_token": {"https://example.com/groups": ["from-the-issuer"]}}
        }));
        let result = testing::run(RULE, &event);
        assert_eq!(result.id_token_claim("https://example.com/groups"), None);
        assert_eq!(
            result.access_token_claim("https://example.com/groups"),
            Some(&json!(["engineering"]))
        );
    }

    #[test]
    fn a_user_without_groups_gets_no_claim() {
        let event = testing::event(json!({"user": {"user_id": "auth0|2"}}));
        let result = testing::run(RULE, &event);
        assert!(result.commands.is_empty());
    }
}
