//! The claimsmith JavaScript guest runtime: Boa inside a rule module.
//!
//! It speaks guest ABI version 5 (docs/abi.md: version 1's JSON, with the login's time and
//! version 4's commands): the host writes the input document (the event, `configuration`,
//! `secrets`, `login_time`) with `claimsmith_alloc`, and `claimsmith_on_execute_post_login`
//! runs the Auth0 Action's `exports.onExecutePostLogin(event, api)` through the shim in
//! `src/shim.js`, runs its promise jobs to completion and returns `{"commands":[...]}`. A throw,
//! a rejected promise (the handler's, or one the action left with no handler) or a value JSON
//! cannot carry becomes `claimsmith::fail` with the message and the action's line, then a trap.
//!
//! The interpreter costs about a thousand wasm instructions an operation, so what every login
//! runs is Rust where it can be: the event is built as the action reads it (`event.rs`), with
//! Auth0's defaults given in Rust; the commands are collected, and plain values written as JSON,
//! by natives the shim calls (`commands.rs`).
//!
//! The action's source is compiled in (`build.rs`, from `CLAIMSMITH_JS_ACTION`), or written into
//! memory before `wizer.initialize` with `claimsmith_js_source`; `wizer.initialize` evaluates the
//! shim and the action, so a snapshot taken after it starts every login with both ready. Without a
//! snapshot the first call does the same work.
//!
//! The module has no clock and no randomness (the ABI gives it none): `Date.now()` and
//! `new Date()` are the login's time (`login_time` in the input), the same instant for the whole
//! login, and `Math.random()` is a fixed sequence. On targets other than wasm32 the crate is empty,
//! so a native `cargo test --workspace` does not build the JavaScript engine.
#![cfg(target_arch = "wasm32")]

mod commands;
mod event;

use std::cell::RefCell;
use std::rc::Rc;

use boa_engine::builtins::promise::{OperationType, Promise, PromiseState};
use boa_engine::context::time::JsInstant;
use boa_engine::context::{Clock, HostHooks};
use boa_engine::object::builtins::{JsFunction, JsPromise};
use boa_engine::{Context, JsObject, JsString, JsValue, Source, js_string};

/// Marks the module as a JavaScript rule, so the host gives it the JavaScript limits
/// (`claimsmith_engine::JAVASCRIPT_SECTION`).
#[used]
#[unsafe(link_section = "claimsmith.javascript")]
static JAVASCRIPT_MARK: [u8; 8] = *b"boa 0.22";

/// The action compiled in, if any.
const COMPILED_ACTION: &str = include_str!(concat!(env!("OUT_DIR"), "/action.js"));
const SHIM: &str = include_str!("shim.js");

#[link(wasm_import_module = "claimsmith")]
unsafe extern "C" {
    #[link_name = "fail"]
    fn host_fail(ptr: *const u8, len: usize);
}

/// Report `reason` to the host and trap.
pub(crate) fn fail(reason: &str) -> ! {
    unsafe { host_fail(reason.as_ptr(), reason.len()) };
    std::process::abort()
}

thread_local! {
    /// The login's time, milliseconds since the epoch: set from the input before the action runs.
    pub(crate) static LOGIN_TIME: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// The clock Boa reads: the login's time, frozen for the whole login.
struct LoginClock;

impl Clock for LoginClock {
    fn now(&self) -> JsInstant {
        let ms = LOGIN_TIME.with(|t| t.get()).max(0) as u64;
        JsInstant::new(ms / 1000, ((ms % 1000) * 1_000_000) as u32)
    }
    fn system_time_millis(&self) -> i64 {
        LOGIN_TIME.with(|t| t.get())
    }
}

struct Hooks;

impl HostHooks for Hooks {
    fn local_timezone_offset_seconds(&self, _unix_time_seconds: i64) -> i32 {
        0
    }

    /// Keeps the promises rejected with no handler, until one is given (HostPromiseRejectionTracker).
    fn promise_rejection_tracker(
        &self,
        promise: &JsObject<Promise>,
        operation: OperationType,
        _: &mut Context,
    ) {
        let promise = promise.clone().upcast();
        UNHANDLED.with(|u| {
            let mut unhandled = u.borrow_mut();
            match operation {
                OperationType::Reject => unhandled.push(promise),
                OperationType::Handle => unhandled.retain(|p| !JsObject::equals(p, &promise)),
            }
        });
    }
}

thread_local! {
    /// This login's promises rejected with no handler yet.
    static UNHANDLED: RefCell<Vec<JsObject>> = const { RefCell::new(Vec::new()) };
}

/// `Math.random()`'s bytes: a fixed xorshift sequence, since a rule is a function of its input.
#[unsafe(no_mangle)]
unsafe extern "Rust" fn __getrandom_v03_custom(
    dest: *mut u8,
    len: usize,
) -> Result<(), getrandom::Error> {
    thread_local!(static STATE: std::cell::Cell<u64> = const { std::cell::Cell::new(0x9E37_79B9_7F4A_7C15) });
    STATE.with(|state| {
        for i in 0..len {
            let mut x = state.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            state.set(x);
            unsafe { *dest.add(i) = x as u8 };
        }
    });
    Ok(())
}

struct Runtime {
    context: Context,
    /// The action's `onExecutePostLogin`, and the `api` object it is given.
    handler: JsFunction,
    api: JsValue,
    /// The shim's `rejected`: the words of a rejected login's error.
    rejected: JsFunction,
    /// The `event` object, its accessors made before the snapshot.
    event: event::Template,
}

thread_local! {
    static SOURCE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    static RUNTIME: RefCell<Option<Runtime>> = const { RefCell::new(None) };
}

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        unsafe { host_fail(message.as_ptr(), message.len()) };
    }));
}

