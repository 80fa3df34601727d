//! Typed errors an embedding issuer can match on: loading a rule, reading an event, and the two
//! ways a login ends without tokens (a rule denied it, or a rule failed).

use std::path::PathBuf;

use crate::claim_policy::PolicyViolation;
use crate::outcome::RuleTrace;

/// A rule module could not be loaded; names the rule and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("rule `{rule}`: {kind}")]
pub struct LoadError {
    /// The rule's configured name.
    pub rule: String,
    /// What is wrong.
    pub kind: LoadErrorKind,
}

/// Why a rule module was refused at load time.
#[derive(Debug, thiserror::Error)]
pub enum LoadErrorKind {
    /// The module file could not be read.
    #[error("cannot read module {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The module is over the module size limit.
    #[error("module is {size} bytes, over the module size limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not a WebAssembly module at all.
    #[error("not a WebAssembly module: {0}")]
    NotWasm(&'static str),
    /// The bytes are WebAssembly but do not validate or compile.
    #[error("invalid WebAssembly module: {0}")]
    Invalid(String),
    /// A required export is missing.
    #[error("missing export `{0}` required by the claimsmith ABI (docs/abi.md)")]
    MissingExport(&'static str),
    /// An export has the wrong kind or signature.
    #[error("export `{name}` is {found}; the claimsmith ABI wants {expected}")]
    WrongExport {
        /// The export.
        name: &'static str,
        /// What the ABI wants.
        expected: &'static str,
        /// What the module has.
        found: String,
    },
    /// The module imports something the host does not provide.
    #[error(
        "imports `{module}::{name}`; a rule module may import only `claimsmith::log` and `claimsmith::fail` (no WASI, no other host functions)"
    )]
    ForbiddenImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// A host import is declared with the wrong signature.
    #[error("imports `claimsmith::{name}` as {found}; the host provides {expected}")]
    WrongImport {
        /// Import name.
        name: String,
        /// What the host provides.
        expected: &'static str,
        /// What the module declares.
        found: String,
    },
    /// `claimsmith_abi_version` returned another version.
    #[error("claimsmith_abi_version() returned {0}; this host runs ABI versions 1 to 6")]
    AbiVersion(i32),
    /// A version 6 module's `claimsmith.reads` section names something that is not a member
    /// of the event.
    #[error("its `claimsmith.reads` section declares {0}")]
    UnknownRead(claimsmith_sdk::UnknownPart),
    /// A version 6 module has more than one `claimsmith.reads` section, or one too long to be a
    /// list of the event's members.
    #[error(
        "its `claimsmith.reads` sections ({sections}, {bytes} bytes) are not one list of the \
         event's members: a module declares what it reads once (`export_rule!`)"
    )]
    ReadsSection {
        /// How many `claimsmith.reads` sections the module has.
        sections: usize,
        /// Their bytes in all.
        bytes: usize,
    },
    /// The module reads members of the event that the config's `reads` does not allow.
    #[error(
        "its module reads {needs}, which the config's `reads = [{allowed}]` does not allow; \
         allow them, or build the rule reading less"
    )]
    ReadsMore {
        /// The members the module reads beyond what is allowed.
        needs: claimsmith_sdk::Reads,
        /// What the config allows.
        allowed: claimsmith_sdk::Reads,
    },
    /// The config narrows what the rule reads, but its module is handed every member.
    #[error(
        "the config's `reads` needs a module that declares what it reads (ABI version 6); this \
         module speaks ABI version {0} and is handed every member of the event: rebuild it with \
         the current SDK (`claimsmith build`); a JavaScript action is always handed every member, \
         so leave `reads` out for it"
    )]
    ReadsUndeclared(i32),
    /// The module's initial memory is over its memory limit.
    #[error("declares {declared} bytes of initial memory, over its memory limit of {limit} bytes")]
    InitialMemory {
        /// Declared initial bytes.
        declared: u64,
        /// The limit.
        limit: usize,
    },
    /// Instantiating the module or calling `claimsmith_abi_version` failed.
    #[error("failed while checking the ABI version: {0}")]
    Start(String),
    /// The module's bytes do not hash to the SHA-256 the config pins.
    #[error("module's SHA-256 is {actual}, not the pinned sha256 = \"{expected}\"; refused")]
    DigestMismatch {
        /// The pinned digest.
        expected: crate::rule::ModuleDigest,
        /// The digest of the bytes read.
        actual: crate::rule::ModuleDigest,
    },
    /// The rule's settings are inconsistent (namespaces, limits).
    #[error("{0}")]
    Settings(String),
}

