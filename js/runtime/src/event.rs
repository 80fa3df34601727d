//! The `event` an action receives, built as the action reads it.
//!
//! Building a member as JavaScript objects costs about 2,000 wasm instructions a value, and an
//! action reads few of the event's members, so each object or array member starts as an
//! accessor that builds its value from the input's JSON the first time it is read (or takes the
//! one assigned) and then turns into the plain data property it stands for. Keys, key order,
//! `JSON.stringify`, spreading and assignment see the same event as one built whole; only
//! `Object.getOwnPropertyDescriptor` on a member not yet read shows the accessor. The members an
//! action reads without checking get Auth0's defaults ([`defaults`]). The object and its
//! accessors are made before the snapshot ([`template`]), so a login starts with them.

use std::cell::RefCell;
use std::collections::BTreeMap;

use boa_engine::object::FunctionObjectBuilder;
use boa_engine::object::builtins::JsArray;
use boa_engine::property::{PropertyDescriptor, PropertyKey};
use boa_engine::{Context, JsObject, JsResult, JsString, JsValue, NativeFunction, js_string};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::commands::data_value;
use crate::{LOGIN_TIME, fail};

/// Every member of the input document (the SDK's event, `configuration`, `secrets`,
/// `login_time`), in key order: the event object made before the snapshot has an accessor for
/// each, so a login only fills in their JSON.
const MEMBERS: [&str; 16] = [
    "authentication",
    "authorization",
    "client",
    "configuration",
    "connection",
    "issuer_claims",
    "login_time",
    "organization",
    "request",
    "resource_server",
    "secrets",
    "session",
    "stats",
    "tenant",
    "transaction",
    "user",
];

/// The `event` object, made before the snapshot: an accessor for each of [`MEMBERS`], in one
/// copy for each set of the members that have no default ([`OPTIONAL`]) a login may lack, so
/// that a login deletes none. Every login's fresh instance starts with them untouched.
pub(crate) struct Template {
    /// By the bits of the [`OPTIONAL`] members absent.
    events: Vec<JsObject>,
    keys: Vec<JsString>,
}

/// The members of [`MEMBERS`] with no default, which a login's event may lack.
const OPTIONAL: [&str; 5] = [
    "authentication",
    "login_time",
    "organization",
    "resource_server",
    "session",
];

/// The bit of `name` in a set of [`OPTIONAL`] members (none for a defaulted member).
fn optional_bit(name: &str) -> usize {
    OPTIONAL
        .iter()
        .position(|optional| *optional == name)
        .map_or(0, |i| 1 << i)
}

/// Make the event objects and their accessors (before the snapshot).
pub(crate) fn template(context: &Context) -> Template {
    let keys: Vec<JsString> = MEMBERS.iter().map(|name| JsString::from(*name)).collect();
    let realm = context.realm().clone();
    let accessors: Vec<PropertyDescriptor> = (0..MEMBERS.len())
        .map(|slot| {
            let get = FunctionObjectBuilder::new(
                &realm,
                NativeFunction::from_copy_closure(move |_, _, context| member(slot, context)),
            )
            .build();
            let set = FunctionObjectBuilder::new(
                &realm,
                NativeFunction::from_copy_closure(move |_, args, context| {
                    assign_member(slot, args.first().cloned().unwrap_or_default(), context)
                }),
            )
            .length(1)
            .build();
            PropertyDescriptor::builder()
                .get(get)
                .set(set)
                .enumerable(true)
                .configurable(true)
                .build()
        })
        .collect();
    let events = (0..1usize << OPTIONAL.len())
        .map(|absent| {
            let event = JsObject::with_object_proto(context.intrinsics());
            for (slot, name) in MEMBERS.iter().enumerate() {
                if absent & optional_bit(name) == 0 {
                    event.insert_property(keys[slot].clone(), accessors[slot].clone());
                }
            }
            event
        })
        .collect();
    Template { events, keys }
}

/// The event's members for this login: slot `i` is what the accessor of [`MEMBERS`]`[i]`
/// builds.
struct Lazy {
    event: JsObject,
    slots: Vec<Slot>,
}

struct Slot {
    key: JsString,
    name: &'static str,
    /// The member's JSON, in the input (`null` for a member given only its defaults).
    json: &'static str,
    /// The value once built.
    built: Option<JsValue>,
}

