//! `scopes-from-roles`: grant access token scopes by role.
//!
//! Scopes say what the application may do on the user's behalf; roles say who the user is. This
//! rule maps the one to the other, so the API checks plain scopes:
//!
//! ```toml
//! [rules.config]
//! scopes_by_role = { admin = ["read:reports", "write:reports", "delete:users"], viewer = ["read:reports"] }
//! remove_unlisted = true
//! ```
//!
//! Every scope a role of the user grants is added once, in sorted order. With `remove_unlisted`
//! (default `false`), scopes the client requested that none of the user's roles grants are taken
//! away again, except the OpenID Connect scopes `openid`, `profile`, `email` and `offline_access`.
//! Without an API (`resource_server`) no access token is issued and the rule records nothing.
//! A missing or malformed key fails the rule with a message naming it.

use std::collections::BTreeSet;

use claimsmith_sdk::{Api, Event, Value};

/// Requested scopes `remove_unlisted` never takes away: they concern the ID token and the
/// session, not the API.
pub const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Add the scopes the user's roles grant; with `remove_unlisted`, remove requested scopes no role
/// of the user grants (OIDC scopes excepted).
pub fn on_execute_post_login(event: &Event, api: &mut Api) {
    let scopes_by_role = scopes_by_role(event);
    let remove_unlisted = match event.config("remove_unlisted") {
        None => false,
        Some(Value::Bool(flag)) => *flag,
        Some(other) => panic!("configuration `remove_unlisted` must be a boolean, got {other}"),
    };
    if event.resource_server.is_none() {
        api.log()
            .debug("no resource_server: no access token to grant scopes on");
        return;
    }

    let granted: BTreeSet<&str> = event
        .authorization
        .roles
        .iter()
        .filter_map(|role| scopes_by_role.iter().find(|(r, _)| r == role))
        .flat_map(|(_, scopes)| scopes.iter().copied())
        .collect();
    let mut token = api.access_token();
    for scope in &granted {
        token.add_scope(*scope);
    }
    if remove_unlisted {
        let mut removed = BTreeSet::new();
        for scope in event.transaction.scopes() {
            if !granted.contains(scope) && !OIDC_SCOPES.contains(&scope) && removed.insert(scope) {
                token.remove_scope(scope);
            }
        }
    }
}

/// The configured `scopes_by_role`: role name and the scopes it grants.
///
/// Panics with a message naming the key when it is missing or not an object of string arrays.
fn scopes_by_role(event: &Event) -> Vec<(&str, Vec<&str>)> {
    const EXPECTED: &str = "an object mapping role names to arrays of scopes";
    let table = match event.config("scopes_by_role") {
        Some(Value::Object(table)) => table,
        Some(other) => panic!("configuration `scopes_by_role` must be {EXPECTED}, got {other}"),
        None => panic!("configuration `scopes_by_role` is missing: it must be {EXPECTED}"),
    };
    table
        .iter()
        .map(|(role, scopes)| {
            let list: Option<Vec<&str>> = scopes
                .as_array()
                .and_then(|list| list.iter().map(Value::as_str).collect());
            match list {
                Some(list) => (role.as_str(), list),
                None => panic!(
                    "configuration `scopes_by_role.{role}` must be an array of scopes, got {scopes}"
                ),
            }
        })
        .collect()
}

claimsmith_sdk::export_rule!(
    on_execute_post_login,
    reads = [authorization, transaction, resource_server, configuration]
);

#[cfg(test)]
mod tests {
    use super::*;
    use claimsmith_sdk::{json, testing};

    fn event_with(roles: Value, requested: Value, configuration: Value) -> Event {
        testing::event(json!({
            "user": {"user_id": "auth0|1"},
            "client": {"client_id": "spa-client"},
            "authorization": {"roles": roles},
            "transaction": {"requested_scopes": requested},
            "resource_server": {"identifier": "https://api.example.com"},
            "configuration": configuration
        }))
    }

    fn mapping() -> Value {
        json!({
            "admin": ["write:reports", "read:reports", "delete:users"],
            "editor": ["write:reports", "read:reports"],
            "viewer": ["read:reports"]
        })
    }

    #[test]
    fn scopes_of_all_roles_are_added_once_in_sorted_order() {
        let event = event_with(
            json!(["editor", "admin", "unknown-role"]),
            json!(["openid"]),
            json!({"scopes_by_role": mapping()}),
        );
        let result = testing::run(RULE, &event);
        assert_eq!(
            result.scopes_added(),
            ["delete:users", "read:reports", "write:reports"]
        );
        let adds = result
            .commands
            .iter()
            .filter(|c| matches!(c, claimsmith_sdk::Command::AddScope { .. }))
            .count();
        assert_eq!(adds, 3, "each scope is added exactly once");
        assert!(
            result.scopes_removed().is_empty(),
            "remove_unlisted defaults to false"
        );
    }

    #[test]
    fn remove_unlisted_takes_away_ungranted_requested_scopes_but_keeps_oidc_ones() {
        let event = event_with(
            json!(["viewer"]),
            json!([
                "openid",
                "profile",
                "email",
                "offline_access",
                "read:reports",
                "delete:users"
            ]),
            json!({"scopes_by_role": mapping(), "remove_unlisted": true}),
        );
        let result = testing::run(RULE, &event);
        assert_eq!(result.scopes_added(), ["read:reports"]);
        assert_eq!(result.scopes_removed(), ["delete:users"]);
    }

    #[test]
    fn scopes_requested_together_in_one_element_are_each_kept_or_removed() {
        let event = event_with(
            json!(["viewer"]),
            json!(["openid profile", "read:reports delete:users"]),
            json!({"scopes_by_role": mapping(), "remove_unlisted": true}),
        );
        let result = testing::run(RULE, &event);
        assert_eq!(result.scopes_removed(), ["delete:users"]);
    }

    #[test]
    fn a_scope_granted_only_to_a_role_the_user_lacks_is_removed() {
        let event = event_with(
            json!([]),
            json!(["openid", "write:reports", "write:reports"]),
            json!({"scopes_by_role": mapping(), "remove_unlisted": true}),
        );
        let result = testing::run(RULE, &event);
        assert!(result.scopes_added().is_empty());
        assert_eq!(result.scopes_removed(), ["write:reports"]);
    }

    #[test]
    fn without_an_api_nothing_is_granted() {
        let mut event = event_with(
            json!(["admin"]),
            json!(["openid"]),
            json!({"scopes_by_role": mapping()}),
        );
        event.resource_server = None;
        let result = testing::run(RULE, &event);
        assert!(result.scopes_added().is_empty());
        assert!(result.scopes_removed().is_empty());
    }

    #[test]
    #[should_panic(expected = "configuration `scopes_by_role` is missing")]
    fn a_missing_mapping_fails_the_rule() {
        let event = event_with(json!(["admin"]), json!([]), json!({}));
        testing::run(RULE, &event);
    }

    #[test]
    #[should_panic(expected = "configuration `scopes_by_role.admin` must be an array of scopes")]
    fn a_role_mapped_to_a_string_fails_the_rule() {
        let event = event_with(
            json!(["admin"]),
            json!([]),
            json!({"scopes_by_role": {"admin": "read:reports"}}),
        );
        testing::run(RULE, &event);
    }

    #[test]
    #[should_panic(expected = "configuration `remove_unlisted` must be a boolean")]
    fn remove_unlisted_as_a_string_fails_the_rule() {
        let event = event_with(
            json!(["admin"]),
            json!([]),
            json!({"scopes_by_role": mapping(), "remove_unlisted": "yes"}),
        );
        testing::run(RULE, &event);
    }
}
