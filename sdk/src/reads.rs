//! Which parts of the login event a rule reads: the declaration of guest ABI version 6
//! (`docs/abi.md`, section 13).
//!
//! A rule names the event's members it reads where it is exported,
//! `export_rule!(on_login, reads = [authorization, configuration])`; the module carries the
//! names in its `claimsmith.reads` custom section, the host hands it those members and no others,
//! and everything else reads as empty, in the module and in [`testing::run`](crate::testing::run)
//! alike. `login_time` is always read. A rule that declares nothing reads every member.

use std::fmt;

use crate::Event;

/// A set of the login event's members (`user`, `authorization`, ..., `configuration`,
/// `secrets`): what a rule reads.
///
/// ```
/// use claimsmith_sdk::Reads;
/// let reads = Reads::parse("authorization configuration").unwrap();
/// assert!(reads.contains(Reads::parse("authorization").unwrap()));
/// assert!(!reads.has("user"));
/// assert!(reads.has("login_time"), "always read");
/// assert_eq!(reads.to_string(), "authorization, login_time, configuration");
/// assert_eq!(Reads::parse("users").unwrap_err().to_string(),
///     "`users` is not a part of the login event (one of user, authorization, authentication, \
///      client, connection, organization, request, transaction, resource_server, stats, \
///      issuer_claims, login_time, tenant, session, configuration, secrets)");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reads(u32);

/// A name that is not a member of the login event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPart(pub String);

impl fmt::Display for UnknownPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The name may come from a hostile module's section: escaped, and cut short.
        let name: String = self.0.chars().take(40).collect();
        let cut = if name.len() < self.0.len() { "…" } else { "" };
        write!(
            f,
            "`{}{cut}` is not a part of the login event (one of {})",
            name.escape_debug(),
            Event::MEMBERS.join(", ")
        )
    }
}

impl std::error::Error for UnknownPart {}

impl Reads {
    /// The name of the custom section in which a version 6 module declares what it reads:
    /// the members' names, separated by spaces or commas.
    pub const SECTION: &'static str = "claimsmith.reads";

    /// Every member: what a rule that declares nothing reads, and what modules of ABI versions 1
    /// to 5 get.
    pub const ALL: Reads = Reads((1 << Event::MEMBERS.len()) - 1);

    /// What every rule reads, declared or not: the login's time.
    pub const ALWAYS: Reads = Reads::member("login_time");

    /// The members the host sets per rule from its config (`configuration`, `secrets`), not
    /// from the login.
    pub const PER_RULE: Reads =
        Reads(Reads::member("configuration").0 | Reads::member("secrets").0);

    /// The member called `name`; fails to compile (or panics) if there is none.
    pub const fn member(name: &str) -> Reads {
        match index_of(name) {
            Some(index) => Reads(1 << index),
            None => panic!("not a member of the login event"),
        }
    }

    /// Several sets at once (with [`Reads::ALWAYS`]).
    pub const fn union_of(sets: &[Reads]) -> Reads {
        let mut bits = Reads::ALWAYS.0;
        let mut i = 0;
        while i < sets.len() {
            bits |= sets[i].0;
            i += 1;
        }
        Reads(bits)
    }

    /// The set named by `text` (names separated by spaces or commas), with [`Reads::ALWAYS`];
    /// an empty text names no member but the login's time.
    pub fn parse(text: &str) -> Result<Reads, UnknownPart> {
        Reads::from_names(
            text.split(|c: char| c == ',' || c.is_ascii_whitespace())
                .filter(|name| !name.is_empty()),
        )
    }

    /// The set of these names, with [`Reads::ALWAYS`].
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Reads, UnknownPart> {
        let mut bits = Reads::ALWAYS.0;
        for name in names {
            match index_of(name) {
                Some(index) => bits |= 1 << index,
                None => return Err(UnknownPart(name.to_owned())),
            }
        }
        Ok(Reads(bits))
    }

    /// The set as bits, bit `i` for the event's member `i` (the order of `docs/abi.md`'s table).
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// The set of these bits, if every one names a member.
    pub const fn from_bits(bits: u32) -> Option<Reads> {
        if bits & !Reads::ALL.0 == 0 {
            Some(Reads(bits))
        } else {
            None
        }
    }

    /// Whether every member of `other` is in this set.
    pub const fn contains(self, other: Reads) -> bool {
        other.0 & !self.0 == 0
    }

    /// Whether the member called `name` is in this set.
    pub fn has(self, name: &str) -> bool {
        index_of(name).is_some_and(|index| self.0 >> index & 1 == 1)
    }

    /// The members of either set.
    pub const fn union(self, other: Reads) -> Reads {
        Reads(self.0 | other.0)
    }

    /// The members of both sets.
    pub const fn intersection(self, other: Reads) -> Reads {
        Reads(self.0 & other.0)
    }

    /// The members of this set that are not in `other`.
    pub const fn without(self, other: Reads) -> Reads {
        Reads(self.0 & !other.0)
    }

    /// The members' names, in the event's order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Event::MEMBERS
            .iter()
            .enumerate()
            .filter(move |(index, _)| self.0 >> index & 1 == 1)
            .map(|(_, name)| *name)
    }

    /// A copy of `event` with only this set's members; the others hold their defaults, as a rule
    /// that reads this set sees the event.
    pub fn keep(self, event: &Event) -> Event {
        event.keep_members(self.0)
    }
}

impl Default for Reads {
    /// [`Reads::ALL`].
    fn default() -> Self {
        Reads::ALL
    }
}

impl fmt::Display for Reads {
    /// The members' names, separated by `, `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reads({self})")
    }
}

/// The index of the member called `name` in [`Event::MEMBERS`].
const fn index_of(name: &str) -> Option<u32> {
    let mut i = 0;
    while i < Event::MEMBERS.len() {
        if same(Event::MEMBERS[i].as_bytes(), name.as_bytes()) {
            return Some(i as u32);
        }
        i += 1;
    }
    None
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_members_are_the_events_in_the_tables_order() {
        assert_eq!(
            Event::MEMBERS,
            [
                "user",
                "authorization",
                "authentication",
                "client",
                "connection",
                "organization",
                "request",
                "transaction",
                "resource_server",
                "stats",
                "issuer_claims",
                "login_time",
                "tenant",
                "session",
                "configuration",
                "secrets"
            ]
        );
        assert_eq!(Reads::ALL.names().count(), 16);
        assert_eq!(Reads::from_bits(1 << 16), None);
        assert_eq!(Reads::from_bits(Reads::ALL.bits()), Some(Reads::ALL));
    }

    #[test]
    fn keep_leaves_every_other_member_at_its_default() {
        let event: Event = serde_json::from_value(json!({
            "user": {"user_id": "u1", "email": "a@b.test"},
            "authorization": {"roles": ["admin"]},
            "login_time": 5,
            "configuration": {"namespace": "https://e.test"},
            "secrets": {"K": "v"}
        }))
        .unwrap();
        let kept = Reads::parse("authorization, configuration")
            .unwrap()
            .keep(&event);
        assert_eq!(kept.authorization.roles, ["admin"]);
        assert_eq!(kept.config_str("namespace"), Some("https://e.test"));
        assert_eq!(kept.login_time, 5);
        assert_eq!(kept.user, Default::default());
        assert!(kept.secrets.is_empty());
        assert_eq!(Reads::ALL.keep(&event), event);
    }
}
