//! A page of a devices list: the records kept as the exact JSON text they arrived as, each read
//! once for its typed columns and its child rows.

use crate::device::DeviceColumns;
use crate::device::children::{DeviceChildren, List, ListSeed};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// One device of a page: its id, its record exactly as sent, and its common fields.
#[derive(Debug, Clone)]
pub struct DeviceItem<'a> {
    /// Device42's `device_id`.
    pub device_id: i64,
    /// The item's JSON text, byte for byte.
    pub raw: &'a str,
    /// The common fields, typed.
    pub columns: DeviceColumns,
}

/// One page of a devices list.
#[derive(Debug)]
pub struct DevicePage<'a> {
    /// The inventory size the server reported, when it did.
    pub total_count: Option<u64>,
    /// The `limit` the server applied, when it echoed it (it may cap what was asked).
    pub limit: Option<u64>,
    /// The items in the order sent.
    pub items: Vec<DeviceItem<'a>>,
}

/// The fields of a record that are read; everything else is skipped (and kept in `raw`). The
/// lists become the child rows as they are read ([`ListSeed`]).
#[derive(Default)]
pub(crate) struct Fields {
    device_id: Option<Value>,
    name: Option<Value>,
    kind: Option<Value>,
    serial_no: Option<Value>,
    asset_no: Option<Value>,
    uuid: Option<Value>,
    in_service: Option<Value>,
    service_level: Option<Value>,
    customer: Option<Value>,
    hardware: Option<Value>,
    hw_model: Option<Value>,
    os_name: Option<Value>,
    os: Option<Value>,
    os_version: Option<Value>,
    osver: Option<Value>,
    os_version_no: Option<Value>,
    osverno: Option<Value>,
    last_updated: Option<Value>,
    children: DeviceChildren,
}

/// The members of a record that are read, named as [`Key::NAMES`] gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Key {
    DeviceId,
    Name,
    #[serde(rename = "type")]
    Kind,
    SerialNo,
    AssetNo,
    Uuid,
    InService,
    ServiceLevel,
    Customer,
    Hardware,
    HwModel,
    OsName,
    Os,
    OsVersion,
    Osver,
    OsVersionNo,
    Osverno,
    LastUpdated,
    IpAddresses,
    MacAddresses,
    Tags,
    CustomFields,
    Aliases,
    #[serde(other)]
    Other,
}

impl Key {
    /// The member names, in variant order (a test checks them against the serde names).
    const NAMES: [&'static str; 23] = [
        "device_id",
        "name",
        "type",
        "serial_no",
        "asset_no",
        "uuid",
        "in_service",
        "service_level",
        "customer",
        "hardware",
        "hw_model",
        "os_name",
        "os",
        "os_version",
        "osver",
        "os_version_no",
        "osverno",
        "last_updated",
        "ip_addresses",
        "mac_addresses",
        "tags",
        "custom_fields",
        "aliases",
    ];

    /// The child list a member is, if it is one.
    fn list(self) -> Option<List> {
        Some(match self {
            Key::IpAddresses => List::Ips,
            Key::MacAddresses => List::Macs,
            Key::Tags => List::Tags,
            Key::CustomFields => List::CustomFields,
            Key::Aliases => List::Aliases,
            _ => return None,
        })
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> serde::de::Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a device record (an object)")
    }

    /// A member read twice is an error, as for any typed record.
    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Fields, M::Error> {
        let mut fields = Fields::default();
        let mut seen = 0u32;
        while let Some(key) = map.next_key::<Key>()? {
            if key == Key::Other {
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            }
            let bit = 1u32 << key as u32;
            if seen & bit != 0 {
                return Err(serde::de::Error::duplicate_field(Key::NAMES[key as usize]));
            }
            seen |= bit;
            if let Some(value) = fields.scalar(key) {
                *value = map.next_value()?;
            } else if let Some(list) = key.list() {
                let children = &mut fields.children;
                map.next_value_seed(ListSeed { children, list })?;
            }
        }
        Ok(fields)
    }
}

