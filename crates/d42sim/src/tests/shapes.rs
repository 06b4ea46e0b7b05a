//! The real appliance's field shapes: nulls where real records have them, loose types, the v2
//! `include_cols` names, and `blankasnull`.

use serde_json::{Map, Value};

use super::{get_json, start, token};
use crate::{SimConfig, Simulator};

/// A simulator of `devices` devices and a token for it.
async fn with_devices(devices: usize) -> (Simulator, String) {
    let sim = start(SimConfig {
        devices,
        ..SimConfig::default()
    })
    .await;
    let token = token(&sim).await;
    (sim, token)
}

/// The items of one page.
async fn items(sim: &Simulator, token: &str, path_and_query: &str) -> Vec<Map<String, Value>> {
    let page = get_json(sim, token, path_and_query).await;
    page["Devices"]
        .as_array()
        .expect("a Devices list")
        .iter()
        .map(|d| d.as_object().unwrap().clone())
        .collect()
}

/// The share of `items` whose `key` is absent or null.
fn null_share(items: &[Map<String, Value>], key: &str) -> f64 {
    let nulls = items
        .iter()
        .filter(|d| d.get(key).is_none_or(Value::is_null))
        .count();
    nulls as f64 / items.len() as f64
}

/// The non-null values of `key` across `items`.
fn values<'a>(items: &'a [Map<String, Value>], key: &str) -> Vec<&'a Value> {
    items
        .iter()
        .filter_map(|d| d.get(key))
        .filter(|v| !v.is_null())
        .collect()
}

#[tokio::test]
async fn v1_records_have_the_real_field_shapes() {
    let (sim, token) = with_devices(1000).await;

    let devices = items(&sim, &token, "/api/1.0/devices/all/?limit=1000").await;

    for key in [
        "notes", "os", "cpucount", "cpucore", "cpuspeed", "hddcount", "hddsize",
    ] {
        let share = null_share(&devices, key);
        assert!((0.7..0.97).contains(&share), "{key} null in {share}");
    }
    let ram = values(&devices, "ram");
    assert!(
        !ram.is_empty() && ram.iter().all(|v| v.is_f64()),
        "ram is a float"
    );
    let osverno = values(&devices, "osverno");
    assert!(!osverno.is_empty() && osverno.iter().all(|v| v.is_string()));
    let orientation = values(&devices, "orientation");
    assert!(!orientation.is_empty() && orientation.iter().all(|v| v.is_i64()));
    let number_only = devices
        .iter()
        .filter(|d| d.get("osver").is_none_or(Value::is_null) && d["osverno"].is_string())
        .count();
    assert!(number_only > 0, "some records carry osverno only");
    for device in &devices {
        assert_eq!(device["id"], device["device_id"]);
        assert!(device["in_service"].is_boolean());
    }
    let building = devices
        .iter()
        .filter(|d| d.contains_key("building"))
        .count();
    assert!(building > 0 && building < devices.len() / 4, "{building}");
}

#[tokio::test]
async fn v1_records_carry_ip_and_mac_lists_with_the_real_entry_shapes() {
    let (sim, token) = with_devices(1000).await;

    let devices = items(&sim, &token, "/api/1.0/devices/all/?limit=1000").await;

    let ips: Vec<&Value> = devices
        .iter()
        .flat_map(|d| d["ip_addresses"].as_array().unwrap())
        .collect();
    assert!(!ips.is_empty());
    for ip in &ips {
        let keys: Vec<&str> = ip.as_object().unwrap().keys().map(String::as_str).collect();
        for key in ["ip", "label", "subnet", "subnet_id", "type", "macaddress"] {
            assert!(keys.contains(&key), "{key} in {ip}");
        }
        assert!(ip["type"].is_i64() || ip["type"].is_null(), "{ip}");
    }
    assert!(ips.iter().any(|ip| ip["type"].is_null()));
    assert!(ips.iter().any(|ip| ip["type"].is_i64()));
    assert!(ips.iter().any(|ip| ip["macaddress"].is_string()));
    let macs: Vec<&Value> = devices
        .iter()
        .flat_map(|d| d["mac_addresses"].as_array().unwrap())
        .collect();
    assert!(!macs.is_empty());
    assert!(
        macs.iter().all(|m| m["vlan"].is_string()),
        "vlan is a string"
    );
    let with_ips = devices
        .iter()
        .filter(|d| !d["ip_addresses"].as_array().unwrap().is_empty())
        .count();
    assert!(with_ips < devices.len(), "not every device has addresses");
    for list in ["tags", "aliases"] {
        assert!(
            devices
                .iter()
                .any(|d| !d[list].as_array().unwrap().is_empty()),
            "some devices have {list}"
        );
    }
}

