//! The native harness: run a rule function on an [`Event`] without wasm, for `cargo test`.

use crate::{Api, Event, ExportedRule, Reads, RuleResult};

/// Run an exported rule (the `RULE` that [`export_rule!`](crate::export_rule) defines) on
/// `event` natively and return what it decided. The rule sees the members of `event` it
/// declares it reads, and every other member as empty, exactly as the host hands them to its
/// module: a test that needs a member the rule forgot to declare fails here.
///
/// ```
/// use claimsmith_sdk::{Api, Event};
/// fn rule(event: &Event, api: &mut Api) {
///     if event.user.email_verified {
///         api.access_token().add_scope("read");
///     }
/// }
/// claimsmith_sdk::export_rule!(rule, reads = [authorization]);
///
/// let event = claimsmith_sdk::testing::event(serde_json::json!({
///     "user": {"user_id": "u1", "email_verified": true}
/// }));
/// // `user` is not declared: the rule sees an empty user, as its module would.
/// assert!(claimsmith_sdk::testing::run(RULE, &event).scopes_added().is_empty());
/// ```
pub fn run(rule: ExportedRule, event: &Event) -> RuleResult {
    let mut api = Api::new();
    let handed = rule.handed();
    if handed == Reads::ALL {
        (rule.function)(event, &mut api);
    } else {
        (rule.function)(&handed.keep(event), &mut api);
    }
    api.into_result()
}

/// Build an event from JSON the way the host hands it to a module (unknown fields ignored).
///
/// ```
/// let event = claimsmith_sdk::testing::event(serde_json::json!({"user": {"user_id": "u1"}}));
/// assert_eq!(event.user.user_id, "u1");
/// ```
pub fn event(json: serde_json::Value) -> Event {
    serde_json::from_value(json).expect("the test event does not fit the Event shape")
}
