//! Rendering device [`Facts`] as the JSON each endpoint sends: the full v1 record of
//! `/api/1.0/devices/all/` and the brief v2 item of `/api/2.0/devices/` plus `include_cols`.
//!
//! JSON is written by hand, Python-style (`", "` and `": "` separators, as Device42's Django
//! answers look), because serializing through `serde_json::Value` would be several times slower
//! and the benchmark pulls hundreds of thousands of records.

use std::fmt::Write;

use super::records::Facts;

/// The `include_cols` names `/api/2.0/devices/` understands, in the order they are rendered.
/// Names not in this list are ignored, as unknown query parameters are.
pub const V2_COLUMNS: &[&str] = &[
    "notes",
    "last_updated",
    "first_added",
    "service_level",
    "in_service",
    "customer",
    "customer_id",
    "hardware",
    "manufacturer",
    "os_name",
    "os_version",
    "os_architecture",
    "total_cpus",
    "core_per_cpu",
    "cpu_speed",
    "ram",
    "ram_size_type",
    "hard_disk_count",
    "hard_disk_size",
    "building_id",
    "room_id",
    "rack_id",
    "start_at",
    "orientation",
    "virtual_host_id",
    "virtual_subtype",
    "is_it_switch",
    "is_it_virtual_host",
    "is_it_blade_host",
    "custom_fields",
    "tags",
    "aliases",
    "ip_addresses",
    "mac_addresses",
    "asset_tag",
];

/// The full v1 record: about sixty fields, with rack, virtual and blade fields absent (not null)
/// where they do not apply.
pub fn v1(facts: &Facts) -> String {
    let f = facts;
    let mut out = String::with_capacity(3072);
    let mut o = Obj::open(&mut out);
    o.str_list("aliases", f.aliases.iter().map(String::as_str));
    o.opt_str("asset_no", f.asset_no.as_deref());
    o.opt_str("asset_tag", f.asset_tag.as_deref());
    if let Some(blade) = &f.blade {
        o.int("blade_host_id", blade.host_id);
        o.str("blade_host_name", &blade.host_name);
        o.int("slot_no", blade.slot_no);
    }
    o.str("building", f.site.2);
    o.int("building_id", f.site.0);
    o.str("category", "");
    o.null("cid");
    o.int("cpucore", f.cpu_core);
    o.int("cpucount", f.cpu_count);
    o.str("cpu_vendor", f.cpu_vendor);
    o.float("cpuspeed", f.cpu_speed);
    custom_fields(&mut o, "custom_fields", f);
    o.opt_str("customer", f.customer.map(|c| c.1));
    o.opt_int("customer_id", f.customer.map(|c| c.0));
    o.raw("device_external_links", "[]");
    o.int("device_id", f.id);
    o.raw("device_purchase_line_items", "[]");
    o.str("device_sub_type", "");
    o.null("device_sub_type_id");
    o.raw("devices_in_cluster", "[]");
    o.str("first_added", &f.first_added);
    o.null("hdd_details");
    o.int("hddcount", f.hdd_count);
    o.opt_str("hddraid", f.hdd_raid);
    o.opt_str("hddraid_type", f.hdd_raid.map(|_| "hardware"));
    o.float("hddsize", f.hdd_size);
    o.str("hddsize_type", "GB");
    o.opt_int("hw_depth", f.hardware.map(|(_, hw)| hw.depth));
    o.opt_str("hw_model", f.hardware.map(|(_, hw)| hw.name));
    o.opt_int("hw_model_id", f.hardware.map(|(id, _)| id));
    o.opt_str(
        "hw_sub_type",
        f.hardware.map(|(_, hw)| {
            if hw.size < 2.0 && hw.depth == 2 {
                "Switch"
            } else {
                "Server"
            }
        }),
    );
    match f.hardware {
        Some((_, hw)) => o.float("hw_size", hw.size),
        None => o.null("hw_size"),
    }
    o.int("id", f.id);
    o.bool("in_service", f.in_service);
    ip_addresses(&mut o, "ip_addresses", f);
    o.str("is_it_blade_host", yes_no(f.is_blade_host));
    o.str("is_it_switch", yes_no(f.is_switch));
    o.str("is_it_virtual_host", yes_no(f.is_virtual_host));
    o.opt_str("last_discovered", f.last_discovered.as_deref());
    o.str("last_updated", &f.last_updated);
    mac_addresses(&mut o, "mac_addresses", f);
    o.opt_str("manufacturer", f.hardware.map(|(_, hw)| hw.manufacturer));
    o.str("name", &f.name);
    o.raw("nonauthoritativealiases", "[]");
    o.str("notes", &f.notes);
    o.str("objectcategory", "default");
    o.str("os", f.os.0);
    o.int("osarch", 64);
    o.str("osver", f.os.1);
    o.int("osverno", f.os.2);
    if let Some(rack) = &f.rack {
        o.str("orientation", rack.orientation);
        o.str("rack", &rack.rack);
        o.int("rack_id", rack.rack_id);
        o.str("row", &rack.row);
        o.float("start_at", rack.start_at);
    }
    ram(&mut o, "ram", f.ram);
    o.str("ram_size_type", "GB");
    o.str("room", &f.room.1);
    o.int("room_id", f.room.0);
    o.opt_str("serial_no", f.serial_no.as_deref());
    o.str("service_level", f.service_level);
    o.str_list("tags", f.tags.iter().copied());
    o.str("type", f.kind.name());
    o.null("ucs_manager");
    o.opt_str("uuid", f.uuid.as_deref());
    if let Some(virt) = &f.virtual_ {
        o.int("virtual_host_id", virt.host_id);
        o.str("virtual_host_name", &virt.host_name);
        o.str("virtual_subtype", virt.subtype);
        o.str("vm_uuid", &virt.vm_uuid);
    }
    o.close();
    out
}

