//! `capabilities`: the UI's "enabled actions", computed from the user's permissions, into the ID
//! token only.
//!
//! From the Auth0 community thread on frontends reading access tokens: the frontend must treat the
//! access token as opaque, yet it wants to hide buttons that would only earn an "Access denied".
//! An enabled action may need several permissions, so the mapping from permissions to actions
//! lives here, in one place, as configuration:
//!
//! ```toml
//! [rules.config]
//! namespace = "https://example.com"
//! capabilities = { "export-report" = ["read:reports", "export:reports"], "edit-user" = ["update:users"] }
//! ```
//!
//! A capability is enabled when the user holds every permission it lists. The ID token gets
//! `{namespace}/capabilities`, the sorted names of the enabled capabilities (an empty list when
//! none is). The access token is never touched: the API decides on permissions, not on UI hints.
//! A missing or malformed `capabilities` table fails the rule (and so the login) with a message
//! naming the key, rather than silently enabling nothing or everything.

use claimsmith_sdk::{Api, Event, Value};

/// Used when the rule's configuration names no `namespace`.
pub const DEFAULT_NAMESPACE: &str = "https://example.com";

/// Put the names of the capabilities whose permissions the user all holds into the ID token as
/// `{namespace}/capabilities`, sorted.
pub fn on_execute_post_login(event: &Event, api: &mut Api) {
    let namespace = event.config_str("namespace").unwrap_or(DEFAULT_NAMESPACE);
    let claim = format!("{}/capabilities", namespace.trim_end_matches('/'));
    let mut enabled: Vec<&str> = capabilities(event)
        .into_iter()
        .filter(|(_, required)| {
            required
                .iter()
                .all(|p| event.authorization.has_permission(p))
        })
        .map(|(name, _)| name)
        .collect();
    enabled.sort_unstable();
    api.id_token().set_custom_claim(claim, enabled);
}

/// The configured `capabilities`: capability name and the permissions it requires.
///
/// Panics with a message naming the key when the table is missing or is not an object of
/// non-empty string arrays: a capability listing no permissions would be enabled for everyone,
/// which is far more likely a typo than an intent.
fn capabilities(event: &Event) -> Vec<(&str, Vec<&str>)> {
    const EXPECTED: &str = "an object mapping capability names to arrays of permissions";
    let table = match event.config("capabilities") {
        Some(Value::Object(table)) => table,
        Some(other) => panic!("configuration `capabilities` must be {EXPECTED}, got {other}"),
        None => panic!("configuration `capabilities` is missing: it must be {EXPECTED}"),
    };
    table
        .iter()
        .map(|(name, required)| {
            let permissions: Option<Vec<&str>> = required
                .as_array()
                .and_then(|list| list.iter().map(Value::as_str).collect());
            match permissions {
                Some(permissions) if !permissions.is_empty() => (name.as_str(), permissions),
                Some(_) => panic!(
                    "configuration `capabilities.{name}` lists no permissions: it must be a \
                     non-empty array of permission names"
                ),
                None => panic!(
                    "configuration `capabilities.{name}` must be an array of permission names, \
                     got {required}"
                ),
            }
        })
        .collect()
}

claimsmith_sdk::export_rule!(
    on_execute_post_login,
    reads = [authorization, configuration]
);

#[cfg(test)]
mod tests {
    use super::*;
    use claimsmith_sdk::{TokenKind, json, testing};

    fn mapping() -> Value {
        json!({
            "export-report": ["read:reports", "export:reports"],
            "edit-user": ["update:users"],
            "delete-user": ["delete:users", "read:users"]
        })
    }

    #[test]
    fn a_capability_is_enabled_only_when_every_required_permission_is_held() {
        let event = testing::event(json!({
            "user": {"user_id": "auth0|1"},
            "authorization": {"permissions": ["update:users", "read:reports", "export:reports", "read:users"]},
            "resource_server": {"identifier": "https://api.example.com"},
            "configuration": {"namespace": "https://acme.test/", "capabilities": mapping()}
        }));
        let result = testing::run(RULE, &event);
        // delete-user needs delete:users too, which the user lacks.
        assert_eq!(
            result.id_token_claim("https://acme.test/capabilities"),
            Some(&json!(["edit-user", "export-report"]))
        );
    }

    #[test]
    fn one_missing_permission_disables_the_capability() {
        let event = testing::event(json!({
            "user": {"user_id": "auth0|2"},
            "authorization": {"permissions": ["read:reports"]},
            "configuration": {"capabilities": mapping()}
        }));
        let result = testing::run(RULE, &event);
        assert_eq!(
            result.id_token_claim("https://example.com/capabilities"),
            Some(&json!([]))
        );
    }

    #[test]
    fn the_access_token_is_never_touched() {
        let event = testing::event(json!({
            "user": {"user_id": "auth0|3"},
            "authorization": {"permissions": ["update:users"]},
            "resource_server": {"identifier": "https://api.example.com"},
            "configuration": {"capabilities": mapping()}
        }));
        let result = testing::run(RULE, &event);
        assert_eq!(result.commands.len(), 1);
        assert!(matches!(
            &result.commands[0],
            claimsmith_sdk::Command::SetClaim { token: TokenKind::IdToken, name, value }
                if name == "https://example.com/capabilities" && *value == json!(["edit-user"])
        ));
        assert_eq!(
            result.access_token_claim("https://example.com/capabilities"),
            None
        );
    }

    #[test]
    #[should_panic(expected = "configuration `capabilities` is missing")]
    fn a_missing_mapping_fails_the_rule() {
        let event = testing::event(json!({"user": {"user_id": "auth0|4"}}));
        testing::run(RULE, &event);
    }

    #[test]
    #[should_panic(expected = "configuration `capabilities` must be an object")]
    fn a_mapping_that_is_not_an_object_fails_the_rule() {
        let event = testing::event(json!({
            "user": {"user_id": "auth0|5"},
            "configuration": {"capabilities": ["export-report"]}
        }));
        testing::run(RULE, &event);
    }

    #[test]
    #[should_panic(expected = "configuration `capabilities.edit-user` must be an array")]
    fn permissions_that_are_not_strings_fail_the_rule() {
        let event = testing::event(json!({
            "user": {"user_id": "auth0|6"},
            "configuration": {"capabilities": {"edit-user": "update:users"}}
        }));
        testing::run(RULE, &event);
    }

    #[test]
    #[should_panic(expected = "configuration `capabilities.everything` lists no permissions")]
    fn a_capability_without_permissions_fails_the_rule_instead_of_enabling_for_everyone() {
        let event = testing::event(json!({
            "user": {"user_id": "auth0|7"},
            "configuration": {"capabilities": {"everything": []}}
        }));
        testing::run(RULE, &event);
    }
}