/// A [`Pipeline`](crate::Pipeline) could not be built; says which setting or rule is at fault.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A namespace is not an `http(s)://` prefix of the right form.
    #[error("{0}")]
    Namespaces(String),
    /// The wasm engine refused the sandbox settings, or its deadline clock could not start.
    #[error("{0}")]
    Engine(String),
    /// The artifact cache folder cannot be used.
    #[error("{0}")]
    ArtifactCache(String),
    /// A rule module could not be loaded.
    #[error(transparent)]
    Rule(#[from] LoadError),
}

/// The login event is not usable; names the field at fault.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EventError {
    /// Not JSON at all.
    #[error("event is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("event must be a JSON object, found {0}")]
    NotObject(&'static str),
    /// A required field is missing or empty.
    #[error("event field `{0}` is required")]
    Missing(&'static str),
    /// A field has the wrong type.
    #[error("event field `{path}`: {message}")]
    WrongType {
        /// Dotted path of the field.
        path: String,
        /// What serde said.
        message: String,
    },
}

/// Why a rule failed; every message names the limit or the fault. New kinds of failure may be
/// added: match [`RuleFailure::kind`] or keep a wildcard arm.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleFailure {
    /// Ran out of fuel.
    #[error("exceeded its instruction budget (fuel limit {limit})")]
    FuelExhausted {
        /// The budget.
        limit: u64,
    },
    /// Ran past its deadline.
    #[error("exceeded its deadline (timeout limit {limit_ms} ms)")]
    Timeout {
        /// The deadline in milliseconds.
        limit_ms: u64,
    },
    /// Asked for more linear memory than allowed.
    #[error("exceeded its memory limit of {limit} bytes (asked for {requested} bytes)")]
    MemoryLimit {
        /// The cap.
        limit: usize,
        /// What it asked for.
        requested: usize,
    },
    /// Exhausted the wasm stack.
    #[error("exceeded the wasm stack limit of {limit} bytes (call stack exhausted)")]
    StackOverflow {
        /// The stack cap.
        limit: usize,
    },
    /// The input document is over the input limit.
    #[error("input of {size} bytes is over its input limit of {limit} bytes")]
    InputTooLarge {
        /// Input size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The result length is over the result limit (nothing was copied).
    #[error("result of {size} bytes is over its result limit of {limit} bytes")]
    ResultTooLarge {
        /// Claimed length.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The result pointer and length leave the module's memory.
    #[error("result at {ptr}..{ptr}+{len} is outside its {memory}-byte memory")]
    ResultOutOfBounds {
        /// Pointer.
        ptr: usize,
        /// Length.
        len: usize,
        /// Memory size.
        memory: usize,
    },
    /// `claimsmith_alloc` returned a range outside the module's memory.
    #[error("claimsmith_alloc returned {ptr} for {len} bytes, outside its {memory}-byte memory")]
    AllocOutOfBounds {
        /// Pointer.
        ptr: usize,
        /// Requested length.
        len: usize,
        /// Memory size.
        memory: usize,
    },
    /// The result bytes are not UTF-8.
    #[error("result is not valid UTF-8: {0}")]
    InvalidUtf8(String),
    /// The result is not a valid `{"commands": [...]}` document.
    #[error("result is not a valid command list: {0}")]
    InvalidResult(String),
    /// The module reported a panic through `claimsmith::fail`.
    #[error("panicked: {0}")]
    Panicked(String),
    /// The module trapped.
    #[error("trapped: {0}")]
    Trap(String),
    /// A command broke the claim policy.
    #[error("{0}")]
    Policy(PolicyViolation),
    /// No instance slot was free.
    #[error("no sandbox slot free (too many concurrent logins): {0}")]
    Capacity(String),
    /// The thread running the rule (a login, or the load's call of its ABI version) has less
    /// native stack left than the rule's wasm stack (`stack_bytes`) and the host's frames need
    /// ([`SandboxConfig::thread_stack_bytes`](crate::SandboxConfig::thread_stack_bytes)): the
    /// rule was not started, as overflowing the thread would abort the process.
    #[error(
        "was not run: the thread running it has {left} bytes of stack left, and the rule's wasm stack (stack_bytes) with the host's frames needs {needed}; load and run rules on threads with larger stacks"
    )]
    ThreadStack {
        /// Bytes of stack the thread had left.
        left: usize,
        /// Bytes the rule may take with the host's frames.
        needed: usize,
    },
}