thread_local! {
    static LAZY: RefCell<Option<Lazy>> = const { RefCell::new(None) };
}

/// The `event` for the input document, the login's time set for the clock: the template
/// without the members this login lacks that have no default, and any member the runtime does
/// not know built at once, after the others.
pub(crate) fn event(context: &mut Context, template: &Template, input: &'static str) -> JsValue {
    let Some(Members { known, mut others }) = split(input) else {
        // Not the plain object the host writes: serde_json says what is wrong with it.
        let error = serde_json::from_str::<BTreeMap<&str, &RawValue>>(input)
            .err()
            .map_or_else(
                || "a key with escapes, or nesting deeper than 128".to_owned(),
                |e| e.to_string(),
            );
        fail(&format!("the input is not a JSON object: {error}"))
    };
    let login_time = MEMBERS
        .binary_search(&"login_time")
        .ok()
        .and_then(|slot| known[slot])
        .and_then(|raw| serde_json::from_str::<i64>(raw).ok())
        .unwrap_or_else(|| fail("the input has no login_time (ABI version 5)"));
    LOGIN_TIME.with(|t| t.set(login_time));
    let absent = MEMBERS
        .iter()
        .zip(&known)
        .filter(|(_, json)| json.is_none())
        .fold(0, |absent, (name, _)| absent | optional_bit(name));
    let event = template.events[absent].clone();
    let slots = MEMBERS
        .iter()
        .zip(&template.keys)
        .zip(known)
        .map(|((name, key), json)| Slot {
            key: key.clone(),
            name,
            // A member absent is built from its defaults, or not at all (it has no accessor).
            json: json.unwrap_or("null"),
            built: None,
        })
        .collect();
    // In key order, the last of a repeated key kept (a stable sort keeps their order).
    others.sort_by_key(|(name, _)| *name);
    for (i, (name, raw)) in others.iter().enumerate() {
        if others.get(i + 1).is_some_and(|(next, _)| next == name) {
            continue;
        }
        let value = build(name, raw, context);
        event.insert_property(JsString::from(*name), data(value));
    }
    LAZY.with(|lazy| {
        *lazy.borrow_mut() = Some(Lazy {
            event: event.clone(),
            slots,
        })
    });
    event.into()
}

