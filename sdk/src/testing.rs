//! The native harness: run a rule function on an [`Event`] without wasm, for `cargo test`.

use crate::{Api, Event, RuleResult};

/// Run `rule` on `event` natively and return what it decided.
///
/// ```
/// use claimsmith_sdk::{Api, Event};
/// fn rule(_: &Event, api: &mut Api) { api.access_token().add_scope("read"); }
/// let result = claimsmith_sdk::testing::run(rule, &Event::default());
/// assert_eq!(result.scopes_added(), ["read"]);
/// ```
pub fn run(rule: fn(&Event, &mut Api), event: &Event) -> RuleResult {
    let mut api = Api::new();
    rule(event, &mut api);
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
