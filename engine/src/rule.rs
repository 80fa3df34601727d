//! A rule: a validated module, pre-linked for fast instantiation, with its name, settings,
//! limits and the constant part of its input (configuration and secrets) in the form its ABI
//! version reads.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use wasmtime::{InstancePre, ModuleExport};

use crate::artifact_cache::ArtifactSource;
use crate::claim_policy::ClaimPolicy;
use crate::custom_section::custom_sections;
use crate::engine::Engine;
use crate::error::{LoadError, LoadErrorKind};
use crate::limits::Limits;
use crate::login_event::{LoginEvent, V6_PIECES, input_prefix};
use crate::prewarm::{Prewarmer, Warm};
use crate::rule_run::{self, RuleState};
use crate::validated_module::{ValidatedModule, error_chain, exports};
use claimsmith_sdk::{Event, Reads, binary_event};

/// What happens to the login when a rule fails (traps, exceeds a limit, breaks the policy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Fail closed: the login fails with the rule named.
    #[default]
    Deny,
    /// Drop all of the rule's commands and go on; the failure is in the outcome's diagnostics.
    Skip,
}

/// Whether a rule's decisions reach the login.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleMode {
    /// Its commands are applied to the login (the default).
    #[default]
    Enforce,
    /// It runs after the login's outcome is final, on a copy: what it would have changed is
    /// reported in [`Outcome::shadows`](crate::Outcome::shadows), nothing of it reaches the login.
    Shadow,
}

/// The SHA-256 of a module's bytes: written and read as 64 lowercase hex digits, the form a
/// config's `sha256 = "..."` takes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModuleDigest(pub [u8; 32]);

impl ModuleDigest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> ModuleDigest {
        use sha2::{Digest, Sha256};
        ModuleDigest(Sha256::digest(bytes).into())
    }

    /// Read 64 lowercase hex digits; `None` for anything else (upper case included, so one
    /// digest has one spelling).
    pub fn from_hex(text: &str) -> Option<ModuleDigest> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Some(ModuleDigest(out))
    }
}

impl std::fmt::Display for ModuleDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for ModuleDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModuleDigest({self})")
    }
}

/// How a rule is configured: everything but its module bytes.
#[derive(Clone, Default)]
pub struct RuleSpec {
    /// Unique name, used in every message about the rule.
    pub name: String,
    /// What a failure does to the login.
    pub on_error: OnError,
    /// Narrower namespaces for this rule; `None` means the policy's.
    pub namespaces: Option<Vec<String>>,
    /// The rule's `event.configuration`.
    pub configuration: Map<String, Value>,
    /// The rule's `event.secrets`, resolved.
    pub secrets: BTreeMap<String, String>,
    /// Its resource limits.
    pub limits: Limits,
    /// Whether it enforces or only shadows (default [`RuleMode::Enforce`]).
    pub mode: RuleMode,
    /// For a shadow rule: the enforcing rule it is the candidate for. It then runs in that
    /// rule's place, on a copy, so its report is what replacing that rule would change.
    pub shadows: Option<String>,
    /// The module's pinned SHA-256: bytes that hash to anything else are refused at load.
    pub sha256: Option<ModuleDigest>,
    /// The members of the event the rule may read (`login_time` always): a module that declares
    /// more, or declares nothing (ABI versions 1 to 5), is refused at load. `None` allows what
    /// the module declares.
    pub reads: Option<Reads>,
}

impl std::fmt::Debug for RuleSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSpec")
            .field("name", &self.name)
            .field("on_error", &self.on_error)
            .field("namespaces", &self.namespaces)
            .field("configuration", &self.configuration)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("limits", &self.limits)
            .field("mode", &self.mode)
            .field("shadows", &self.shadows)
            .field("sha256", &self.sha256)
            .field("reads", &self.reads)
            .finish()
    }
}

/// Export handles resolved once, so a login does no string lookups.
#[derive(Clone)]
pub(crate) struct AbiExports {
    pub memory: ModuleExport,
    pub alloc: ModuleExport,
    pub entry: ModuleExport,
    pub version: ModuleExport,
}

