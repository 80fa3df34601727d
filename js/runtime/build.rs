//! Puts the action's source where `src/lib.rs` includes it: the file named by
//! `CLAIMSMITH_JS_ACTION` (set by `claimsmith build`), or an empty action when it is unset, for
//! a generic runtime whose action is written in at build time before the snapshot.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=CLAIMSMITH_JS_ACTION");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let source = match std::env::var_os("CLAIMSMITH_JS_ACTION") {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read the action {}: {e}", path.display()))
        }
        None => String::new(),
    };
    std::fs::write(out.join("action.js"), source).expect("cannot write OUT_DIR/action.js");
}
