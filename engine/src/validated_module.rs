//! A module checked against the guest ABI before any login runs it: size, magic bytes, imports,
//! exports and their signatures, initial memory. `claimsmith_abi_version` is checked in
//! [`Rule::load`](crate::Rule) once the module can be instantiated.

use crate::rule::ModuleDigest;
use wasmtime::{Engine as WasmEngine, ExternType, FuncType, Module, ValType};

use crate::artifact_cache::ArtifactSource;
use crate::engine::Engine;
use crate::error::LoadErrorKind;
use crate::limits::Limits;

/// Export names of the guest ABI, version 1.
pub mod exports {
    /// The module's linear memory.
    pub const MEMORY: &str = "memory";
    /// `() -> i32`, returns 1.
    pub const ABI_VERSION: &str = "claimsmith_abi_version";
    /// `(len: i32) -> i32`, a pointer to `len` writable bytes.
    pub const ALLOC: &str = "claimsmith_alloc";
    /// `(ptr: i32, len: i32) -> i64`, `(out_ptr << 32) | out_len`.
    pub const ON_EXECUTE_POST_LOGIN: &str = "claimsmith_on_execute_post_login";
}

const WASM_PAGE: u64 = 64 * 1024;

/// A compiled module that satisfies the ABI's static requirements.
#[derive(Debug, Clone)]
pub struct ValidatedModule {
    module: Module,
    size: usize,
    source: ArtifactSource,
    digest: [u8; 32],
}

impl ValidatedModule {
    /// Check `bytes`, reusing the compiled code of a module in `known` with the same bytes
    /// (rules that share a module share its code; each still gets its own instance per login).
    pub fn new_sharing(
        engine: &Engine,
        bytes: &[u8],
        digest: ModuleDigest,
        limits: &Limits,
        known: &[&ValidatedModule],
    ) -> Result<ValidatedModule, LoadErrorKind> {
        if bytes.len() > limits.module_bytes {
            return Err(LoadErrorKind::TooLarge {
                size: bytes.len(),
                limit: limits.module_bytes,
            });
        }
        check_header(bytes)?;
        let digest = digest.0;
        // The same engine's module first: its compiled code is shared outright.
        let same_engine =
            |m: &&&ValidatedModule| WasmEngine::same(m.module.engine(), engine.wasm());
        let mut same_bytes = known.iter().filter(|m| m.digest == digest);
        if let Some(same) = same_bytes.clone().find(same_engine) {
            check_imports(&same.module)?;
            check_exports(&same.module, limits)?;
            return Ok((*same).clone());
        }
        if let Some(other) = same_bytes.next() {
            // Another engine of this engine config compiled it: take a copy of its code.
            let module = copy_to(engine, &other.module)
                .map_err(|e| LoadErrorKind::Invalid(error_chain(&e)))?;
            check_imports(&module)?;
            check_exports(&module, limits)?;
            return Ok(ValidatedModule {
                module,
                size: bytes.len(),
                source: other.source,
                digest,
            });
        }
        let (module, source) = match engine.artifact_cache() {
            Some(cache) => cache.load_or_compile(engine.wasm(), bytes),
            None => Module::from_binary(engine.wasm(), bytes)
                .map(|module| (module, ArtifactSource::Compiled)),
        }
        .map_err(|e| LoadErrorKind::Invalid(error_chain(&e)))?;
        check_imports(&module)?;
        check_exports(&module, limits)?;
        Ok(ValidatedModule {
            module,
            size: bytes.len(),
            source,
            digest,
        })
    }

    /// The SHA-256 of the module's bytes.
    pub fn digest(&self) -> ModuleDigest {
        ModuleDigest(self.digest)
    }

    /// The compiled module.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Bytes of compiled code and its metadata, as mapped in memory.
    pub fn code_bytes(&self) -> usize {
        let range = self.module.image_range();
        range.end as usize - range.start as usize
    }

    /// Whether `other` runs the very same compiled code (the same module bytes, loaded once).
    pub fn shares_code_with(&self, other: &ValidatedModule) -> bool {
        Module::same(&self.module, &other.module)
    }

    /// Whether the compiled code came from the artifact cache.
    pub fn source(&self) -> ArtifactSource {
        self.source
    }

    /// Size of the module's bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The module's export names, in order.
    pub fn export_names(&self) -> Vec<String> {
        self.module.exports().map(|e| e.name().to_owned()).collect()
    }
}

