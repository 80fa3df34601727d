//! The login event, checked once and encoded at most once per form per login, then handed to
//! every rule with that rule's own `configuration` and `secrets`: as JSON to ABI version 1
//! modules, in the binary form of `claimsmith_sdk::binary_event` to version 2, 3 and 4 modules.
//!
//! The login's time (`login_time`) is chosen here, once per login: the caller's, or the host's
//! clock when the caller gives none. Version 1 modules see the event as the caller sent it.
//!
//! For a pipeline of version 6 rules only, an event from JSON is parsed once into its borrowed
//! form ([`BorrowedEvent`]: strings point into the caller's bytes) and the part of each member
//! the rules read is written from that at once; the owned [`Event`] is made only if asked for
//! ([`LoginEvent::event`]), never for the rules. An issuer that signs tokens asks for it at once
//! (`Pipeline::event_from_json_typed`).

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::EventError;
use crate::objects_only::ObjectsOnly;
use claimsmith_sdk::{BorrowedEvent, CallerEvent, Event, Reads, binary_event};

/// A login event that fits the SDK's [`Event`] shape, ready to hand to rules.
#[derive(Debug, Clone)]
pub struct LoginEvent {
    /// The typed event: made with the login event, or, for one parsed in its borrowed form
    /// (`Source::Parts`), parsed from its kept bytes when first asked for.
    event: OnceLock<Event>,
    /// The login's time, as `event.login_time` has it.
    login_time: u64,
    /// The event as the caller sent it: version 1 modules see its unknown members too.
    source: Source,
    /// `value`'s members as JSON, without the enclosing braces; made when a version 1 rule runs.
    members: OnceLock<String>,
    /// The typed event in binary form; made when a version 2 or 3 rule runs.
    binary: OnceLock<Vec<u8>>,
    /// The fields added since version 2 in binary form; made when a version 3 or 4 rule runs.
    added: OnceLock<Vec<u8>>,
    /// The fields added in version 4 in binary form; made when a version 4 rule runs.
    added_v4: OnceLock<Vec<u8>>,
    /// `,"login_time":N}`: how a version 5 rule's JSON input ends.
    login_time_tail: OnceLock<String>,
    /// Each member of the event as a version 6 part (`binary_event::encode_member`), by its
    /// index: made as the event is parsed for the members its pipeline's rules read
    /// (`Source::Parts`), else when the first version 6 rule that reads it runs.
    member_parts: [OnceLock<Vec<u8>>; MEMBERS],
}

/// The members of the event (`Reads`' bits); `configuration` and `secrets` are the rule's own
/// and never encoded here.
const MEMBERS: usize = Reads::ALL.bits().count_ones() as usize;

/// The members a caller's event has: every one but the per-rule ones.
const CALLER_MEMBERS: Reads = Reads::ALL.without(Reads::PER_RULE);

/// The most pieces a version 6 rule's input has: its header, a part for each member of the
/// login, and its own parts (written as one piece).
pub(crate) const V6_PIECES: usize =
    1 + (MEMBERS - Reads::PER_RULE.bits().count_ones() as usize) + 1;

impl LoginEvent {
    /// Parse and check an event from JSON bytes, in one pass straight into the typed event.
    #[cfg(test)]
    pub(crate) fn from_json(bytes: &[u8]) -> Result<LoginEvent, EventError> {
        LoginEvent::parse_json(bytes, true)
    }

