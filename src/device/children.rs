//! The child rows of a device record: its IPs, MACs, tags, custom fields and aliases, one row per
//! list entry as sent, so that reports join tables instead of unpicking `raw` with `json_each`.
//!
//! Device42 is not consistent about these lists, and a pull must never fail over one: a list
//! that is absent, null or not a list gives no rows, and an entry of the wrong shape is skipped
//! (`raw` keeps it). Each row carries its entry's position in the list as sent (`seq`), so the
//! rows of a list with a skipped entry keep the positions `json_each` gives them.

use serde_json::Value;

/// An `ip_addresses` entry (v1 only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpRow {
    /// Position in `ip_addresses`.
    pub seq: i64,
    pub ip: Option<String>,
    pub label: Option<String>,
    pub subnet: Option<String>,
    /// The entry's `macaddress`: the interface the address is on.
    pub mac: Option<String>,
    /// The entry's `type`: an int or null in real records (any other value is NULL here).
    pub kind: Option<i64>,
}

/// A `mac_addresses` entry (v1 only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MacRow {
    /// Position in `mac_addresses`.
    pub seq: i64,
    pub mac: Option<String>,
    pub port: Option<String>,
    pub port_name: Option<String>,
    /// A string in real records.
    pub vlan: Option<String>,
}

/// A `custom_fields` entry: keys are any string Device42 users typed, `""` and `"1"` included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomFieldRow {
    /// Position in `custom_fields`.
    pub seq: i64,
    pub key: String,
    /// NULL for a field defined but not set, as nearly all are.
    pub value: Option<String>,
    pub notes: Option<String>,
}

/// An entry of a list of strings (`tags`, `aliases`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextRow {
    /// Position in the list.
    pub seq: i64,
    pub text: String,
}

/// Every child row of one record, derived when the record is parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceChildren {
    /// `device_ips`, from `ip_addresses`.
    pub ips: Vec<IpRow>,
    /// `device_macs`, from `mac_addresses`.
    pub macs: Vec<MacRow>,
    /// `device_tags`, from `tags`.
    pub tags: Vec<TextRow>,
    /// `device_custom_fields`, from `custom_fields`.
    pub custom_fields: Vec<CustomFieldRow>,
    /// `device_aliases`, from `aliases`.
    pub aliases: Vec<TextRow>,
}

/// The record's child lists, as parsed (each `None` when the record lacks it).
#[derive(Debug, Default)]
pub struct ChildLists {
    pub ip_addresses: Option<Value>,
    pub mac_addresses: Option<Value>,
    pub tags: Option<Value>,
    pub custom_fields: Option<Value>,
    pub aliases: Option<Value>,
}

impl DeviceChildren {
    /// The rows of a record's lists; what is not of the expected shape gives none.
    pub fn from_lists(lists: ChildLists) -> Self {
        Self {
            ips: rows(lists.ip_addresses, |seq, mut entry| {
                Some(IpRow {
                    seq,
                    ip: take_text(&mut entry, "ip"),
                    label: take_text(&mut entry, "label"),
                    subnet: take_text(&mut entry, "subnet"),
                    mac: take_text(&mut entry, "macaddress"),
                    kind: entry.get("type").and_then(integer),
                })
            }),
            macs: rows(lists.mac_addresses, |seq, mut entry| {
                Some(MacRow {
                    seq,
                    mac: take_text(&mut entry, "mac"),
                    port: take_text(&mut entry, "port"),
                    port_name: take_text(&mut entry, "port_name"),
                    vlan: take_text(&mut entry, "vlan"),
                })
            }),
            tags: strings(lists.tags),
            custom_fields: rows(lists.custom_fields, |seq, mut entry| {
                Some(CustomFieldRow {
                    seq,
                    key: take_text(&mut entry, "key")?,
                    value: take_text(&mut entry, "value"),
                    notes: take_text(&mut entry, "notes"),
                })
            }),
            aliases: strings(lists.aliases),
        }
    }
}

/// The rows of a record given as JSON text (none when it is not a JSON object), as a pull
/// derives them.
#[cfg(test)]
pub(crate) fn of_record(raw: &str) -> DeviceChildren {
    let Ok(Value::Object(mut record)) = serde_json::from_str::<Value>(raw) else {
        return DeviceChildren::default();
    };
    DeviceChildren::from_lists(ChildLists {
        ip_addresses: record.remove("ip_addresses"),
        mac_addresses: record.remove("mac_addresses"),
        tags: record.remove("tags"),
        custom_fields: record.remove("custom_fields"),
        aliases: record.remove("aliases"),
    })
}

/// A JSON value as a child column's text: a string as sent (`""` too), a number or boolean as
/// its JSON text, a list or object as JSON, null as NULL.
pub fn text(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// Takes member `key` of an entry as text.
fn take_text(entry: &mut serde_json::Map<String, Value>, key: &str) -> Option<String> {
    entry.remove(key).and_then(text)
}

/// An IP's `type`: a JSON integer; anything else is NULL (`raw` keeps it).
fn integer(v: &Value) -> Option<i64> {
    v.as_i64()
}

/// The rows of a list of objects, made by `make` from each object entry and its position
/// (`None` skips the entry).
fn rows<R>(
    list: Option<Value>,
    mut make: impl FnMut(i64, serde_json::Map<String, Value>) -> Option<R>,
) -> Vec<R> {
    let Some(Value::Array(entries)) = list else {
        return Vec::new();
    };
    entries
        .into_iter()
        .enumerate()
        .filter_map(|(seq, entry)| match entry {
            Value::Object(entry) => make(seq as i64, entry),
            _ => None,
        })
        .collect()
}

/// The rows of a list of strings (numbers and booleans as their text; null, lists and objects
/// skipped).
fn strings(list: Option<Value>) -> Vec<TextRow> {
    let Some(Value::Array(entries)) = list else {
        return Vec::new();
    };
    entries
        .into_iter()
        .enumerate()
        .filter_map(|(seq, entry)| match entry {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => Some(TextRow {
                seq: seq as i64,
                text: text(entry)?,
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests;
