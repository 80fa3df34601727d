//! The `event` an action receives, built as the action reads it.
//!
//! Building a member as JavaScript objects costs about 2,000 wasm instructions a value, and an
//! action reads few of the event's members, so each object or array member starts as an
//! accessor that builds its value from the input's JSON the first time it is read (or takes the
//! one assigned) and then turns into the plain data property it stands for. Keys, key order,
//! `JSON.stringify`, spreading and assignment see the same event as one built whole; only
//! `Object.getOwnPropertyDescriptor` on a member not yet read shows the accessor. The members an
//! action reads without checking get Auth0's defaults ([`DEFAULTED`]). The object and its
//! accessors are made before the snapshot ([`template`]), so a login starts with them.

use std::cell::RefCell;
use std::collections::BTreeMap;

use boa_engine::object::FunctionObjectBuilder;
use boa_engine::property::PropertyDescriptor;
use boa_engine::{Context, JsNativeError, JsObject, JsResult, JsString, JsValue, NativeFunction};
use serde_json::value::RawValue;

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

/// The members the shim gives a default when the input lacks them, so that an action can read
/// `event.user.app_metadata.x` or `event.authorization.roles.length` without checking.
const DEFAULTED: [&str; 11] = [
    "authorization",
    "client",
    "configuration",
    "connection",
    "issuer_claims",
    "request",
    "secrets",
    "stats",
    "tenant",
    "transaction",
    "user",
];

/// The `event` object, made before the snapshot: an accessor for each of [`MEMBERS`]. Every
/// login's fresh instance starts with it untouched.
pub(crate) struct Template {
    event: JsObject,
    keys: Vec<JsString>,
}

/// Make the event object and its accessors (before the snapshot).
pub(crate) fn template(context: &Context) -> Template {
    let event = JsObject::with_object_proto(context.intrinsics());
    let keys: Vec<JsString> = MEMBERS.iter().map(|name| JsString::from(*name)).collect();
    let realm = context.realm().clone();
    for (slot, key) in keys.iter().enumerate() {
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
        event.insert_property(
            key.clone(),
            PropertyDescriptor::builder()
                .get(get)
                .set(set)
                .enumerable(true)
                .configurable(true),
        );
    }
    Template { event, keys }
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

/// The `event` for the input document, the login's time set for the clock: the template with
/// this login's members (a member the input lacks and that has no default is deleted from it),
/// and any member the runtime does not know built at once, after the others.
pub(crate) fn event(context: &mut Context, template: &Template, input: &'static str) -> JsValue {
    let mut members: BTreeMap<&'static str, &'static RawValue> = serde_json::from_str(input)
        .unwrap_or_else(|e| fail(&format!("the input is not a JSON object: {e}")));
    let login_time = members
        .get("login_time")
        .and_then(|raw| serde_json::from_str::<i64>(raw.get()).ok())
        .unwrap_or_else(|| fail("the input has no login_time (ABI version 5)"));
    LOGIN_TIME.with(|t| t.set(login_time));
    let event = template.event.clone();
    let mut slots = Vec::with_capacity(MEMBERS.len());
    for (slot, name) in MEMBERS.iter().enumerate() {
        let key = &template.keys[slot];
        let json = match members.remove(name) {
            Some(raw) => raw.get(),
            None if DEFAULTED.contains(name) => "null",
            None => {
                event
                    .delete_property_or_throw(key.clone(), context)
                    .unwrap_or_else(|e| fail(&format!("cannot build `event`: {e}")));
                "null"
            }
        };
        slots.push(Slot {
            key: key.clone(),
            name,
            json,
            built: None,
        });
    }
    for (name, raw) in members {
        let value = build(name, raw.get(), context)
            .unwrap_or_else(|e| fail(&format!("cannot build `event.{name}`: {e}")));
        event.insert_property(JsString::from(name), data(value));
    }
    LAZY.with(|lazy| {
        *lazy.borrow_mut() = Some(Lazy {
            event: event.clone(),
            slots,
        })
    });
    event.into()
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

/// The JavaScript value of the member `name` from its JSON, with its defaults.
fn build(name: &str, json: &str, context: &mut Context) -> JsResult<JsValue> {
    let mut value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| JsNativeError::syntax().with_message(format!("event.{name}: {e}")))?;
    defaults(name, &mut value);
    JsValue::from_json(&value, context)
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
    let value = build(name, json, context)?;
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
fn defaults(name: &str, value: &mut serde_json::Value) {
    use serde_json::{Map, Value};

    fn object(value: &mut Value) -> &mut Map<String, Value> {
        if !value.is_object() {
            *value = Value::Object(Map::new());
        }
        value.as_object_mut().expect("an object was just put here")
    }
    fn member<'a>(parent: &'a mut Map<String, Value>, key: &str) -> &'a mut Value {
        parent.entry(key).or_insert(Value::Null)
    }
    fn array(parent: &mut Map<String, Value>, key: &str) {
        let value = member(parent, key);
        if !value.is_array() {
            *value = Value::Array(Vec::new());
        }
    }

    if !DEFAULTED.contains(&name) {
        return;
    }
    let map = object(value);
    match name {
        "user" => {
            object(member(map, "app_metadata"));
            object(member(map, "user_metadata"));
            for key in ["groups", "multifactor", "enrolledFactors"] {
                array(map, key);
            }
        }
        "authorization" => {
            array(map, "roles");
            array(map, "permissions");
        }
        "client" | "connection" => {
            object(member(map, "metadata"));
        }
        "request" => {
            object(member(map, "query"));
        }
        "transaction" => {
            array(map, "requested_scopes");
            array(map, "acr_values");
        }
        "stats" if !map.get("logins_count").is_some_and(Value::is_number) => {
            map.insert("logins_count".into(), Value::from(0));
        }
        "tenant" if !map.get("id").is_some_and(Value::is_string) => {
            map.insert("id".into(), Value::from(""));
        }
        _ => {}
    }
}
