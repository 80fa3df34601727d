//! The login event in the binary form of guest ABI versions 2, 3, 4 and 6 (`docs/abi.md`,
//! sections 9, 10, 11 and 13).
//!
//! The host has already checked the event against [`Event`], so it hands each rule the typed
//! fields in a fixed order instead of JSON text. The guest then builds its `Event` without
//! tokenizing anything, its strings lent from the input rather than copied: for the 1 KB
//! benchmark login this takes a small fraction of the work `serde_json` needs for the same event.
//!
//! The host encodes the event once per login ([`encode_event`]) and each rule's configuration
//! and secrets once at load ([`encode_rule_part`]); a version 2 rule's input is the two,
//! concatenated. A version 3 rule's input is followed by one more part, which the host also
//! encodes once per login: the fields added since version 2 ([`encode_added_part`]); a version 4
//! rule's by that part and one more, the fields added in version 4. The field
//! order of every part comes from the one table of the event's schema (`event.rs`). The SDK's
//! export decodes the input of its own version with `decode_lent`, which is [`decode_version`]
//! without a copy of each string.
//!
//! A version 6 rule's input holds only the members the rule declares it reads ([`Reads`]), each
//! whole in a part of its own: [`header_v6`], then [`encode_member`]'s part for each, which the
//! host encodes at most once per login whichever rules need it. Rule authors never call this
//! module.
//!
//! ```
//! use claimsmith_sdk::{Event, binary_event};
//!
//! let event: Event = serde_json::from_value(serde_json::json!({
//!     "user": {"user_id": "auth0|1", "app_metadata": {"plan": "pro"}},
//!     "authorization": {"roles": ["admin"]},
//!     "configuration": {"namespace": "https://example.com"},
//!     "secrets": {"API_KEY": "k"}
//! })).unwrap();
//! let mut input = Vec::new();
//! binary_event::encode_event(&event, &mut input);
//! binary_event::encode_rule_part(&event.configuration, &event.secrets, &mut input);
//! assert_eq!(binary_event::decode(&input).unwrap(), event);
//!
//! // Version 3: the same two parts, then the fields added since version 2.
//! let mut event = event;
//! event.user.groups = vec!["engineering".into()];
//! binary_event::encode_added_part(&event, 3, &mut input);
//! assert_eq!(binary_event::decode_version(&input, 3).unwrap(), event);
//! ```

use std::collections::BTreeMap;
use std::mem::ManuallyDrop;

use serde_json::{Map, Value};

pub use crate::binary::{DecodeError, MAX_DEPTH};
use crate::binary::{PartWriter, Reader};
use crate::event::Event;
use crate::reads::Reads;
use crate::wire::{BASE_PART, Wire, WireWrite};

/// The first four bytes of every encoded event.
pub const MAGIC: [u8; 4] = *b"CSE1";

/// The versions of the binary form: each one's input is the one before it followed by one more
/// part, holding the fields added in that version ([`encode_added_part`]).
pub const VERSIONS: std::ops::RangeInclusive<i32> = 2..=4;

/// Append the event's fields to `out`, starting with [`MAGIC`]: everything except
/// `configuration` and `secrets`, which [`encode_rule_part`] writes per rule, and the fields
/// added since version 2, which [`encode_added_part`] writes.
pub fn encode_event(event: &Event, out: &mut Vec<u8>) {
    out.extend_from_slice(&MAGIC);
    let mut w = PartWriter::new();
    event.write(&mut w, BASE_PART);
    w.finish_into(out);
}

/// Append one rule's `configuration` and `secrets`: the part of the input that follows
/// [`encode_event`]'s.
pub fn encode_rule_part(
    configuration: &Map<String, Value>,
    secrets: &BTreeMap<String, String>,
    out: &mut Vec<u8>,
) {
    let mut w = PartWriter::new();
    Event::write_rule_part(configuration, secrets, &mut w);
    w.finish_into(out);
}

/// Append the part that ABI `version` (3 or later) adds after the parts of the version before
/// it: the fields added in that version (marked `since` it in the event's table), in the table's
/// order. A version 3 module's input is [`encode_event`]'s part, [`encode_rule_part`]'s, then
/// this part for version 3; a version 4 module's the same, then this part for version 4.
pub fn encode_added_part(event: &Event, version: i32, out: &mut Vec<u8>) {
    assert!(
        version > 2 && VERSIONS.contains(&version),
        "ABI version {version} adds no part"
    );
    let mut w = PartWriter::new();
    event.write_later(&mut w, version as u32, BASE_PART);
    w.finish_into(out);
}

/// The first four bytes of a version 6 module's input, whose parts are the members the module
/// declares it reads ([`Reads`]).
pub const MAGIC_V6: [u8; 4] = *b"CSE6";

