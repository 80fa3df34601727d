//! Compiled rule modules kept on disk between restarts, so loading a config skips Cranelift.
//!
//! An artifact's file name is the SHA-256 of the module's bytes plus a hash of this engine's
//! version and compilation settings: a changed module or a different engine looks up a different
//! file, and the stale one is never read. Each file carries the SHA-256 of its contents, checked
//! before wasmtime sees a byte, and wasmtime checks again that its own version and settings
//! produced it; anything that fails is recompiled and rewritten. Files are written to a
//! temporary name and renamed, so a crash never leaves half an artifact.
//!
//! Loading an artifact runs native code it contains, so the folder is as trusted as the binary:
//! it is created private to the user (0700), and a folder that another user owns or can write to
//! is refused.

use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

/// The first bytes of every artifact file (format version 1).
const MAGIC: &[u8; 8] = b"CSMART01";

/// Where a module came from when it was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactSource {
    /// Deserialized from a cached artifact.
    Cached,
    /// Compiled now (and written to the cache, when there is one).
    Compiled,
}

/// A folder of compiled artifacts for one engine.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
    /// The folder's owner (this user), whom every artifact must belong to.
    #[cfg(unix)]
    owner: u32,
}

impl ArtifactCache {
    /// Use (and create, private to this user) the folder `dir`.
    pub fn open(dir: &Path) -> Result<ArtifactCache, String> {
        let failed = |e: std::io::Error| format!("artifact cache {}: {e}", dir.display());
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(failed)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(dir).map_err(failed)?;
            if meta.mode() & 0o022 != 0 {
                return Err(format!(
                    "artifact cache {}: other users can write to it; use a folder only you can write",
                    dir.display()
                ));
            }
            // Whoever owns the folder can plant artifacts in it: it must be this user.
            let probe = dir.join(format!(".owner-probe-{}", std::process::id()));
            std::fs::write(&probe, b"").map_err(failed)?;
            let mine = std::fs::metadata(&probe).map(|m| m.uid());
            let _ = std::fs::remove_file(&probe);
            if mine.map_err(failed)? != meta.uid() {
                return Err(format!(
                    "artifact cache {}: the folder belongs to another user; use a folder of your own",
                    dir.display()
                ));
            }
            Ok(ArtifactCache {
                dir: dir.to_owned(),
                owner: meta.uid(),
            })
        }
        #[cfg(not(unix))]
        Ok(ArtifactCache {
            dir: dir.to_owned(),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The artifact file for `bytes` under `engine`.
    pub fn path_for(&self, engine: &Engine, bytes: &[u8]) -> PathBuf {
        let module = hex(&Sha256::digest(bytes));
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        self.dir
            .join(format!("{module}-{:016x}.cwasm", hasher.finish()))
    }

    /// The compiled module for `bytes`: from the cache when a good artifact is there, else
    /// compiled and stored (a store that fails only costs the next start its compile).
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
    ) -> wasmtime::Result<(Module, ArtifactSource)> {
        let path = self.path_for(engine, bytes);
        if let Some(module) = self.load(engine, &path) {
            return Ok((module, ArtifactSource::Cached));
        }
        let artifact = engine.precompile_module(bytes)?;
        // SAFETY: these bytes were produced by `precompile_module` of this engine just now.
        let module = unsafe { Module::deserialize(engine, &artifact)? };
        if let Err(e) = self.store(&path, &artifact) {
            tracing::warn!(target: "claimsmith::cache", path = %path.display(), "cannot write the compiled artifact: {e}");
        }
        Ok((module, ArtifactSource::Compiled))
    }

    fn load(&self, engine: &Engine, path: &Path) -> Option<Module> {
        let mut file = std::fs::File::open(path).ok()?;
        if let Err(why) = self.check_file(&file) {
            tracing::warn!(target: "claimsmith::cache", path = %path.display(), "artifact ignored: {why}; recompiling");
            return None;
        }
        let mut data = Vec::new();
        file.read_to_end(&mut data).ok()?;
        let payload = data
            .strip_prefix(MAGIC.as_slice())
            .filter(|rest| rest.len() > 32)
            .and_then(|rest| {
                let (digest, payload) = rest.split_at(32);
                (Sha256::digest(payload).as_slice() == digest).then_some(payload)
            });
        let Some(payload) = payload else {
            tracing::warn!(target: "claimsmith::cache", path = %path.display(), "artifact is damaged; recompiling");
            return None;
        };
        // SAFETY: the file is this user's, in a folder of this user's, and nobody else can write
        // either; its checksum matches what `store` wrote; and wasmtime refuses artifacts of
        // another version or configuration.
        match unsafe { Module::deserialize(engine, payload) } {
            Ok(module) => Some(module),
            Err(e) => {
                tracing::warn!(target: "claimsmith::cache", path = %path.display(), "artifact is stale ({e}); recompiling");
                None
            }
        }
    }

    /// Only a plain file of this user's, that nobody else can write and with no other name, is
    /// read: checked on the open handle, so the file cannot be swapped between check and read.
    #[cfg(unix)]
    fn check_file(&self, file: &std::fs::File) -> Result<(), &'static str> {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata().map_err(|_| "cannot read its metadata")?;
        if !meta.is_file() || meta.nlink() != 1 {
            Err("it is not a plain file with one name")
        } else if meta.uid() != self.owner {
            Err("it belongs to another user")
        } else if meta.mode() & 0o022 != 0 {
            Err("other users can write to it")
        } else {
            Ok(())
        }
    }

