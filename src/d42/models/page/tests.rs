//! The one-pass reading of a page against the two-pass one: the same pages for every page the
//! first takes, and the second's answer for every page it does not.

use super::*;
use crate::device::DeviceColumns;

/// What a parsed page holds, to compare two readings.
type Summary<'a> = (Option<u64>, Option<u64>, Vec<(i64, &'a str, DeviceColumns)>);

fn summary<'a>(page: DevicePage<'a>) -> Summary<'a> {
    let items = page.items.into_iter();
    let items = items.map(|i| (i.device_id, i.raw, i.columns)).collect();
    (page.total_count, page.limit, items)
}

/// A page as the simulator sends it, of its first `n` devices from `endpoint`.
async fn simulated_page(endpoint: &str, include_cols: &[&str], n: usize) -> String {
    let cfg = d42sim::SimConfig {
        devices: n,
        ..Default::default()
    };
    let sim = d42sim::Simulator::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let cols: Vec<String> = include_cols.iter().map(|c| c.to_string()).collect();
    let records: Vec<String> = sim
        .rendered_devices(endpoint, &cols)
        .into_iter()
        .map(|(_, raw)| raw)
        .collect();
    format!(
        r#"{{"total_count": {n}, "offset": 0, "limit": 1000, "Devices": [{}]}}"#,
        records.join(", ")
    )
}

/// Asserts the one-pass reading takes `body` and reads it as the two-pass one does.
fn assert_read_alike(body: &str) {
    let one = read_in_one_pass(body).unwrap_or_else(|| panic!("not taken in one pass: {body}"));
    let two = read_in_two_passes(body).unwrap();
    assert_eq!(summary(one), summary(two), "{body}");
}

#[tokio::test]
async fn simulated_pages_of_either_version_are_read_in_one_pass_as_in_two() {
    let v1 = simulated_page("/api/1.0/devices/all/", &[], 50).await;
    assert_read_alike(&v1);
    let cols = [
        "tags",
        "custom_fields",
        "aliases",
        "ip_addresses",
        "mac_addresses",
    ];
    let v2 = simulated_page("/api/2.0/devices/", &cols, 50).await;
    assert_read_alike(&v2);
    let page = read_in_one_pass(&v1).unwrap();
    assert_eq!(page.items.len(), 50);
    assert!(
        page.items
            .iter()
            .any(|i| i.columns.children.custom_fields().len() > 0),
        "the records have child rows"
    );
}

#[test]
fn pages_of_any_layout_are_read_in_one_pass_as_in_two() {
    let bodies = [
        r#"{"Devices": []}"#,
        "{\n\t\"devices\" :\r\n[ {\"device_id\":7} ] ,\"total_count\":\"1\" }\n",
        r#"{"meta": {"a": [1, {"b": null}], "c": "]}"}, "limit": 2, "total_count": 2,
            "Devices": [{"name": "a,\"]}", "device_id": 1, "tags": ["x", 2]},
                        {"custom_fields": [{"key": "k", "value": null, "notes": ""}], "device_id": 2}],
            "offset": 0}"#,
        r#"{"Devices":[{"device_id":3,"in_service":true,"last_updated":1.5e3}],"total_count":1}"#,
    ];
    for body in bodies {
        assert_read_alike(body);
    }
}

#[test]
fn a_page_the_one_pass_does_not_take_gets_the_two_pass_answer() {
    let bodies = [
        // A list key given twice: the later counts.
        r#"{"Devices": [{"device_id": 1}], "devices": [{"device_id": 2}]}"#,
        r#"{"Devices": []} x"#,
        r#"{"Devices": [{"device_id": 1} {"device_id": 2}]}"#,
        r#"{"Devices": [{"device_id": 1},]}"#,
        r#"{"Devices": [{"device_id": 1}"#,
        r#"{"Devices": null}"#,
        r#" { } "#,
        r#"{"total_count": "many", "Devices": []}"#,
        r#"{"Devices": [{"device_id": 1}, {"name": "x"}]}"#,
        r#"{"Devices": [{"device_id": 1, "name": "a", "name": "b"}]}"#,
        r#"["Devices"]"#,
        "",
    ];
    for body in bodies {
        assert!(
            read_in_one_pass(body).is_none(),
            "taken in one pass: {body}"
        );
        let answer = parse_device_page(body.as_bytes()).map(summary);
        assert_eq!(answer, read_in_two_passes(body).map(summary), "{body}");
    }
    let twice =
        parse_device_page(br#"{"Devices": [{"device_id": 1}], "devices": [{"device_id": 2}]}"#);
    assert_eq!(twice.unwrap().items[0].device_id, 2);
}
#[test]
fn a_record_giving_a_read_member_twice_is_an_error_naming_it() {
    for name in Key::NAMES {
        let body =
            format!(r#"{{"Devices": [{{"device_id": 1, "{name}": null, "{name}": null}}]}}"#);
        let err = parse_device_page(body.as_bytes()).unwrap_err();
        assert!(
            err.contains(&format!(
                "item 0 is not a device object: duplicate field `{name}`"
            )),
            "{name}: {err}"
        );
    }
    let other = br#"{"Devices": [{"device_id": 1, "rack": 1, "rack": 2}]}"#;
    assert_eq!(
        parse_device_page(other).unwrap().items.len(),
        1,
        "a member not read may repeat"
    );
}
