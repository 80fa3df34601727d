//! The login event, checked once and serialized once per login, then handed to every rule with
//! that rule's own `configuration` and `secrets`.

use serde_json::{Map, Value};

use crate::error::EventError;
use claimsmith_sdk::Event;

/// A login event that fits the SDK's [`Event`] shape, with its JSON body ready to hand to rules.
#[derive(Debug, Clone)]
pub struct LoginEvent {
    event: Event,
    /// The event's members as JSON, without the enclosing braces and without `configuration` /
    /// `secrets` (the host sets those per rule).
    members: String,
}

impl LoginEvent {
    /// Parse and check an event from JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<LoginEvent, EventError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| EventError::NotJson(e.to_string()))?;
        LoginEvent::from_value(value)
    }

    /// Check an event given as a JSON value.
    pub fn from_value(value: Value) -> Result<LoginEvent, EventError> {
        let mut map = match value {
            Value::Object(map) => map,
            other => return Err(EventError::NotObject(json_kind(&other))),
        };
        map.remove("configuration");
        map.remove("secrets");
        let value = Value::Object(map);
        let event: Event =
            serde_path_to_error::deserialize(&value).map_err(|e| EventError::WrongType {
                path: e.path().to_string(),
                message: e.into_inner().to_string(),
            })?;
        let members = serde_json::to_string(&value).expect("a JSON value serializes");
        let members = members[1..members.len() - 1].to_owned();
        Ok(LoginEvent { event, members })
    }

    /// The typed event.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The input document for one rule: `{"configuration": .., "secrets": .., <event members>}`,
    /// built from the rule's precomputed prefix (see [`input_prefix`]).
    pub fn input_for(&self, prefix: &str) -> Vec<u8> {
        let mut input = Vec::with_capacity(prefix.len() + self.members.len() + 2);
        input.extend_from_slice(prefix.as_bytes());
        if !self.members.is_empty() {
            input.push(b',');
            input.extend_from_slice(self.members.as_bytes());
        }
        input.push(b'}');
        input
    }
}

/// The constant start of a rule's input document: its configuration and secrets.
pub fn input_prefix(configuration: &Map<String, Value>, secrets: &Map<String, Value>) -> String {
    let mut prefix = String::from("{\"configuration\":");
    prefix.push_str(&serde_json::to_string(configuration).expect("a JSON map serializes"));
    prefix.push_str(",\"secrets\":");
    prefix.push_str(&serde_json::to_string(secrets).expect("a JSON map serializes"));
    prefix
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn input_carries_the_rules_configuration_and_not_the_callers() {
        let event = LoginEvent::from_value(json!({
            "user": {"user_id": "u1"},
            "configuration": {"injected": true},
            "secrets": {"X": "stolen"}
        }))
        .unwrap();
        let mut config = Map::new();
        config.insert("namespace".into(), json!("https://e.test"));
        let input = event.input_for(&input_prefix(&config, &Map::new()));
        let parsed: Value = serde_json::from_slice(&input).unwrap();
        assert_eq!(
            parsed["configuration"],
            json!({"namespace": "https://e.test"})
        );
        assert_eq!(parsed["secrets"], json!({}));
        assert_eq!(parsed["user"]["user_id"], "u1");
    }

    #[test]
    fn wrong_types_name_the_field_path() {
        let err = LoginEvent::from_value(json!({"user": {"email_verified": "yes"}})).unwrap_err();
        assert!(err.to_string().contains("user.email_verified"), "{err}");
        let err = LoginEvent::from_json(b"[1]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "event must be a JSON object, found an array"
        );
        assert!(LoginEvent::from_json(b"{nope").is_err());
    }

    #[test]
    fn an_empty_event_still_makes_a_valid_input() {
        let event = LoginEvent::from_value(json!({})).unwrap();
        let input = event.input_for(&input_prefix(&Map::new(), &Map::new()));
        let _: Value = serde_json::from_slice(&input).unwrap();
    }
}