/// The rule's own, constant part of its input, in the form of the ABI version its module speaks.
#[derive(Debug, Clone)]
pub(crate) enum RuleInput {
    /// Version 1: JSON; the input starts with this `{"configuration":..,"secrets":..`.
    Json(String),
    /// Version 5: version 1's JSON, with the login's `login_time` always in it (and version 4's
    /// commands allowed in the result).
    JsonV5(String),
    /// Version 2: binary; this follows the encoded event (`binary_event::encode_rule_part`).
    Binary(Vec<u8>),
    /// Version 3: version 2's rule part, followed by the fields added since version 2.
    BinaryV3(Vec<u8>),
    /// Version 4: version 3's input, followed by the fields added in version 4.
    BinaryV4(Vec<u8>),
    /// Version 6: the header naming the members the module reads, the login's parts for each,
    /// then the rule's own `configuration` and `secrets` parts where it reads them.
    BinaryV6 {
        header: [u8; 8],
        reads: Reads,
        rule_parts: Vec<u8>,
    },
}

impl RuleInput {
    fn for_version(version: i32, spec: &RuleSpec, reads: Reads) -> Option<RuleInput> {
        match version {
            1 | 5 => {
                let secrets: Map<String, Value> = spec
                    .secrets
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                let prefix = input_prefix(&spec.configuration, &secrets);
                Some(if version == 1 {
                    RuleInput::Json(prefix)
                } else {
                    RuleInput::JsonV5(prefix)
                })
            }
            2..=4 => {
                let mut part = Vec::new();
                claimsmith_sdk::binary_event::encode_rule_part(
                    &spec.configuration,
                    &spec.secrets,
                    &mut part,
                );
                Some(match version {
                    2 => RuleInput::Binary(part),
                    3 => RuleInput::BinaryV3(part),
                    _ => RuleInput::BinaryV4(part),
                })
            }
            6 => {
                let own = Event {
                    configuration: spec.configuration.clone(),
                    secrets: spec.secrets.clone(),
                    ..Event::default()
                };
                let mut rule_parts = Vec::new();
                binary_event::encode_members(
                    &own,
                    reads.intersection(Reads::PER_RULE),
                    &mut rule_parts,
                );
                Some(RuleInput::BinaryV6 {
                    header: binary_event::header_v6(reads),
                    reads,
                    rule_parts,
                })
            }
            _ => None,
        }
    }

    /// The ABI version this input is for.
    fn abi_version(&self) -> i32 {
        match self {
            RuleInput::Json(_) => 1,
            RuleInput::JsonV5(_) => 5,
            RuleInput::Binary(_) => 2,
            RuleInput::BinaryV3(_) => 3,
            RuleInput::BinaryV4(_) => 4,
            RuleInput::BinaryV6 { .. } => 6,
        }
    }
}

/// A loaded rule, ready to run on any number of logins at once.
pub struct Rule {
    pub(crate) name: String,
    pub(crate) on_error: OnError,
    pub(crate) namespaces: Vec<String>,
    pub(crate) limits: Limits,
    pub(crate) mode: RuleMode,
    pub(crate) shadows: Option<String>,
    input: RuleInput,
    pub(crate) pre: InstancePre<RuleState>,
    pub(crate) exports: AbiExports,
    module: ValidatedModule,
    /// Its ready instances on its engine, with `[limits] prewarm`.
    warm: Option<Arc<Warm>>,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("name", &self.name)
            .field("on_error", &self.on_error)
            .field("namespaces", &self.namespaces)
            .field("limits", &self.limits)
            .field("module_bytes", &self.module.size())
            .finish_non_exhaustive()
    }
}

impl Rule {
    /// Load a rule from module bytes into `engine`: validate, compile (or share the compiled
    /// code of a module in `known` with the same bytes), link, and check the ABI version.
    pub(crate) fn load(
        engine: &Engine,
        policy: &ClaimPolicy,
        spec: RuleSpec,
        bytes: &[u8],
        known: &[&ValidatedModule],
    ) -> Result<Rule, LoadError> {
        let name = spec.name.clone();
        Rule::check_and_link(engine, policy, spec, bytes, known)
            .map_err(|kind| LoadError { rule: name, kind })
    }