    /// [`LoginEvent::from_json`], keeping a copy of `bytes` for version 1 rules only when
    /// `keep_source` is set. Without it a version 1 rule would see the checked fields as the
    /// typed event serializes them (fields the caller left out as `null` or their defaults), and
    /// not the event's unknown members;
    /// `Pipeline::event_from_json_typed` sets it exactly when the
    /// pipeline has a version 1 rule.
    pub(crate) fn parse_json(bytes: &[u8], keep_source: bool) -> Result<LoginEvent, EventError> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            // Not an object (or not JSON at all): the slow path says which.
            let value: Value =
                serde_json::from_slice(bytes).map_err(|e| EventError::NotJson(e.to_string()))?;
            return LoginEvent::from_value(value);
        }
        // The fast path has no path tracking; a failing event is parsed again to name the field.
        // UTF-8 is checked once for the whole input, so the parser need not check each string
        // (fewer instructions: docs/performance-log.md). Input that is not UTF-8 fails either
        // way: inside a string serde_json refuses it, outside one it is a syntax error.
        let parsed = std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| caller_event_from_str(text).ok());
        let Some(caller) = parsed else {
            return Err(LoginEvent::explain_json_error(bytes));
        };
        Ok(LoginEvent::new(
            caller.into_event(),
            if keep_source {
                Source::Json(bytes.to_vec())
            } else {
                Source::Typed
            },
        ))
    }

    /// Parse and check an event from JSON bytes for a pipeline whose rules are all of version
    /// 6 and read `reads`: once, into its borrowed form, from which the part of each member in
    /// `reads` is written at once (the login's time chosen first). Nothing owned is made of the
    /// event but a copy of `bytes` unless the host asks for it ([`LoginEvent::event`]), or a rule
    /// reads a member outside `reads` (strings with escapes, the metadata maps and the scopes
    /// requested are owned; the rest points into `bytes`). The same events are accepted and
    /// refused, with the same errors, as by [`LoginEvent::parse_json`] and
    /// [`LoginEvent::check_required`] together.
    pub(crate) fn parse_json_parts(bytes: &[u8], reads: Reads) -> Result<LoginEvent, EventError> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            // Not an object (or not JSON at all): the typed parse's slow path says which.
            let event = LoginEvent::parse_json(bytes, false)?;
            event.check_required()?;
            return Ok(event);
        }
        let parsed = std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| borrowed_event_from_str(text).ok());
        let Some(mut borrowed) = parsed else {
            return Err(LoginEvent::explain_json_error(bytes));
        };
        required(
            &borrowed.user.user_id,
            &borrowed.client.client_id,
            borrowed.resource_server.as_ref().map(|r| &*r.identifier),
        )?;
        if borrowed.login_time == 0 {
            borrowed.login_time = now_ms();
        }
        let encoded = reads.bits() & CALLER_MEMBERS.bits();
        let member_parts = std::array::from_fn(|index| {
            let index = index as u32;
            if encoded >> index & 1 == 0 {
                return OnceLock::new();
            }
            let mut part = Vec::new();
            binary_event::encode_borrowed_member(&borrowed, index, &mut part);
            OnceLock::from(part)
        });
        let requested_scopes = borrowed
            .transaction
            .requested_scopes
            .iter()
            .map(|scope| scope.to_string())
            .collect();
        let source = Source::Parts {
            bytes: bytes.to_vec(),
            requested_scopes,
        };
        Ok(LoginEvent::made(
            OnceLock::new(),
            borrowed.login_time,
            source,
            member_parts,
        ))
    }

    /// Why `bytes` is not an acceptable event, with the dotted path of a field of the wrong type.
    #[cold]
    fn explain_json_error(bytes: &[u8]) -> EventError {
        let mut json = serde_json::Deserializer::from_slice(bytes);
        let error = match serde_path_to_error::deserialize::<_, CallerEvent>(ObjectsOnly(&mut json))
        {
            Ok(_) => match json.end() {
                Ok(()) => return EventError::NotJson("unreadable event".into()),
                Err(e) => return EventError::NotJson(e.to_string()),
            },
            Err(error) => error,
        };
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => EventError::WrongType {
                path,
                message: inner.to_string(),
            },
            _ => EventError::NotJson(inner.to_string()),
        }
    }

    /// An event the host built as a typed [`Event`] (from an issuer's hook request), its
    /// `configuration` and `secrets` cleared (the host sets them per rule).
    pub(crate) fn from_event(mut event: Event) -> LoginEvent {
        event.configuration = Default::default();
        event.secrets = Default::default();
        let host_time = event.login_time == 0;
        LoginEvent::new(event, Source::Built { host_time })
    }

    /// Check an event given as a JSON value.
    pub(crate) fn from_value(value: Value) -> Result<LoginEvent, EventError> {
        let mut map = match value {
            Value::Object(map) => map,
            other => return Err(EventError::NotObject(json_kind(&other))),
        };
        map.remove("configuration");
        map.remove("secrets");
        let value = Value::Object(map);
        let event: Event = serde_path_to_error::deserialize(ObjectsOnly(&value)).map_err(|e| {
            EventError::WrongType {
                path: e.path().to_string(),
                message: e.into_inner().to_string(),
            }
        })?;
        Ok(LoginEvent::new(event, Source::Value(value)))
    }

    /// A checked event, its login time chosen: the caller's, else the host's clock now.
    fn new(mut event: Event, source: Source) -> LoginEvent {
        if event.login_time == 0 {
            event.login_time = now_ms();
        }
        let login_time = event.login_time;
        LoginEvent::made(
            OnceLock::from(event),
            login_time,
            source,
            Default::default(),
        )
    }

    /// A login event of these parts, every input to a rule still to be made but `member_parts`.
    fn made(
        event: OnceLock<Event>,
        login_time: u64,
        source: Source,
        member_parts: [OnceLock<Vec<u8>>; MEMBERS],
    ) -> LoginEvent {
        LoginEvent {
            event,
            login_time,
            source,
            members: OnceLock::new(),
            binary: OnceLock::new(),
            added: OnceLock::new(),
            added_v4: OnceLock::new(),
            login_time_tail: OnceLock::new(),
            member_parts,
        }
    }

    /// The login's time, milliseconds since the epoch: what every rule of the login reads as
    /// `event.login_time`.
    pub fn login_time(&self) -> u64 {
        self.login_time
    }

    /// The typed event. For an event parsed for version 6 rules only
    /// ([`Pipeline::event_from_json`](crate::Pipeline::event_from_json)), it is parsed from
    /// the caller's bytes the first time it is asked for: the rules never need it.
    pub fn event(&self) -> &Event {
        self.event.get_or_init(|| {
            let Source::Parts { bytes, .. } = &self.source else {
                unreachable!("only an event parsed for its parts is made without its typed form")
            };
            let text = std::str::from_utf8(bytes).expect("the borrowed parse took it as UTF-8");
            let mut event = caller_event_from_str(text)
                .expect("the owned parse takes what the borrowed parse took")
                .into_event();
            event.login_time = self.login_time;
            event
        })
    }

    /// The scopes the login requests (`transaction.requested_scopes`).
    pub(crate) fn requested_scopes(&self) -> &[String] {
        match &self.source {
            Source::Parts {
                requested_scopes, ..
            } => requested_scopes,
            _ => &self.event().transaction.requested_scopes,
        }
    }

    /// The fields every login needs, non-empty: `user.user_id` (the tokens' `sub`),
    /// `client.client_id` (the ID token's `aud`), and `resource_server.identifier` when a
    /// `resource_server` is given (the access token's `aud`).
    pub(crate) fn check_required(&self) -> Result<(), EventError> {
        if matches!(self.source, Source::Parts { .. }) {
            // Checked as it was parsed.
            return Ok(());
        }
        let event = self.event();
        required(
            &event.user.user_id,
            &event.client.client_id,
            event
                .resource_server
                .as_ref()
                .map(|r| r.identifier.as_str()),
        )
    }

    /// The input document for one version 1 rule:
    /// `{"configuration": .., "secrets": .., <event members>}`, built from the rule's precomputed
    /// prefix (see [`input_prefix`]).
    #[cfg(test)]
    pub(crate) fn input_for(&self, prefix: &str) -> Vec<u8> {
        self.json_input(prefix).concat()
    }

    /// [`LoginEvent::input_for`] as the pieces that make it up, without copying them together.
    pub(crate) fn json_input<'a>(&'a self, prefix: &'a str) -> [&'a [u8]; 4] {
        let members = self.members.get_or_init(|| {
            if matches!(self.source, Source::Typed) {
                tracing::warn!(
                    target: "claimsmith::login",
                    "a version 1 rule runs on an event parsed without its JSON (by a pipeline \
                     that had no version 1 rule then): it sees the checked fields only, not the \
                     event's unknown members"
                );
            }
            self.source.members().unwrap_or_else(|| {
                typed_members(
                    self.event(),
                    matches!(self.source, Source::Built { host_time: true }),
                )
            })
        });
        let comma: &[u8] = if members.is_empty() { b"" } else { b"," };
        [prefix.as_bytes(), comma, members.as_bytes(), b"}"]
    }

    /// The input document for one version 5 rule: version 1's, with the login's `login_time`
    /// as its last member (so it wins over a `login_time` the caller sent, as in the typed
    /// event: a caller's `0` means "the host's clock").
    pub(crate) fn json_input_v5<'a>(&'a self, prefix: &'a str) -> [&'a [u8]; 4] {
        let [prefix, comma, members, _] = self.json_input(prefix);
        let tail = self
            .login_time_tail
            .get_or_init(|| format!(",\"login_time\":{}}}", self.login_time));
        [prefix, comma, members, tail.as_bytes()]
    }

    /// The input for one version 2 rule, as two pieces: the event in binary form
    /// ([`binary_event::encode_event`]) and the rule's own `rule_part`
    /// ([`binary_event::encode_rule_part`]).
    pub(crate) fn binary_input<'a>(&'a self, rule_part: &'a [u8]) -> [&'a [u8]; 2] {
        let event = self.binary.get_or_init(|| {
            let mut bytes = Vec::with_capacity(1024);
            binary_event::encode_event(self.event(), &mut bytes);
            bytes
        });
        [event.as_slice(), rule_part]
    }

    /// The input for one version 3 rule, as three pieces: version 2's two, then the fields added
    /// since version 2 ([`binary_event::encode_added_part`]).
    pub fn binary_input_v3<'a>(&'a self, rule_part: &'a [u8]) -> [&'a [u8]; 3] {
        let [event, rule_part] = self.binary_input(rule_part);
        let added = self.added.get_or_init(|| {
            let mut bytes = Vec::with_capacity(256);
            binary_event::encode_added_part(self.event(), 3, &mut bytes);
            bytes
        });
        [event, rule_part, added.as_slice()]
    }

    /// The input for one version 4 rule, as four pieces: version 3's three, then the fields
    /// added in version 4 ([`binary_event::encode_added_part`]).
    pub fn binary_input_v4<'a>(&'a self, rule_part: &'a [u8]) -> [&'a [u8]; 4] {
        let [event, rule_part, added] = self.binary_input_v3(rule_part);
        let added_v4 = self.added_v4.get_or_init(|| {
            let mut bytes = Vec::with_capacity(256);
            binary_event::encode_added_part(self.event(), 4, &mut bytes);
            bytes
        });
        [event, rule_part, added, added_v4.as_slice()]
    }
}

