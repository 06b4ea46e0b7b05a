//! The child rows of a device record: its IPs, MACs, tags, custom fields and aliases, one row per
//! list entry as sent, so that reports join tables instead of unpicking `raw` with `json_each`.
//!
//! Device42 is not consistent about these lists, and a pull must never fail over one: a list
//! that is absent, null or not a list gives no rows, and an entry of the wrong shape is skipped
//! (`raw` keeps it). Each row carries its entry's position in the list as sent (`seq`), so the
//! rows of a list with a skipped entry keep the positions `json_each` gives them.
//!
//! A record's rows wait in memory from its parse to its staging, with the pages in flight (a
//! real record lists 28 custom fields): their texts share one buffer per record, and each row
//! holds only positions in it.

mod read;

pub use read::{List, ListSeed};
use std::borrow::Cow;

/// An `ip_addresses` entry (v1 only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ip<'a> {
    /// Position in `ip_addresses`.
    pub seq: i64,
    pub ip: Option<&'a str>,
    pub label: Option<&'a str>,
    pub subnet: Option<&'a str>,
    /// The entry's `macaddress`: the interface the address is on.
    pub mac: Option<&'a str>,
    /// The entry's `type`: a JSON integer (an int or null in real records; anything else is
    /// NULL here).
    pub kind: Option<i64>,
}

/// A `mac_addresses` entry (v1 only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mac<'a> {
    /// Position in `mac_addresses`.
    pub seq: i64,
    pub mac: Option<&'a str>,
    pub port: Option<&'a str>,
    pub port_name: Option<&'a str>,
    /// A string in real records.
    pub vlan: Option<&'a str>,
}

/// A `custom_fields` entry: keys are any string Device42 users typed, `""` and `"1"` included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CustomField<'a> {
    /// Position in `custom_fields`.
    pub seq: i64,
    pub key: &'a str,
    /// NULL for a field defined but not set, as nearly all are.
    pub value: Option<&'a str>,
    pub notes: Option<&'a str>,
}

impl CustomField<'_> {
    /// A field defined but not set, as Device42 sends nearly all of them: no value, notes `""`.
    /// It is no row of `device_custom_field_entries`: its device's list of keys gives it back.
    pub fn is_unset(&self) -> bool {
        self.value.is_none() && self.notes == Some("")
    }
}

/// An entry of a list of strings (`tags`, `aliases`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Text<'a> {
    /// Position in the list.
    pub seq: i64,
    pub text: &'a str,
}

/// Where a text lies in [`DeviceChildren::texts`]; `start == u32::MAX` stands for NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    const NULL: Span = Span {
        start: u32::MAX,
        end: 0,
    };
}

/// Every child row of one record, derived when the record is parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceChildren {
    /// The texts of every row, one after the other.
    texts: String,
    /// `device_ips`: seq, ip, label, subnet, mac, type.
    ips: Vec<(u32, [Span; 4], Option<i64>)>,
    /// `device_macs`: seq, mac, port, port_name, vlan.
    macs: Vec<(u32, [Span; 4])>,
    /// `device_tags`: seq, tag.
    tags: Vec<(u32, Span)>,
    /// `device_custom_fields`: seq, key, value, notes.
    custom_fields: Vec<(u32, [Span; 3])>,
    /// `device_aliases`: seq, alias.
    aliases: Vec<(u32, Span)>,
}

impl DeviceChildren {
    /// Adds an `ip_addresses` row.
    pub fn push_ip(&mut self, row: Ip<'_>) {
        let texts = [row.ip, row.label, row.subnet, row.mac];
        let spans = texts.map(|t| self.keep(t.map(Cow::Borrowed)));
        self.ips.push((seq(row.seq), spans, row.kind));
    }

    /// Adds a `mac_addresses` row.
    pub fn push_mac(&mut self, row: Mac<'_>) {
        let texts = [row.mac, row.port, row.port_name, row.vlan];
        let spans = texts.map(|t| self.keep(t.map(Cow::Borrowed)));
        self.macs.push((seq(row.seq), spans));
    }