    fn check_and_link(
        engine: &Engine,
        policy: &ClaimPolicy,
        mut spec: RuleSpec,
        bytes: &[u8],
        known: &[&ValidatedModule],
    ) -> Result<Rule, LoadErrorKind> {
        if spec.limits.memory_bytes > engine.config().max_memory_bytes {
            return Err(LoadErrorKind::Settings(format!(
                "memory limit of {} bytes is over the engine's largest memory slot of {} bytes",
                spec.limits.memory_bytes,
                engine.config().max_memory_bytes
            )));
        }
        let namespaces = match spec.namespaces.take() {
            Some(narrowed) => {
                policy
                    .check_narrowing(&narrowed)
                    .map_err(LoadErrorKind::Settings)?;
                narrowed
            }
            None => policy.namespaces().to_vec(),
        };
        let digest = ModuleDigest::of(bytes);
        if let Some(expected) = spec.sha256
            && expected != digest
        {
            return Err(LoadErrorKind::DigestMismatch {
                expected,
                actual: digest,
            });
        }
        let module = ValidatedModule::new_sharing(engine, bytes, digest, &spec.limits, known)?;
        let pre = engine
            .linker()
            .instantiate_pre(module.module())
            .map_err(|e| LoadErrorKind::Invalid(error_chain(&e)))?;
        let export = |name: &'static str| {
            module
                .module()
                .get_export_index(name)
                .ok_or(LoadErrorKind::MissingExport(name))
        };
        let exports = AbiExports {
            memory: export(exports::MEMORY)?,
            alloc: export(exports::ALLOC)?,
            entry: export(exports::ON_EXECUTE_POST_LOGIN)?,
            version: export(exports::ABI_VERSION)?,
        };
        let version = rule_run::abi_version(engine, &pre, &exports, &spec.limits)
            .map_err(|failure| LoadErrorKind::Start(failure.to_string()))?;
        let reads = reads_of(bytes, version, spec.reads)?;
        let input = RuleInput::for_version(version, &spec, reads)
            .ok_or(LoadErrorKind::AbiVersion(version))?;
        Ok(Rule {
            name: spec.name,
            on_error: spec.on_error,
            namespaces,
            limits: spec.limits,
            mode: spec.mode,
            shadows: spec.shadows,
            input,
            pre,
            exports,
            module,
            warm: None,
        })
    }

    /// This rule's input for `event`, as pieces to write one after the other.
    pub(crate) fn input<'a>(&'a self, event: &'a LoginEvent) -> InputPieces<'a> {
        match &self.input {
            RuleInput::Json(prefix) => InputPieces::Json(event.json_input(prefix)),
            RuleInput::JsonV5(prefix) => InputPieces::Json(event.json_input_v5(prefix)),
            RuleInput::Binary(part) => InputPieces::Binary(event.binary_input(part)),
            RuleInput::BinaryV3(part) => InputPieces::BinaryV3(event.binary_input_v3(part)),
            RuleInput::BinaryV4(part) => InputPieces::BinaryV4(event.binary_input_v4(part)),
            RuleInput::BinaryV6 {
                header,
                reads,
                rule_parts,
            } => {
                let (pieces, len) = event.binary_input_v6(header, *reads, rule_parts);
                InputPieces::BinaryV6(pieces, len)
            }
        }
    }

    /// Its ready instances, if the pipeline keeps some.
    pub(crate) fn warm(&self) -> Option<&Warm> {
        self.warm.as_deref()
    }

    /// Keep ready instances of this rule with `prewarmer` (`keep` of them) from now on; the
    /// handle the prewarm thread fills.
    pub(crate) fn prewarm(
        &mut self,
        engine: &Engine,
        prewarmer: &Prewarmer,
        keep: usize,
    ) -> Arc<Warm> {
        let wasm = engine.wasm().clone();
        let pre = self.pre.clone();
        let limits = self.limits.clone();
        let ticks = engine.deadline_ticks(limits.timeout);
        let warm = prewarmer.warm(keep, move || {
            rule_run::ready_instance(&wasm, &pre, &limits, ticks)
        });
        self.warm = Some(warm.clone());
        warm
    }

    /// The members of the event the rule is handed: what its version 6 module declares it
    /// reads, or every member for a module of an older version.
    pub fn reads(&self) -> Reads {
        match &self.input {
            RuleInput::BinaryV6 { reads, .. } => *reads,
            _ => Reads::ALL,
        }
    }

    /// The guest ABI version the rule's module speaks (`claimsmith_abi_version`): 1 to 6.
    pub fn abi_version(&self) -> i32 {
        self.input.abi_version()
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What a failure does to the login.
    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    /// The namespaces this rule may write claims under.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Its limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether it enforces or only shadows.
    pub fn mode(&self) -> RuleMode {
        self.mode
    }

    /// The enforcing rule this shadow rule is the candidate for, if any.
    pub fn shadows(&self) -> Option<&str> {
        self.shadows.as_deref()
    }

    /// The SHA-256 of the module's bytes, as loaded.
    pub fn sha256(&self) -> ModuleDigest {
        self.module.digest()
    }

    /// The validated module.
    pub(crate) fn module(&self) -> &ValidatedModule {
        &self.module
    }

    /// Size of the module's bytes.
    pub fn module_size(&self) -> usize {
        self.module.size()
    }

    /// The module's export names, in order.
    pub fn export_names(&self) -> Vec<String> {
        self.module.export_names()
    }

    /// Bytes of the rule's compiled code and its metadata, as mapped in memory.
    pub fn code_bytes(&self) -> usize {
        self.module.code_bytes()
    }

    /// Whether the compiled code came from the artifact cache.
    pub fn artifact_source(&self) -> ArtifactSource {
        self.module.source()
    }

    /// Whether `other` runs the very same compiled code (the same module bytes, loaded once).
    pub fn shares_code_with(&self, other: &Rule) -> bool {
        self.module.shares_code_with(&other.module)
    }
}

