//! The login event, checked once and encoded at most once per form per login, then handed to
//! every rule with that rule's own `configuration` and `secrets`: as JSON to ABI version 1
//! modules, in the binary form of `claimsmith_sdk::binary_event` to version 2 modules.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::error::EventError;
use claimsmith_sdk::{Event, binary_event};

/// A login event that fits the SDK's [`Event`] shape, ready to hand to rules.
#[derive(Debug, Clone)]
pub struct LoginEvent {
    event: Event,
    /// The event as the caller sent it, without `configuration` / `secrets` (the host sets those
    /// per rule): version 1 modules see unknown members too.
    value: Value,
    /// `value`'s members as JSON, without the enclosing braces; made when a version 1 rule runs.
    members: OnceLock<String>,
    /// The typed event in binary form; made when a version 2 rule runs.
    binary: OnceLock<Vec<u8>>,
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
        Ok(LoginEvent {
            event,
            value,
            members: OnceLock::new(),
            binary: OnceLock::new(),
        })
    }

    /// The typed event.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The input document for one version 1 rule:
    /// `{"configuration": .., "secrets": .., <event members>}`, built from the rule's precomputed
    /// prefix (see [`input_prefix`]).
    pub fn input_for(&self, prefix: &str) -> Vec<u8> {
        self.json_input(prefix).concat()
    }

    /// [`LoginEvent::input_for`] as the pieces that make it up, without copying them together.
    pub fn json_input<'a>(&'a self, prefix: &'a str) -> [&'a [u8]; 4] {
        let members = self.members.get_or_init(|| {
            let members = serde_json::to_string(&self.value).expect("a JSON map serializes");
            members[1..members.len() - 1].to_owned()
        });
        let comma: &[u8] = if members.is_empty() { b"" } else { b"," };
        [prefix.as_bytes(), comma, members.as_bytes(), b"}"]
    }

    /// The input for one version 2 rule, as two pieces: the event in binary form
    /// ([`binary_event::encode_event`]) and the rule's own `rule_part`
    /// ([`binary_event::encode_rule_part`]).
    pub fn binary_input<'a>(&'a self, rule_part: &'a [u8]) -> [&'a [u8]; 2] {
        let event = self.binary.get_or_init(|| {
            let mut bytes = Vec::with_capacity(1024);
            binary_event::encode_event(&self.event, &mut bytes);
            bytes
        });
        [event.as_slice(), rule_part]
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
    fn the_binary_input_decodes_to_the_event_a_json_rule_would_parse() {
        let event = LoginEvent::from_value(json!({
            "user": {"user_id": "u1", "app_metadata": {"plan": "pro"}, "unknown": 1},
            "authorization": {"roles": ["admin"]},
            "configuration": {"injected": true},
            "secrets": {"X": "stolen"},
            "something_new": [1, 2]
        }))
        .unwrap();
        let mut config = Map::new();
        config.insert("namespace".into(), json!("https://e.test"));
        let secrets = [("API_KEY".to_owned(), "k".to_owned())].into();
        let mut part = Vec::new();
        binary_event::encode_rule_part(&config, &secrets, &mut part);
        let binary = binary_event::decode(&event.binary_input(&part).concat()).unwrap();

        let secrets_json: Map<String, Value> =
            [("API_KEY".to_owned(), json!("k"))].into_iter().collect();
        let json_input = event.input_for(&input_prefix(&config, &secrets_json));
        let from_json: Event = serde_json::from_slice(&json_input).unwrap();
        assert_eq!(binary, from_json);
        assert_eq!(binary.configuration["namespace"], "https://e.test");
        assert_eq!(binary.secret("API_KEY"), Some("k"));
    }

    #[test]
    fn an_empty_event_still_makes_a_valid_input() {
        let event = LoginEvent::from_value(json!({})).unwrap();
        let input = event.input_for(&input_prefix(&Map::new(), &Map::new()));
        let _: Value = serde_json::from_slice(&input).unwrap();
    }
}
