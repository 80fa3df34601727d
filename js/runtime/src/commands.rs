//! The action's commands, collected in Rust rather than in a JavaScript array, and the JSON text
//! of the values it hands the API.
//!
//! Each call the interpreter runs costs thousands of wasm instructions, so the login's hot path
//! is native: `api.idToken.setCustomClaim` and `api.accessToken.setCustomClaim` are native
//! functions that write their command with no JavaScript frame ([`claim_method`]; a call of a
//! JavaScript function costs about 8,000 instructions), every other API call pushes the command
//! the shim wrote ([`push`]), and the JSON text of a value comes from [`write`], which writes what
//! `JSON.stringify` writes for plain data (primitives, and arrays and ordinary objects of data
//! properties with no `toJSON`) and leaves anything else (a getter, a `Date`, a `Map`, a boxed
//! primitive, a proxy, a BigInt, a cycle) to `JSON.stringify` itself, whole, so that the
//! action's code runs once. `JSON.stringify` took about 27,000 instructions for a two-role array.

use std::cell::RefCell;

use boa_engine::object::FunctionObjectBuilder;
use boa_engine::object::builtins::JsFunction;
use boa_engine::property::PropertyKey;
use boa_engine::string::{CodePoint, JsStrVariant};
use boa_engine::{
    Context, JsError, JsNativeError, JsObject, JsResult, JsString, JsValue, NativeFunction,
    js_string,
};

thread_local! {
    /// The login's commands, each a JSON object's text; `None` outside `onExecutePostLogin`.
    static COMMANDS: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    /// The realm's own `JSON.stringify`, taken before the action runs (it may replace the global).
    static STRINGIFY: RefCell<Option<JsFunction>> = const { RefCell::new(None) };
}