    /// Adds a `custom_fields` row.
    pub fn push_custom_field(&mut self, row: CustomField<'_>) {
        let texts = [Some(row.key), row.value, row.notes];
        let spans = texts.map(|t| self.keep(t.map(Cow::Borrowed)));
        self.custom_fields.push((seq(row.seq), spans));
    }

    /// Adds a `tags` row.
    pub fn push_tag(&mut self, row: Text<'_>) {
        let span = self.keep(Some(Cow::Borrowed(row.text)));
        self.tags.push((seq(row.seq), span));
    }

    /// Adds an `aliases` row.
    pub fn push_alias(&mut self, row: Text<'_>) {
        let span = self.keep(Some(Cow::Borrowed(row.text)));
        self.aliases.push((seq(row.seq), span));
    }

    /// The `ip_addresses` rows, in list order.
    pub fn ips(&self) -> impl ExactSizeIterator<Item = Ip<'_>> {
        self.ips
            .iter()
            .map(|(seq, [ip, label, subnet, mac], kind)| Ip {
                seq: i64::from(*seq),
                ip: self.text(*ip),
                label: self.text(*label),
                subnet: self.text(*subnet),
                mac: self.text(*mac),
                kind: *kind,
            })
    }

    /// The `mac_addresses` rows, in list order.
    pub fn macs(&self) -> impl ExactSizeIterator<Item = Mac<'_>> {
        self.macs
            .iter()
            .map(|(seq, [mac, port, port_name, vlan])| Mac {
                seq: i64::from(*seq),
                mac: self.text(*mac),
                port: self.text(*port),
                port_name: self.text(*port_name),
                vlan: self.text(*vlan),
            })
    }

    /// The `custom_fields` rows, in list order.
    pub fn custom_fields(&self) -> impl ExactSizeIterator<Item = CustomField<'_>> {
        self.custom_fields
            .iter()
            .map(|(seq, [key, value, notes])| CustomField {
                seq: i64::from(*seq),
                key: self.text(*key).unwrap_or_default(),
                value: self.text(*value),
                notes: self.text(*notes),
            })
    }

    /// The `tags` rows, in list order.
    pub fn tags(&self) -> impl ExactSizeIterator<Item = Text<'_>> {
        self.texts_of(&self.tags)
    }

    /// The `aliases` rows, in list order.
    pub fn aliases(&self) -> impl ExactSizeIterator<Item = Text<'_>> {
        self.texts_of(&self.aliases)
    }

    fn texts_of<'a>(&'a self, rows: &'a [(u32, Span)]) -> impl ExactSizeIterator<Item = Text<'a>> {
        rows.iter().map(|(seq, span)| Text {
            seq: i64::from(*seq),
            text: self.text(*span).unwrap_or_default(),
        })
    }

    /// The text at `span`.
    fn text(&self, span: Span) -> Option<&str> {
        (span != Span::NULL).then(|| &self.texts[span.start as usize..span.end as usize])
    }

    /// Appends `text` to the buffer; where it lies.
    fn keep(&mut self, text: Option<Cow<'_, str>>) -> Span {
        let Some(text) = text else {
            return Span::NULL;
        };
        let start = self.texts.len();
        self.texts.push_str(&text);
        match (u32::try_from(start), u32::try_from(self.texts.len())) {
            (Ok(start), Ok(end)) if start != u32::MAX => Span { start, end },
            // Beyond 4 GiB of texts in one record (a page is capped far below): dropped.
            _ => Span::NULL,
        }
    }
}

/// A position as stored (lists longer than `u32::MAX` entries do not exist).
fn seq(seq: i64) -> u32 {
    u32::try_from(seq).unwrap_or(u32::MAX)
}

/// The rows of a record given as JSON text (none when it is not a JSON object), as a pull
/// derives them.
#[cfg(test)]
pub(crate) fn of_record(raw: &str) -> DeviceChildren {
    serde_json::from_str::<crate::d42::models::Fields>(raw)
        .map(|fields| fields.columns().children)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
