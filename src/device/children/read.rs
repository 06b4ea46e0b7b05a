//! Reading a record's lists straight into its rows, as the record is parsed: each entry's
//! members are borrowed from the page body where they need no unescaping, and only a member
//! that is itself a list or an object becomes a `serde_json::Value` (to print it as JSON). A
//! `Value` per entry cost a map and its keys: with 28 custom fields per real record, the
//! allocations were most of a page's parse.

use super::{DeviceChildren, Span};
use serde::Deserialize as _;
use serde::de::{
    DeserializeSeed, Deserializer, Error, IgnoredAny, MapAccess, SeqAccess, Visitor,
    value::{MapAccessDeserializer, SeqAccessDeserializer},
};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// The visitor methods of every JSON scalar (null too), each giving `$value`: for a value of a
/// shape that gives no rows.
macro_rules! scalars_give {
    ($value:expr) => {
        fn visit_bool<E: Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_i64<E: Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_u64<E: Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_f64<E: Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_str<E: Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// One of a record's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// `ip_addresses`: objects.
    Ips,
    /// `mac_addresses`: objects.
    Macs,
    /// `custom_fields`: objects with a key.
    CustomFields,
    /// `tags`: strings (numbers and booleans as their JSON text).
    Tags,
    /// `aliases`: as `tags`.
    Aliases,
}

impl List {
    /// The members of an entry that become its row's texts, in column order.
    fn members(self) -> &'static [&'static str] {
        match self {
            List::Ips => &["ip", "label", "subnet", "macaddress"],
            List::Macs => &["mac", "port", "port_name", "vlan"],
            List::CustomFields => &["key", "value", "notes"],
            List::Tags | List::Aliases => &[],
        }
    }
}

/// Reads the list `list` of a record into `children`: a value that is not a list gives no rows.
pub struct ListSeed<'c> {
    pub children: &'c mut DeviceChildren,
    pub list: List,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        let Self { children, list } = self;
        let mut seq: u32 = 0;
        while let Some(entry) = entries.next_element_seed(EntrySeed(list))? {
            if let Some(entry) = entry {
                children.add_entry(list, seq, entry);
            }
            seq = seq.saturating_add(1);
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    scalars_give!(());
}

impl DeviceChildren {
    /// Adds the row of an entry of `list` at position `seq`.
    fn add_entry(&mut self, list: List, seq: u32, entry: Entry<'_>) {
        let Entry { mut texts, kind } = entry;
        // A field without a key is no field.
        if list == List::CustomFields && texts[0].is_none() {
            return;
        }
        let mut spans = [Span::NULL; 4];
        for (span, text) in spans.iter_mut().zip(&mut texts) {
            *span = self.keep(text.take());
        }
        let [a, b, c, d] = spans;
        match list {
            List::Ips => self.ips.push((seq, [a, b, c, d], kind)),
            List::Macs => self.macs.push((seq, [a, b, c, d])),
            List::CustomFields => self.custom_fields.push((seq, [a, b, c])),
            List::Tags => self.tags.push((seq, a)),
            List::Aliases => self.aliases.push((seq, a)),
        }
    }
}

/// The texts of an object entry's members, in [`List::members`] order, and an IP's `type`
/// (an integer, or NULL); of a string entry, its text first.
struct Entry<'de> {
    texts: [Option<Cow<'de, str>>; 4],
    kind: Option<i64>,
}

/// Reads one entry of a list: `None` for an entry of the wrong shape (for a list of objects,
/// anything else; for a list of strings, null, a list or an object).
struct EntrySeed(List);

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = Option<Entry<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        if !matches!(self.0, List::Tags | List::Aliases) {
            return deserializer.deserialize_any(self);
        }
        let text = Member::deserialize(deserializer)?.scalar();
        Ok(text.map(|text| Entry {
            texts: [Some(text), None, None, None],
            kind: None,
        }))
    }
}

impl<'de> Visitor<'de> for EntrySeed {
    type Value = Option<Entry<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    /// A member given twice counts as its last, as in a parsed JSON object.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entry = Entry {
            texts: Default::default(),
            kind: None,
        };
        while let Some(key) = map.next_key_seed(KeySeed(self.0))? {
            match key {
                Key::Member(i) => entry.texts[i] = map.next_value::<Member<'de>>()?.text(),
                Key::IpType => entry.kind = map.next_value::<Value>()?.as_i64(),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(entry))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    scalars_give!(None);
}

/// What a member of an object entry is to its row.
enum Key {
    /// Its text goes to the row, at this place in [`List::members`].
    Member(usize),
    /// An IP's `type`.
    IpType,
    /// Not read.
    Other,
}

/// Reads a member's name without keeping it.
struct KeySeed(List);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: Error>(self, key: &str) -> Result<Key, E> {
        Ok(match self.0.members().iter().position(|m| *m == key) {
            Some(i) => Key::Member(i),
            None if self.0 == List::Ips && key == "type" => Key::IpType,
            None => Key::Other,
        })
    }
}

/// A JSON value as a child column's text.
enum Member<'de> {
    /// null.
    Null,
    /// A string, as sent (`""` too): borrowed from the body unless it had escapes.
    Str(Cow<'de, str>),
    /// A number or a boolean, as its JSON text.
    Scalar(String),
    /// A list or an object, as JSON.
    Json(String),
}

impl<'de> Member<'de> {
    /// Its text as a member of an object entry: NULL only for null.
    fn text(self) -> Option<Cow<'de, str>> {
        match self {
            Member::Null => None,
            Member::Str(s) => Some(s),
            Member::Scalar(s) | Member::Json(s) => Some(Cow::Owned(s)),
        }
    }

    /// Its text as an entry of a list of strings: none for null, a list or an object.
    fn scalar(self) -> Option<Cow<'de, str>> {
        match self {
            Member::Null | Member::Json(_) => None,
            Member::Str(s) => Some(s),
            Member::Scalar(s) => Some(Cow::Owned(s)),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Member<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MemberVisitor)
    }
}

struct MemberVisitor;

impl<'de> Visitor<'de> for MemberVisitor {
    type Value = Member<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(Member::Null)
    }

    fn visit_borrowed_str<E: Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Member::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E: Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Member::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E: Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(Member::Str(Cow::Owned(s)))
    }

    fn visit_bool<E: Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Member::Scalar(Value::from(b).to_string()))
    }

    fn visit_i64<E: Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Member::Scalar(Value::from(n).to_string()))
    }

    fn visit_u64<E: Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Member::Scalar(Value::from(n).to_string()))
    }

    fn visit_f64<E: Error>(self, n: f64) -> Result<Self::Value, E> {
        Ok(Member::Scalar(Value::from(n).to_string()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let list = Value::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(Member::Json(list.to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let object = Value::deserialize(MapAccessDeserializer::new(map))?;
        Ok(Member::Json(object.to_string()))
    }
}