impl LoginEvent {
    /// The input for one version 6 rule that reads `reads`, as pieces: its `header`, the part
    /// of each member of the login it reads (each encoded once per login, whichever rules read
    /// it), then its own `rule_parts`; the first `.1` pieces are used.
    pub(crate) fn binary_input_v6<'a>(
        &'a self,
        header: &'a [u8; 8],
        reads: Reads,
        rule_parts: &'a [u8],
    ) -> ([&'a [u8]; V6_PIECES], usize) {
        let mut pieces: [&[u8]; V6_PIECES] = [&[]; V6_PIECES];
        pieces[0] = header;
        let mut len = 1;
        for index in binary_event::member_indices(reads.without(Reads::PER_RULE)) {
            let part = self.member_parts[index as usize].get_or_init(|| {
                let mut bytes = Vec::new();
                binary_event::encode_member(self.event(), index, &mut bytes);
                bytes
            });
            pieces[len] = part;
            len += 1;
        }
        pieces[len] = rule_parts;
        (pieces, len + 1)
    }
}

/// The host's clock, milliseconds since the epoch (at least 1, so that it reads as set).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
        .max(1)
}

/// Where a [`LoginEvent`] came from: what version 1 rules see (the event as sent), and, for one
/// parsed for its parts, what its typed event is made from.
#[derive(Debug, Clone)]
enum Source {
    /// JSON bytes, checked to hold an object.
    Json(Vec<u8>),
    /// A JSON object without `configuration` and `secrets`.
    Value(Value),
    /// Not kept: no version 1 rule was going to run (`LoginEvent::parse_json`).
    Typed,
    /// Parsed in its borrowed form for version 6 rules (`LoginEvent::parse_json_parts`): the
    /// parts of the members they read, the caller's bytes (checked: UTF-8, an acceptable
    /// event) for the typed event if it is asked for, and the scopes requested, which every
    /// login needs.
    Parts {
        bytes: Vec<u8>,
        requested_scopes: Vec<String>,
    },
    /// Built by the host as a typed event (from an issuer's hook request): its typed form is
    /// all there is. `host_time`: the login's time is the host's clock, which version 1 rules
    /// do not see (as for an event sent without one).
    Built { host_time: bool },
}

