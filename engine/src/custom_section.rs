//! A module's custom sections by name, read from its bytes without compiling it: the marks the
//! host reads at load (`claimsmith.javascript`, a JavaScript rule; `claimsmith.reads`, the
//! members of the event a version 6 rule reads).

/// The contents of every custom section called `name` in `bytes`, in order; none when `bytes`
/// is not a well-formed module (the load checks say why elsewhere).
pub(crate) fn custom_sections<'a>(bytes: &'a [u8], name: &str) -> Vec<&'a [u8]> {
    let mut found = Vec::new();
    let Some(mut rest) = bytes.strip_prefix(b"\0asm\x01\0\0\0") else {
        return found;
    };
    while let Some((&id, after)) = rest.split_first() {
        let Some((size, after)) = leb128(after) else {
            return Vec::new();
        };
        if size > after.len() {
            return Vec::new();
        }
        let (section, next) = after.split_at(size);
        if id == 0
            && let Some((len, named)) = leb128(section)
            && named.get(..len) == Some(name.as_bytes())
        {
            found.push(&named[len..]);
        }
        rest = next;
    }
    found
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

    fn with_section(name: &str, data: &[u8]) -> Vec<u8> {
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend([0, (name.len() + 1 + data.len()) as u8, name.len() as u8]);
        module.extend(name.as_bytes());
        module.extend(data);
        module
    }

    #[test]
    fn sections_are_found_by_name_and_broken_modules_have_none() {
        let module = with_section("claimsmith.reads", b"user");
        assert_eq!(custom_sections(&module, "claimsmith.reads"), [b"user"]);
        assert!(custom_sections(&module, "claimsmith.javascript").is_empty());
        let twice = [module.clone(), module[8..].to_vec()].concat();
        assert_eq!(custom_sections(&twice, "claimsmith.reads").len(), 2);
        assert!(custom_sections(b"not wasm", "claimsmith.reads").is_empty());
        assert!(custom_sections(&module[..12], "claimsmith.reads").is_empty());
    }
}