impl RuleFailure {
    /// A short, stable name for the kind of failure (`fuel_exhausted`, `timeout`, `trap`...):
    /// a metric's label or a log field, where the message is too varied to group by.
    pub fn kind(&self) -> &'static str {
        match self {
            RuleFailure::FuelExhausted { .. } => "fuel_exhausted",
            RuleFailure::Timeout { .. } => "timeout",
            RuleFailure::MemoryLimit { .. } => "memory_limit",
            RuleFailure::StackOverflow { .. } => "stack_overflow",
            RuleFailure::InputTooLarge { .. } => "input_too_large",
            RuleFailure::ResultTooLarge { .. } => "result_too_large",
            RuleFailure::ResultOutOfBounds { .. } => "result_out_of_bounds",
            RuleFailure::AllocOutOfBounds { .. } => "alloc_out_of_bounds",
            RuleFailure::InvalidUtf8(_) => "invalid_utf8",
            RuleFailure::InvalidResult(_) => "invalid_result",
            RuleFailure::Panicked(_) => "panicked",
            RuleFailure::Trap(_) => "trap",
            RuleFailure::Policy(_) => "policy",
            RuleFailure::Capacity(_) => "capacity",
            RuleFailure::ThreadStack { .. } => "thread_stack",
        }
    }
}

/// A rule denied the login.
#[derive(Debug, Clone, thiserror::Error)]
#[error("rule `{rule}` denied the login: {reason}")]
pub struct Denied {
    /// The rule that denied.
    pub rule: String,
    /// Its reason, for `error_description` (secret values redacted).
    pub reason: String,
    /// What each rule did up to and including the denial.
    pub rules: Vec<RuleTrace>,
}

/// A rule with `on_error = "deny"` failed, so the login fails closed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("rule `{rule}` {cause}")]
pub struct RuleFailed {
    /// The rule that failed.
    pub rule: String,
    /// Why.
    pub cause: RuleFailure,
    /// What each rule did up to and including the failure.
    pub rules: Vec<RuleTrace>,
}

/// A login that ends without tokens.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoginError {
    /// A rule denied it.
    #[error(transparent)]
    Denied(Denied),
    /// A rule failed and its `on_error` is `deny`.
    #[error(transparent)]
    RuleFailed(RuleFailed),
}

impl RuleFailure {
    /// The same failure with every secret value in its free text replaced by `[REDACTED]`.
    pub(crate) fn redacted(self, policy: &crate::claim_policy::ClaimPolicy) -> RuleFailure {
        let clean = |m: &str| cut_text(policy.redact(m));
        match self {
            RuleFailure::Panicked(m) => RuleFailure::Panicked(clean(&m)),
            RuleFailure::Trap(m) => RuleFailure::Trap(clean(&m)),
            RuleFailure::InvalidResult(m) => RuleFailure::InvalidResult(clean(&m)),
            RuleFailure::InvalidUtf8(m) => RuleFailure::InvalidUtf8(clean(&m)),
            RuleFailure::Capacity(m) => RuleFailure::Capacity(clean(&m)),
            RuleFailure::Policy(v) => {
                let text = v.to_string();
                let redacted = policy.redact(&text);
                if redacted == text && text.len() <= crate::engine::FAIL_MESSAGE_BYTES {
                    RuleFailure::Policy(v)
                } else {
                    // A secret in it, or a claim name of many kilobytes: the text, cut.
                    RuleFailure::InvalidResult(cut_text(redacted))
                }
            }
            other => other,
        }
    }
}

/// `text` cut to [`FAIL_MESSAGE_BYTES`](crate::engine::FAIL_MESSAGE_BYTES) at a character
/// boundary: a rule's failure or denial text goes into logs, traces and the issuer's error
/// answer, so a module cannot make it large.
pub(crate) fn cut_text(mut text: String) -> String {
    let mut cut = crate::engine::FAIL_MESSAGE_BYTES.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claim_policy::ClaimPolicy;
    use crate::engine::FAIL_MESSAGE_BYTES;
    use claimsmith_sdk::TokenKind;

    #[test]
    fn a_rules_failure_text_is_cut_whatever_the_module_made_it() {
        let policy = ClaimPolicy::new(vec!["https://e.test/".into()]).unwrap();
        let long = "é".repeat(100_000);
        for failure in [
            RuleFailure::InvalidResult(long.clone()),
            RuleFailure::Trap(long.clone()),
            RuleFailure::Panicked(long.clone()),
            RuleFailure::Capacity(long.clone()),
            RuleFailure::InvalidUtf8(long.clone()),
            RuleFailure::Policy(PolicyViolation::Namespace {
                token: TokenKind::IdToken,
                claim: long.clone(),
                allowed: "https://e.test/".into(),
            }),
        ] {
            let kind = failure.kind();
            let text = failure.redacted(&policy).to_string();
            assert!(
                text.len() <= FAIL_MESSAGE_BYTES + 64,
                "{kind}: {}",
                text.len()
            );
            assert!(
                text.len() > FAIL_MESSAGE_BYTES / 2,
                "{kind}: {}",
                text.len()
            );
        }
        // A short policy violation keeps its kind.
        let short = RuleFailure::Policy(PolicyViolation::ScopeAsClaim {
            token: TokenKind::AccessToken,
        });
        assert_eq!(short.redacted(&policy).kind(), "policy");
    }
}
