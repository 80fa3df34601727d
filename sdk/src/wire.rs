//! The event's schema in one place: [`event_schema!`] declares every struct of the login event
//! once, in `event.rs`, and generates from that one table the structs themselves (with their
//! derives, serde attributes and docs), the binary encoder and decoder of every part of the input
//! (`docs/abi.md`, section 9), and the form in which a caller hands the host an event
//! ([`CallerEvent`](crate::CallerEvent): everything but the per-rule members), owned and
//! borrowed ([`BorrowedEvent`](crate::BorrowedEvent): its strings point into the caller's JSON,
//! and it writes the same bytes as the owned event; hosts only, not built for wasm).
//!
//! The binary form of each field's type is the [`Wire`] trait, implemented here for the types
//! the event's fields have and by the macro for each struct, its fields in declaration order.
//!
//! # Parts and versions
//!
//! A field arrives in the part of the ABI version it was added in:
//!
//! - unmarked: with its struct (for `Event`'s own fields, the event part of version 2);
//! - `since 3`: in the part that version 3 adds after version 2's two, with every other field
//!   added in version 3, in the order the table gives them (depth first). A later version's
//!   fields would be `since 4`, and arrive in a part of their own after version 3's;
//! - `Event`'s `per_rule` fields: in the rule part, which the host writes once per rule.
//!
//! A field added to a struct that arrived earlier is read *into* the value decoded from the
//! earlier part ([`Wire::read_later`]): nothing about the earlier parts changes, so modules of
//! every older version keep reading exactly the bytes they always did.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::binary::{MAX_RESERVED, PartWriter, Reader};

/// The part of the input that holds the fields of version 2, and every field of a value that
/// arrives in it: the event part (and the rule part).
pub(crate) const BASE_PART: u32 = 2;

/// The "part" in which every field of a value arrives with it, whatever version added it: how
/// guest ABI version 6 carries each member of the event whole.
pub(crate) const WHOLE: u32 = u32::MAX;

/// Whether a field marked `since` (`0`: unmarked) of a value that arrives in `part` arrives
/// with it.
#[inline(always)]
pub(crate) const fn arrives_with(since: u32, part: u32) -> bool {
    since <= part
}

/// The structure bytes a struct takes at least: its unmarked fields' `MIN_BYTES`.
pub(crate) const fn min_bytes(fields: &[(u32, usize)]) -> usize {
    let mut total = 0;
    let mut i = 0;
    while i < fields.len() {
        if fields[i].0 == 0 {
            total += fields[i].1;
        }
        i += 1;
    }
    total
}

/// Put a value read from a later part into its field, which holds its default until then: the
/// default is forgotten, not dropped (it owns nothing, and nothing may be dropped while a lending
/// reader decodes).
#[inline(always)]
pub(crate) fn fill<T>(field: &mut T, value: T) {
    std::mem::forget(std::mem::replace(field, value));
}

/// How a value of the event is written in its binary form: what [`Wire`] needs of a type, and
/// all a borrowed form of one ([`Borrow`]) has.
///
/// `write` carries a whole value as it arrives in `part`, less any of its fields that arrive in
/// a later part; `write_later` carries those, for a value that arrived in part `since`, when part
/// `part` is written.
pub trait WireWrite {
    fn write(&self, w: &mut PartWriter, part: u32);

    #[inline(always)]
    fn write_later(&self, _w: &mut PartWriter, _part: u32, _since: u32) {}
}

/// A type of the event's binary form.
///
/// `read` and `read_later` carry what [`WireWrite`]'s `write` and `write_later` wrote. Every
/// method is meant to be inlined: `part` and `since` are constants at every call, so each
/// part's code is straight-line reads with no trace of the fields of other parts.
pub(crate) trait Wire: WireWrite + Sized + Default {
    /// The fewest structure bytes a value takes in the part it arrives in: counts of these are
    /// checked against the bytes left before anything is reserved.
    const MIN_BYTES: usize;

    fn read(r: &mut Reader<'_>, field: &'static str, part: u32) -> Self;