    #[cfg(not(unix))]
    fn check_file(&self, file: &std::fs::File) -> Result<(), &'static str> {
        match file.metadata() {
            Ok(meta) if meta.is_file() => Ok(()),
            _ => Err("it is not a plain file"),
        }
    }

    fn store(&self, path: &Path, artifact: &[u8]) -> std::io::Result<()> {
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let temp = path.with_extension(format!(
            "tmp-{}-{}",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(MAGIC)?;
        file.write_all(&Sha256::digest(artifact))?;
        file.write_all(artifact)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&temp);
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, SandboxConfig};

    const MODULE: &str = r#"(module (func (export "f") (result i32) i32.const 7))"#;

    /// A fresh cache folder and its cache, a sandbox, and the test module's bytes.
    fn setup() -> (PathBuf, ArtifactCache, Engine, Vec<u8>) {
        let dir = tempfile_dir();
        let cache = ArtifactCache::open(&dir).unwrap();
        let sandbox = Engine::new(SandboxConfig::default()).unwrap();
        (dir, cache, sandbox, wat::parse_str(MODULE).unwrap())
    }

    #[test]
    fn second_load_comes_from_the_cache_and_a_changed_module_does_not() {
        let (dir, cache, sandbox, bytes) = setup();
        let (_, first) = cache.load_or_compile(sandbox.wasm(), &bytes).unwrap();
        let (_, second) = cache.load_or_compile(sandbox.wasm(), &bytes).unwrap();
        assert_eq!(
            (first, second),
            (ArtifactSource::Compiled, ArtifactSource::Cached)
        );
        let other = wat::parse_str(MODULE.replace("7", "8")).unwrap();
        let (_, third) = cache.load_or_compile(sandbox.wasm(), &other).unwrap();
        assert_eq!(third, ArtifactSource::Compiled);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_damaged_artifact_is_recompiled_and_rewritten() {
        let (dir, cache, sandbox, bytes) = setup();
        cache.load_or_compile(sandbox.wasm(), &bytes).unwrap();
        let path = cache.path_for(sandbox.wasm(), &bytes);
        let mut data = std::fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(&path, &data).unwrap();
        let (_, source) = cache.load_or_compile(sandbox.wasm(), &bytes).unwrap();
        assert_eq!(source, ArtifactSource::Compiled);
        let (_, source) = cache.load_or_compile(sandbox.wasm(), &bytes).unwrap();
        assert_eq!(source, ArtifactSource::Cached);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_artifact_of_another_engine_is_not_loaded() {
        let (dir, cache, sandbox, bytes) = setup();
        // An artifact from an engine with other settings, planted under this engine's name.
        let other = wasmtime::Engine::new(wasmtime::Config::new().consume_fuel(false)).unwrap();
        let foreign = other.precompile_module(&bytes).unwrap();
        cache
            .store(&cache.path_for(sandbox.wasm(), &bytes), &foreign)
            .unwrap();
        let (module, source) = cache.load_or_compile(sandbox.wasm(), &bytes).unwrap();
        assert_eq!(source, ArtifactSource::Compiled);
        assert!(module.get_export("f").is_some());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn an_artifact_others_can_write_is_not_loaded() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, cache, sandbox, bytes) = setup();
        cache.load_or_compile(sandbox.wasm(), &bytes).unwrap();
        let path = cache.path_for(sandbox.wasm(), &bytes);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "artifacts are written private");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let (_, source) = cache.load_or_compile(sandbox.wasm(), &bytes).unwrap();
        assert_eq!(source, ArtifactSource::Compiled);
        // Rewritten private, it loads again.
        let (_, source) = cache.load_or_compile(sandbox.wasm(), &bytes).unwrap();
        assert_eq!(source, ArtifactSource::Cached);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = ArtifactCache::open(&dir).unwrap_err();
        assert!(err.contains("other users can write"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        std::env::temp_dir().join(format!(
            "claimsmith-cache-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ))
    }
}