impl Fields {
    /// The place of a member that is one value; `None` for a list.
    fn scalar(&mut self, key: Key) -> Option<&mut Option<Value>> {
        Some(match key {
            Key::DeviceId => &mut self.device_id,
            Key::Name => &mut self.name,
            Key::Kind => &mut self.kind,
            Key::SerialNo => &mut self.serial_no,
            Key::AssetNo => &mut self.asset_no,
            Key::Uuid => &mut self.uuid,
            Key::InService => &mut self.in_service,
            Key::ServiceLevel => &mut self.service_level,
            Key::Customer => &mut self.customer,
            Key::Hardware => &mut self.hardware,
            Key::HwModel => &mut self.hw_model,
            Key::OsName => &mut self.os_name,
            Key::Os => &mut self.os,
            Key::OsVersion => &mut self.os_version,
            Key::Osver => &mut self.osver,
            Key::OsVersionNo => &mut self.os_version_no,
            Key::Osverno => &mut self.osverno,
            Key::LastUpdated => &mut self.last_updated,
            _ => return None,
        })
    }

    /// The typed columns and the child rows.
    pub(crate) fn columns(self) -> DeviceColumns {
        DeviceColumns {
            name: text(self.name),
            kind: text(self.kind),
            serial_no: text(self.serial_no),
            asset_no: text(self.asset_no),
            uuid: text(self.uuid),
            in_service: flag(self.in_service),
            service_level: text(self.service_level),
            customer: text(self.customer),
            hardware: text(self.hardware).or_else(|| text(self.hw_model)),
            os_name: text(self.os_name).or_else(|| text(self.os)),
            // 40 of 905 real records carry only the version number.
            os_version: text(self.os_version)
                .or_else(|| text(self.osver))
                .or_else(|| text(self.os_version_no))
                .or_else(|| text(self.osverno)),
            last_updated: text(self.last_updated),
            children: self.children,
        }
    }
}

/// A JSON value as column text: strings as they are (an empty one as NULL, as `blankasnull`
/// asks of the appliance), numbers and booleans printed, lists and objects as JSON, null as NULL.
fn text(v: Option<Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// A yes/no field as 1/0, whether Device42 sent a bool, a number or "yes"/"no".
fn flag(v: Option<Value>) -> Option<i64> {
    match v? {
        Value::Bool(b) => Some(i64::from(b)),
        Value::Number(n) => n.as_i64().map(|n| i64::from(n != 0)),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" => Some(1),
            "no" | "false" | "0" => Some(0),
            _ => None,
        },
        _ => None,
    }
}

/// The top level of a devices page, as [`read_in_two_passes`] reads it first: the list (under a
/// key matched case-insensitively, as Device42 spells it both ways) kept as raw items, the counts
/// as values, every other key skipped.
struct PageTop<'a> {
    devices: Option<Vec<&'a RawValue>>,
    total_count: Option<Value>,
    limit: Option<Value>,
}

impl<'de: 'a, 'a> Deserialize<'de> for PageTop<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TopVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for TopVisitor<'a> {
            type Value = PageTop<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a devices page object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<PageTop<'a>, M::Error> {
                let mut top = PageTop {
                    devices: None,
                    total_count: None,
                    limit: None,
                };
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key.eq_ignore_ascii_case("devices") {
                        top.devices = Some(map.next_value()?);
                    } else if key == "total_count" {
                        top.total_count = Some(map.next_value()?);
                    } else if key == "limit" {
                        top.limit = Some(map.next_value()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(top)
            }
        }
        deserializer.deserialize_map(TopVisitor(std::marker::PhantomData))
    }
}

/// A count that Device42 may send as a number or a numeric string.
fn count(key: &str, v: Option<Value>) -> Result<Option<u64>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .map(Some)
            .ok_or_else(|| format!("{key} is not a number")),
    }
}

/// Parses a devices page, finding the list key case-insensitively. `Err` is the cause.
pub fn parse_device_page(body: &[u8]) -> Result<DevicePage<'_>, String> {
    // Checked once here, the body is read as text: its strings are then not checked again.
    let Ok(body) = std::str::from_utf8(body) else {
        // Malformed JSON is the more telling cause when the body is both.
        serde_json::from_slice::<serde::de::IgnoredAny>(body)
            .map_err(|e| format!("malformed json: {e}"))?;
        return Err("body is not valid utf-8".to_string());
    };
    match read_in_one_pass(body) {
        Some(page) => Ok(page),
        // The second reading decides what the first did not take, and says why it is refused.
        None => read_in_two_passes(body),
    }
}

