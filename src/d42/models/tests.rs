//! Parsing of Device42 answers as the appliance sends them, loose types and both API versions.

use super::*;

#[test]
fn the_list_key_is_found_in_either_case_and_items_are_kept_verbatim() {
    let body = br#"{"total_count": 2, "offset": 0, "limit": 1000, "devices": [{"device_id": 64, "name": "a"}, {"name":"b",  "device_id":150}]}"#;
    let page = parse_device_page(body).unwrap();
    assert_eq!(page.total_count, Some(2));
    assert_eq!(page.items[1].device_id, 150);
    assert_eq!(page.items[1].raw, r#"{"name":"b",  "device_id":150}"#);
    let upper = br#"{"Devices": [{"device_id": 1}]}"#;
    let page = parse_device_page(upper).unwrap();
    assert_eq!(page.total_count, None);
    assert_eq!(page.items.len(), 1);
}

#[test]
fn a_missing_or_mistyped_id_is_an_error() {
    assert!(
        parse_device_page(br#"{"Devices": [{"name": "x"}]}"#)
            .unwrap_err()
            .contains("no device_id")
    );
    assert!(
        parse_device_page(br#"{"Devices": [{"device_id": "abc"}]}"#)
            .unwrap_err()
            .contains("not an integer")
    );
    assert!(
        parse_device_page(b"<html>")
            .unwrap_err()
            .contains("malformed json")
    );
    assert!(
        parse_device_page(br#"{"Devices": [{"device_id": 1}"#)
            .unwrap_err()
            .contains("malformed json")
    );
}

#[test]
fn typed_columns_understand_both_api_versions_and_loose_types() {
    let v1 = br#"{"Devices": [{"device_id": 7, "id": 7, "name": "a", "type": "physical", "os": "Debian", "osver": "12", "hw_model": "R640", "in_service": "yes", "asset_no": 123, "tags": ["x"]}]}"#;
    let c = &parse_device_page(v1).unwrap().items[0].columns;
    assert_eq!(c.os_name.as_deref(), Some("Debian"));
    assert_eq!(c.os_version.as_deref(), Some("12"));
    assert_eq!(c.hardware.as_deref(), Some("R640"));
    assert_eq!(c.in_service, Some(1));
    assert_eq!(c.asset_no.as_deref(), Some("123"));
    let v2 = br#"{"Devices": [{"device_id": 8, "os_name": "Windows", "in_service": false, "serial_no": null}]}"#;
    let c = &parse_device_page(v2).unwrap().items[0].columns;
    assert_eq!(
        (c.os_name.as_deref(), c.in_service, c.serial_no.as_deref()),
        (Some("Windows"), Some(0), None)
    );
}

#[test]
fn os_version_falls_back_to_the_version_number_in_either_api_version() {
    let v1 = br#"{"Devices": [{"device_id": 1, "os": "Windows", "osver": null, "osverno": "10.0.10586"}, {"device_id": 2, "osver": "Service Pack 1", "osverno": "6.1.7601"}]}"#;
    let page = parse_device_page(v1).unwrap();
    assert_eq!(
        page.items[0].columns.os_version.as_deref(),
        Some("10.0.10586")
    );
    assert_eq!(
        page.items[1].columns.os_version.as_deref(),
        Some("Service Pack 1")
    );
    let v2 = br#"{"Devices": [{"device_id": 3, "os_version": "", "os_version_no": "17763"}, {"device_id": 4, "os_version_no": 12}]}"#;
    let page = parse_device_page(v2).unwrap();
    assert_eq!(page.items[0].columns.os_version.as_deref(), Some("17763"));
    assert_eq!(page.items[1].columns.os_version.as_deref(), Some("12"));
}

#[test]
fn v2_names_win_over_v1_names_and_each_fills_its_typed_column() {
    let both = br#"{"Devices": [{"device_id": 5, "hardware": "R640", "hw_model": "old", "os_name": "Debian", "os": "old", "os_version": "12", "osver": "old"}]}"#;
    let c = &parse_device_page(both).unwrap().items[0].columns;
    assert_eq!(
        (
            c.hardware.as_deref(),
            c.os_name.as_deref(),
            c.os_version.as_deref()
        ),
        (Some("R640"), Some("Debian"), Some("12"))
    );
    let v1 = br#"{"Devices": [{"device_id": 6, "hw_model": "DL380", "service_level": "Production", "customer": "Finance", "last_updated": "2016-07-05T22:08:34.043541Z", "in_service": true}]}"#;
    let c = &parse_device_page(v1).unwrap().items[0].columns;
    assert_eq!(c.hardware.as_deref(), Some("DL380"));
    assert_eq!(c.service_level.as_deref(), Some("Production"));
    assert_eq!(c.customer.as_deref(), Some("Finance"));
    assert_eq!(
        c.last_updated.as_deref(),
        Some("2016-07-05T22:08:34.043541Z")
    );
    assert_eq!(c.in_service, Some(1));
}

#[test]
fn an_empty_string_is_null_in_typed_columns_and_kept_in_raw() {
    let body = br#"{"Devices": [{"device_id": 9, "name": "n", "uuid": "", "serial_no": "", "asset_no": "", "hardware": "", "hw_model": "R640", "os_name": "", "os": "", "service_level": "", "customer": "", "in_service": "", "last_updated": "", "type": ""}]}"#;
    let item = &parse_device_page(body).unwrap().items[0];
    let c = &item.columns;
    assert_eq!(c.name.as_deref(), Some("n"));
    assert_eq!(
        c.hardware.as_deref(),
        Some("R640"),
        "an empty v2 name falls back"
    );
    assert_eq!(
        c.texts().iter().filter(|t| t.is_some()).count(),
        2,
        "only name and hardware are set: {c:?}"
    );
    assert_eq!(c.in_service, None);
    assert!(item.raw.contains(r#""uuid": """#), "{}", item.raw);
}

#[test]
fn values_are_kept_verbatim_trailing_spaces_included() {
    let body = br#"{"Devices": [{"device_id": 1, "os": "Windows 2012 R2 ", "osver": " "}]}"#;
    let c = &parse_device_page(body).unwrap().items[0].columns;
    assert_eq!(c.os_name.as_deref(), Some("Windows 2012 R2 "));
    assert_eq!(c.os_version.as_deref(), Some(" "));
}

#[test]
fn code_is_accepted_as_int_or_string() {
    let g = parse_token(br#"{"code": "0", "token": "t", "ttl": 10, "expires": "2022-07-15T06:25:06.240Z", "token_id": "3"}"#).unwrap();
    assert_eq!(g.ttl_minutes, 10.0);
    assert_eq!(g.token_id, Some(3));
    assert!(g.expires.is_some());
    assert_eq!(
        parse_building_answer(
            br#"{"msg": ["Building added/updated successfully", 3, "T"], "code": 0}"#
        )
        .unwrap(),
        BuildingAnswer::Accepted(Some(3))
    );
    assert!(matches!(
        parse_building_answer(br#"{"msg": "no such group", "code": "1"}"#).unwrap(),
        BuildingAnswer::Refused(m) if m.contains("no such group")
    ));
}

#[test]
fn a_body_that_is_not_utf8_is_refused_as_such_unless_it_is_also_malformed() {
    let mut body = br#"{"Devices": [{"device_id": 1, "name": "x"}]}"#.to_vec();
    body[39] = 0xff;
    assert_eq!(
        parse_device_page(&body).unwrap_err(),
        "body is not valid utf-8"
    );
    assert!(
        parse_device_page(b"{\"Devices\": [\xff")
            .unwrap_err()
            .contains("malformed json")
    );
}

#[test]
fn a_record_that_is_not_an_object_is_an_error() {
    let err = parse_device_page(br#"{"Devices": [{"device_id": 1}, "x"]}"#).unwrap_err();
    assert!(err.contains("item 1 is not a device object"), "{err}");
}