impl Source {
    /// The members as JSON, without the enclosing braces, `configuration` or `secrets`; `None`
    /// if the caller's bytes hold JSON the typed parse skipped but a strict parse refuses (an
    /// unknown member with a number out of range, a lone surrogate, nesting past 128 levels).
    fn members(&self) -> Option<String> {
        let json = match self {
            Source::Value(value) => serde_json::to_string(value).ok()?,
            Source::Typed | Source::Built { .. } => return None,
            Source::Json(bytes) | Source::Parts { bytes, .. } => {
                let mut value: Map<String, Value> = serde_json::from_slice(bytes).ok()?;
                value.remove("configuration");
                value.remove("secrets");
                serde_json::to_string(&value).ok()?
            }
        };
        Some(json[1..json.len() - 1].to_owned())
    }
}

/// The checked event's own members as JSON, for a version 1 rule when the caller's bytes cannot
/// be passed on as they are: the fields the host checked, without the unknown members.
fn typed_members(event: &Event, without_time: bool) -> String {
    let mut value = serde_json::to_value(event).expect("an Event serializes");
    if let Some(map) = value.as_object_mut() {
        map.remove("configuration");
        map.remove("secrets");
        if without_time {
            map.remove("login_time");
        }
    }
    let json = value.to_string();
    json[1..json.len() - 1].to_owned()
}

/// Parse the event as a caller sends it from JSON text ([`CallerEvent`]: the SDK's [`Event`]
/// without `configuration` and `secrets`, which the host sets per rule; those members, and any
/// other unknown one, are ignored unread), each struct of the event from an object only
/// ([`ObjectsOnly`]).
fn caller_event_from_str(text: &str) -> Result<CallerEvent, serde_json::Error> {
    let mut json = serde_json::Deserializer::from_str(text);
    let event = CallerEvent::deserialize(ObjectsOnly(&mut json))?;
    json.end()?;
    Ok(event)
}

/// [`caller_event_from_str`] into the event's borrowed form: its strings without escapes point
/// into `text`.
fn borrowed_event_from_str(text: &str) -> Result<BorrowedEvent<'_>, serde_json::Error> {
    let mut json = serde_json::Deserializer::from_str(text);
    let event = BorrowedEvent::deserialize(ObjectsOnly(&mut json))?;
    json.end()?;
    Ok(event)
}

/// The fields every login needs, non-empty (see [`LoginEvent::check_required`]).
fn required(
    user_id: &str,
    client_id: &str,
    resource_server: Option<&str>,
) -> Result<(), EventError> {
    if user_id.is_empty() {
        return Err(EventError::Missing("user.user_id"));
    }
    if client_id.is_empty() {
        return Err(EventError::Missing("client.client_id"));
    }
    if resource_server.is_some_and(str::is_empty) {
        return Err(EventError::Missing("resource_server.identifier"));
    }
    Ok(())
}