/// How a version 6 module's input opens: [`MAGIC_V6`], then the set of members that follow as a
/// `u32` ([`Reads::bits`]).
pub fn header_v6(reads: Reads) -> [u8; 8] {
    let mut header = [0; 8];
    header[..4].copy_from_slice(&MAGIC_V6);
    header[4..].copy_from_slice(&reads.bits().to_le_bytes());
    header
}

/// Append member `index` of the event (its position in [`Reads`]' order: `user` is 0,
/// `secrets` 15) as one part, whole: every field of every version in it. A version 6 module's
/// input is [`header_v6`] followed by the parts of the members it reads, in that order.
pub fn encode_member(event: &Event, index: u32, out: &mut Vec<u8>) {
    let mut w = PartWriter::with_capacity(64, 128);
    event.write_member(index, &mut w);
    w.finish_into(out);
}

/// [`encode_member`] from the event as the host parsed it from a caller's JSON, its strings
/// borrowed ([`BorrowedEvent`](crate::BorrowedEvent)): the same bytes, without an owned copy of
/// the event. `index` is below the per-rule members (`configuration`, `secrets`).
#[cfg(not(target_arch = "wasm32"))]
pub fn encode_borrowed_member(event: &crate::BorrowedEvent<'_>, index: u32, out: &mut Vec<u8>) {
    let mut w = PartWriter::with_capacity(64, 128);
    event.write_member(index, &mut w);
    w.finish_into(out);
}

/// The whole input of a version 6 module that reads `reads`, for `event` (its `configuration`
/// and `secrets` included, where `reads` has them).
///
/// ```
/// use claimsmith_sdk::{Event, Reads, binary_event};
/// let event: Event = serde_json::from_value(serde_json::json!({
///     "user": {"user_id": "auth0|1", "email": "a@example.com"},
///     "authorization": {"roles": ["admin"]}
/// })).unwrap();
/// let reads = Reads::parse("authorization").unwrap();
/// let mut input = Vec::new();
/// binary_event::encode_v6(&event, reads, &mut input);
/// let read = binary_event::decode_v6(&input, reads).unwrap();
/// assert_eq!(read.authorization.roles, ["admin"]);
/// assert_eq!(read.user.email, None, "not declared, not sent");
/// ```
pub fn encode_v6(event: &Event, reads: Reads, out: &mut Vec<u8>) {
    out.extend_from_slice(&header_v6(reads));
    encode_members(event, reads, out);
}

/// Append the part of each member in `reads`, in order ([`encode_member`] for each).
pub fn encode_members(event: &Event, reads: Reads, out: &mut Vec<u8>) {
    for index in member_indices(reads) {
        encode_member(event, index, out);
    }
}

/// The indices of the members in `reads`, in order.
pub fn member_indices(reads: Reads) -> impl Iterator<Item = u32> {
    let mut left = reads.bits();
    std::iter::from_fn(move || {
        (left != 0).then(|| {
            let index = left.trailing_zeros();
            left &= left - 1;
            index
        })
    })
}

/// Read the input of a version 6 module that reads `reads`: the header must name exactly that
/// set, and each member not in it reads as its default.
pub fn decode_v6(bytes: &[u8], reads: Reads) -> Result<Event, DecodeError> {
    read_v6(Reader::new(bytes), reads)
}

/// Read an event written by [`encode_event`] followed by [`encode_rule_part`]: the input of a
/// version 2 module. The fields added since read as their defaults.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    decode_version(bytes, 2)
}

/// Read the input of a module of ABI `version` (2 or later, see [`VERSIONS`]): [`decode`]'s
/// parts followed by [`encode_added_part`]'s for each version after 2 up to `version`.
pub fn decode_version(bytes: &[u8], version: i32) -> Result<Event, DecodeError> {
    assert!(
        VERSIONS.contains(&version),
        "no binary form of ABI version {version}"
    );
    read(Reader::new(bytes), version as u32)
}

/// [`decode`] without a copy of any string: every string of the event points into `bytes`. This
/// is how the SDK's export reads a rule's input, which lives as long as the call does.
///
/// # Safety
///
/// The event, and every string in it, must never be dropped, moved out of or grown: lend it to
/// the rule by shared reference only, and forget it afterwards. `bytes` must outlive it.
#[cfg_attr(feature = "abi-v1", allow(dead_code))]
pub(crate) unsafe fn decode_lent(bytes: &[u8]) -> Result<ManuallyDrop<Event>, DecodeError> {
    // SAFETY: the caller's contract is `lending`'s; `read` forgets the event on error.
    let version = crate::ABI_VERSION.clamp(2, 4) as u32;
    read(unsafe { Reader::lending(bytes) }, version).map(ManuallyDrop::new)
}

