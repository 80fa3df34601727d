//! Recognising a JavaScript rule module: the guest runtime (`js/runtime`) marks every module it
//! builds with a custom section named [`JAVASCRIPT_SECTION`], so the host can give the rule the
//! JavaScript defaults of [`crate::Limits::javascript`] without being told.

/// The custom section that marks a module built from an `action.js`.
pub const JAVASCRIPT_SECTION: &str = "claimsmith.javascript";

/// Whether `bytes` is a wasm module carrying the [`JAVASCRIPT_SECTION`] custom section. Reads
/// only section headers; anything that is not a well-formed module is simply not JavaScript.
pub fn is_javascript_module(bytes: &[u8]) -> bool {
    let Some(mut rest) = bytes.strip_prefix(b"\0asm\x01\0\0\0") else {
        return false;
    };
    while let Some((&id, after)) = rest.split_first() {
        let Some((size, after)) = leb128(after) else {
            return false;
        };
        if size > after.len() {
            return false;
        }
        let (section, next) = after.split_at(size);
        if id == 0
            && let Some((len, name)) = leb128(section)
            && name.get(..len) == Some(JAVASCRIPT_SECTION.as_bytes())
        {
            return true;
        }
        rest = next;
    }
    false
}

/// An unsigned LEB128 `u32` and the bytes after it.
fn leb128(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut value = 0usize;
    for (i, &byte) in bytes.iter().enumerate().take(5) {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
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