/// Reads a page in one pass over its text: the top level by hand, each value by serde_json
/// from where it begins, so that a record is parsed where it lies and its text is cut where
/// the parser stopped. Reading the list as raw values first and each record after (as
/// [`read_in_two_passes`] does) scans every byte twice: 2.7 ms of a page's 9 ms. `None` for
/// anything but a well-formed page of well-formed records, and for a list key given twice.
fn read_in_one_pass(text: &str) -> Option<DevicePage<'_>> {
    let mut at = Cursor { text, pos: 0 };
    let (mut items, mut total_count, mut limit) = (None, None, None);
    at.expect(b'{')?;
    if !at.take(b'}') {
        loop {
            let (key, _) = at.value::<std::borrow::Cow<'_, str>>()?;
            at.expect(b':')?;
            if key.eq_ignore_ascii_case("devices") {
                if items.is_some() {
                    return None;
                }
                items = Some(at.items()?);
            } else if key == "total_count" {
                total_count = Some(at.value::<Value>()?.0);
            } else if key == "limit" {
                limit = Some(at.value::<Value>()?.0);
            } else {
                at.value::<serde::de::IgnoredAny>()?;
            }
            if !at.take(b',') {
                break;
            }
        }
        at.expect(b'}')?;
    }
    at.end()?;
    Some(DevicePage {
        total_count: count("total_count", total_count).ok()?,
        limit: count("limit", limit).ok()?,
        items: items?,
    })
}

/// A place in a page's text.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// Moves past whitespace.
    fn skip_whitespace(&mut self) {
        let bytes = self.text.as_bytes();
        while matches!(bytes.get(self.pos), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Takes the character `c` if it comes next after whitespace.
    fn take(&mut self, c: u8) -> bool {
        self.skip_whitespace();
        let next = self.text.as_bytes().get(self.pos) == Some(&c);
        if next {
            self.pos += 1;
        }
        next
    }

    /// Takes the character `c`, which must come next after whitespace.
    fn expect(&mut self, c: u8) -> Option<()> {
        self.take(c).then_some(())
    }

    /// The value that comes next, and its text.
    fn value<T: Deserialize<'a>>(&mut self) -> Option<(T, &'a str)> {
        self.skip_whitespace();
        let rest = self.text.get(self.pos..)?;
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<T>();
        let value = values.next()?.ok()?;
        let len = values.byte_offset();
        self.pos += len;
        Some((value, rest.get(..len)?))
    }

    /// The items of the list that comes next.
    fn items(&mut self) -> Option<Vec<DeviceItem<'a>>> {
        let mut items = Vec::new();
        self.expect(b'[')?;
        if self.take(b']') {
            return Some(items);
        }
        loop {
            let (fields, raw) = self.value::<Fields>()?;
            items.push(item(items.len(), raw, fields).ok()?);
            if !self.take(b',') {
                break;
            }
        }
        self.take(b']').then_some(items)
    }

    /// Whether nothing but whitespace is left.
    fn end(&mut self) -> Option<()> {
        self.skip_whitespace();
        (self.pos == self.text.len()).then_some(())
    }
}

/// Reads a page in two passes: the list as raw values, then each record.
fn read_in_two_passes(body: &str) -> Result<DevicePage<'_>, String> {
    let top: PageTop<'_> =
        serde_json::from_str(body).map_err(|e| format!("malformed json: {e}"))?;
    let total_count = count("total_count", top.total_count)?;
    let limit = count("limit", top.limit)?;
    let raw_items = top.devices.ok_or("no devices list in the answer")?;
    let mut items = Vec::with_capacity(raw_items.len());
    for (i, raw) in raw_items.into_iter().enumerate() {
        let fields: Fields = serde_json::from_str(raw.get())
            .map_err(|e| format!("item {i} is not a device object: {e}"))?;
        items.push(item(i, raw.get(), fields)?);
    }
    Ok(DevicePage {
        total_count,
        limit,
        items,
    })
}

/// Item `i` of a page, whose text is `raw` and whose fields are `fields`.
fn item(i: usize, raw: &str, mut fields: Fields) -> Result<DeviceItem<'_>, String> {
    let device_id = match fields.device_id.take() {
        None | Some(Value::Null) => return Err(format!("item {i} has no device_id")),
        Some(v) => v.as_i64().ok_or_else(|| {
            format!(
                "item {i} has a device_id that is not an integer: {}",
                short(&v)
            )
        })?,
    };
    Ok(DeviceItem {
        device_id,
        raw,
        columns: fields.columns(),
    })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(40).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

#[cfg(test)]
mod tests;