/// The natives the shim takes (and then deletes from the global object): name, length, body.
pub(crate) fn natives() -> [(&'static str, usize, NativeFunction); 5] {
    [
        (
            "__claimsmith_claim_method",
            3,
            NativeFunction::from_fn_ptr(claim_method),
        ),
        ("__claimsmith_log", 2, NativeFunction::from_fn_ptr(log)),
        ("__claimsmith_end", 0, NativeFunction::from_fn_ptr(end)),
        ("__claimsmith_push", 1, NativeFunction::from_fn_ptr(push)),
        (
            "__claimsmith_json",
            1,
            NativeFunction::from_fn_ptr(json_native),
        ),
    ]
}

/// Keep the realm's `JSON.stringify` for the values [`json`] does not write itself.
pub(crate) fn keep_stringify(context: &mut Context) -> JsResult<()> {
    let json = context
        .global_object()
        .get(js_string!("JSON"), context)?
        .as_object()
        .ok_or_else(|| JsNativeError::typ().with_message("no JSON object"))?;
    let stringify = json
        .get(js_string!("stringify"), context)?
        .as_object()
        .and_then(JsFunction::from_object)
        .ok_or_else(|| JsNativeError::typ().with_message("no JSON.stringify"))?;
    STRINGIFY.with(|s| *s.borrow_mut() = Some(stringify));
    Ok(())
}

/// A login starts with no commands, the API open.
pub(crate) fn begin() {
    COMMANDS.with(|c| *c.borrow_mut() = Some(Vec::new()));
}

/// `__claimsmith_end()`: the API closed (the shim's `rejected` calls it); its result document.
fn end(_: &JsValue, _: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    Ok(JsString::from(finish().as_str()).into())
}

/// The result document, `{"commands":[...]}`; the API is closed after it.
pub(crate) fn finish() -> String {
    let commands = COMMANDS.with(|c| c.borrow_mut().take()).unwrap_or_default();
    let mut document = String::with_capacity(16 + commands.iter().map(String::len).sum::<usize>());
    document.push_str("{\"commands\":[");
    for (i, command) in commands.iter().enumerate() {
        if i > 0 {
            document.push(',');
        }
        document.push_str(command);
    }
    document.push_str("]}");
    document
}

#[link(wasm_import_module = "claimsmith")]
unsafe extern "C" {
    #[link_name = "log"]
    fn host_log(level: i32, ptr: *const u8, len: usize);
}

/// `__claimsmith_log(level, text)`: a `console.*` line, handed to the host at once through the
/// `claimsmith::log` import (0 trace to 4 error), so that it is kept even when the action fails
/// afterwards, as a Node.js process's output is.
fn log(_: &JsValue, args: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    if COMMANDS.with(|c| c.borrow().is_none()) {
        return Err(JsNativeError::error()
            .with_message("the claimsmith api was used outside onExecutePostLogin")
            .into());
    }
    let level = args.first().and_then(JsValue::as_number).unwrap_or(2.0) as i32;
    let text = args
        .get(1)
        .and_then(JsValue::as_string)
        .map(|s| s.to_std_string_escaped())
        .unwrap_or_default();
    unsafe { host_log(level, text.as_ptr(), text.len()) };
    Ok(JsValue::undefined())
}

/// `__claimsmith_push(command)`: one command's JSON text, as the shim wrote it.
fn push(_: &JsValue, args: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    let command = args
        .first()
        .and_then(JsValue::as_string)
        .ok_or_else(|| JsNativeError::typ().with_message("a command is a string"))?;
    add(command.to_std_string_escaped())?;
    Ok(JsValue::undefined())
}

fn add(command: String) -> JsResult<()> {
    COMMANDS.with(|c| match c.borrow_mut().as_mut() {
        Some(commands) => {
            commands.push(command);
            Ok(())
        }
        None => Err(JsNativeError::error()
            .with_message("the claimsmith api was used outside onExecutePostLogin")
            .into()),
    })
}

/// `__claimsmith_claim_method(token, slow, api)`: `api.idToken.setCustomClaim` (or the access
/// token's) as a native function, so that the usual call runs no JavaScript frame: it writes the
/// command ([`write_claim`]) or, for what that does not take, calls `slow` (the shim's, which
/// writes it or words the error), and returns `api`, as Auth0's does.
fn claim_method(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let (Some(token), Some(slow), Some(api)) = (
        arg(0).as_string(),
        arg(1).as_object().and_then(JsFunction::from_object),
        arg(2).as_object(),
    ) else {
        return Err(JsNativeError::typ()
            .with_message("a claim method takes a token, a function and the api object")
            .into());
    };
    let method = NativeFunction::from_copy_closure_with_captures(
        |this, args, (token, slow, api), context| {
            let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
            if !write_claim(token, &arg(0), &arg(1), context) {
                slow.call(this, args, context)?;
            }
            Ok(api.clone().into())
        },
        (token, slow, api),
    );
    let realm = context.realm().clone();
    Ok(FunctionObjectBuilder::new(&realm, method)
        .name(js_string!("setCustomClaim"))
        .length(2)
        .build()
        .into())
}

/// The `set_claim` command for `token`, `true` once written. `false` (nothing written, no code
/// of the action run) when the name is not a string, the value is not plain data or the API is
/// closed: the shim then writes it, or words the error, the way the rest of the API does.
fn write_claim(token: &JsString, name: &JsValue, value: &JsValue, context: &mut Context) -> bool {
    let Some(name) = name.as_string() else {
        return false;
    };
    if COMMANDS.with(|c| c.borrow().is_none()) {
        return false;
    }
    let mut command = String::with_capacity(64);
    command.push_str("{\"op\":\"set_claim\",\"token\":");
    quote(token, &mut command);
    command.push_str(",\"name\":");
    quote(&name, &mut command);
    command.push_str(",\"value\":");
    if write(value, &mut command, &mut Vec::new(), context) != Some(true) {
        return false;
    }
    command.push('}');
    add(command).is_ok()
}

/// `__claimsmith_json(value)`: `JSON.stringify(value)`.
fn json_native(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let value = args.first().cloned().unwrap_or_default();
    let mut text = String::new();
    let written = match write(&value, &mut text, &mut Vec::new(), context) {
        Some(written) => written,
        None => {
            text.clear();
            stringify(&value, &mut text, context)?
        }
    };
    Ok(if written {
        JsString::from(text.as_str()).into()
    } else {
        JsValue::undefined()
    })
}

/// Write the JSON text of `value` as `JSON.stringify` does, if it is plain data: `Some(false)`
/// (nothing written) where JSON.stringify gives undefined, `None` where the value is not plain
/// data, so that only the realm's JSON.stringify may write it.
///
/// Plain data is what JSON.stringify writes without running any of the action's code:
/// primitives other than BigInt, and arrays and ordinary objects whose members are data
/// properties (no getters, no holes), with no `toJSON` anywhere on their prototype chain, and
/// no cycle. Telling them apart only reads property tables, so a value that is not plain data
/// is written by JSON.stringify alone, with its getters and `toJSON` run once, as before.
fn write(
    value: &JsValue,
    out: &mut String,
    stack: &mut Vec<JsObject>,
    context: &mut Context,
) -> Option<bool> {
    if value.is_null() {
        out.push_str("null");
    } else if let Some(boolean) = value.as_boolean() {
        out.push_str(if boolean { "true" } else { "false" });
    } else if let Some(text) = value.as_string() {
        quote(&text, out);
    } else if let Some(number) = value.as_number() {
        if !number.is_finite() {
            out.push_str("null");
        } else if number.fract() == 0.0 && number.abs() <= 9_007_199_254_740_992.0 {
            // Up to 2^53 an integer's ToString is its decimal digits (and -0 is "0"); above,
            // JavaScript prints the shortest digits that round-trip, padded with zeros.
            out.push_str(&(number as i64).to_string());
        } else {
            return None;
        }
    } else if let Some(object) = value.as_object() {
        if object.is_callable() {
            return Some(false);
        }
        if !(object.is_ordinary() || object.is_array()) || has_to_json(&object)? {
            return None;
        }
        if stack.iter().any(|seen| JsObject::equals(seen, &object)) {
            // A cycle: JSON.stringify throws its own TypeError.
            return None;
        }
        stack.push(object.clone());
        if object.is_array() {
            array(&object, out, stack, context)?;
        } else {
            members(&object, out, stack, context)?;
        }
        stack.pop();
    } else if value.is_undefined() || value.is_symbol() {
        return Some(false);
    } else {
        // A BigInt.
        return None;
    }
    Some(true)
}

/// Whether `object` or its prototypes have a `toJSON` (`None`: a prototype that is not ordinary).
fn has_to_json(object: &JsObject) -> Option<bool> {
    let key = PropertyKey::from(js_string!("toJSON"));
    let mut next = Some(object.clone());
    while let Some(object) = next {
        if !(object.is_ordinary() || object.is_array()) {
            return None;
        }
        let borrowed = object.borrow();
        if borrowed.properties().get(&key).is_some() {
            return Some(true);
        }
        next = borrowed.prototype();
    }
    Some(false)
}

/// A data property's value; `None` for a getter or setter, or none at all.
pub(crate) fn data_value(object: &JsObject, key: &PropertyKey) -> Option<JsValue> {
    let property = object.borrow().properties().get(key)?;
    if property.is_accessor_descriptor() {
        return None;
    }
    property.value().cloned()
}

/// SerializeJSONArray: every index up to `length`, `null` for what has no JSON text.
fn array(
    object: &JsObject,
    out: &mut String,
    stack: &mut Vec<JsObject>,
    context: &mut Context,
) -> Option<()> {
    let length = data_value(object, &PropertyKey::from(js_string!("length")))?.as_number()?;
    out.push('[');
    for index in 0..length as u32 {
        if index > 0 {
            out.push(',');
        }
        let element = data_value(object, &PropertyKey::from(index))?;
        if !write(&element, out, stack, context)? {
            out.push_str("null");
        }
    }
    out.push(']');
    Some(())
}

/// SerializeJSONObject: the own enumerable string-keyed members, in the object's key order,
/// those with no JSON text left out.
fn members(
    object: &JsObject,
    out: &mut String,
    stack: &mut Vec<JsObject>,
    context: &mut Context,
) -> Option<()> {
    // An ordinary object's or an array's own keys: no code of the action runs.
    let keys = object.own_property_keys(context).ok()?;
    out.push('{');
    let mut first = true;
    for key in keys {
        let name = match &key {
            PropertyKey::String(name) => name.clone(),
            PropertyKey::Index(index) => JsString::from(index.get().to_string().as_str()),
            PropertyKey::Symbol(_) => continue,
        };
        let property = object.borrow().properties().get(&key)?;
        if !property.enumerable().unwrap_or(false) {
            continue;
        }
        if property.is_accessor_descriptor() {
            return None;
        }
        let member = property.value().cloned().unwrap_or_default();
        let start = out.len();
        if !first {
            out.push(',');
        }
        quote(&name, out);
        out.push(':');
        if write(&member, out, stack, context)? {
            first = false;
        } else {
            out.truncate(start);
        }
    }
    out.push('}');
    Some(())
}

/// The realm's `JSON.stringify(value)`, appended; `false` where it gives undefined.
fn stringify(value: &JsValue, out: &mut String, context: &mut Context) -> JsResult<bool> {
    let stringify = STRINGIFY
        .with(|s| s.borrow().clone())
        .ok_or_else(|| JsError::from(JsNativeError::typ().with_message("no JSON.stringify")))?;
    let text = stringify.call(&JsValue::undefined(), std::slice::from_ref(value), context)?;
    match text.as_string() {
        Some(text) => {
            out.push_str(&text.to_std_string_escaped());
            Ok(true)
        }
        None => Ok(false),
    }
}

/// QuoteJSONString: `text` as a JSON string, lone surrogates escaped as `JSON.stringify` does.
fn quote(text: &JsString, out: &mut String) {
    use std::fmt::Write;
    // The usual text, printable ASCII with nothing to escape, is copied whole.
    if let JsStrVariant::Latin1(bytes) = text.variant()
        && bytes
            .iter()
            .all(|&b| (0x20..0x80).contains(&b) && b != b'"' && b != b'\\')
        && let Ok(plain) = std::str::from_utf8(bytes)
    {
        out.push('"');
        out.push_str(plain);
        out.push('"');
        return;
    }
    out.push('"');
    for point in text.code_points() {
        match point {
            CodePoint::Unicode(c) => match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            },
            CodePoint::UnpairedSurrogate(unit) => {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out.push('"');
}
