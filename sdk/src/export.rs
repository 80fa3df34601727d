//! The module side of the guest ABI: what [`export_rule!`](crate::export_rule) expands to.
//!
//! Version 6 (the default) reads the event in the host's binary form
//! ([`binary_event`](crate::binary_event)), only the members the rule declares it reads
//! ([`Reads`]), each whole in a part of its own; with the `abi-v4` feature the module speaks
//! version 4 (every member, the fields added by versions 3 and 4 each in a part of their own),
//! with `abi-v3` version 3 (without version 4's part), with `abi-v2` version 2 (without either),
//! and with `abi-v1` version 1, parsing the event from JSON, for hosts that predate those
//! versions.
//!
//! Not for rule authors to call: `export_rule!(my_rule)` is the whole interface.

use crate::{Api, Event, Reads};

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

/// A rule as [`export_rule!`](crate::export_rule) exports it: its function and the members of
/// the event it reads. The macro names it `RULE`; [`testing::run`](crate::testing::run) takes it,
/// so a native test sees the event as the module does.
#[derive(Clone, Copy, Debug)]
pub struct ExportedRule {
    /// The rule's function.
    pub function: fn(&Event, &mut Api),
    /// What it declares it reads ([`Reads::ALL`] when it declares nothing).
    pub reads: Reads,
}

impl ExportedRule {
    /// What the rule is handed, as this SDK builds it: what it declares with ABI version 6,
    /// every member with the older versions its features may select.
    pub const fn handed(&self) -> Reads {
        if crate::ABI_VERSION >= 6 {
            self.reads
        } else {
            Reads::ALL
        }
    }
}

/// The bytes of a `claimsmith.reads` custom section: `text`, as an array.
pub const fn section_bytes<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Run `rule` on the event at `ptr..ptr+len` and return the packed location of its result
/// (both binary for ABI versions 2 to 6, both JSON for version 1).
///
/// # Safety
/// `ptr..ptr+len` must be the bytes `alloc` handed out and the host filled in.
pub unsafe fn on_execute_post_login(rule: ExportedRule, ptr: i32, len: i32) -> i64 {
    install_panic_reporter();
    let input: &[u8] = if len <= 0 {
        &[]
    } else {
        // SAFETY: the caller guarantees the range is the allocation it filled in.
        unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len as usize) }
    };
    let mut api = Api::new();
    // The event is never dropped: its strings may be lent from the input
    // (`binary_event::decode_lent`), and the instance is discarded after this call anyway.
    if let Err(err) = decode_event(input, rule.reads, |event| (rule.function)(event, &mut api)) {
        panic!("the login event does not fit the SDK's Event: {err}");
    }
    let output = encode_result(&api.into_result());
    let out_len = output.len() as u64;
    let out_ptr = output.as_ptr() as usize as u64;
    std::mem::forget(output);
    ((out_ptr << 32) | out_len) as i64
}

/// Decode the event from `input` and lend it to `rule`; never dropped (the instance is
/// discarded after the call).
#[cfg(not(feature = "abi-v1"))]
fn decode_event(
    input: &[u8],
    reads: Reads,
    rule: impl FnOnce(&Event),
) -> Result<(), crate::binary_event::DecodeError> {
    if crate::ABI_VERSION >= 6 {
        // Decoded in place on the heap, so the large `Event` is never copied on its way.
        let event: &'static mut Event = Box::leak(Box::default());
        // SAFETY: the input is the allocation the host filled for this call, which nothing
        // frees; the event is leaked, so nothing it lends is ever dropped.
        unsafe { crate::binary_event::decode_lent_v6_into(input, reads, event) }?;
        rule(event);
    } else {
        // SAFETY: as above; the event stays in its `ManuallyDrop`.
        let event = unsafe { crate::binary_event::decode_lent(input) }?;
        rule(&event);
    }
    Ok(())
}

#[cfg(feature = "abi-v1")]
fn decode_event(input: &[u8], _reads: Reads, rule: impl FnOnce(&Event)) -> serde_json::Result<()> {
    let event = std::mem::ManuallyDrop::new(serde_json::from_slice::<Event>(input)?);
    rule(&event);
    Ok(())
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
/// [`ABI_VERSION`](crate::ABI_VERSION)), declaring which members of the event it reads.
///
/// ```ignore
/// fn on_execute_post_login(event: &claimsmith_sdk::Event, api: &mut claimsmith_sdk::Api) { /* ... */ }
/// claimsmith_sdk::export_rule!(on_execute_post_login, reads = [authorization, configuration]);
/// ```
///
/// `reads` names the members of [`Event`](crate::Event) the rule reads (`user`,
/// `authorization`, `authentication`, `client`, `connection`, `organization`, `request`,
/// `transaction`, `resource_server`, `stats`, `issuer_claims`, `tenant`, `session`,
/// `configuration`, `secrets`; `login_time` is always read): the host hands the module those and
/// no others, and every other member reads as empty. Without `reads` the rule reads every member.
/// A name that is not a member does not compile.
///
/// The macro defines `RULE` ([`ExportedRule`]) in the calling module, for
/// [`testing::run`](crate::testing::run), which hands a native test the same members. The exports
/// exist only when building for `wasm32`; natively the crate stays a plain library.
#[macro_export]
macro_rules! export_rule {
    ($rule:path $(,)?) => {
        $crate::export_rule!(@export $rule, $crate::Reads::ALL);
    };
    ($rule:path, reads = [$($part:ident),* $(,)?] $(,)?) => {
        $crate::export_rule!(@export $rule, $crate::Reads::union_of(&[$($crate::parts::$part),*]));

        // The declaration, for the host: the members' names in a custom section.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            const TEXT: &str = concat!("login_time" $(, " ", stringify!($part))*);
            #[used]
            #[unsafe(link_section = "claimsmith.reads")]
            static CLAIMSMITH_READS: [u8; TEXT.len()] = $crate::export::section_bytes(TEXT);
        };
    };
    (@export $rule:path, $reads:expr) => {
        /// The rule as exported: its function and the members of the event it reads. Hand it to
        /// `claimsmith_sdk::testing::run` in tests.
        pub const RULE: $crate::ExportedRule = $crate::ExportedRule {
            function: $rule,
            reads: $reads,
        };

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
                unsafe { $crate::export::on_execute_post_login(RULE, ptr, len) }
            }
        };
    };
}
