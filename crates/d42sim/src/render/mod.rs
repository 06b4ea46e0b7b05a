//! Rendering device [`Facts`] as the JSON each endpoint sends: the full v1 record of
//! `/api/1.0/devices/all/` and the brief v2 item of `/api/2.0/devices/` plus `include_cols`,
//! either with empty strings as they are or, as `blankasnull=yes` asks, as null.
//!
//! JSON is written by hand, Python-style (`", "` and `": "` separators, as Device42's Django
//! answers look), because serializing through `serde_json::Value` would be several times slower
//! and the benchmark pulls hundreds of thousands of records.

mod json;

use crate::records::Facts;
use json::Obj;

/// The `include_cols` names `/api/2.0/devices/` understands, in the order they are rendered, with
/// v2 names (`hardware` for v1's `hw_model`, `os_version_no` for `osverno`, ...). Names not in
/// this list are ignored, as unknown query parameters are. v2 has no IP or MAC lists.
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
    "os_version_no",
    "os_architecture",
    "total_cpus",
    "core_per_cpu",
    "threads_per_core",
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
    "objectcategory",
    "physicalsubtype",
    "virtualsubtype",
    "virtual_host",
    "virtual_host_id",
    "blade_chassis",
    "is_it_switch",
    "is_it_virtual_host",
    "is_it_blade_host",
    "custom_fields",
    "tags",
    "aliases",
    "asset_tag",
];

