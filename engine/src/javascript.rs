//! Recognising a JavaScript rule module: the guest runtime (`js/runtime`) marks every module it
//! builds with a custom section named [`JAVASCRIPT_SECTION`], so the host can give the rule the
//! JavaScript defaults of [`crate::Limits::javascript`] without being told.

/// The custom section that marks a module built from an `action.js`.
pub const JAVASCRIPT_SECTION: &str = "claimsmith.javascript";

/// Whether `bytes` is a wasm module carrying the [`JAVASCRIPT_SECTION`] custom section. Reads
/// only section headers; anything that is not a well-formed module is simply not JavaScript.
pub fn is_javascript_module(bytes: &[u8]) -> bool {
    !crate::custom_section::custom_sections(bytes, JAVASCRIPT_SECTION).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_with_the_section_is_javascript_and_others_are_not() {
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        assert!(!is_javascript_module(&module));
        let name = JAVASCRIPT_SECTION.as_bytes();
        module.extend([0, (name.len() + 1 + 3) as u8, name.len() as u8]);
        module.extend(name);
        module.extend(b"boa");
        assert!(is_javascript_module(&module));
        assert!(!is_javascript_module(b"not wasm"));
        assert!(!is_javascript_module(&module[..12]));
    }
}