#[tokio::test]
async fn v2_include_cols_take_v2_names_and_give_the_same_shapes() {
    let (sim, token) = with_devices(1000).await;
    let cols = "hardware,os_name,os_version,os_version_no,os_architecture,total_cpus,\
                core_per_cpu,ram,orientation,tags,aliases,custom_fields,ip_addresses";

    let devices = items(
        &sim,
        &token,
        &format!("/api/2.0/devices/?limit=1000&include_cols={cols}"),
    )
    .await;

    let brief = [
        "device_id",
        "name",
        "type",
        "type_id",
        "serial_no",
        "asset_no",
        "uuid",
        "device_url",
    ];
    let asked: Vec<&str> = cols.split(',').filter(|c| *c != "ip_addresses").collect();
    for device in &devices {
        let mut keys: Vec<&str> = device.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected: Vec<&str> = brief.iter().chain(asked.iter()).copied().collect();
        expected.sort_unstable();
        assert_eq!(keys, expected, "v2 has no IP list and no v1 names");
    }
    assert!(
        values(&devices, "os_version_no")
            .iter()
            .all(|v| v.is_string())
    );
    assert!(!values(&devices, "os_version_no").is_empty());
    assert!(values(&devices, "ram").iter().all(|v| v.is_f64()));
    assert!(values(&devices, "orientation").iter().all(|v| v.is_i64()));
    assert!(null_share(&devices, "os_name") > 0.7);
    assert!(
        devices
            .iter()
            .any(|d| !d["tags"].as_array().unwrap().is_empty())
    );
}

/// Whether any top-level value of `items` is the empty string.
fn has_blank(items: &[Map<String, Value>]) -> bool {
    items
        .iter()
        .any(|d| d.values().any(|v| v.as_str() == Some("")))
}

#[tokio::test]
async fn blankasnull_sends_null_for_empty_strings_on_both_endpoints() {
    let (sim, token) = with_devices(200).await;
    let v2 = "/api/2.0/devices/?limit=200&include_cols=notes,os_name,customer";

    let v1_plain = items(&sim, &token, "/api/1.0/devices/all/?limit=200").await;
    let v1_null = items(
        &sim,
        &token,
        "/api/1.0/devices/all/?limit=200&blankasnull=yes",
    )
    .await;
    let v2_plain = items(&sim, &token, v2).await;
    let v2_null = items(&sim, &token, &format!("{v2}&blankasnull=yes")).await;

    assert!(has_blank(&v1_plain) && has_blank(&v2_plain));
    assert!(!has_blank(&v1_null) && !has_blank(&v2_null));
    for (plain, null) in [(&v1_plain, &v1_null), (&v2_plain, &v2_null)] {
        assert_eq!(plain.len(), null.len());
        for (a, b) in plain.iter().zip(null.iter()) {
            for (key, value) in a {
                let expected = match value.as_str() {
                    Some("") => &Value::Null,
                    _ => value,
                };
                assert_eq!(&b[key], expected, "{key}");
            }
        }
    }
}

#[tokio::test]
async fn rendered_devices_give_what_a_pull_asks_for() {
    let (sim, token) = with_devices(20).await;

    let page = items(&sim, &token, "/api/1.0/devices/all/?blankasnull=yes").await;

    let rendered: Vec<Map<String, Value>> = sim
        .rendered_devices("/api/1.0/devices/all/", &[])
        .into_iter()
        .map(|(_, json)| serde_json::from_str(&json).unwrap())
        .collect();
    assert_eq!(page, rendered);
}
