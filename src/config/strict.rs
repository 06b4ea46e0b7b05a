//! The deserializer from the merged `config` tree into [`Settings`](super::Settings). A value
//! from the file keeps its type: `page_size = 0.6` or `page_size = true` is refused, where the
//! `config` crate's own deserializer would round or count it. A value from the environment,
//! always text, is parsed into the type its setting asks for. Every error carries the dotted key
//! of the value it is about.

use config::{Map, Value, ValueKind};
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, Visitor};
use std::fmt;

/// How the `config` crate marks the values its `Environment` source read.
const FROM_ENVIRONMENT: &str = "the environment";

/// Deserializes `T` from the merged tree.
pub(super) fn from_tree<T: DeserializeOwned>(root: Value) -> Result<T, Error> {
    let root = Node {
        value: root,
        path: String::new(),
    };
    T::deserialize(root).map_err(|e| e.at(""))
}

/// What went wrong, and under which key once that is known.
#[derive(Debug)]
pub(super) struct Error {
    /// The dotted key; `None` until the error has passed the value it is about.
    pub(super) key: Option<String>,
    /// What is wrong, as serde or a field's check says it.
    pub(super) message: String,
    /// The key below the current one that the error is about: unknown, or missing.
    named: Option<String>,
}

impl Error {
    /// Gives the error the key `path` (or the key it names below `path`), unless it has one.
    fn at(mut self, path: &str) -> Self {
        if self.key.is_some() {
            return self;
        }
        self.key = Some(match self.named.take() {
            Some(name) if path.is_empty() => {
                if self.message == UNKNOWN_KEY {
                    self.message = "unknown section".into();
                }
                name
            }
            Some(name) => format!("{path}.{name}"),
            None => path.to_string(),
        });
        self
    }
}

/// The message of a key that no setting has.
const UNKNOWN_KEY: &str = "unknown key";

impl de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self {
            key: None,
            message: message.to_string(),
            named: None,
        }
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        Self {
            key: None,
            message: UNKNOWN_KEY.into(),
            named: Some(field.to_string()),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Self {
            key: None,
            message: "is required".into(),
            named: Some(field.to_string()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// One value of the tree and the dotted key that leads to it.
struct Node {
    value: Value,
    path: String,
}

impl Node {
    /// The text of a value the environment set; `None` for a value from the file.
    fn environment_text(&self) -> Option<&str> {
        match &self.value.kind {
            ValueKind::String(s) if self.value.origin() == Some(FROM_ENVIRONMENT) => Some(s.trim()),
            _ => None,
        }
    }
}

/// For each numeric type: text from the environment parsed as a number, anything else as it is.
macro_rules! numbers_from_environment {
    ($($method:ident => $parsed:ty, $visit:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.environment_text().map(str::parse::<$parsed>) {
                Some(Ok(n)) => visitor.$visit(n),
                _ => self.deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for Node {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let path = self.path;
        match self.value.kind {
            ValueKind::Nil => visitor.visit_unit(),
            ValueKind::Boolean(b) => visitor.visit_bool(b),
            ValueKind::I64(n) => visitor.visit_i64(n),
            ValueKind::I128(n) => visitor.visit_i128(n),
            ValueKind::U64(n) => visitor.visit_u64(n),
            ValueKind::U128(n) => visitor.visit_u128(n),
            ValueKind::Float(x) => visitor.visit_f64(x),
            ValueKind::String(s) => visitor.visit_string(s),
            ValueKind::Array(items) => visitor.visit_seq(Items {
                items: items.into_iter(),
                path,
            }),
            ValueKind::Table(table) => visitor.visit_map(Entries {
                entries: table.into_iter(),
                value: None,
                path,
            }),
        }
    }

    numbers_from_environment! {
        deserialize_i8 => i64, visit_i64;
        deserialize_i16 => i64, visit_i64;
        deserialize_i32 => i64, visit_i64;
        deserialize_i64 => i64, visit_i64;
        deserialize_u8 => i64, visit_i64;
        deserialize_u16 => i64, visit_i64;
        deserialize_u32 => i64, visit_i64;
        deserialize_u64 => i64, visit_i64;
        deserialize_f32 => f64, visit_f64;
        deserialize_f64 => f64, visit_f64;
    }

    /// The words systemd and the `config` crate take for a boolean, from the environment.
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let text = self.environment_text().map(str::to_ascii_lowercase);
        match text.as_deref() {
            Some("true" | "1" | "yes" | "on") => visitor.visit_bool(true),
            Some("false" | "0" | "no" | "off") => visitor.visit_bool(false),
            _ => self.deserialize_any(visitor),
        }
    }

    /// A list from the environment is written with commas: `notes,tags`.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let Some(text) = self.environment_text() else {
            return self.deserialize_any(visitor);
        };
        let origin = FROM_ENVIRONMENT.to_string();
        let items: Vec<Value> = text
            .split(',')
            .map(|item| Value::new(Some(&origin), ValueKind::String(item.to_string())))
            .collect();
        visitor.visit_seq(Items {
            items: items.into_iter(),
            path: self.path,
        })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value.kind {
            ValueKind::Nil => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value.kind {
            ValueKind::String(s) => visitor.visit_enum(s.into_deserializer()),
            _ => self.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct newtype_struct tuple
        tuple_struct map struct identifier ignored_any
    }
}

/// The items of a list; each is reported under the list's key.
struct Items {
    items: std::vec::IntoIter<Value>,
    path: String,
}

impl<'de> de::SeqAccess<'de> for Items {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(value) = self.items.next() else {
            return Ok(None);
        };
        let path = self.path.clone();
        let item = Node {
            value,
            path: path.clone(),
        };
        seed.deserialize(item).map(Some).map_err(|e| e.at(&path))
    }
}

/// The keys of a table, each value under its dotted key.
struct Entries {
    entries: <Map<String, Value> as IntoIterator>::IntoIter,
    /// The value of the key just read, with its dotted key.
    value: Option<Node>,
    path: String,
}

impl<'de> de::MapAccess<'de> for Entries {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let path = match self.path.as_str() {
            "" => key.clone(),
            parent => format!("{parent}.{key}"),
        };
        let name = seed
            .deserialize(key.into_deserializer())
            .map_err(|e: Error| e.at(&self.path))?;
        self.value = Some(Node { value, path });
        Ok(Some(name))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let node = self
            .value
            .take()
            .ok_or_else(|| <Error as de::Error>::custom("a value asked for before its key"))?;
        let path = node.path.clone();
        seed.deserialize(node).map_err(|e| e.at(&path))
    }
}