/// Evaluate the shim and the action: a context with the action's handler ready to call.
fn prepare() -> Runtime {
    install_panic_hook();
    let mut context = Context::builder()
        .clock(Rc::new(LoginClock))
        .host_hooks(Rc::new(Hooks))
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot start the JavaScript engine: {e}")));
    for (name, length, body) in commands::natives() {
        context
            .register_global_callable(JsString::from(name), length, body)
            .unwrap_or_else(|e| fail(&format!("cannot define {name}: {e}")));
    }
    commands::keep_stringify(&mut context)
        .unwrap_or_else(|e| fail(&format!("cannot start the JavaScript engine: {e}")));
    context
        .eval(Source::from_bytes(SHIM).with_path("claimsmith-shim.js".as_ref()))
        .unwrap_or_else(|e| fail(&format!("the claimsmith shim failed: {e}")));
    let source = SOURCE.with(|s| s.borrow_mut().take());
    let action = match &source {
        Some(bytes) => {
            std::str::from_utf8(bytes).unwrap_or_else(|_| fail("the action's source is not UTF-8"))
        }
        None => COMPILED_ACTION,
    };
    // One line for the wrapper's head, so the action's line numbers are its file's.
    let wrapped = format!("(function (exports, module, require) {{ {action}\n}})");
    let wrapper = context
        .eval(Source::from_bytes(&wrapped).with_path("action.js".as_ref()))
        .unwrap_or_else(|e| fail(&format!("the action does not compile: {e}")));
    let load = global_function(&mut context, "__claimsmith_load");
    let parts = match load.call(&JsValue::undefined(), &[wrapper], &mut context) {
        Ok(parts) => parts,
        Err(e) => fail(&describe(&e, &mut context)),
    };
    let mut part = |i: u32| -> JsValue {
        parts
            .as_object()
            .and_then(|parts| parts.get(i, &mut context).ok())
            .unwrap_or_default()
    };
    let function = |value: JsValue, what: &str| {
        value
            .as_object()
            .and_then(JsFunction::from_object)
            .unwrap_or_else(|| fail(&format!("the claimsmith shim gave no {what}")))
    };
    let handler = function(part(0), "handler");
    let api = part(1);
    let rejected = function(part(2), "rejected");
    let event = event::template(&context);
    Runtime {
        context,
        handler,
        api,
        rejected,
        event,
    }
}

fn global_function(context: &mut Context, name: &str) -> JsFunction {
    context
        .global_object()
        .get(js_string!(name), context)
        .ok()
        .and_then(|value| value.as_object())
        .and_then(JsFunction::from_object)
        .unwrap_or_else(|| fail(&format!("the claimsmith shim defines no {name}")))
}

/// The message of a JavaScript error, as the shim's `describe` words it.
/// The first line of the error and the action's innermost frame: `Name: message (at
/// action.js:LINE:COLUMN)`.
fn describe(error: &boa_engine::JsError, context: &mut Context) -> String {
    let text = match error.try_native(context) {
        Ok(native) => native.to_string(),
        Err(_) => error.to_string(),
    };
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("the action failed").trim();
    let frame = lines
        .filter_map(|line| line.find("action.js:").map(|at| &line[at..]))
        .next()
        .map(|frame| frame.trim_end_matches([')', ' ']));
    match frame {
        Some(frame) => format!("{first} (at {frame})"),
        None => first.to_owned(),
    }
}

/// Where the host writes the action's source before `wizer.initialize` (a build step, never a
/// login): `len` bytes, kept until the runtime evaluates them.
#[unsafe(no_mangle)]
pub extern "C" fn claimsmith_js_source(len: usize) -> *mut u8 {
    SOURCE.with(|s| {
        let mut slot = s.borrow_mut();
        let bytes = slot.insert(vec![0; len]);
        bytes.as_mut_ptr()
    })
}