/// A rule's input for one login, in pieces: never copied together on the host.
pub(crate) enum InputPieces<'a> {
    Json([&'a [u8]; 4]),
    Binary([&'a [u8]; 2]),
    BinaryV3([&'a [u8]; 3]),
    BinaryV4([&'a [u8]; 4]),
    /// Version 6: the header, the login's member parts, the rule's; the first `.1` are used.
    BinaryV6([&'a [u8]; V6_PIECES], usize),
}

impl<'a> InputPieces<'a> {
    pub(crate) fn pieces(&self) -> &[&'a [u8]] {
        match self {
            InputPieces::Json(pieces) => pieces,
            InputPieces::Binary(pieces) => pieces,
            InputPieces::BinaryV3(pieces) => pieces,
            InputPieces::BinaryV4(pieces) => pieces,
            InputPieces::BinaryV6(pieces, len) => &pieces[..*len],
        }
    }
}

/// The longest `claimsmith.reads` section taken: every member's name once, with room to spare.
const MAX_READS_SECTION: usize = 512;

/// What a module of ABI `version` in `bytes` is handed: the members its `claimsmith.reads`
/// section names (every member if it has none) for version 6, every member for the older ones;
/// refused when the config's `allowed` does not cover it.
fn reads_of(bytes: &[u8], version: i32, allowed: Option<Reads>) -> Result<Reads, LoadErrorKind> {
    let declared = if version == 6 {
        match custom_sections(bytes, Reads::SECTION)[..] {
            [] => Reads::ALL,
            [section] if section.len() <= MAX_READS_SECTION => {
                let text = String::from_utf8_lossy(section);
                Reads::ALWAYS.union(Reads::parse(&text).map_err(LoadErrorKind::UnknownRead)?)
            }
            ref sections => {
                return Err(LoadErrorKind::ReadsSection {
                    sections: sections.len(),
                    bytes: sections.iter().map(|s| s.len()).sum(),
                });
            }
        }
    } else {
        Reads::ALL
    };
    match allowed {
        None => Ok(declared),
        Some(_) if version != 6 => Err(LoadErrorKind::ReadsUndeclared(version)),
        Some(allowed) => {
            // `login_time` is always handed over, allowed or not.
            let allowed = allowed.union(Reads::ALWAYS);
            if allowed.contains(declared) {
                Ok(declared)
            } else {
                Err(LoadErrorKind::ReadsMore {
                    needs: declared.without(allowed),
                    allowed,
                })
            }
        }
    }
}

/// Read a module file, refusing one over `limit` bytes before reading it (a rule pointed at
/// `/dev/zero` or a huge file fails with `TooLarge`, not by exhausting memory).
pub(crate) fn read_module(path: &Path, limit: usize) -> Result<Vec<u8>, LoadErrorKind> {
    use std::io::Read;
    let io = |source| LoadErrorKind::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let declared = file.metadata().map_err(io)?.len();
    if declared > limit as u64 {
        return Err(LoadErrorKind::TooLarge {
            size: usize::try_from(declared).unwrap_or(usize::MAX),
            limit,
        });
    }
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > limit {
        return Err(LoadErrorKind::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    Ok(bytes)
}