/// The input document's top-level members: each value's JSON text.
struct Members {
    /// By slot of [`MEMBERS`].
    known: [Option<&'static str>; MEMBERS.len()],
    /// Those the runtime does not know, in the input's order.
    others: Vec<(&'static str, &'static str)>,
}

/// The input document's top-level members (the last of a repeated key), found by scanning
/// strings and brackets only: a member's value is parsed when the action reads it, where a
/// malformed one ends the login ([`build`]). `None` for anything but a plain object of unescaped
/// keys (the host writes no other), for serde_json to word.
fn split(input: &'static str) -> Option<Members> {
    let bytes = input.as_bytes();
    let mut at = 0;
    let skip_space = |at: &mut usize| {
        while bytes
            .get(*at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            *at += 1;
        }
    };
    // The end of the string that opens at `at` (just past its closing quote).
    let string_end = |at: usize| -> Option<usize> {
        let mut i = at + 1;
        loop {
            i += memchr::memchr2(b'"', b'\\', bytes.get(i..)?)?;
            if bytes[i] == b'"' {
                return Some(i + 1);
            }
            i += 2;
        }
    };
    // The end of the value that starts at `at`: a string, an object or array whose brackets
    // match (nested at most 128 deep, as serde_json allows), or a scalar's characters (its
    // spelling is checked when it is parsed).
    let value_end = |mut at: usize| -> Option<usize> {
        // The closers awaited, innermost in the lowest bit: 1 for `}`, 0 for `]`.
        let (mut closers, mut depth) = (0u128, 0u32);
        loop {
            match *bytes.get(at)? {
                b'"' => {
                    at = string_end(at)?;
                    if depth == 0 {
                        return Some(at);
                    }
                    continue;
                }
                opener @ (b'{' | b'[') => {
                    if depth == 128 {
                        return None;
                    }
                    closers = closers << 1 | u128::from(opener == b'{');
                    depth += 1;
                }
                b'}' | b']' | b',' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => {
                    return Some(at);
                }
                closer @ (b'}' | b']') => {
                    if (closers & 1 == 1) != (closer == b'}') {
                        return None;
                    }
                    closers >>= 1;
                    depth -= 1;
                    if depth == 0 {
                        return Some(at + 1);
                    }
                }
                _ => {}
            }
            at += 1;
        }
    };
    let mut members = Members {
        known: [None; MEMBERS.len()],
        others: Vec::new(),
    };
    skip_space(&mut at);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    skip_space(&mut at);
    if bytes.get(at) == Some(&b'}') {
        at += 1;
    } else {
        loop {
            if bytes.get(at) != Some(&b'"') {
                return None;
            }
            let key_end = string_end(at)?;
            let key = &input[at + 1..key_end - 1];
            if key.contains('\\') {
                return None;
            }
            at = key_end;
            skip_space(&mut at);
            if bytes.get(at) != Some(&b':') {
                return None;
            }
            at += 1;
            skip_space(&mut at);
            let end = value_end(at)?;
            let value = &input[at..end];
            at = end;
            skip_space(&mut at);
            if value.is_empty() || !matches!(bytes.get(at), Some(b',' | b'}')) {
                return None;
            }
            match MEMBERS.binary_search(&key) {
                Ok(slot) => members.known[slot] = Some(value),
                Err(_) => members.others.push((key, value)),
            }
            if bytes[at] == b'}' {
                at += 1;
                break;
            }
            at += 1;
            skip_space(&mut at);
        }
    }
    skip_space(&mut at);
    (at == bytes.len()).then_some(members)
}

/// A writable, enumerable, configurable data property: what a member of a JSON object is.
fn data(value: JsValue) -> PropertyDescriptor {
    PropertyDescriptor::builder()
        .value(value)
        .writable(true)
        .enumerable(true)
        .configurable(true)
        .build()
}

/// The JavaScript value of the member `name` from its JSON, with its defaults. JSON the host
/// wrote malformed ends the login.
fn build(name: &str, json: &str, context: &mut Context) -> JsValue {
    let mut reader = serde_json::Deserializer::from_str(json);
    let value = Json { context }
        .deserialize(&mut reader)
        .and_then(|value| reader.end().map(|()| value))
        .unwrap_or_else(|e| fail(&format!("cannot build `event.{name}`: {e}")));
    defaults(name, value, context)
}

/// Builds the JavaScript value of JSON text straight from the parser, as `JSON.parse` does: an
/// object's keys in the text's order (the last of a repeated key wins), numbers as
/// `JsValue::from_json` gives them.
struct Json<'c> {
    context: &'c mut Context,
}

impl<'de> DeserializeSeed<'de> for Json<'_> {
    type Value = JsValue;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<JsValue, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Json<'_> {
    type Value = JsValue;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<JsValue, E> {
        Ok(JsValue::null())
    }
    fn visit_bool<E>(self, value: bool) -> Result<JsValue, E> {
        Ok(value.into())
    }
    fn visit_i64<E>(self, value: i64) -> Result<JsValue, E> {
        Ok(i32::try_from(value).map_or_else(|_| JsValue::new(value as f64), JsValue::new))
    }
    fn visit_u64<E>(self, value: u64) -> Result<JsValue, E> {
        Ok(i32::try_from(value).map_or_else(|_| JsValue::new(value as f64), JsValue::new))
    }
    fn visit_f64<E>(self, value: f64) -> Result<JsValue, E> {
        Ok(JsValue::new(value))
    }
    fn visit_str<E>(self, value: &str) -> Result<JsValue, E> {
        Ok(JsString::from(value).into())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<JsValue, A::Error> {
        let mut values = Vec::with_capacity(items.size_hint().unwrap_or(0));
        while let Some(value) = items.next_element_seed(Json {
            context: &mut *self.context,
        })? {
            values.push(value);
        }
        Ok(JsArray::from_iter(values, self.context).into())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<JsValue, A::Error> {
        let object = JsObject::with_object_proto(self.context.intrinsics());
        while let Some(key) = entries.next_key_seed(Key)? {
            let value = entries.next_value_seed(Json {
                context: &mut *self.context,
            })?;
            object.insert_property(key, data(value));
        }
        Ok(object.into())
    }
}

/// An object's key, as a `JsString` without a Rust `String` between.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = JsString;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<JsString, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Key {
    type Value = JsString;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, value: &str) -> Result<JsString, E> {
        Ok(JsString::from(value))
    }
}

