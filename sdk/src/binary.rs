//! Shared pieces of the binary forms of guest ABI versions 2 and 3 (`docs/abi.md`, section 9):
//! little-endian lengths, length-prefixed UTF-8 strings, tagged JSON values, and a reader that
//! bounds-checks every byte and names the field it was reading when something is wrong.

use std::fmt;

use serde_json::{Map, Number, Value};

/// Deepest nesting of JSON values in an event or a result (serde_json's own default limit).
pub const MAX_DEPTH: usize = 128;

/// Most items reserved up front for a list, whatever count the bytes claim: a hostile count
/// grows the list only as items are actually read, and reading stops at the first problem.
pub(crate) const MAX_RESERVED: usize = 64;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const UNSIGNED: u8 = 3;
const NEGATIVE: u8 = 4;
const FLOAT: u8 = 5;
const STRING: u8 = 6;
const ARRAY: u8 = 7;
const OBJECT: u8 = 8;

/// Why bytes are not in the binary form they should be: what was being read, and at which byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The field being read (`user.email`, `request.geoip`, ...).
    pub field: &'static str,
    /// Byte offset into the input where reading failed.
    pub offset: usize,
    /// What was wrong.
    pub problem: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at byte {} (reading {})",
            self.problem, self.offset, self.field
        )
    }
}

impl std::error::Error for DecodeError {}

/// Writes one part of a binary form: the structure (tags, counts, numbers, string lengths) in one
/// buffer and the text of every string, in the same order, in another. The part is the text's
/// length, the text, then the structure, so a reader checks all of the text's UTF-8 in one pass.
#[derive(Default)]
/// (`pub` only so that [`WireWrite`](crate::wire::WireWrite) can name it; its methods are the
/// crate's own.)
pub struct PartWriter {
    structure: Vec<u8>,
    text: Vec<u8>,
}

impl PartWriter {
    pub(crate) fn new() -> PartWriter {
        PartWriter {
            structure: Vec::with_capacity(256),
            text: Vec::with_capacity(1024),
        }
    }

    /// A writer whose buffers start at these capacities.
    pub(crate) fn with_capacity(structure: usize, text: usize) -> PartWriter {
        PartWriter {
            structure: Vec::with_capacity(structure),
            text: Vec::with_capacity(text),
        }
    }

    /// Append the finished part to `out`.
    pub(crate) fn finish_into(self, out: &mut Vec<u8>) {
        let len = u32::try_from(self.text.len()).expect("a part's text is far below 4 GiB");
        out.reserve(4 + self.text.len() + self.structure.len());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&self.text);
        out.extend_from_slice(&self.structure);
    }

    pub(crate) fn byte(&mut self, b: u8) {
        self.structure.push(b);
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.structure.extend_from_slice(bytes);
    }

    pub(crate) fn len(&mut self, len: usize) {
        let len = u32::try_from(len).expect("event parts are far below 4 GiB");
        self.structure.extend_from_slice(&len.to_le_bytes());
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.len(s.len());
        self.text.extend_from_slice(s.as_bytes());
    }

    pub(crate) fn bool(&mut self, b: bool) {
        self.byte(b as u8);
    }

    pub(crate) fn map(&mut self, map: &Map<String, Value>) {
        self.len(map.len());
        for (key, value) in map {
            self.str(key);
            self.value(value);
        }
    }

    pub(crate) fn value(&mut self, value: &Value) {
        match value {
            Value::Null => self.byte(NULL),
            Value::Bool(false) => self.byte(FALSE),
            Value::Bool(true) => self.byte(TRUE),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    self.byte(UNSIGNED);
                    self.raw(&u.to_le_bytes());
                } else if let Some(i) = n.as_i64() {
                    self.byte(NEGATIVE);
                    self.raw(&i.to_le_bytes());
                } else {
                    self.byte(FLOAT);
                    let f = n.as_f64().expect("a JSON number is u64, i64 or f64");
                    self.raw(&f.to_le_bytes());
                }
            }
            Value::String(s) => {
                self.byte(STRING);
                self.str(s);
            }
            Value::Array(items) => {
                self.byte(ARRAY);
                self.len(items.len());
                for item in items {
                    self.value(item);
                }
            }
            Value::Object(map) => {
                self.byte(OBJECT);
                self.map(map);
            }
        }
    }
}