/// The constant start of a rule's input document: its configuration and secrets.
pub(crate) fn input_prefix(
    configuration: &Map<String, Value>,
    secrets: &Map<String, Value>,
) -> String {
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
    fn text_that_is_not_utf8_is_refused_and_other_text_is_kept() {
        let event = LoginEvent::from_json(
            "{\"user\": {\"user_id\": \"u1\", \"name\": \"Zoë 漢 🦀\"}}".as_bytes(),
        )
        .unwrap();
        assert_eq!(event.event().user.name.as_deref(), Some("Zoë 漢 🦀"));
        for bad in [
            &b"{\"user\": {\"user_id\": \"u\xff1\"}}"[..],
            &b"{\"user\": {\"user_id\": \"u1\"}}\xff"[..],
            &b"\xef\xbb{\"user\": {\"user_id\": \"u1\"}}"[..],
        ] {
            match LoginEvent::from_json(bad) {
                Err(EventError::NotJson(message)) => assert!(!message.is_empty()),
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bad)),
            }
        }
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
    fn every_struct_of_the_event_given_as_an_array_is_refused_and_named() {
        // Each array is what serde's derive alone reads as the struct's fields in order: the
        // first would be a user `auth0|1`.
        let cases = [
            ("user", "User", json!(["auth0|1"])),
            ("authorization", "Authorization", json!([["admin"]])),
            (
                "authentication",
                "Authentication",
                json!([[{"name": "pwd"}]]),
            ),
            (
                "authentication.methods[0]",
                "AuthenticationMethod",
                json!(["pwd"]),
            ),
            ("client", "Client", json!(["c"])),
            ("connection", "Connection", json!(["con_1", "db", "auth0"])),
            ("organization", "Organization", json!(["org_1", "acme"])),
            ("request", "Request", json!(["203.0.113.7"])),
            ("transaction", "Transaction", json!([["openid"]])),
            (
                "resource_server",
                "ResourceServer",
                json!(["https://api.example.com"]),
            ),
            ("stats", "Stats", json!([3])),
            ("issuer_claims", "IssuerClaims", json!([{"acr": "x"}])),
            ("tenant", "Tenant", json!(["t"])),
            ("session", "Session", json!(["s-1"])),
        ];
        for (path, name, array) in cases {
            let mut event = json!({"user": {"user_id": "u"}, "client": {"client_id": "c"}});
            match path {
                "authentication.methods[0]" => {
                    event["authentication"] = json!({"methods": [array]})
                }
                member => event[member] = array,
            }
            assert!(
                serde_json::from_value::<Event>(event.clone()).is_ok(),
                "{path}: the derive alone takes it"
            );
            let parsed = [
                LoginEvent::from_json(event.to_string().as_bytes()),
                LoginEvent::from_value(event),
            ];
            for result in parsed {
                match result {
                    Err(EventError::WrongType { path: at, message }) => {
                        assert_eq!(at, path);
                        let expected = format!("invalid type: sequence, expected struct {name}");
                        assert!(message.starts_with(&expected), "{message}");
                    }
                    other => panic!("{path}: {other:?}"),
                }
            }
        }
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
    fn version_3_gets_the_fields_added_since_version_2_and_version_2_the_same_bytes_as_before() {
        let event = LoginEvent::from_json(
            br#"{"user": {"user_id": "u1", "groups": ["eng"]},
                 "issuer_claims": {"id_token": {"acr": "silver"}, "access_token": {"tid": "t"}},
                 "configuration": {"injected": true}}"#,
        )
        .unwrap();
        let [event_part, rule_part, added] = event.binary_input_v3(b"rule");
        assert_eq!([event_part, rule_part], event.binary_input(b"rule"));
        // Encoded once per login, shared by every rule.
        assert!(std::ptr::eq(event_part, event.binary_input(b"x")[0]));
        assert!(std::ptr::eq(added, event.binary_input_v3(b"x")[2]));
        let mut part = Vec::new();
        binary_event::encode_rule_part(&Map::new(), &Default::default(), &mut part);
        let v3 = binary_event::decode_version(&event.binary_input_v3(&part).concat(), 3).unwrap();
        // The login's time came with version 4: version 3 reads it as unset.
        let expected = Event {
            login_time: 0,
            ..event.event().clone()
        };
        assert_eq!(v3, expected);
        assert_eq!(v3.user.groups, ["eng"]);
        assert_eq!(v3.issuer_claims.access_token["tid"], "t");
        assert!(v3.configuration.is_empty());
        let v2 = binary_event::decode(&event.binary_input(&part).concat()).unwrap();
        assert!(v2.user.groups.is_empty() && v2.issuer_claims.id_token.is_empty());
        assert_eq!(v2.user.user_id, "u1");
    }

    #[test]
    fn the_login_time_is_the_callers_or_the_hosts_clock_once_per_login() {
        let pinned =
            LoginEvent::from_json(br#"{"user": {"user_id": "u"}, "login_time": 1796405400123}"#)
                .unwrap();
        assert_eq!(pinned.login_time(), 1_796_405_400_123);
        let value = LoginEvent::from_value(json!({"login_time": 5})).unwrap();
        assert_eq!(value.login_time(), 5);
        let before = now_ms();
        let clocked = LoginEvent::from_json(br#"{"user": {"user_id": "u"}}"#).unwrap();
        let after = now_ms();
        assert!((before..=after).contains(&clocked.login_time()));
        assert_eq!(clocked.event().login_time, clocked.login_time());
        // Version 1 modules see the event as sent: no login_time the caller did not send.
        let input = clocked.input_for(&input_prefix(&Map::new(), &Map::new()));
        let parsed: Value = serde_json::from_slice(&input).unwrap();
        assert!(parsed.get("login_time").is_none(), "{parsed}");
    }

    #[test]
    fn version_5_gets_version_1s_json_with_the_logins_time_last() {
        let prefix = input_prefix(&Map::new(), &Map::new());
        let clocked = LoginEvent::from_json(br#"{"user": {"user_id": "u"}, "x": 1}"#).unwrap();
        let input = clocked.json_input_v5(&prefix).concat();
        let parsed: Value = serde_json::from_slice(&input).unwrap();
        assert_eq!(parsed["login_time"], json!(clocked.login_time()));
        assert_eq!(parsed["x"], json!(1), "the caller's unknown members stay");
        // A caller's 0 means the host's clock: the host's value comes last and wins.
        let zero = LoginEvent::from_json(br#"{"login_time": 0}"#).unwrap();
        let input = zero.json_input_v5(&prefix).concat();
        let text = std::str::from_utf8(&input).unwrap();
        assert!(
            text.ends_with(&format!(",\"login_time\":{}}}", zero.login_time())),
            "{text}"
        );
        let parsed: Value = serde_json::from_slice(&input).unwrap();
        assert_eq!(parsed["login_time"], json!(zero.login_time()));
        assert!(zero.login_time() > 0);
        // An empty event still makes a document.
        let empty = LoginEvent::from_value(json!({})).unwrap();
        let parsed: Value = serde_json::from_slice(&empty.json_input_v5(&prefix).concat()).unwrap();
        assert_eq!(parsed["login_time"], json!(empty.login_time()));
    }

    #[test]
    fn version_4_gets_its_fields_in_a_fourth_part_and_version_3_the_same_bytes_as_before() {
        let event = LoginEvent::from_json(
            br#"{"user": {"user_id": "u1", "groups": ["eng"], "multifactor": ["guardian"],
                          "enrolledFactors": [{"type": "otp"}]},
                 "authentication": {"methods": [], "riskAssessment": {"confidence": "low"}},
                 "session": {"id": "s-1"}, "tenant": {"id": "t"}, "login_time": 42}"#,
        )
        .unwrap();
        let mut part = Vec::new();
        binary_event::encode_rule_part(&Map::new(), &Default::default(), &mut part);
        let [a, b, c, added_v4] = event.binary_input_v4(&part);
        assert_eq!([a, b, c], event.binary_input_v3(&part));
        assert!(std::ptr::eq(added_v4, event.binary_input_v4(b"x")[3]));
        let v4 = binary_event::decode_version(&event.binary_input_v4(&part).concat(), 4).unwrap();
        assert_eq!(&v4, event.event());
        assert_eq!(v4.login_time, 42);
        assert_eq!(v4.user.enrolled_factors[0].kind, "otp");
        assert!(v4.authentication.unwrap().risk_assessment.unwrap().is_low());
        let v3 = binary_event::decode_version(&event.binary_input_v3(&part).concat(), 3).unwrap();
        assert_eq!(v3.user.groups, ["eng"]);
        assert!(v3.session.is_none() && v3.login_time == 0 && v3.user.multifactor.is_empty());
    }

    #[test]
    fn from_json_and_from_value_agree_on_every_field_and_drop_the_callers_settings() {
        let json = json!({
            "user": {"user_id": "u1", "email": "a@b.test", "email_verified": true,
                     "app_metadata": {"plan": "pro", "n": [1, -2, 0.5]}, "user_metadata": {"t": null}},
            "authorization": {"roles": ["admin"], "permissions": ["p"]},
            "authentication": {"methods": [{"name": "pwd", "auth_time": 5}]},
            "client": {"client_id": "c", "metadata": {"k": "v"}},
            "connection": {"id": "i", "name": "n", "strategy": "s"},
            "organization": {"id": "o", "name": "acme", "display_name": null},
            "request": {"ip": "203.0.113.1", "geoip": {"c": "FR"}, "query": {"a": "b"}},
            "transaction": {"requested_scopes": ["openid"], "nonce": "x", "acr_values": ["a"]},
            "resource_server": {"identifier": "https://api.test"},
            "stats": {"logins_count": 3},
            "login_time": 7,
            "configuration": {"injected": true},
            "secrets": "not even a map",
            "unknown": {"deep": [1]}
        });
        let from_json = LoginEvent::from_json(json.to_string().as_bytes()).unwrap();
        let from_value = LoginEvent::from_value(json.clone()).unwrap();
        assert_eq!(from_json.event(), from_value.event());
        assert!(from_json.event().configuration.is_empty());
        assert!(from_json.event().secrets.is_empty());
        let mut typed = json;
        typed.as_object_mut().unwrap().remove("secrets");
        typed["configuration"] = json!({});
        let expected: Event = serde_json::from_value(typed).unwrap();
        assert_eq!(from_json.event(), &expected);
        // Version 1 rules see the same members either way, unknown ones included.
        let prefix = input_prefix(&Map::new(), &Map::new());
        let (a, b) = (from_json.input_for(&prefix), from_value.input_for(&prefix));
        let (a, b): (Value, Value) = (
            serde_json::from_slice(&a).unwrap(),
            serde_json::from_slice(&b).unwrap(),
        );
        assert_eq!(a, b);
        assert_eq!(a["unknown"]["deep"], json!([1]));
        assert_eq!(a["configuration"], json!({}));
    }

    #[test]
    fn without_the_source_the_event_is_the_same_and_version_1_sees_only_checked_fields() {
        // A login time of its own: two parses without one read the host's clock, which may
        // tick between them.
        let json = br#"{"user": {"user_id": "u1", "app_metadata": {"plan": "pro"}},
                        "authorization": {"roles": ["admin"]}, "unknown": [1], "login_time": 7}"#;
        let kept = LoginEvent::parse_json(json, true).unwrap();
        let typed = LoginEvent::parse_json(json, false).unwrap();
        assert_eq!(kept.event(), typed.event());
        assert_eq!(kept.binary_input(b"rule"), typed.binary_input(b"rule"));
        let prefix = input_prefix(&Map::new(), &Map::new());
        let (kept, typed): (Value, Value) = (
            serde_json::from_slice(&kept.input_for(&prefix)).unwrap(),
            serde_json::from_slice(&typed.input_for(&prefix)).unwrap(),
        );
        assert_eq!(kept["unknown"], json!([1]));
        assert!(typed.get("unknown").is_none());
        assert_eq!(typed["user"]["app_metadata"], json!({"plan": "pro"}));
        assert_eq!(typed["authorization"]["roles"], json!(["admin"]));
        let err = LoginEvent::parse_json(br#"{"user": {"email": 1}}"#, false).unwrap_err();
        assert!(matches!(err, EventError::WrongType { .. }), "{err:?}");
    }

    #[test]
    fn from_json_names_the_field_of_a_wrong_type_and_refuses_trailing_bytes() {
        let err = LoginEvent::from_json(br#"{"user": {"app_metadata": []}}"#).unwrap_err();
        assert!(err.to_string().contains("user.app_metadata"), "{err}");
        assert!(matches!(err, EventError::WrongType { .. }), "{err:?}");
        let err = LoginEvent::from_json(br#"{"user": {}} {"#).unwrap_err();
        assert!(matches!(err, EventError::NotJson(_)), "{err:?}");
        let err = LoginEvent::from_json(br#"{"user": {"#).unwrap_err();
        assert!(matches!(err, EventError::NotJson(_)), "{err:?}");
        let err = LoginEvent::from_json(b"  \"text\"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "event must be a JSON object, found a string"
        );
    }

    #[test]
    fn unknown_members_a_strict_parse_refuses_never_panic_a_version_1_input() {
        for json in [
            r#"{"user": {"user_id": "u1"}, "x": 1e999}"#,
            r#"{"user": {"user_id": "u1"}, "x": "\ud800"}"#,
        ] {
            let event = LoginEvent::from_json(json.as_bytes()).unwrap();
            let input = event.input_for(&input_prefix(&Map::new(), &Map::new()));
            let parsed: Value = serde_json::from_slice(&input).unwrap();
            assert_eq!(parsed["user"]["user_id"], "u1");
            assert!(parsed.get("x").is_none());
        }
    }

    #[test]
    fn the_borrowed_parse_accepts_refuses_and_writes_exactly_what_the_owned_one_does() {
        let full = json!({
            "user": {"user_id": "auth0|1", "email": "a@b.test", "email_verified": true,
                     "name": "Zoë \"Z\" 漢\n", "groups": ["g"], "created_at": "2026-01-01",
                     "enrolled_factors": [{"type": "otp", "options": {"k": 1}}],
                     "app_metadata": {"plan": "pro", "n": [1, -2, 0.5, 1e300]},
                     "user_metadata": {"t": null, "b": {"c": [true]}}},
            "authorization": {"roles": ["admin", "tab\t"], "permissions": ["p"]},
            "authentication": {"methods": [{"name": "pwd", "auth_time": -5}],
                               "risk_assessment": {"confidence": "low", "version": "1",
                                                   "assessments": {"x": {}}}},
            "client": {"client_id": "c", "name": "n", "metadata": {"k": "v"}},
            "connection": {"id": "i", "name": "n", "strategy": "s", "metadata": {}},
            "organization": {"id": "o", "name": "acme", "display_name": null},
            "request": {"ip": "203.0.113.1", "geoip": {"c": "FR"}, "query": {"a": "b"}},
            "transaction": {"requested_scopes": ["openid", "email"], "nonce": "x",
                            "acr_values": ["a"]},
            "resource_server": {"identifier": "https://api.test"},
            "stats": {"logins_count": 3},
            "issuer_claims": {"id_token": {"acr": "silver"}, "access_token": {}},
            "login_time": 7,
            "tenant": {"id": "t"},
            "session": {"id": "s", "device": {"last_ip": "::1"}, "clients": [{"client_id": "c"}]},
            "configuration": {"injected": true},
            "secrets": "not even a map",
            "unknown": {"deep": [1]}
        });
        let mut inputs: Vec<Vec<u8>> = vec![
            full.to_string().into_bytes(),
            serde_json::to_vec_pretty(&full).unwrap(),
            br#"  {"user": {"user_id": "u"}, "client": {"client_id": "c"}, "login_time": 9}"#
                .to_vec(),
            br#"{"user": {"user_id": "u"}, "client": {"client_id": "c"}}"#.to_vec(),
            // Refused: missing fields, wrong types, structs as arrays, not JSON, not an object.
            br#"{}"#.to_vec(),
            br#"{"user": {"user_id": "u"}}"#.to_vec(),
            br#"{"user": {"user_id": "u"}, "client": {"client_id": "c"},
                 "resource_server": {"identifier": ""}}"#
                .to_vec(),
            br#"{"user": {"user_id": "u", "email_verified": "yes"}}"#.to_vec(),
            br#"{"user": {"user_id": "u", "app_metadata": []}}"#.to_vec(),
            br#"{"user": ["auth0|1"], "client": {"client_id": "c"}}"#.to_vec(),
            br#"{"user": {"user_id": "u"}, "client": {"client_id": "c"},
                 "authentication": {"methods": [["pwd"]]}}"#
                .to_vec(),
            br#"{"user": {"user_id": "u", "user_id": "v"}, "client": {"client_id": "c"}}"#.to_vec(),
            br#"{"user": {"user_id": "u"}, "client": {"client_id": "c"}} {"#.to_vec(),
            br#"{"user": {"user_id": "u"}, "client": {"client_id": "c"}, "x": "\ud800"}"#.to_vec(),
            br#"{"user": {"user_id": "\ud800"}, "client": {"client_id": "c"}}"#.to_vec(),
            b"{\"user\": {\"user_id\": \"u\xff1\"}}".to_vec(),
            b"[1]".to_vec(),
            b"  \"text\"".to_vec(),
            b"{nope".to_vec(),
            b"".to_vec(),
        ];
        let deep = "{\"a\":".repeat(200);
        inputs.push(format!(r#"{{"user": {{"user_id": "u", "app_metadata": {deep}"#).into());
        let mut accepted = 0;
        for input in &inputs {
            let shown = String::from_utf8_lossy(input);
            let owned = LoginEvent::parse_json(input, false).and_then(|event| {
                event.check_required()?;
                Ok(event)
            });
            // A rule that reads only `authorization` (and its own `configuration`).
            let reads = Reads::parse("authorization, configuration").unwrap();
            let parts = LoginEvent::parse_json_parts(input, reads);
            match (owned, parts) {
                (Ok(owned), Ok(parts)) => {
                    accepted += 1;
                    assert!(matches!(parts.source, Source::Parts { .. }), "{shown}");
                    assert!(
                        parts.event.get().is_none(),
                        "nothing owned is made: {shown}"
                    );
                    assert_eq!(parts.requested_scopes(), owned.requested_scopes());
                    // The login's time is the caller's, or the clock's at each parse.
                    let mut expected = owned.event().clone();
                    expected.login_time = parts.login_time();
                    for index in binary_event::member_indices(CALLER_MEMBERS) {
                        let mut part = Vec::new();
                        binary_event::encode_member(&expected, index, &mut part);
                        let made = parts.member_parts[index as usize].get();
                        if reads.bits() >> index & 1 == 1 {
                            // `authorization`, and the login's time, which every rule reads.
                            assert_eq!(made, Some(&part), "member {index}: {shown}");
                        } else {
                            assert_eq!(made, None, "member {index}: not read, not written");
                        }
                    }
                    // A rule reading every member gets what it would from the owned parse;
                    // the typed event is made for it, from the caller's bytes.
                    let header = binary_event::header_v6(Reads::ALL);
                    let rule_parts = b"rule";
                    let all = |event: &LoginEvent| {
                        let (pieces, n) = event.binary_input_v6(&header, Reads::ALL, rule_parts);
                        pieces[..n].concat()
                    };
                    let typed = LoginEvent::new(expected.clone(), Source::Typed);
                    assert_eq!(all(&parts), all(&typed), "{shown}");
                    assert_eq!(parts.event(), &expected, "{shown}");
                    assert!(parts.login_time() > 0);
                    // So do version 2 to 5 rules (run by a pipeline other than the one that
                    // parsed it).
                    assert_eq!(
                        parts.binary_input_v4(b"r").concat(),
                        typed.binary_input_v4(b"r").concat()
                    );
                }
                (Err(owned), Err(parts)) => {
                    assert_eq!(format!("{parts:?}"), format!("{owned:?}"), "{shown}");
                }
                (owned, parts) => panic!("{shown}: owned {owned:?}, borrowed {parts:?}"),
            }
        }
        // The first four, and the one whose unknown member has a lone surrogate (skipped unread).
        assert_eq!(accepted, 5);
    }

    #[test]
    fn an_empty_event_still_makes_a_valid_input() {
        let event = LoginEvent::from_value(json!({})).unwrap();
        let input = event.input_for(&input_prefix(&Map::new(), &Map::new()));
        let _: Value = serde_json::from_slice(&input).unwrap();
    }
}