/// `module`'s compiled code, loaded into `engine`'s engine without compiling it again.
fn copy_to(engine: &Engine, module: &Module) -> wasmtime::Result<Module> {
    let artifact = module.serialize()?;
    // SAFETY: the artifact is wasmtime's own serialization of a module this process compiled
    // (or loaded from its checked artifact cache) a moment ago, and it never left memory.
    // `deserialize` still refuses it if the engine's settings differ from the one that made it.
    unsafe { Module::deserialize(engine.wasm(), &artifact) }
}

fn check_header(bytes: &[u8]) -> Result<(), LoadErrorKind> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadErrorKind::NotWasm(
            "it does not start with the \\0asm magic bytes",
        ));
    }
    if bytes[4..8] != [1, 0, 0, 0] {
        return Err(LoadErrorKind::NotWasm(
            "it is a WebAssembly component or an unknown version; rules are core modules (version 1)",
        ));
    }
    Ok(())
}

fn check_imports(module: &Module) -> Result<(), LoadErrorKind> {
    for import in module.imports() {
        let expected: (&'static str, &[ValType], &[ValType]) =
            match (import.module(), import.name()) {
                ("claimsmith", "log") => (
                    "func (level: i32, ptr: i32, len: i32)",
                    &[ValType::I32, ValType::I32, ValType::I32],
                    &[],
                ),
                ("claimsmith", "fail") => (
                    "func (ptr: i32, len: i32)",
                    &[ValType::I32, ValType::I32],
                    &[],
                ),
                (module, name) => {
                    return Err(LoadErrorKind::ForbiddenImport {
                        module: module.to_owned(),
                        name: name.to_owned(),
                    });
                }
            };
        match import.ty() {
            ExternType::Func(ty) if signature_is(&ty, expected.1, expected.2) => {}
            other => {
                return Err(LoadErrorKind::WrongImport {
                    name: import.name().to_owned(),
                    expected: expected.0,
                    found: describe(&other),
                });
            }
        }
    }
    Ok(())
}

fn check_exports(module: &Module, limits: &Limits) -> Result<(), LoadErrorKind> {
    let memory = module
        .get_export(exports::MEMORY)
        .ok_or(LoadErrorKind::MissingExport(exports::MEMORY))?;
    match memory {
        ExternType::Memory(ty) if !ty.is_64() && !ty.is_shared() => {
            let declared = ty.minimum() * WASM_PAGE;
            if declared > limits.memory_bytes as u64 {
                return Err(LoadErrorKind::InitialMemory {
                    declared,
                    limit: limits.memory_bytes,
                });
            }
        }
        other => {
            return Err(LoadErrorKind::WrongExport {
                name: exports::MEMORY,
                expected: "an unshared 32-bit memory",
                found: describe(&other),
            });
        }
    }
    let functions: [(&'static str, &'static str, &[ValType], &[ValType]); 3] = [
        (exports::ABI_VERSION, "func () -> i32", &[], &[ValType::I32]),
        (
            exports::ALLOC,
            "func (len: i32) -> i32",
            &[ValType::I32],
            &[ValType::I32],
        ),
        (
            exports::ON_EXECUTE_POST_LOGIN,
            "func (ptr: i32, len: i32) -> i64",
            &[ValType::I32, ValType::I32],
            &[ValType::I64],
        ),
    ];
    for (name, expected, params, results) in functions {
        match module
            .get_export(name)
            .ok_or(LoadErrorKind::MissingExport(name))?
        {
            ExternType::Func(ty) if signature_is(&ty, params, results) => {}
            other => {
                return Err(LoadErrorKind::WrongExport {
                    name,
                    expected,
                    found: describe(&other),
                });
            }
        }
    }
    Ok(())
}

fn signature_is(ty: &FuncType, params: &[ValType], results: &[ValType]) -> bool {
    fn same(a: impl ExactSizeIterator<Item = ValType>, b: &[ValType]) -> bool {
        a.len() == b.len() && a.zip(b).all(|(x, y)| ValType::eq(&x, y))
    }
    same(ty.params(), params) && same(ty.results(), results)
}

fn describe(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(f) => {
            let list = |types: &mut dyn Iterator<Item = ValType>| {
                types.map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
            };
            format!(
                "func ({}) -> ({})",
                list(&mut f.params()),
                list(&mut f.results())
            )
        }
        ExternType::Memory(_) => "a memory".into(),
        ExternType::Table(_) => "a table".into(),
        ExternType::Global(_) => "a global".into(),
        ExternType::Tag(_) => "a tag".into(),
    }
}

/// A wasmtime error with its causes, on one line.
pub(crate) fn error_chain(error: &wasmtime::Error) -> String {
    error
        .chain()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}