/// The full v1 record: about sixty fields, with building, rack, virtual and blade fields absent
/// (not null) where they do not apply. With `blank_as_null`, an empty string is sent as null.
pub fn v1(facts: &Facts, blank_as_null: bool) -> String {
    let f = facts;
    let os = f.os.as_ref();
    let cpu = f.cpu.as_ref();
    let disks = f.disks.as_ref();
    let mut out = String::with_capacity(3072);
    let mut o = Obj::open_record(&mut out, blank_as_null);
    o.str_list("aliases", f.aliases.iter().map(String::as_str));
    o.opt_str("asset_no", f.asset_no.as_deref());
    o.opt_str("asset_tag", f.asset_tag.as_deref());
    if let Some(blade) = &f.blade {
        o.int("blade_host_id", blade.host_id);
        o.str("blade_host_name", &blade.host_name);
        o.int("slot_no", blade.slot_no);
    }
    if let Some(place) = &f.place {
        o.str("building", place.building.1);
        o.int("building_id", place.building.0);
    }
    o.str("category", "");
    o.null("cid");
    o.opt_int("corethread", cpu.map(|c| c.threads));
    o.opt_int("cpucore", cpu.map(|c| c.cores));
    o.opt_int("cpucount", cpu.map(|c| c.count));
    o.opt_str("cpu_vendor", cpu.map(|c| c.vendor));
    o.opt_float("cpuspeed", cpu.map(|c| c.speed));
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
    o.opt_int("hddcount", disks.map(|d| d.count));
    o.opt_str("hddraid", disks.and_then(|d| d.raid));
    o.opt_str(
        "hddraid_type",
        disks.and_then(|d| d.raid).map(|_| "hardware"),
    );
    o.opt_float("hddsize", disks.map(|d| d.size));
    o.opt_str("hddsize_type", disks.map(|_| "GB"));
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
    o.opt_float("hw_size", f.hardware.map(|(_, hw)| hw.size));
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
    o.opt_str("notes", f.notes.as_deref());
    o.str("objectcategory", "default");
    o.opt_str("os", os.map(|os| os.name));
    o.opt_int("osarch", os.map(|os| os.arch));
    o.opt_str("osver", os.and_then(|os| os.version));
    o.opt_str("osverno", os.and_then(|os| os.number));
    if let Some(rack) = f.place.as_ref().and_then(|p| p.rack.as_ref()) {
        o.int("orientation", rack.orientation);
        o.str("rack", &rack.rack);
        o.int("rack_id", rack.rack_id);
        o.str("row", &rack.row);
        o.float("start_at", rack.start_at);
    }
    o.opt_float("ram", f.ram);
    o.opt_str("ram_size_type", f.ram.map(|_| "MB"));
    if let Some(place) = &f.place {
        o.str("room", &place.room.1);
        o.int("room_id", place.room.0);
    }
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
/// order (null where it does not apply). With `blank_as_null`, an empty string is sent as null.
pub fn v2(facts: &Facts, include_cols: &[&str], blank_as_null: bool) -> String {
    let f = facts;
    let mut out = String::with_capacity(256);
    let mut o = Obj::open_record(&mut out, blank_as_null);
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

/// Writes one optional v2 column, shaped as its v1 counterpart.
fn v2_column(o: &mut Obj<'_>, f: &Facts, col: &str) {
    let os = f.os.as_ref();
    let cpu = f.cpu.as_ref();
    let disks = f.disks.as_ref();
    let rack = f.place.as_ref().and_then(|p| p.rack.as_ref());
    match col {
        "notes" => o.opt_str(col, f.notes.as_deref()),
        "last_updated" => o.str(col, &f.last_updated),
        "first_added" => o.str(col, &f.first_added),
        "service_level" => o.str(col, f.service_level),
        "in_service" => o.bool(col, f.in_service),
        "customer" => o.opt_str(col, f.customer.map(|c| c.1)),
        "customer_id" => o.opt_int(col, f.customer.map(|c| c.0)),
        "hardware" => o.opt_str(col, f.hardware.map(|(_, hw)| hw.name)),
        "manufacturer" => o.opt_str(col, f.hardware.map(|(_, hw)| hw.manufacturer)),
        "os_name" => o.opt_str(col, os.map(|os| os.name)),
        "os_version" => o.opt_str(col, os.and_then(|os| os.version)),
        "os_version_no" => o.opt_str(col, os.and_then(|os| os.number)),
        "os_architecture" => o.opt_int(col, os.map(|os| os.arch)),
        "total_cpus" => o.opt_int(col, cpu.map(|c| c.count)),
        "core_per_cpu" => o.opt_int(col, cpu.map(|c| c.cores)),
        "threads_per_core" => o.opt_int(col, cpu.map(|c| c.threads)),
        "cpu_speed" => o.opt_float(col, cpu.map(|c| c.speed)),
        "ram" => o.opt_float(col, f.ram),
        "ram_size_type" => o.opt_str(col, f.ram.map(|_| "MB")),
        "hard_disk_count" => o.opt_int(col, disks.map(|d| d.count)),
        "hard_disk_size" => o.opt_float(col, disks.map(|d| d.size)),
        "building_id" => o.opt_int(col, f.place.as_ref().map(|p| p.building.0)),
        "room_id" => o.opt_int(col, f.place.as_ref().map(|p| p.room.0)),
        "rack_id" => o.opt_int(col, rack.map(|r| r.rack_id)),
        "start_at" => o.opt_float(col, rack.map(|r| r.start_at)),
        "orientation" => o.opt_int(col, rack.map(|r| r.orientation)),
        "objectcategory" => o.str(col, ""),
        "physicalsubtype" => o.str(col, ""),
        "virtualsubtype" => o.opt_str(col, f.virtual_.as_ref().map(|v| v.subtype)),
        "virtual_host" => o.opt_str(col, f.virtual_.as_ref().map(|v| v.host_name.as_str())),
        "virtual_host_id" => o.opt_int(col, f.virtual_.as_ref().map(|v| v.host_id)),
        "blade_chassis" => o.opt_str(col, f.blade.as_ref().map(|b| b.host_name.as_str())),
        "is_it_switch" => o.str(col, yes_no(f.is_switch)),
        "is_it_virtual_host" => o.str(col, yes_no(f.is_virtual_host)),
        "is_it_blade_host" => o.str(col, yes_no(f.is_blade_host)),
        "custom_fields" => custom_fields(o, col, f),
        "tags" => o.str_list(col, f.tags.iter().copied()),
        "aliases" => o.str_list(col, f.aliases.iter().map(String::as_str)),
        "asset_tag" => o.opt_str(col, f.asset_tag.as_deref()),
        _ => {}
    }
}

/// `"yes"` or `"no"`, as Device42 spells its `is_it_*` flags.
fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

/// `custom_fields`: every defined key, with `value: null` when unset.
fn custom_fields(o: &mut Obj<'_>, key: &str, f: &Facts) {
    o.list(key, &f.custom_fields, |item, (key, value, notes)| {
        item.str("key", key);
        item.opt_str("value", value.as_deref());
        item.str("notes", notes);
    });
}

/// `ip_addresses`: `{ip, label, subnet, subnet_id, type, macaddress}` each, `type` an int or
/// null.
fn ip_addresses(o: &mut Obj<'_>, key: &str, f: &Facts) {
    o.list(key, &f.ips, |item, ip| {
        item.str("ip", &ip.ip);
        item.str("label", ip.label);
        item.str("subnet", &ip.subnet);
        item.int("subnet_id", ip.subnet_id);
        item.opt_int("type", ip.kind);
        item.opt_str("macaddress", ip.mac.as_deref());
    });
}

/// `mac_addresses`: `{mac, port, port_name, vlan}` each, `vlan` a string.
fn mac_addresses(o: &mut Obj<'_>, key: &str, f: &Facts) {
    o.list(key, &f.macs, |item, mac| {
        item.str("mac", &mac.mac);
        item.opt_str("port", mac.port.as_deref());
        item.str("port_name", &mac.port_name);
        item.str("vlan", &mac.vlan);
    });
}