    #[inline(always)]
    fn read_later(&mut self, _r: &mut Reader<'_>, _part: u32, _since: u32) {}

    /// The paths of the fields that hold their default value (every one, for a list or an
    /// option that is empty): what a test event that should set every field leaves out.
    #[cfg(test)]
    fn unset(&self, path: &'static str, out: &mut Vec<&'static str>);
}

/// The form of a field's type that the host parses a caller's event into, borrowing its strings
/// from the JSON text where they have no escapes ([`Text`]); written exactly as the owned type
/// is. Plain values, JSON values and maps are their own borrowed form.
#[cfg(not(target_arch = "wasm32"))]
pub trait Borrow {
    type Ref<'a>: WireWrite + Default;
}

/// A string of a caller's event: borrowed from the JSON text, or owned where the text has
/// escapes.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Default)]
pub struct Text<'a>(std::borrow::Cow<'a, str>);

#[cfg(not(target_arch = "wasm32"))]
impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl<'de: 'a, 'a> serde::Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> serde::de::Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Owned(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl WireWrite for Text<'_> {
    #[inline(always)]
    fn write(&self, w: &mut PartWriter, _part: u32) {
        w.str(&self.0);
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Borrow for String {
    type Ref<'a> = Text<'a>;
}

/// Types that are their own borrowed form.
macro_rules! owned_borrow {
    ($($ty:ty),*) => {$(
        #[cfg(not(target_arch = "wasm32"))]
        impl Borrow for $ty {
            type Ref<'a> = $ty;
        }
    )*};
}

owned_borrow!(bool, u64, i64, Value, Map<String, Value>);

#[cfg(not(target_arch = "wasm32"))]
impl<T: Borrow> Borrow for Option<T> {
    type Ref<'a> = Option<T::Ref<'a>>;
}

#[cfg(not(target_arch = "wasm32"))]
impl<T: Borrow> Borrow for Vec<T> {
    type Ref<'a> = Vec<T::Ref<'a>>;
}

/// A field's type that is one value of the binary form, with no fields of its own.
macro_rules! leaf {
    ($ty:ty, $min:expr, |$w:ident, $value:ident| $write:expr, |$r:ident, $field:ident| $read:expr) => {
        impl WireWrite for $ty {
            #[inline(always)]
            fn write(&self, $w: &mut PartWriter, _part: u32) {
                let $value = self;
                $write
            }
        }

        impl Wire for $ty {
            const MIN_BYTES: usize = $min;

            #[inline(always)]
            fn read($r: &mut Reader<'_>, $field: &'static str, _part: u32) -> Self {
                $read
            }

            #[cfg(test)]
            fn unset(&self, path: &'static str, out: &mut Vec<&'static str>) {
                if *self == <$ty>::default() {
                    out.push(path);
                }
            }
        }
    };
}

leaf!(String, 4, |w, s| w.str(s), |r, field| r.string(field));
leaf!(bool, 1, |w, b| w.bool(*b), |r, field| r.bool(field));
leaf!(u64, 8, |w, n| w.raw(&n.to_le_bytes()), |r, field| {
    u64::from_le_bytes(r.array(field))
});
leaf!(i64, 8, |w, n| w.raw(&n.to_le_bytes()), |r, field| {
    i64::from_le_bytes(r.array(field))
});
leaf!(Value, 1, |w, v| w.value(v), |r, field| r.value(field, 0));
leaf!(Map<String, Value>, 4, |w, m| w.map(m), |r, field| r
    .map(field, 0));
leaf!(
    BTreeMap<String, String>,
    4,
    |w, pairs| {
        w.len(pairs.len());
        for (name, value) in pairs {
            w.str(name);
            w.str(value);
        }
    },
    |r, field| {
        let count = r.len(field, 8);
        let mut pairs = BTreeMap::new();
        for _ in 0..count {
            if r.failed() {
                break;
            }
            let name = r.key(field);
            let value = r.string(field);
            r.discard(pairs.insert(name, value));
        }
        pairs
    }
);

/// `opt<T>`: a tag byte, `1` followed by the value or `0`.
impl<T: WireWrite> WireWrite for Option<T> {
    #[inline(always)]
    fn write(&self, w: &mut PartWriter, part: u32) {
        match self {
            None => w.byte(0),
            Some(value) => {
                w.byte(1);
                value.write(w, part);
            }
        }
    }

    #[inline(always)]
    fn write_later(&self, w: &mut PartWriter, part: u32, since: u32) {
        if let Some(value) = self {
            value.write_later(w, part, since);
        }
    }
}

impl<T: Wire> Wire for Option<T> {
    const MIN_BYTES: usize = 1;

    #[inline(always)]
    fn read(r: &mut Reader<'_>, field: &'static str, part: u32) -> Self {
        if r.present(field) {
            Some(T::read(r, field, part))
        } else {
            None
        }
    }

    #[inline(always)]
    fn read_later(&mut self, r: &mut Reader<'_>, part: u32, since: u32) {
        if let Some(value) = self {
            value.read_later(r, part, since);
        }
    }

    #[cfg(test)]
    fn unset(&self, path: &'static str, out: &mut Vec<&'static str>) {
        match self {
            None => out.push(path),
            Some(value) => value.unset(path, out),
        }
    }
}

/// `list<T>`: a count, then that many values.
impl<T: WireWrite> WireWrite for Vec<T> {
    #[inline(always)]
    fn write(&self, w: &mut PartWriter, part: u32) {
        w.len(self.len());
        for item in self {
            item.write(w, part);
        }
    }

    #[inline(always)]
    fn write_later(&self, w: &mut PartWriter, part: u32, since: u32) {
        for item in self {
            item.write_later(w, part, since);
        }
    }
}

impl<T: Wire> Wire for Vec<T> {
    const MIN_BYTES: usize = 4;

    #[inline(always)]
    fn read(r: &mut Reader<'_>, field: &'static str, part: u32) -> Self {
        // An item takes at least a byte: a count cannot claim more items than bytes are left.
        let count = r.len(field, T::MIN_BYTES.max(1));
        let mut items = Vec::with_capacity(count.min(MAX_RESERVED));
        for _ in 0..count {
            if r.failed() {
                break;
            }
            items.push(T::read(r, field, part));
        }
        items
    }

    #[inline(always)]
    fn read_later(&mut self, r: &mut Reader<'_>, part: u32, since: u32) {
        for item in self {
            item.read_later(r, part, since);
        }
    }

    #[cfg(test)]
    fn unset(&self, path: &'static str, out: &mut Vec<&'static str>) {
        if self.is_empty() {
            out.push(path);
        }
        for item in self {
            item.unset(path, out);
        }
    }
}

/// The version a field is marked with; `0` for an unmarked field (it arrives with its struct).
macro_rules! since {
    () => {
        0
    };
    ($version:literal) => {
        $version
    };
}

/// A field's dotted path, for error messages: `user.email`, or `user` for `Event`'s own.
macro_rules! field_path {
    ([]; $field:ident) => {
        stringify!($field)
    };
    ([$prefix:literal]; $field:ident) => {
        concat!($prefix, ".", stringify!($field))
    };
}

/// [`WireWrite`] for one struct (`$name`, or `$name<'a>` with `['a]`), its fields in declaration
/// order: the owned structs of the event and their borrowed forms write the same bytes.
macro_rules! wire_write {
    ( [$($lt:lifetime)?] $name:ident { $( [$($since:literal)?] $field:ident ),* } ) => {
        impl$(<$lt>)? $crate::wire::WireWrite for $name$(<$lt>)? {
            #[inline(always)]
            fn write(&self, w: &mut $crate::binary::PartWriter, part: u32) {
                $(
                    if $crate::wire::arrives_with(since!($($since)?), part) {
                        $crate::wire::WireWrite::write(&self.$field, w, part);
                    }
                )*
            }

            #[inline(always)]
            fn write_later(&self, w: &mut $crate::binary::PartWriter, part: u32, since: u32) {
                $(
                    let at = std::cmp::max(since, since!($($since)?));
                    if at == part {
                        $crate::wire::WireWrite::write(&self.$field, w, part);
                    } else if at < part {
                        $crate::wire::WireWrite::write_later(&self.$field, w, part, at);
                    }
                )*
            }
        }
    };
}

/// [`Wire`] for one struct, its fields in declaration order; `$prefix` is its path in the event
/// in brackets (`["user"]`; `[]` for `Event`). Fields in `$skip` are not in the binary form of the struct (they are
/// `Event`'s per-rule fields, read and written apart) and read as their defaults.
macro_rules! wire_struct {
    (
        $name:ident $prefix:tt
        { $( [$($since:literal)?] $field:ident : $ty:ty ),* }
        skip { $( $skip:ident ),* }
    ) => {
        wire_write! { [] $name { $( [$($since)?] $field ),* } }

        impl $crate::wire::Wire for $name {
            const MIN_BYTES: usize = $crate::wire::min_bytes(&[
                $( (since!($($since)?), <$ty as $crate::wire::Wire>::MIN_BYTES) ),*
            ]);

            #[inline(always)]
            fn read(
                r: &mut $crate::binary::Reader<'_>,
                _field: &'static str,
                part: u32,
            ) -> Self {
                // Fields are read in the order they are written here, which is the table's.
                $name {
                    $(
                        $field: if $crate::wire::arrives_with(since!($($since)?), part) {
                            $crate::wire::Wire::read(r, field_path!($prefix; $field), part)
                        } else {
                            Default::default()
                        },
                    )*
                    $( $skip: Default::default(), )*
                }
            }

            #[inline(always)]
            fn read_later(&mut self, r: &mut $crate::binary::Reader<'_>, part: u32, since: u32) {
                $(
                    let at = std::cmp::max(since, since!($($since)?));
                    if at == part {
                        let value =
                            $crate::wire::Wire::read(r, field_path!($prefix; $field), part);
                        $crate::wire::fill(&mut self.$field, value);
                    } else if at < part {
                        $crate::wire::Wire::read_later(&mut self.$field, r, part, at);
                    }
                )*
            }

            #[cfg(test)]
            fn unset(&self, _path: &'static str, out: &mut Vec<&'static str>) {
                $( $crate::wire::Wire::unset(&self.$field, field_path!($prefix; $field), out); )*
                $( $crate::wire::Wire::unset(&self.$skip, stringify!($skip), out); )*
            }
        }
    };
}

/// The body of a `write_member(&self, index, w)`: member `index` of `$member`s written whole,
/// every field of every version in it (a part of guest ABI version 6).
macro_rules! write_member {
    ($self:ident, $index:ident, $w:ident; $( $member:ident ),*) => {{
        let mut i = 0u32;
        $(
            if i == $index {
                $crate::wire::WireWrite::write(&$self.$member, $w, $crate::wire::WHOLE);
                return;
            }
            i += 1;
        )*
        let _ = i;
        unreachable!("the event has no member {}", $index);
    }};
}

/// What guest ABI version 6 needs of the event's members (`Event`'s own fields, then the
/// per-rule ones, in order: bit `i` for member `i`): their names, each written or read whole as a
/// part of its own, a copy with only some of them, and one constant per member for
/// `export_rule!(f, reads = [..])`.
macro_rules! event_members {
    ( $( $member:ident, )* ) => {
        impl Event {
            /// The event's members in the order of the table, then the per-rule ones: the parts
            /// a version 6 module declares it reads ([`Reads`](crate::Reads)), bit `i` for
            /// member `i`.
            pub(crate) const MEMBERS: &'static [&'static str] = &[$( stringify!($member), )*];

            /// Write member `index` of [`Event::MEMBERS`] as a whole value, every field of every
            /// version in it (a part of guest ABI version 6).
            #[inline]
            pub(crate) fn write_member(&self, index: u32, w: &mut $crate::binary::PartWriter) {
                write_member!(self, index, w; $( $member ),*)
            }

            /// Read the members whose bits are set in `reads`, in order, each a part of its
            /// own, into this event (whose members hold their defaults until then).
            #[inline(always)]
            pub(crate) fn read_members(
                &mut self,
                reads: u32,
                r: &mut $crate::binary::Reader<'_>,
            ) {
                let mut i = 0u32;
                $(
                    if reads >> i & 1 == 1 {
                        r.begin_part(stringify!($member));
                        let value = $crate::wire::Wire::read(
                            r,
                            stringify!($member),
                            $crate::wire::WHOLE,
                        );
                        $crate::wire::fill(&mut self.$member, value);
                        r.end_part(stringify!($member));
                    }
                    i += 1;
                )*
                let _ = i;
            }

            /// A copy of this event with only the members whose bits are set in `reads`; every
            /// other member holds its default, as a version 6 module that did not declare it
            /// reads it.
            pub(crate) fn keep_members(&self, reads: u32) -> Event {
                let mut kept = Event::default();
                let mut i = 0u32;
                $(
                    if reads >> i & 1 == 1 {
                        kept.$member = self.$member.clone();
                    }
                    i += 1;
                )*
                let _ = i;
                kept
            }
        }

        /// One constant per member of the event, for `export_rule!(f, reads = [..])`: a name
        /// that is not a member fails to compile, naming it.
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        pub mod parts {
            $( pub const $member: $crate::Reads = $crate::Reads::member(stringify!($member)); )*
        }
    };
}

/// The event's schema: `Event` first, its `per_rule` fields apart, then every struct it holds,
/// each with its path in the event (`in "user"`). See the module's docs, and `event.rs`.
macro_rules! event_schema {
    (
        $(#[$event_meta:meta])*
        pub struct Event {
            $(
                $(#[$field_meta:meta])*
                $(since $since:literal)? pub $field:ident : $ty:ty,
            )*
        }
        per_rule {
            $(
                $(#[$rule_meta:meta])*
                pub $rule_field:ident : $rule_ty:ty,
            )*
        }
        $(
            $(#[$struct_meta:meta])*
            pub struct $name:ident in $prefix:literal {
                $(
                    $(#[$sfield_meta:meta])*
                    $(since $ssince:literal)? pub $sfield:ident : $sty:ty,
                )*
            }
        )*
    ) => {
        $(#[$event_meta])*
        pub struct Event {
            $( $(#[$field_meta])* pub $field: $ty, )*
            $( $(#[$rule_meta])* pub $rule_field: $rule_ty, )*
        }

        wire_struct! {
            Event [] { $( [$($since)?] $field: $ty ),* } skip { $( $rule_field ),* }
        }

        impl Event {
            /// Write the rule part's fields, in order.
            #[inline]
            pub(crate) fn write_rule_part(
                $( $rule_field: &$rule_ty, )*
                w: &mut $crate::binary::PartWriter,
            ) {
                $( $crate::wire::WireWrite::write($rule_field, w, $crate::wire::BASE_PART); )*
            }

            /// Read the rule part's fields into an event read from the event part.
            #[inline(always)]
            pub(crate) fn read_rule_part(&mut self, r: &mut $crate::binary::Reader<'_>) {
                $(
                    let value = $crate::wire::Wire::read(
                        r,
                        stringify!($rule_field),
                        $crate::wire::BASE_PART,
                    );
                    $crate::wire::fill(&mut self.$rule_field, value);
                )*
            }
        }

        event_members! { $( $field, )* $( $rule_field, )* }

        /// The event as a caller hands it to the host: [`Event`] without the members the host
        /// sets per rule (`configuration` and `secrets`), which, like any member the host does not
        /// know, are skipped unread. Made from the same table as [`Event`], so the two cannot
        /// drift apart; for hosts, not rules.
        #[doc(hidden)]
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(default, rename = "Event")]
        pub struct CallerEvent {
            $( $field: $ty, )*
        }

        impl CallerEvent {
            /// The event, its per-rule members empty.
            pub fn into_event(self) -> Event {
                Event {
                    $( $field: self.$field, )*
                    $( $rule_field: Default::default(), )*
                }
            }
        }

        /// [`CallerEvent`] in its borrowed form: how the host parses a caller's event once,
        /// its strings borrowed from the JSON text where they have no escapes, and writes each
        /// member's part of the binary form from it (`binary_event::encode_borrowed_member`)
        /// without an owned copy of the event. Fields the table marks `since N` included.
        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(default, rename = "Event")]
        pub struct BorrowedEvent<'a> {
            $( #[serde(borrow)] pub $field: <$ty as $crate::wire::Borrow>::Ref<'a>, )*
        }

        #[cfg(not(target_arch = "wasm32"))]
        impl BorrowedEvent<'_> {
            /// Write member `index` of [`Event::MEMBERS`] (not a per-rule one) whole, as
            /// [`Event::write_member`] writes it.
            #[inline]
            pub(crate) fn write_member(&self, index: u32, w: &mut $crate::binary::PartWriter) {
                write_member!(self, index, w; $( $field ),*)
            }
        }

        /// The borrowed form of each struct of the event, in a module of the struct's name, as
        /// `Ref`.
        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        pub mod borrowed {
            $(
                #[allow(non_snake_case)]
                pub mod $name {
                    #[allow(unused_imports)]
                    use super::super::*;

                    #[derive(Debug, Default, serde::Deserialize)]
                    #[serde(default)]
                    pub struct Ref<'a> {
                        $( $(#[$sfield_meta])* #[serde(borrow)] pub $sfield: <$sty as $crate::wire::Borrow>::Ref<'a>, )*
                    }

                    wire_write! { ['a] Ref { $( [$($ssince)?] $sfield ),* } }
                }
            )*
        }

        $(
            $(#[$struct_meta])*
            pub struct $name {
                $( $(#[$sfield_meta])* pub $sfield: $sty, )*
            }

            wire_struct! {
                $name [$prefix] { $( [$($ssince)?] $sfield: $sty ),* } skip {}
            }

            #[cfg(not(target_arch = "wasm32"))]
            impl $crate::wire::Borrow for $name {
                type Ref<'a> = borrowed::$name::Ref<'a>;
            }
        )*
    };
}