/// A cursor over the input: the structure of the current part, and its text. Reads never fail
/// on the spot: past the end, or on a bad byte, a read records the first problem and returns an
/// empty value, so decoding runs straight through without a branch per field, and
/// [`Reader::finish`] reports the recorded problem at the end.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    /// The current part's text, checked to be UTF-8 (see [`Reader::begin_part`]).
    text: &'a str,
    /// Where the next string starts in `text`: always a character boundary of `text`, because
    /// only `begin_part` (which sets `text` with it) and `str` (after checking the new value)
    /// change it. `str` relies on this.
    text_at: usize,
    problem: Option<DecodeError>,
    /// Whether strings are lent from the input instead of copied (see [`Reader::lending`]).
    lend: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            bytes,
            at: 0,
            text: "",
            text_at: 0,
            problem: None,
            lend: false,
        }
    }

    /// A reader whose strings are *lent*: each `String` it returns points into `bytes` instead of
    /// owning an allocation of its own, which saves an allocation and a copy per string
    /// (docs/performance-log.md has the measurement).
    ///
    /// Such a `String` breaks `String::from_raw_parts`'s documented precondition (its pointer was
    /// not returned by the allocator for that capacity). That precondition only matters when the
    /// allocator sees the pointer, which is what the contract below rules out; the standard
    /// library does nothing else with it, and neither do we.
    ///
    /// # Safety
    ///
    /// A lent `String` must never be dropped, grown or otherwise handed to the allocator, and
    /// `bytes` must outlive it. The reader keeps its own side: map keys are always owned, a value
    /// a duplicate key replaces is forgotten rather than dropped, and nothing else is dropped
    /// while decoding. The caller keeps the rest: it forgets everything decoded, on success and
    /// on error, and lends it out only by shared reference.
    #[cfg_attr(feature = "abi-v1", allow(dead_code))]
    pub(crate) unsafe fn lending(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            lend: true,
            ..Reader::new(bytes)
        }
    }

    /// Start a part: read its text, checked to be UTF-8 in one pass.
    pub(crate) fn begin_part(&mut self, part: &'static str) {
        let len = u32::from_le_bytes(self.array(part)) as usize;
        let text = self.take(len, part);
        match utf8(text) {
            Some(text) => {
                self.text = text;
                self.text_at = 0;
            }
            None => self.fail(part, "the text is not UTF-8"),
        }
    }

    /// End a part: every byte of its text must have been read.
    pub(crate) fn end_part(&mut self, part: &'static str) {
        if self.text_at != self.text.len() {
            self.fail(part, "text left over");
        }
    }

    /// The first problem met, if any, after checking that every byte was read.
    pub(crate) fn finish(mut self) -> Result<(), DecodeError> {
        if self.at != self.bytes.len() {
            self.fail("the end", "bytes left over");
        }
        match self.problem {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Check and step over the four magic bytes that open a binary form.
    pub(crate) fn magic(&mut self, magic: [u8; 4], problem: &'static str) {
        if self.bytes.get(..4) == Some(&magic[..]) {
            self.at = 4;
        } else {
            self.fail("magic", problem);
        }
    }

    /// Whether this reader lends its strings ([`Reader::lending`]).
    #[cfg_attr(feature = "abi-v1", allow(dead_code))]
    pub(crate) fn lends(&self) -> bool {
        self.lend
    }

    /// Whether a problem was met: loops stop reading at once.
    pub(crate) fn failed(&self) -> bool {
        self.problem.is_some()
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn fail(&mut self, field: &'static str, problem: &'static str) {
        if self.problem.is_none() {
            self.problem = Some(DecodeError {
                field,
                offset: self.at,
                problem,
            });
        }
        // Nothing more is read once something was wrong.
        self.at = self.bytes.len();
    }

    #[inline(always)]
    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> &'a [u8] {
        let bytes = self.bytes;
        match self
            .at
            .checked_add(n)
            .and_then(|end| bytes.get(self.at..end))
        {
            Some(slice) => {
                self.at += n;
                slice
            }
            None => {
                self.fail(field, "input ends too early");
                &[]
            }
        }
    }

    #[inline(always)]
    pub(crate) fn array<const N: usize>(&mut self, field: &'static str) -> [u8; N] {
        self.take(N, field).try_into().unwrap_or([0; N])
    }

    #[inline(always)]
    pub(crate) fn byte(&mut self, field: &'static str) -> u8 {
        self.array::<1>(field)[0]
    }

    #[inline(always)]
    pub(crate) fn bool(&mut self, field: &'static str) -> bool {
        match self.byte(field) {
            0 => false,
            1 => true,
            _ => {
                self.fail(field, "a boolean or option tag is neither 0 nor 1");
                false
            }
        }
    }

    /// An option tag: whether a value follows.
    #[inline(always)]
    pub(crate) fn present(&mut self, field: &'static str) -> bool {
        self.bool(field)
    }

    /// A count of items that take at least `min_item_bytes` each, checked against what is left
    /// so that a bad count cannot reserve more memory than the input could fill.
    #[inline(always)]
    pub(crate) fn len(&mut self, field: &'static str, min_item_bytes: usize) -> usize {
        let len = u32::from_le_bytes(self.array(field)) as usize;
        if len.saturating_mul(min_item_bytes) > self.bytes.len() - self.at {
            self.fail(field, "a length runs past the end of the input");
            return 0;
        }
        len
    }

    #[inline(always)]
    pub(crate) fn str(&mut self, field: &'static str) -> &'a str {
        let len = u32::from_le_bytes(self.array(field)) as usize;
        let (text, start) = (self.text, self.text_at);
        debug_assert!(text.is_char_boundary(start));
        match start.checked_add(len) {
            // `is_char_boundary` is false past the end as well.
            Some(end) if text.is_char_boundary(end) => {
                self.text_at = end;
                // SAFETY: `start` is a character boundary within `text` (0, or the end of the
                // previous string, checked here), and so is `end`, which is not before it.
                unsafe { text.get_unchecked(start..end) }
            }
            _ => {
                self.fail(field, "a string runs past the text or splits a character");
                ""
            }
        }
    }

    pub(crate) fn string(&mut self, field: &'static str) -> String {
        let s = self.str(field);
        if self.lend && !s.is_empty() {
            // SAFETY: see `lending`: this `String` never reaches the allocator (it is never
            // dropped or grown), and the input it points into outlives it. Its capacity is its
            // length, so nothing reads or writes past the text it borrows.
            unsafe { String::from_raw_parts(s.as_ptr().cast_mut(), s.len(), s.len()) }
        } else {
            s.to_owned()
        }
    }

    /// A map key: always owned, so that a key a map refuses (a duplicate) may be dropped.
    pub(crate) fn key(&mut self, field: &'static str) -> String {
        self.str(field).to_owned()
    }

    /// Let go of a value a duplicate key pushed out of a map: forgotten, not dropped, when it
    /// may hold lent strings.
    pub(crate) fn discard<V>(&self, replaced: Option<V>) {
        if self.lend {
            std::mem::forget(replaced);
        }
    }

    pub(crate) fn map(&mut self, field: &'static str, depth: usize) -> Map<String, Value> {
        let count = self.len(field, 5);
        let mut map = Map::new();
        for _ in 0..count {
            if self.problem.is_some() {
                break;
            }
            let key = self.key(field);
            let value = self.value(field, depth);
            self.discard(map.insert(key, value));
        }
        map
    }

    pub(crate) fn value(&mut self, field: &'static str, depth: usize) -> Value {
        if depth >= MAX_DEPTH {
            self.fail(field, "values nest too deep");
            return Value::Null;
        }
        match self.byte(field) {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            UNSIGNED => Value::from(u64::from_le_bytes(self.array(field))),
            NEGATIVE => Value::from(i64::from_le_bytes(self.array(field))),
            FLOAT => {
                let f = f64::from_le_bytes(self.array(field));
                match Number::from_f64(f) {
                    Some(n) => Value::Number(n),
                    None => {
                        self.fail(field, "a number is not finite");
                        Value::Null
                    }
                }
            }
            STRING => Value::String(self.string(field)),
            ARRAY => {
                let count = self.len(field, 1);
                let mut items = Vec::with_capacity(count.min(MAX_RESERVED));
                for _ in 0..count {
                    if self.problem.is_some() {
                        break;
                    }
                    items.push(self.value(field, depth + 1));
                }
                Value::Array(items)
            }
            OBJECT => Value::Object(self.map(field, depth + 1)),
            _ => {
                self.fail(field, "unknown value tag");
                Value::Null
            }
        }
    }
}

/// `bytes` as text: ASCII is checked eight bytes at a time (almost every string in a login is
/// ASCII); anything else goes through the full UTF-8 check.
#[inline(always)]
fn utf8(bytes: &[u8]) -> Option<&str> {
    let mut chunks = bytes.chunks_exact(8);
    let mut high = 0u64;
    for chunk in &mut chunks {
        high |= u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
    }
    for &b in chunks.remainder() {
        high |= b as u64;
    }
    if high & 0x8080_8080_8080_8080 == 0 {
        // SAFETY: every byte is below 0x80, and ASCII is UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}