/// [`decode_v6`] without a copy of any string, as [`decode_lent`].
///
/// # Safety
///
/// As [`decode_lent`].
#[cfg(test)]
pub(crate) unsafe fn decode_lent_v6(
    bytes: &[u8],
    reads: Reads,
) -> Result<ManuallyDrop<Event>, DecodeError> {
    // SAFETY: the caller's contract is `lending`'s; `read_v6` forgets the event on error.
    read_v6(unsafe { Reader::lending(bytes) }, reads).map(ManuallyDrop::new)
}

/// [`decode_lent_v6`] into `event`, which holds the defaults of every member and is never
/// moved: the SDK's export decodes into an event on the heap that the rule borrows, so the large
/// `Event` is not copied on its way (each copy is about a thousand wasm instructions).
///
/// # Safety
///
/// As [`decode_lent`], for `event` whatever this returns: it may hold lent strings on error too.
#[cfg_attr(feature = "abi-v1", allow(dead_code))]
pub(crate) unsafe fn decode_lent_v6_into(
    bytes: &[u8],
    reads: Reads,
    event: &mut Event,
) -> Result<(), DecodeError> {
    // SAFETY: the caller's contract is `lending`'s.
    let mut r = unsafe { Reader::lending(bytes) };
    read_v6_into(&mut r, reads, event);
    r.finish()
}

/// Read a version 6 input: the header, then the part of each member in `reads`.
#[inline(always)]
fn read_v6(mut r: Reader<'_>, reads: Reads) -> Result<Event, DecodeError> {
    let mut event = Event::default();
    read_v6_into(&mut r, reads, &mut event);
    finish(r, event)
}

/// The header, then the part of each member in `reads`, into `event`.
#[inline(always)]
fn read_v6_into(r: &mut Reader<'_>, reads: Reads, event: &mut Event) {
    r.magic(MAGIC_V6, "not a version 6 event (wrong magic)");
    let sent = u32::from_le_bytes(r.array("the members sent"));
    if sent != reads.bits() {
        r.fail(
            "the members sent",
            "the host sent other members than the rule declares it reads",
        );
    }
    event.read_members(reads.bits(), r);
}

/// The event read, or the first problem met (the event forgotten, not dropped, if its strings
/// were lent).
#[inline(always)]
fn finish(r: Reader<'_>, event: Event) -> Result<Event, DecodeError> {
    let lent = r.lends();
    match r.finish() {
        Ok(()) => Ok(event),
        Err(problem) => {
            if lent {
                // Reads never stop early, so the event is whole; its lent strings must not be
                // dropped.
                std::mem::forget(event);
            }
            Err(problem)
        }
    }
}

