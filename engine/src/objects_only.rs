//! Reading structs strictly: each one from a map (a JSON object, a TOML table), never from a
//! sequence of its fields in order.
//!
//! serde's derived `Deserialize` also takes a struct from a sequence of its fields in order, so
//! without this `{"user": ["auth0|1"]}` would read as a user whose `user_id` is `auth0|1`, and
//! tokens would be minted for it; and in the issuer's config `keys = [["k1", "EdDSA", "k.pem"]]`
//! would read as a key. [`ObjectsOnly`] wraps a deserializer and asks for a map wherever a
//! struct is wanted, through maps, sequences, options and newtypes at any depth; the error then
//! names the struct that was expected (`invalid type: sequence, expected struct User`). The
//! struct's name is passed on, so what a deserializer reads by name (TOML's `Spanned`) still
//! works. Enums
//! and `#[serde(flatten)]` are not followed (serde reads them through its own buffers, outside
//! this wrapper): the event has neither, and `sdk/src/event.rs` says so to whoever adds one; the
//! config's one choice of forms (a secret as a string or `{ env = ".." }`) is read by hand.
//! Everything else passes through unchanged, at a small cost to the event's parse
//! (docs/performance-log.md has the measurement).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// A deserializer that reads structs from maps only, at every depth.
pub struct ObjectsOnly<D>(pub D);

/// Forward `deserialize_*` methods to the inner deserializer, the visitor passed through `$wrap`.
macro_rules! forward {
    ($wrap:path; $($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method($wrap(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectsOnly<D> {
    type Error = D::Error;

    // What these read may hold a struct (serde_json reads bytes from an array too).
    forward! {
        Wrapped; deserialize_any deserialize_option deserialize_seq deserialize_map
        deserialize_bytes deserialize_byte_buf
    }

    // Plain values, passed on as they are. The visitors that ask for a string, a number, a
    // boolean, an identifier or a unit (std's and serde's derived ones) take no map or sequence:
    // serde_json visits only plain values on these paths, and where TOML's deserializer offers
    // an array or a table the visitor refuses it. Nothing is built from inside, so there is
    // nothing inside to check.
    forward! {
        std::convert::identity; deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_unit deserialize_identifier
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        // The whole point: a map, never a sequence of the fields in order. The visitor refuses
        // the sequence whatever the deserializer offers; the struct's name goes on, for the
        // deserializers that treat some structs their own way (TOML's `Spanned` and datetimes).
        self.0
            .deserialize_struct(name, fields, StructFromMap(visitor))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Wrapped(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Wrapped(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Wrapped(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple_struct(name, len, Wrapped(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        // The event has no enums; one added later is read as the inner deserializer reads it.
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        // Skipped unread: nothing in it is built, so there is nothing to check.
        self.0.deserialize_ignored_any(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// A visitor whose nested maps, sequences and options are read through [`ObjectsOnly`].
struct Wrapped<V>(V);

/// A struct's visitor: a map is read as [`Wrapped`] reads it, a sequence is refused, and
/// anything else goes to the struct's own visitor, which refuses it in its own words.
struct StructFromMap<V>(V);

/// Forward `visit_*` methods that carry a plain value, the visitor passed through `$wrap`.
macro_rules! visit {
    ($wrap:path; $($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, value: $ty) -> Result<V::Value, E> {
            $wrap(self.0).$method(value)
        }
    )*};
}

/// The plain values every visitor here forwards.
macro_rules! visit_plain {
    ($wrap:path) => {
        visit! {
            $wrap; visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
            visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
            visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str)
            visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
            visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
        }
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrapped<V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(formatter)
    }

    visit_plain!(std::convert::identity);

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(ObjectsOnly(deserializer))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        self.0.visit_newtype_struct(ObjectsOnly(deserializer))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(Wrapped(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(Wrapped(map))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(data)
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for StructFromMap<V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(formatter)
    }

    visit_plain!(Wrapped);

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        Wrapped(self.0).visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        Wrapped(self.0).visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        Wrapped(self.0).visit_some(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        Wrapped(self.0).visit_newtype_struct(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<V::Value, A::Error> {
        Err(de::Error::invalid_type(de::Unexpected::Seq, &self.0))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        Wrapped(self.0).visit_map(map)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        Wrapped(self.0).visit_enum(data)
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Wrapped<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Wrapped<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        // Keys are strings or field names: nothing in them to wrap.
        self.0.next_key_seed(seed)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// A seed that hands the value's deserializer on wrapped.
struct Seed<T>(T);

impl<'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<T> {
    type Value = T::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T::Value, D::Error> {
        self.0.deserialize(ObjectsOnly(deserializer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::{Value, json};

    #[derive(Deserialize, Debug, Default, PartialEq)]
    #[serde(default)]
    struct Inner {
        id: String,
        tags: Vec<String>,
    }

    #[derive(Deserialize, Debug, Default, PartialEq)]
    #[serde(default)]
    struct Outer {
        inner: Inner,
        maybe: Option<Inner>,
        list: Vec<Inner>,
        wrapped: Wrapper,
        extra: Value,
    }

    #[derive(Deserialize, Debug, Default, PartialEq)]
    struct Wrapper(Option<Inner>);

    fn strict(json: &str) -> Result<Outer, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(json);
        let outer = Outer::deserialize(ObjectsOnly(&mut de))?;
        de.end()?;
        Ok(outer)
    }

    #[test]
    fn objects_read_as_before() {
        let json = r#"{"inner": {"id": "a", "tags": ["x"]}, "maybe": {"id": "b"},
            "list": [{"id": "c"}], "wrapped": {"id": "d"},
            "extra": {"k": [1, {"n": null}], "s": "t"}, "unknown": [1, 2]}"#;
        let lenient: Outer = serde_json::from_str(json).unwrap();
        assert_eq!(strict(json).unwrap(), lenient);
        assert_eq!(lenient.list[0].id, "c");
        assert_eq!(lenient.extra, json!({"k": [1, {"n": null}], "s": "t"}));
        assert_eq!(strict(r#"{"maybe": null}"#).unwrap().maybe, None);
    }

    #[test]
    fn a_struct_given_as_an_array_is_refused_at_every_depth() {
        for json in [
            r#"[{"id": "a"}]"#,
            r#"{"inner": ["a", ["x"]]}"#,
            r#"{"maybe": ["a"]}"#,
            r#"{"list": [{"id": "c"}, ["d"]]}"#,
            r#"{"wrapped": ["d"]}"#,
        ] {
            // The lenient derive takes each of these.
            assert!(serde_json::from_str::<Outer>(json).is_ok(), "{json}");
            let err = strict(json).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("invalid type: sequence, expected struct"),
                "{json}: {err}"
            );
        }
    }

    #[test]
    fn a_deserializer_that_offers_a_sequence_for_a_map_is_refused_too() {
        // Like TOML's: its `deserialize_map` visits whatever the value is.
        use serde::de::value::{Error, SeqDeserializer};
        let seq = || SeqDeserializer::<_, Error>::new(["a"].into_iter());
        assert_eq!(Inner::deserialize(seq()).unwrap().id, "a");
        let err = Inner::deserialize(ObjectsOnly(seq())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid type: sequence, expected struct Inner"
        );
    }

    #[test]
    fn values_are_checked_the_same_way() {
        let value = json!({"inner": ["a"]});
        assert!(Outer::deserialize(&value).is_ok());
        let err = Outer::deserialize(ObjectsOnly(&value)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid type: sequence, expected struct Inner"
        );
    }
}
