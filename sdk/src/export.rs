//! The module side of the guest ABI: what [`export_rule!`](crate::export_rule) expands to.
//!
//! Version 4 (the default) reads the event in the host's binary form
//! ([`binary_event`](crate::binary_event)), the fields added by versions 3 and 4 each in a part
//! of their own; with the `abi-v3` feature the module speaks version 3 (the same without version
//! 4's part), with `abi-v2` version 2 (without either), and with `abi-v1` version 1, parsing the
//! event from JSON, for hosts that predate those versions.
//!
//! Not for rule authors to call: `export_rule!(my_rule)` is the whole interface.

use crate::{Api, Event};

/// Allocate `len` writable bytes for the host's input. Never freed: the instance is discarded
/// after the login.
pub fn alloc(len: i32) -> i32 {
    if len <= 0 {
        return 0;
    }
    let mut buffer = Vec::<u8>::with_capacity(len as usize);
    let ptr = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    ptr as usize as i32
}

/// Run `rule` on the event at `ptr..ptr+len` and return the packed location of its result
/// (both binary for ABI versions 2 to 4, both JSON for version 1).
///
/// # Safety
/// `ptr..ptr+len` must be the bytes `alloc` handed out and the host filled in.
pub unsafe fn on_execute_post_login(rule: fn(&Event, &mut Api), ptr: i32, len: i32) -> i64 {
    install_panic_reporter();
    let input: &[u8] = if len <= 0 {
        &[]
    } else {
        // SAFETY: the caller guarantees the range is the allocation it filled in.
        unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len as usize) }
    };
    let event = match decode_event(input) {
        Ok(event) => event,
        Err(err) => panic!("the login event does not fit the SDK's Event: {err}"),
    };
    let mut api = Api::new();
    // The event stays in its `ManuallyDrop` and is never dropped: its strings may be lent from
    // the input (`binary_event::decode_lent`), and the instance is discarded after this call
    // anyway.
    rule(&event, &mut api);
    let output = encode_result(&api.into_result());
    let out_len = output.len() as u64;
    let out_ptr = output.as_ptr() as usize as u64;
    std::mem::forget(output);
    ((out_ptr << 32) | out_len) as i64
}

#[cfg(not(feature = "abi-v1"))]
fn decode_event(
    input: &[u8],
) -> Result<std::mem::ManuallyDrop<Event>, crate::binary_event::DecodeError> {
    // SAFETY: the input is the allocation the host filled for this call, which nothing frees;
    // the caller lends the event to the rule by shared reference and never drops it.
    unsafe { crate::binary_event::decode_lent(input) }
}

#[cfg(feature = "abi-v1")]
fn decode_event(input: &[u8]) -> Result<std::mem::ManuallyDrop<Event>, serde_json::Error> {
    serde_json::from_slice(input).map(std::mem::ManuallyDrop::new)
}

#[cfg(not(feature = "abi-v1"))]
fn encode_result(result: &crate::RuleResult) -> Vec<u8> {
    crate::binary_result::encode(result)
}

#[cfg(feature = "abi-v1")]
fn encode_result(result: &crate::RuleResult) -> Vec<u8> {
    serde_json::to_vec(result).expect("commands serialize")
}

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "claimsmith")]
unsafe extern "C" {
    /// Hand the host the reason the rule is about to trap (a panic message).
    #[link_name = "fail"]
    fn host_fail(ptr: i32, len: i32);
}

#[cfg(target_arch = "wasm32")]
fn install_panic_reporter() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        // SAFETY: the host reads `len` bytes at `ptr` from this instance's memory.
        unsafe { host_fail(message.as_ptr() as usize as i32, message.len() as i32) };
    }));
}

#[cfg(not(target_arch = "wasm32"))]
fn install_panic_reporter() {}

/// Export a rule function `fn(&Event, &mut Api)` as a claimsmith module (ABI version
/// [`ABI_VERSION`](crate::ABI_VERSION)).
///
/// ```ignore
/// fn on_execute_post_login(event: &claimsmith_sdk::Event, api: &mut claimsmith_sdk::Api) { /* ... */ }
/// claimsmith_sdk::export_rule!(on_execute_post_login);
/// ```
/// The exports exist only when building for `wasm32`; natively the crate stays a plain library
/// whose rule function the [`testing`](crate::testing) harness calls.
#[macro_export]
macro_rules! export_rule {
    ($rule:path) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[unsafe(no_mangle)]
            pub extern "C" fn claimsmith_abi_version() -> i32 {
                $crate::ABI_VERSION
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn claimsmith_alloc(len: i32) -> i32 {
                $crate::export::alloc(len)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn claimsmith_on_execute_post_login(ptr: i32, len: i32) -> i64 {
                // SAFETY: the host calls this once, with the range it filled in after `claimsmith_alloc`.
                unsafe { $crate::export::on_execute_post_login($rule, ptr, len) }
            }
        };
    };
}