/// The v2 item: the brief columns, then each known column of `include_cols` in [`V2_COLUMNS`]
/// order (null where it does not apply).
pub fn v2(facts: &Facts, include_cols: &[&str]) -> String {
    let f = facts;
    let mut out = String::with_capacity(256);
    let mut o = Obj::open(&mut out);
    o.int("device_id", f.id);
    o.str("name", &f.name);
    o.str("type", f.kind.name());
    o.int("type_id", f.kind.type_id());
    o.opt_str("serial_no", f.serial_no.as_deref());
    o.opt_str("asset_no", f.asset_no.as_deref());
    o.opt_str("uuid", f.uuid.as_deref());
    o.str("device_url", &format!("/api/2.0/devices/{}/", f.id));
    for col in V2_COLUMNS.iter().filter(|c| include_cols.contains(c)) {
        v2_column(&mut o, f, col);
    }
    o.close();
    out
}

/// Writes one optional v2 column.
fn v2_column(o: &mut Obj<'_>, f: &Facts, col: &str) {
    match col {
        "notes" => o.str(col, &f.notes),
        "last_updated" => o.str(col, &f.last_updated),
        "first_added" => o.str(col, &f.first_added),
        "service_level" => o.str(col, f.service_level),
        "in_service" => o.bool(col, f.in_service),
        "customer" => o.opt_str(col, f.customer.map(|c| c.1)),
        "customer_id" => o.opt_int(col, f.customer.map(|c| c.0)),
        "hardware" => o.opt_str(col, f.hardware.map(|(_, hw)| hw.name)),
        "manufacturer" => o.opt_str(col, f.hardware.map(|(_, hw)| hw.manufacturer)),
        "os_name" => o.str(col, f.os.0),
        "os_version" => o.str(col, f.os.1),
        "os_architecture" => o.int(col, 64),
        "total_cpus" => o.int(col, f.cpu_count),
        "core_per_cpu" => o.int(col, f.cpu_core),
        "cpu_speed" => o.float(col, f.cpu_speed),
        "ram" => ram(o, col, f.ram),
        "ram_size_type" => o.str(col, "GB"),
        "hard_disk_count" => o.int(col, f.hdd_count),
        "hard_disk_size" => o.float(col, f.hdd_size),
        "building_id" => o.int(col, f.site.0),
        "room_id" => o.int(col, f.room.0),
        "rack_id" => o.opt_int(col, f.rack.as_ref().map(|r| r.rack_id)),
        "start_at" => match &f.rack {
            Some(rack) => o.float(col, rack.start_at),
            None => o.null(col),
        },
        "orientation" => o.opt_str(col, f.rack.as_ref().map(|r| r.orientation)),
        "virtual_host_id" => o.opt_int(col, f.virtual_.as_ref().map(|v| v.host_id)),
        "virtual_subtype" => o.opt_str(col, f.virtual_.as_ref().map(|v| v.subtype)),
        "is_it_switch" => o.str(col, yes_no(f.is_switch)),
        "is_it_virtual_host" => o.str(col, yes_no(f.is_virtual_host)),
        "is_it_blade_host" => o.str(col, yes_no(f.is_blade_host)),
        "custom_fields" => custom_fields(o, col, f),
        "tags" => o.str_list(col, f.tags.iter().copied()),
        "aliases" => o.str_list(col, f.aliases.iter().map(String::as_str)),
        "ip_addresses" => ip_addresses(o, col, f),
        "mac_addresses" => mac_addresses(o, col, f),
        "asset_tag" => o.opt_str(col, f.asset_tag.as_deref()),
        _ => {}
    }
}