/// Read the input of a module of ABI `version`: the event part, the rule part, then the part of
/// each version after 2 up to `version`.
#[inline(always)]
fn read(mut r: Reader<'_>, version: u32) -> Result<Event, DecodeError> {
    r.magic(MAGIC, "not an encoded event (wrong magic)");
    r.begin_part("the event's text");
    let mut event = Event::read(&mut r, "", BASE_PART);
    r.end_part("the event's text");
    r.begin_part("the rule's text");
    event.read_rule_part(&mut r);
    r.end_part("the rule's text");
    for part in BASE_PART + 1..=version {
        r.begin_part("the added fields' text");
        event.read_later(&mut r, part, BASE_PART);
        r.end_part("the added fields' text");
    }
    finish(r, event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::PartWriter;
    use serde_json::json;

    fn full_event() -> Value {
        json!({
            "user": {
                "user_id": "auth0|42", "email": "ada@example.com", "email_verified": true,
                "name": "Ada", "nickname": "ada", "given_name": "Ada", "family_name": "Lovelace",
                "picture": "https://p.test/a.png", "phone_number": "+441234", "phone_verified": true,
                "updated_at": "2026-11-22T10:00:00Z",
                "app_metadata": {"plan": "pro", "seats": 12, "ratio": 0.25, "debt": -3,
                                  "flags": [true, false, null], "nested": {"deep": {"er": "é ü 漢"}}},
                "user_metadata": {"theme": "dark"}
            },
            "authorization": {"roles": ["admin", "editor"], "permissions": ["read:all"]},
            "authentication": {"methods": [
                {"name": "pwd", "timestamp": "2026-11-22T09:00:00Z"},
                {"name": "mfa", "auth_time": -5}
            ]},
            "client": {"client_id": "spa", "name": "Dashboard", "metadata": {"tier": "gold"}},
            "connection": {"id": "con_1", "name": "db", "strategy": "auth0", "metadata": {}},
            "organization": {"id": "org_1", "name": "acme", "display_name": null, "metadata": {"k": 1}},
            "request": {"ip": "203.0.113.9", "user_agent": "curl", "hostname": "login.test",
                        "language": "fr", "method": "POST",
                        "geoip": {"countryCode": "FR", "latitude": 48.85},
                        "query": {"prompt": "login", "max_age": 0}},
            "transaction": {"requested_scopes": ["openid", "email"], "protocol": "oidc",
                            "locale": "fr", "redirect_uri": "https://a.test/cb", "nonce": "n-1",
                            "acr_values": ["silver"]},
            "resource_server": {"identifier": "https://api.test"},
            "stats": {"logins_count": 18446744073709551615u64},
            "configuration": {"namespace": "https://example.com", "map": {"a": [1, 2]}},
            "secrets": {"API_KEY": "s3cr3t", "OTHER": ""}
        })
    }

    /// The whole input for `event`: the event, then its own configuration and secrets.
    fn encoded(event: &Event) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode_event(event, &mut bytes);
        encode_rule_part(&event.configuration, &event.secrets, &mut bytes);
        bytes
    }

    /// The version `decode_lent` reads: the SDK's own (2 for a version 1 build, whose export
    /// reads JSON and never calls it; 4 for a version 6 build, whose export calls
    /// `decode_lent_v6`).
    const LENT: i32 = if crate::ABI_VERSION < 2 {
        2
    } else if crate::ABI_VERSION > 4 {
        4
    } else {
        crate::ABI_VERSION
    };

    /// The whole input of ABI `version` for `event`: [`encoded`]'s, then the parts added since.
    fn encoded_for(event: &Event, version: i32) -> Vec<u8> {
        let mut bytes = encoded(event);
        for version in 3..=version {
            encode_added_part(event, version, &mut bytes);
        }
        bytes
    }

    /// [`decode_version`] for the version `decode_lent` reads, for comparing the two.
    fn owned(bytes: &[u8]) -> Result<Event, DecodeError> {
        decode_version(bytes, LENT)
    }

    fn round_trip(event: &Event) -> Event {
        decode(&encoded(event)).unwrap()
    }

    #[test]
    fn every_field_survives_the_round_trip() {
        let event: Event = serde_json::from_value(full_event()).unwrap();
        assert_eq!(round_trip(&event), event);
        assert_eq!(round_trip(&event).user.app_metadata["debt"], json!(-3));
        assert_eq!(
            round_trip(&event).request.geoip.unwrap()["latitude"],
            json!(48.85)
        );
    }

    #[test]
    fn an_empty_event_survives_the_round_trip() {
        let event = Event::default();
        assert_eq!(round_trip(&event), event);
    }

    #[test]
    fn a_cut_input_names_the_field_it_was_reading() {
        let event: Event = serde_json::from_value(full_event()).unwrap();
        let mut bytes = Vec::new();
        encode_event(&event, &mut bytes);
        // Cut two bytes into the structure, which starts after the magic, the text's length and
        // the text: the first field's length is cut short.
        let text_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        let err = decode(&bytes[..8 + text_len + 2]).unwrap_err();
        assert_eq!(err.field, "user.user_id");
        assert!(err.to_string().contains("user.user_id"), "{err}");
        // Every prefix fails cleanly, none panics.
        encode_rule_part(&event.configuration, &event.secrets, &mut bytes);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "prefix of {cut} bytes");
        }
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        assert_eq!(decode(b"{\"user\":{}}").unwrap_err().field, "magic");
        let mut bytes = Vec::new();
        encode_event(&Event::default(), &mut bytes);
        encode_rule_part(&Map::new(), &BTreeMap::new(), &mut bytes);
        bytes.push(0);
        assert_eq!(decode(&bytes).unwrap_err().field, "the end");
        // A huge text length fails against the bytes left.
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        let err = decode(&huge).unwrap_err();
        assert_eq!(
            (err.field, err.problem),
            ("the event's text", "input ends too early")
        );
        // A huge count does not reserve memory: it fails against the bytes left. The default
        // event has no text; `authorization.roles` is the count after 22 bytes of `user`.
        let mut huge = bytes.clone();
        huge.truncate(huge.len() - 1);
        huge[8 + 22..8 + 26].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = decode(&huge).unwrap_err();
        assert_eq!(
            (err.field, err.problem),
            (
                "authorization.roles",
                "a length runs past the end of the input"
            )
        );
        // A string that would split a character in the text is refused.
        let event = Event {
            user: crate::User {
                user_id: "é".into(),
                ..Default::default()
            },
            ..Event::default()
        };
        let mut split = Vec::new();
        encode_event(&event, &mut split);
        encode_rule_part(&Map::new(), &BTreeMap::new(), &mut split);
        assert_eq!(decode(&split).unwrap(), event);
        split[4 + 4 + 2..4 + 4 + 2 + 4].copy_from_slice(&1u32.to_le_bytes());
        let err = decode(&split).unwrap_err();
        assert_eq!(
            (err.field, err.problem),
            (
                "user.user_id",
                "a string runs past the text or splits a character"
            )
        );
        // Flipping any single byte never panics.
        let event: Event = serde_json::from_value(full_event()).unwrap();
        let good = encoded(&event);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xA5;
            let _ = decode(&bad);
        }
    }

    /// Bytes of a whole input of version [`LENT`] for `event`, its rule part written by
    /// `rule_part`.
    fn input_with(event: &Event, rule_part: impl FnOnce(&mut PartWriter)) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode_event(event, &mut bytes);
        let mut w = PartWriter::new();
        rule_part(&mut w);
        w.finish_into(&mut bytes);
        for version in 3..=LENT {
            encode_added_part(event, version, &mut bytes);
        }
        bytes
    }

    #[test]
    fn a_lent_event_equals_an_owned_one() {
        let event = fixture_event();
        let bytes = encoded_for(&event, LENT);
        // SAFETY: `lent` is only read, then forgotten by its `ManuallyDrop`, before `bytes` goes.
        let lent = unsafe { decode_lent(&bytes) }.unwrap();
        assert_eq!(*lent, owned(&bytes).unwrap());
        assert_eq!(*lent, as_version(event, LENT));
        // The strings really are borrowed from the input: no copy was made.
        let text = bytes.as_ptr_range();
        assert!(text.contains(&lent.user.user_id.as_ptr()));
        assert!(text.contains(&lent.authorization.roles[0].as_ptr()));
        if LENT >= 3 {
            assert!(text.contains(&lent.user.groups[0].as_ptr()));
        }
        if LENT >= 4 {
            assert!(text.contains(&lent.session.as_ref().unwrap().id.as_ptr()));
            assert!(text.contains(&lent.user.enrolled_factors[0].kind.as_ptr()));
        }
    }

    // Natively a lent string that reached the allocator would abort the test process (`free` of
    // a pointer into the middle of `bytes`), so these fail loudly if decoding ever drops one.
    #[test]
    fn lent_values_that_a_duplicate_key_replaces_are_not_dropped() {
        let bytes = input_with(&Event::default(), |w| {
            w.len(2);
            for value in ["first", "second"] {
                w.str("namespace");
                w.value(&Value::String(value.into()));
            }
            w.len(2);
            for value in ["one", "two"] {
                w.str("API_KEY");
                w.str(value);
            }
        });
        let owned = owned(&bytes).unwrap();
        assert_eq!(owned.configuration["namespace"], "second");
        assert_eq!(owned.secret("API_KEY"), Some("two"));
        // SAFETY: as above.
        let lent = unsafe { decode_lent(&bytes) }.unwrap();
        assert_eq!(*lent, owned);
    }

    #[test]
    fn a_broken_lent_input_fails_without_dropping_anything() {
        let bytes = encoded_for(&fixture_event(), LENT);
        for cut in 0..bytes.len() {
            // SAFETY: nothing is returned on error; the event was forgotten inside.
            let owned = owned(&bytes[..cut]).unwrap_err();
            assert_eq!(unsafe { decode_lent(&bytes[..cut]) }.unwrap_err(), owned);
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0xA5;
            // SAFETY: as above; a success is only compared, then forgotten.
            match (unsafe { decode_lent(&bad) }, owned(&bad)) {
                (Ok(lent), Ok(owned)) => assert_eq!(*lent, owned),
                (Err(lent), Err(owned)) => assert_eq!(lent, owned),
                (lent, owned) => panic!("byte {i}: lent {lent:?}, owned {owned:?}"),
            }
        }
    }

    /// A fixture file's hex, one part per block: blocks split at `--` lines, `#` lines skipped.
    fn hex_parts(text: &str) -> Vec<Vec<u8>> {
        let mut parts = vec![Vec::new()];
        for line in text.lines().map(str::trim) {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if line == "--" {
                parts.push(Vec::new());
                continue;
            }
            let part = parts.last_mut().unwrap();
            for i in (0..line.len()).step_by(2) {
                part.push(u8::from_str_radix(&line[i..i + 2], 16).unwrap());
            }
        }
        parts
    }

    fn fixture_event() -> Event {
        serde_json::from_str(include_str!("../tests/fixtures/full_event.json")).unwrap()
    }

    #[test]
    fn the_borrowed_form_writes_every_member_as_the_owned_one_does() {
        // Every field of the table set, and strings with escapes (which the borrowed form owns)
        // beside ones without (which it borrows).
        let mut value: Value =
            serde_json::from_str(include_str!("../tests/fixtures/full_event.json")).unwrap();
        value["user"]["name"] = json!("Ada \"the first\"\n\u{e9}");
        value["authorization"]["roles"] = json!(["plain", "tab\there", "漢"]);
        for text in [
            include_str!("../tests/fixtures/full_event.json").to_owned(),
            value.to_string(),
            "{}".to_owned(),
        ] {
            let owned = serde_json::from_str::<crate::CallerEvent>(&text)
                .unwrap()
                .into_event();
            let borrowed: crate::BorrowedEvent<'_> = serde_json::from_str(&text).unwrap();
            for index in member_indices(Reads::ALL.without(Reads::PER_RULE)) {
                let (mut from_owned, mut from_borrowed) = (Vec::new(), Vec::new());
                encode_member(&owned, index, &mut from_owned);
                encode_borrowed_member(&borrowed, index, &mut from_borrowed);
                assert_eq!(
                    from_borrowed,
                    from_owned,
                    "member {} of {text}",
                    Event::MEMBERS[index as usize]
                );
            }
        }
        let text = value.to_string();
        let borrowed: crate::BorrowedEvent<'_> = serde_json::from_str(&text).unwrap();
        let within = |s: &str| text.as_bytes().as_ptr_range().contains(&s.as_ptr());
        assert!(within(&borrowed.user.user_id), "a plain string is borrowed");
        assert!(
            !within(borrowed.user.name.as_deref().unwrap()),
            "an escaped one is not"
        );
    }

    #[test]
    fn the_table_reads_each_struct_with_defaults_only_as_its_borrowed_form_does() {
        // The borrowed structs (wire.rs) copy each field's attributes but not the struct's: they
        // read with `#[serde(default)]` and nothing else, so every struct of the table must too
        // (a `deny_unknown_fields` or `rename_all` here would make the two parses disagree).
        let lines: Vec<&str> = include_str!("event.rs").lines().map(str::trim).collect();
        let mut structs = 0;
        for (i, line) in lines.iter().enumerate() {
            if !line.starts_with("pub struct ") {
                continue;
            }
            structs += 1;
            let serde: Vec<&str> = lines[..i]
                .iter()
                .rev()
                .take_while(|above| above.starts_with("#[") || above.starts_with("///"))
                .filter(|above| above.starts_with("#[serde"))
                .copied()
                .collect();
            assert_eq!(serde, ["#[serde(default)]"], "{line}");
        }
        assert!(structs >= 19, "found {structs} structs in event.rs");
    }

    #[test]
    fn the_borrowed_form_accepts_and_refuses_what_the_owned_one_does() {
        let documents = [
            r#"{"user": null}"#,
            r#"{"authentication": null, "organization": null, "session": null}"#,
            r#"{"user": {"email": null, "name": null, "groups": null}}"#,
            r#"{"us\u0065r": {"user_\u0069d": "u1", "name": "\ud83e\udd80 crab"}}"#,
            r#"{"user": {"user_id": "a"}, "user": {"user_id": "b"}}"#,
            r#"{"user": {"enrolled_factors": [{"type": "otp", "type": "sms"}]}}"#,
            r#"{"user": {"enrolled_factors": [{"type": "otp", "kind": "x"}]}}"#,
            r#"{"login_time": 0}"#,
            r#"{"login_time": -1}"#,
            r#"{"login_time": 1.5}"#,
            r#"{"stats": {"logins_count": 18446744073709551616}}"#,
            r#"{"user": {"app_metadata": {"a": 1, "a": 2, "b": [1e400]}}}"#,
            r#"{"user": {"app_metadata": {"a": 1, "a": 2}}}"#,
            r#"{"request": {"geoip": "anything", "query": {"q": "\ud800"}}}"#,
            r#"{"configuration": [1], "secrets": "x", "unknown": "\ud800"}"#,
            r#"{"authorization": {"roles": ["a", 1]}}"#,
            r#"{"authorization": {"roles": "admin"}}"#,
            r#"{"user": {"email_verified": "true"}}"#,
        ];
        for text in documents {
            let owned = serde_json::from_str::<crate::CallerEvent>(text).map(|e| e.into_event());
            let borrowed = serde_json::from_str::<crate::BorrowedEvent<'_>>(text);
            match (owned, borrowed) {
                (Ok(owned), Ok(borrowed)) => {
                    for index in member_indices(Reads::ALL.without(Reads::PER_RULE)) {
                        let (mut from_owned, mut from_borrowed) = (Vec::new(), Vec::new());
                        encode_member(&owned, index, &mut from_owned);
                        encode_borrowed_member(&borrowed, index, &mut from_borrowed);
                        assert_eq!(from_borrowed, from_owned, "member {index} of {text}");
                    }
                }
                (Err(owned), Err(borrowed)) => {
                    assert_eq!(borrowed.classify(), owned.classify(), "{text}");
                }
                (owned, borrowed) => panic!("{text}: owned {owned:?}, borrowed {borrowed:?}"),
            }
        }
    }

    #[test]
    fn version_2_bytes_are_pinned() {
        // Written by the encoder before the schema became one table; modules built since then
        // by older SDKs read exactly these bytes, so any change of order or form fails here.
        let pinned = hex_parts(include_str!("../tests/fixtures/full_event.v2.hex"));
        let event = fixture_event();
        let mut event_part = Vec::new();
        encode_event(&event, &mut event_part);
        let mut rule_part = Vec::new();
        encode_rule_part(&event.configuration, &event.secrets, &mut rule_part);
        assert_eq!(pinned, [event_part, rule_part]);
        assert_eq!(decode(&pinned.concat()).unwrap(), as_version(event, 2));
    }

    #[test]
    fn the_part_version_3_adds_is_pinned() {
        // Version 2's parts unchanged, then this one: the fields marked `since 3`, in order.
        let pinned = hex_parts(include_str!("../tests/fixtures/full_event.v3.hex"));
        let event = fixture_event();
        let mut added = Vec::new();
        encode_added_part(&event, 3, &mut added);
        assert_eq!(pinned, [added.clone()]);
        let v2 = hex_parts(include_str!("../tests/fixtures/full_event.v2.hex")).concat();
        assert_eq!(
            decode_version(&[v2, added].concat(), 3).unwrap(),
            as_version(event, 3)
        );
    }

    #[test]
    fn the_part_version_4_adds_is_pinned() {
        // Versions 2 and 3's parts unchanged, then this one: the fields marked `since 4`.
        let pinned = hex_parts(include_str!("../tests/fixtures/full_event.v4.hex"));
        let event = fixture_event();
        let mut added = Vec::new();
        encode_added_part(&event, 4, &mut added);
        assert_eq!(pinned, [added.clone()]);
        let v2 = hex_parts(include_str!("../tests/fixtures/full_event.v2.hex")).concat();
        let v3 = hex_parts(include_str!("../tests/fixtures/full_event.v3.hex")).concat();
        assert_eq!(decode_version(&[v2, v3, added].concat(), 4).unwrap(), event);
    }

    /// `event` as a module of ABI `version` reads it: the fields added since at their defaults.
    fn as_version(mut event: Event, version: i32) -> Event {
        if version < 4 {
            event.login_time = 0;
            event.tenant = Default::default();
            event.session = None;
            event.user.created_at = None;
            event.user.last_password_reset = None;
            event.user.multifactor = Vec::new();
            event.user.enrolled_factors = Vec::new();
            if let Some(authentication) = &mut event.authentication {
                authentication.risk_assessment = None;
            }
        }
        if version < 3 {
            event.user.groups = Vec::new();
            event.issuer_claims = Default::default();
        }
        event
    }

    #[test]
    fn every_field_of_the_table_travels_through_every_abi_version() {
        // The fixture sets every field of the table to a value that is not its default: a field
        // added to the table without a value there fails here, by path.
        let event = fixture_event();
        let mut unset = Vec::new();
        Wire::unset(&event, "", &mut unset);
        assert!(unset.is_empty(), "not set in full_event.json: {unset:?}");
        // Version 1: JSON, every field.
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
        // Version 2: binary, without the fields added since, which read as their defaults.
        let v2 = encoded(&event);
        assert_eq!(decode(&v2).unwrap(), as_version(event.clone(), 2));
        // Version 3: binary, without version 4's fields.
        let v3 = encoded_for(&event, 3);
        assert_eq!(
            decode_version(&v3, 3).unwrap(),
            as_version(event.clone(), 3)
        );
        assert!(v3.starts_with(&v2));
        // Version 4: binary, every field; owned and lent.
        let v4 = encoded_for(&event, 4);
        assert_eq!(decode_version(&v4, 4).unwrap(), event);
        assert!(v4.starts_with(&v3));
        if LENT == 4 {
            // SAFETY: `lent` is only read, then forgotten by its `ManuallyDrop`, before `v4` goes.
            let lent = unsafe { decode_lent(&v4) }.unwrap();
            assert_eq!(*lent, event);
        }
    }

    #[test]
    fn version_6_carries_exactly_the_members_declared() {
        let event = fixture_event();
        // Every member: the whole event, every field of every version.
        let mut all = Vec::new();
        encode_v6(&event, Reads::ALL, &mut all);
        assert_eq!(decode_v6(&all, Reads::ALL).unwrap(), event);
        // SAFETY: `lent` is only read, then forgotten by its `ManuallyDrop`, before `all` goes.
        let lent = unsafe { decode_lent_v6(&all, Reads::ALL) }.unwrap();
        assert_eq!(*lent, event);
        let mut in_place = std::mem::ManuallyDrop::new(Event::default());
        // SAFETY: as above.
        unsafe { decode_lent_v6_into(&all, Reads::ALL, &mut in_place) }.unwrap();
        assert_eq!(*in_place, event);
        assert!(all.as_ptr_range().contains(&lent.user.user_id.as_ptr()));
        // A subset: those members whole, every other one at its default, and the bytes of the
        // others never sent.
        let reads = Reads::parse("authorization configuration").unwrap();
        let mut some = Vec::new();
        encode_v6(&event, reads, &mut some);
        let read = decode_v6(&some, reads).unwrap();
        assert_eq!(read, reads.keep(&event));
        assert_eq!(read.authorization, event.authorization);
        assert_eq!(read.configuration, event.configuration);
        assert_eq!(read.login_time, event.login_time);
        assert_eq!(read.user, Default::default());
        assert!(read.secrets.is_empty());
        let email = event.user.email.as_deref().unwrap().as_bytes();
        assert!(!some.windows(email.len()).any(|w| w == email));
        // The parts are the members' own, in order, whatever else is sent beside them.
        let mut pieces = header_v6(reads).to_vec();
        for index in [1, 11, 14] {
            encode_member(&event, index, &mut pieces);
        }
        assert_eq!(pieces, some);
    }

    #[test]
    fn a_version_6_input_for_other_members_or_broken_is_refused() {
        let event = fixture_event();
        let reads = Reads::parse("user").unwrap();
        let mut bytes = Vec::new();
        encode_v6(&event, reads, &mut bytes);
        let other = Reads::parse("client").unwrap();
        let err = decode_v6(&bytes, other).unwrap_err();
        assert_eq!(err.field, "the members sent");
        assert_eq!(
            decode_v6(&bytes[..6], reads).unwrap_err().field,
            "the members sent"
        );
        let err = decode_v6(&bytes[..bytes.len() - 1], reads).unwrap_err();
        assert_eq!(err.field, "login_time");
        for cut in 0..bytes.len() {
            let owned = decode_v6(&bytes[..cut], reads).unwrap_err();
            // SAFETY: nothing is returned on error; the event was forgotten inside.
            assert_eq!(
                unsafe { decode_lent_v6(&bytes[..cut], reads) }.unwrap_err(),
                owned
            );
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0xA5;
            // SAFETY: as above; a success is only compared, then forgotten.
            match (
                unsafe { decode_lent_v6(&bad, reads) },
                decode_v6(&bad, reads),
            ) {
                (Ok(lent), Ok(owned)) => assert_eq!(*lent, owned),
                (Err(lent), Err(owned)) => assert_eq!(lent, owned),
                (lent, owned) => panic!("byte {i}: lent {lent:?}, owned {owned:?}"),
            }
        }
    }

    #[test]
    fn version_6_bytes_are_pinned() {
        // Modules built by this SDK read exactly these bytes: any change of order or form of a
        // member fails here. One block per member, after the header.
        let pinned = hex_parts(include_str!("../tests/fixtures/full_event.v6.hex"));
        let event = fixture_event();
        let mut blocks = vec![header_v6(Reads::ALL).to_vec()];
        for index in 0..16 {
            let mut part = Vec::new();
            encode_member(&event, index, &mut part);
            blocks.push(part);
        }
        if std::env::var_os("CLAIMSMITH_WRITE_PINNED").is_some() {
            let text: Vec<String> = blocks
                .iter()
                .map(|block| block.iter().map(|b| format!("{b:02x}")).collect())
                .collect();
            std::fs::write(
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/full_event.v6.hex"
                ),
                format!(
                    "# ABI version 6: the header, then each member of full_event.json whole\n{}\n",
                    text.join("\n--\n")
                ),
            )
            .unwrap();
        }
        assert_eq!(pinned, blocks);
    }

    #[test]
    fn nesting_is_capped() {
        let mut deep = json!("leaf");
        for _ in 0..(MAX_DEPTH + 1) {
            deep = json!([deep]);
        }
        let mut map = Map::new();
        map.insert("deep".into(), deep);
        let event = Event {
            configuration: map,
            ..Event::default()
        };
        let bytes = encoded(&event);
        assert_eq!(decode(&bytes).unwrap_err().problem, "values nest too deep");
    }
}
