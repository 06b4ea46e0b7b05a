//! The child rows derived from records as Device42 sends them, odd shapes included.

use super::*;
use serde_json::{Value, json};

/// The children of a record given as JSON.
fn children_of(record: Value) -> DeviceChildren {
    of_record(&record.to_string())
}

/// `(seq, text)` of string rows.
fn texts<'a>(rows: impl Iterator<Item = Text<'a>>) -> Vec<(i64, &'a str)> {
    rows.map(|t| (t.seq, t.text)).collect()
}

#[test]
fn a_v1_record_gives_one_row_per_entry_with_its_position() {
    let children = children_of(json!({
        "ip_addresses": [
            {"ip": "10.1.2.3", "label": "eth0", "subnet": "10.1.2.0/24", "subnet_id": 7, "type": 1, "macaddress": "00:11"},
            {"ip": "10.1.2.3", "label": "", "subnet": "10.1.2.0/24", "type": null, "macaddress": null}
        ],
        "mac_addresses": [{"mac": "00:11", "port": null, "port_name": "eth0", "vlan": "101"}],
        "tags": ["pci", "pci"],
        "aliases": ["a.example.com"]
    }));

    assert_eq!(
        children.ips().collect::<Vec<_>>(),
        [
            Ip {
                seq: 0,
                ip: Some("10.1.2.3"),
                label: Some("eth0"),
                subnet: Some("10.1.2.0/24"),
                mac: Some("00:11"),
                kind: Some(1),
            },
            Ip {
                seq: 1,
                ip: Some("10.1.2.3"),
                label: Some(""),
                subnet: Some("10.1.2.0/24"),
                mac: None,
                kind: None,
            },
        ]
    );
    assert_eq!(
        children.macs().collect::<Vec<_>>(),
        [Mac {
            seq: 0,
            mac: Some("00:11"),
            port: None,
            port_name: Some("eth0"),
            vlan: Some("101"),
        }]
    );
    assert_eq!(
        texts(children.tags()),
        [(0, "pci"), (1, "pci")],
        "repeated entries are kept"
    );
    assert_eq!(texts(children.aliases()), [(0, "a.example.com")]);
}

#[test]
fn custom_field_keys_empty_and_numeric_and_null_values_survive() {
    let children = children_of(json!({
        "custom_fields": [
            {"key": "", "value": null, "notes": ""},
            {"key": "1", "value": "x", "notes": null},
            {"key": 2, "value": 3.5, "notes": true},
            {"value": "no key"},
            {"key": "k", "value": {"nested": [1]}}
        ]
    }));

    let rows: Vec<(i64, &str, Option<&str>, Option<&str>)> = children
        .custom_fields()
        .map(|f| (f.seq, f.key, f.value, f.notes))
        .collect();
    assert_eq!(
        rows,
        [
            (0, "", None, Some("")),
            (1, "1", Some("x"), None),
            (2, "2", Some("3.5"), Some("true")),
            (4, "k", Some(r#"{"nested":[1]}"#), None),
        ]
    );
}

#[test]
fn lists_of_the_wrong_shape_give_no_rows_and_odd_entries_are_skipped() {
    let children = children_of(json!({
        "ip_addresses": {"ip": "10.0.0.1"},
        "mac_addresses": "00:11",
        "tags": "pci,dmz",
        "custom_fields": null,
        "aliases": [null, ["x"], {"a": 1}, "b", 7]
    }));

    assert_eq!(children.ips().len(), 0);
    assert_eq!(children.macs().len(), 0);
    assert_eq!(children.tags().len(), 0);
    assert_eq!(children.custom_fields().len(), 0);
    assert_eq!(texts(children.aliases()), [(3, "b"), (4, "7")]);
}

#[test]
fn an_ip_type_is_kept_only_as_an_integer() {
    let children = children_of(json!({
        "ip_addresses": [{"type": "2"}, {"type": 1.5}, 5, {"type": 3}]
    }));

    let kinds: Vec<(i64, Option<i64>)> = children.ips().map(|i| (i.seq, i.kind)).collect();
    assert_eq!(kinds, [(0, None), (1, None), (3, Some(3))]);
}

#[test]
fn rows_pushed_read_back_as_they_were_given() {
    let mut children = DeviceChildren::default();
    let field = CustomField {
        seq: 3,
        key: "",
        value: None,
        notes: Some(""),
    };
    let ip = Ip {
        seq: 1,
        ip: Some("10.0.0.1"),
        kind: Some(2),
        ..Ip::default()
    };

    children.push_custom_field(field);
    children.push_ip(ip);
    children.push_tag(Text {
        seq: 0,
        text: "pci",
    });

    assert_eq!(children.custom_fields().collect::<Vec<_>>(), [field]);
    assert_eq!(children.ips().collect::<Vec<_>>(), [ip]);
    assert_eq!(texts(children.tags()), [(0, "pci")]);
    assert_eq!(children.aliases().len(), 0);
}

#[test]
fn escaped_texts_are_unescaped_and_a_member_given_twice_counts_as_its_last() {
    let raw = r#"{"ip_addresses": [{"ip": "10.0.0.1", "label": "eth\"0\u00e9", "ip": "10.0.0.2", "\u0069p": "10.0.0.3", "type": 1, "type": "x"}],
        "tags": ["a\\b", "\u00e9"],
        "custom_fields": [{"key": "k", "value": {"b": 1, "a": [true, null]}, "notes": ""}]}"#;
    let children = of_record(raw);

    assert_eq!(
        children.ips().collect::<Vec<_>>(),
        [Ip {
            seq: 0,
            ip: Some("10.0.0.3"),
            label: Some("eth\"0é"),
            ..Ip::default()
        }]
    );
    assert_eq!(texts(children.tags()), [(0, "a\\b"), (1, "é")]);
    let values: Vec<Option<&str>> = children.custom_fields().map(|f| f.value).collect();
    assert_eq!(
        values,
        [Some(r#"{"a":[true,null],"b":1}"#)],
        "an object member is its JSON with the keys in order, as before"
    );
}

#[test]
fn numbers_and_booleans_in_lists_of_strings_are_their_json_text() {
    let children = children_of(json!({
        "tags": [1, -2, 18446744073709551615u64, 2.5, false, "t"],
        "mac_addresses": [{"mac": 1e3, "port": -0.0, "vlan": 101}]
    }));

    assert_eq!(
        texts(children.tags()),
        [
            (0, "1"),
            (1, "-2"),
            (2, "18446744073709551615"),
            (3, "2.5"),
            (4, "false"),
            (5, "t")
        ]
    );
    let mac = children.macs().next().unwrap();
    assert_eq!(
        (mac.mac, mac.port, mac.vlan),
        (Some("1000.0"), Some("-0.0"), Some("101"))
    );
}