/// `"yes"` or `"no"`, as Device42 spells its `is_it_*` flags.
fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

/// RAM as Device42 sends it: an integer when whole, else a float.
fn ram(o: &mut Obj<'_>, key: &str, gb: f64) {
    if gb.fract() == 0.0 {
        o.int(key, gb as i64)
    } else {
        o.float(key, gb)
    }
}

/// `custom_fields`: every defined key, with `value: null` when unset.
fn custom_fields(o: &mut Obj<'_>, key: &str, f: &Facts) {
    o.list(key, &f.custom_fields, |item, (key, value, notes)| {
        item.str("key", key);
        item.opt_str("value", value.as_deref());
        item.str("notes", notes);
    });
}

/// `ip_addresses`: `{ip, label, subnet, subnet_id, type}` each.
fn ip_addresses(o: &mut Obj<'_>, key: &str, f: &Facts) {
    o.list(key, &f.ips, |item, ip| {
        item.str("ip", &ip.ip);
        item.str("label", ip.label);
        item.str("subnet", &ip.subnet);
        item.int("subnet_id", ip.subnet_id);
        item.str("type", ip.kind);
    });
}

/// `mac_addresses`: `{mac, port, port_name, vlan}` each.
fn mac_addresses(o: &mut Obj<'_>, key: &str, f: &Facts) {
    o.list(key, &f.macs, |item, mac| {
        item.str("mac", &mac.mac);
        item.opt_str("port", mac.port.as_deref());
        item.str("port_name", &mac.port_name);
        item.opt_int("vlan", mac.vlan);
    });
}

/// Writes `s` as a JSON string literal.
pub fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    let special = s.bytes().fold(false, |seen, b| {
        seen | (b == b'"') | (b == b'\\') | (b < 0x20)
    });
    if !special {
        // The common case, and the one the benchmark's hundreds of thousands of records hit.
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON object being written into a borrowed buffer, one member at a time; nested objects
/// write into the same buffer, so a record is one allocation.
pub struct Obj<'a> {
    /// The text so far, this object starting with `{`.
    out: &'a mut String,
    /// Whether no member has been written yet (no separator needed).
    empty: bool,
}

impl<'a> Obj<'a> {
    /// Starts an object at the end of `out`.
    pub fn open(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj { out, empty: true }
    }

    /// Ends the object.
    pub fn close(self) {
        self.out.push('}');
    }

    /// Starts a member: separator, key and colon. Keys are this module's own identifiers, which
    /// need no escaping.
    fn key(&mut self, key: &str) -> &mut String {
        if !self.empty {
            self.out.push_str(", ");
        }
        self.empty = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\": ");
        self.out
    }

    pub fn str(&mut self, key: &str, value: &str) {
        escape_into(self.key(key), value);
    }

    pub fn opt_str(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => self.str(key, value),
            None => self.null(key),
        }
    }

    pub fn int(&mut self, key: &str, value: i64) {
        let _ = write!(self.key(key), "{value}");
    }

    pub fn opt_int(&mut self, key: &str, value: Option<i64>) {
        match value {
            Some(value) => self.int(key, value),
            None => self.null(key),
        }
    }

    /// A float written as Python does: `2.0`, never `2`.
    pub fn float(&mut self, key: &str, value: f64) {
        let _ = write!(self.key(key), "{value:?}");
    }

    pub fn bool(&mut self, key: &str, value: bool) {
        self.key(key).push_str(if value { "true" } else { "false" });
    }

    pub fn null(&mut self, key: &str) {
        self.key(key).push_str("null");
    }

    /// A member whose value is already-rendered JSON.
    pub fn raw(&mut self, key: &str, json: &str) {
        self.key(key).push_str(json);
    }

    /// A list of strings.
    pub fn str_list<'s>(&mut self, key: &str, items: impl Iterator<Item = &'s str>) {
        let out = self.key(key);
        out.push('[');
        for (n, item) in items.enumerate() {
            if n > 0 {
                out.push_str(", ");
            }
            escape_into(out, item);
        }
        out.push(']');
    }

    /// A list of objects, each written by `write`.
    pub fn list<T>(&mut self, key: &str, items: &[T], mut write: impl FnMut(&mut Obj<'_>, &T)) {
        let out = self.key(key);
        out.push('[');
        for (n, item) in items.iter().enumerate() {
            if n > 0 {
                out.push_str(", ");
            }
            let mut object = Obj::open(out);
            write(&mut object, item);
            object.close();
        }
        out.push(']');
    }
}