/// The getter of lazy slot `slot`: build the member, make it a data property, return it.
fn member(slot: usize, context: &mut Context) -> JsResult<JsValue> {
    let (event, key, name, json, built) = LAZY.with(|lazy| {
        let lazy = lazy.borrow();
        let lazy = lazy.as_ref().expect("a login's event");
        let slot = &lazy.slots[slot];
        (
            lazy.event.clone(),
            slot.key.clone(),
            slot.name,
            slot.json,
            slot.built.clone(),
        )
    });
    if let Some(value) = built {
        return Ok(value);
    }
    let value = build(name, json, context);
    // Once read, the member is the data property it stands for. If the action has made that
    // impossible (frozen the event), the getter keeps returning this one value.
    let _ = event.define_property_or_throw(key, data(value.clone()), context);
    LAZY.with(|lazy| {
        if let Some(lazy) = lazy.borrow_mut().as_mut() {
            lazy.slots[slot].built = Some(value.clone());
        }
    });
    Ok(value)
}

/// The setter of lazy slot `slot`: the member becomes a data property holding `value`, as an
/// assignment to the member of an event built whole does.
fn assign_member(slot: usize, value: JsValue, context: &mut Context) -> JsResult<JsValue> {
    let (event, key) = LAZY.with(|lazy| {
        let lazy = lazy.borrow();
        let lazy = lazy.as_ref().expect("a login's event");
        (lazy.event.clone(), lazy.slots[slot].key.clone())
    });
    event.define_property_or_throw(key, data(value), context)?;
    Ok(JsValue::undefined())
}

/// Defaults for a member an action reads without checking, as Auth0 sends them: an object or
/// an array where the input has none (or has something else), a zero login count, an empty
/// tenant id. Done here rather than in the shim's JavaScript, where the same two dozen
/// assignments cost about 430,000 wasm instructions a login (docs/performance-log.md).
fn defaults(name: &str, value: JsValue, context: &mut Context) -> JsValue {
    use Fill::{Array, Empty, Object, Zero};

    let wanted: &[(&str, Fill)] = match name {
        "user" => &[
            ("app_metadata", Object),
            ("user_metadata", Object),
            ("groups", Array),
            ("multifactor", Array),
            ("enrolledFactors", Array),
        ],
        "authorization" => &[("roles", Array), ("permissions", Array)],
        "client" | "connection" => &[("metadata", Object)],
        "request" => &[("query", Object)],
        "transaction" => &[("requested_scopes", Array), ("acr_values", Array)],
        "stats" => &[("logins_count", Zero)],
        "tenant" => &[("id", Empty)],
        "configuration" | "issuer_claims" | "secrets" => &[],
        _ => return value,
    };
    let member = match value.as_object() {
        Some(object) if !object.is_array() => object,
        _ => JsObject::with_object_proto(context.intrinsics()),
    };
    for &(key, default) in wanted {
        let key = JsString::from(key);
        let current = data_value(&member, &PropertyKey::from(key.clone()));
        if current.is_some_and(|current| default.kept(&current)) {
            continue;
        }
        let value = match default {
            Object => JsObject::with_object_proto(context.intrinsics()).into(),
            Array => JsArray::from_iter([], context).into(),
            Zero => JsValue::new(0),
            Empty => js_string!("").into(),
        };
        member.insert_property(key, data(value));
    }
    member.into()
}

/// What a defaulted member of a member is given when it is missing or of another type.
#[derive(Clone, Copy)]
enum Fill {
    Object,
    Array,
    /// The number 0.
    Zero,
    /// The empty string.
    Empty,
}

impl Fill {
    /// Whether `value` is of the kind this default stands for, and so kept.
    fn kept(self, value: &JsValue) -> bool {
        match self {
            Fill::Object => value.as_object().is_some_and(|o| !o.is_array()),
            Fill::Array => value.as_object().is_some_and(|o| o.is_array()),
            Fill::Zero => value.is_number(),
            Fill::Empty => value.is_string(),
        }
    }
}