/// Evaluate the shim and the action now, so a snapshot taken after this call keeps them.
#[unsafe(export_name = "wizer.initialize")]
pub extern "C" fn wizer_initialize() {
    RUNTIME.with(|r| {
        let runtime = prepare();
        *r.borrow_mut() = Some(runtime);
    });
}

/// Guest ABI version 5: JSON in, JSON out, with the login's time and version 4's commands.
#[unsafe(no_mangle)]
pub extern "C" fn claimsmith_abi_version() -> i32 {
    5
}

/// `len` writable bytes for the input; never freed (the instance is dropped after the call).
#[unsafe(no_mangle)]
pub extern "C" fn claimsmith_alloc(len: usize) -> *mut u8 {
    let mut buffer = std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(len.max(1)));
    buffer.as_mut_ptr()
}

/// Run the action on the input at `ptr..ptr+len`; the result's `(ptr << 32) | len`.
///
/// # Safety
/// `ptr..ptr+len` is the input the host wrote into the block `claimsmith_alloc` returned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn claimsmith_on_execute_post_login(ptr: *const u8, len: usize) -> i64 {
    let input = unsafe { std::slice::from_raw_parts(ptr, len) };
    // `'static`: the block `claimsmith_alloc` gave for the input is never freed, and the event's
    // lazy members read their JSON from it for the rest of the call.
    let input: &'static str =
        std::str::from_utf8(input).unwrap_or_else(|_| fail("the input is not UTF-8"));
    let result = RUNTIME.with(|r| {
        let mut slot = r.borrow_mut();
        let runtime = slot.get_or_insert_with(prepare);
        run(runtime, input)
    });
    let result = std::mem::ManuallyDrop::new(result.into_bytes());
    ((result.as_ptr() as i64) << 32) | result.len() as i64
}

fn run(runtime: &mut Runtime, input: &'static str) -> String {
    UNHANDLED.with(|u| u.borrow_mut().clear());
    let context = &mut runtime.context;
    let event = event::event(context, &runtime.event, input);
    // `Promise.resolve(handler(event, api))`, a throw a rejection, read from its state once
    // every job has run: no `then` of our own (a reaction, its capability and one more job). An
    // error JavaScript cannot catch (a runtime limit) ends the login here.
    commands::begin();
    let promise = match runtime.handler.call(
        &JsValue::undefined(),
        &[event, runtime.api.clone()],
        context,
    ) {
        // An async function's promise comes back as it is (its `constructor` is `Promise`); a
        // thenable or a promise of another constructor is followed through its `then`.
        Ok(value) => JsPromise::resolve(value, context),
        Err(e) if e.as_engine().is_none() => JsPromise::reject(e, context),
        Err(e) => fail(&describe(&e, context)),
    }
    .unwrap_or_else(|e| fail(&describe(&e, context)));
    // Every job, including those the action left running without awaiting them: a login's
    // commands are all it made, none dropped because the handler returned first.
    if let Err(e) = context.run_jobs() {
        fail(&describe(&e, context));
    }
    // A promise rejected with no handler (the action did not await it) fails the login, as an
    // unhandled rejection ends a Node.js process: its work is lost, so its login is not
    // complete.
    let settled = JsObject::from(promise.clone());
    let unhandled = UNHANDLED.with(|u| {
        u.borrow()
            .iter()
            .find(|rejected| !JsObject::equals(rejected, &settled))
            .cloned()
    });
    match (promise.state(), unhandled) {
        (PromiseState::Fulfilled(_), None) => commands::finish(),
        (PromiseState::Rejected(reason), _) => fail(&words(runtime, reason)),
        (PromiseState::Fulfilled(_), Some(rejected)) => {
            let reason = match JsPromise::from_object(rejected).map(|p| p.state()) {
                Ok(PromiseState::Rejected(reason)) => reason,
                _ => JsValue::undefined(),
            };
            fail(&format!(
                "a promise the action did not await was rejected: {}",
                words(runtime, reason)
            ))
        }
        (PromiseState::Pending, _) => fail(
            "onExecutePostLogin's promise never settled: it awaits something that never happens (timers and network are not available)",
        ),
    }
}

/// The words of a rejection's `reason`: the shim's `rejected` closes the API and throws them.
fn words(runtime: &mut Runtime, reason: JsValue) -> String {
    let context = &mut runtime.context;
    let thrown = match runtime
        .rejected
        .call(&JsValue::undefined(), &[reason], context)
    {
        Ok(_) => fail("the claimsmith shim did not word the action's error"),
        Err(e) if e.as_engine().is_some() => fail(&describe(&e, context)),
        Err(e) => e,
    };
    thrown
        .into_opaque(context)
        .and_then(|reason| reason.to_string(context))
        .map(|s| s.to_std_string_escaped())
        .unwrap_or_else(|_| "the action failed".into())
}
