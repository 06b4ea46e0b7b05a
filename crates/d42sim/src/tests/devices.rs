//! Device lists: paging, limits, list keys, columns, record shape, determinism, changes, drift.

use std::time::{Duration, Instant};

use serde_json::Value;
use serde_json::value::RawValue;

use super::{client, get_json, page_ids, start, token};
use crate::{Churn, Drift, ListKey, SimConfig, Simulator};

/// The raw item texts of a devices page, exactly as sent.
async fn raw_items(sim: &Simulator, token: &str, path_and_query: &str, key: &str) -> Vec<String> {
    let body = client()
        .get(format!("{}{}", sim.base_url(), path_and_query))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let page: std::collections::HashMap<String, Box<RawValue>> =
        serde_json::from_str(&body).unwrap();
    let items: Vec<Box<RawValue>> = serde_json::from_str(page[key].get()).unwrap();
    items.iter().map(|item| item.get().to_string()).collect()
}

#[tokio::test]
async fn paging_walks_every_device_in_ascending_id_order_with_total_count() {
    let sim = start(SimConfig {
        devices: 250,
        ..SimConfig::default()
    })
    .await;
    let token = token(&sim).await;

    let mut ids = Vec::new();
    for offset in [0, 100, 200, 300] {
        let page = get_json(
            &sim,
            &token,
            &format!("/api/2.0/devices/?limit=100&offset={offset}"),
        )
        .await;
        assert_eq!(page["total_count"], 250);
        assert_eq!(page["offset"], offset);
        assert_eq!(page["limit"], 100);
        ids.extend(page_ids(&page, "Devices"));
    }

    assert_eq!(ids, sim.device_ids());
    assert_eq!(ids.len(), 250);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert!(
        *ids.last().unwrap() > 250,
        "a few ids are gaps, as after old deletions"
    );
}

#[tokio::test]
async fn the_limit_defaults_to_and_is_capped_at_max_limit() {
    let sim = start(SimConfig {
        devices: 120,
        max_limit: 50,
        ..SimConfig::default()
    })
    .await;
    let token = token(&sim).await;

    let unasked = get_json(&sim, &token, "/api/2.0/devices/").await;
    let too_big = get_json(&sim, &token, "/api/1.0/devices/all/?limit=1000").await;

    assert_eq!(unasked["limit"], 50);
    assert_eq!(unasked["Devices"].as_array().unwrap().len(), 50);
    assert_eq!(too_big["limit"], 50);
    assert_eq!(too_big["Devices"].as_array().unwrap().len(), 50);
}

#[tokio::test]
async fn the_list_key_and_total_count_follow_the_config() {
    let cfg = SimConfig {
        devices: 3,
        list_key: ListKey::LowerDevices,
        include_total_count: false,
        ..SimConfig::default()
    };
    let sim = start(cfg).await;
    let token = token(&sim).await;

    let v2 = get_json(&sim, &token, "/api/2.0/devices/").await;
    let v1 = get_json(&sim, &token, "/api/1.0/devices/all/").await;

    assert_eq!(page_ids(&v2, "devices").len(), 3);
    assert!(v2.get("Devices").is_none());
    assert!(v2.get("total_count").is_none());
    assert_eq!(page_ids(&v1, "Devices").len(), 3, "v1 always says Devices");
}

#[tokio::test]
async fn brief_items_have_the_documented_columns_and_include_cols_adds_more() {
    let sim = start(SimConfig {
        devices: 5,
        ..SimConfig::default()
    })
    .await;
    let token = token(&sim).await;

    let brief = get_json(&sim, &token, "/api/2.0/devices/?limit=1").await;
    let wide = get_json(
        &sim,
        &token,
        "/api/2.0/devices/?limit=1&include_cols=tags,notes,no_such_col,ram",
    )
    .await;

    let keys = |page: &Value| -> Vec<String> {
        page["Devices"][0]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    let mut expected = vec![
        "asset_no",
        "device_id",
        "device_url",
        "name",
        "serial_no",
        "type",
        "type_id",
        "uuid",
    ];
    expected.sort();
    assert_eq!(keys(&brief), expected);
    let mut wide_expected = [expected, vec!["notes", "ram", "tags"]].concat();
    wide_expected.sort();
    assert_eq!(keys(&wide), wide_expected);
    assert_eq!(brief["Devices"][0]["device_url"], "/api/2.0/devices/1/");
    assert!(wide["Devices"][0]["tags"].is_array());
}

#[tokio::test]
async fn pages_carry_items_byte_for_byte_as_rendered_devices_says() {
    let sim = start(SimConfig {
        devices: 30,
        ..SimConfig::default()
    })
    .await;
    let token = token(&sim).await;
    let cols = vec!["custom_fields".to_string(), "last_updated".to_string()];

    let rendered = |endpoint: &str, cols: &[String], blank_as_null: bool| -> Vec<String> {
        sim.rendered_devices_as(endpoint, cols, blank_as_null)
            .into_iter()
            .map(|(_, json)| json)
            .collect()
    };

    for blankasnull in ["", "&blankasnull=yes"] {
        let v2 = raw_items(
            &sim,
            &token,
            &format!("/api/2.0/devices/?include_cols=custom_fields,last_updated{blankasnull}"),
            "Devices",
        )
        .await;
        let v1 = raw_items(
            &sim,
            &token,
            &format!("/api/1.0/devices/all/?limit=1000{blankasnull}"),
            "Devices",
        )
        .await;

        let blank_as_null = !blankasnull.is_empty();
        assert!(
            v2 == rendered("/api/2.0/devices/", &cols, blank_as_null),
            "v2{blankasnull}"
        );
        assert!(
            v1 == rendered("/api/1.0/devices/all/", &[], blank_as_null),
            "v1{blankasnull}"
        );
    }
    assert_eq!(
        sim.rendered_devices("/api/1.0/devices/all/", &[]),
        sim.rendered_devices_as("/api/1.0/devices/all/", &[], true),
        "rendered_devices renders as a pull asks: blanks as null"
    );
}

#[tokio::test]
async fn v1_records_are_full_loose_and_about_2_5_kb_each() {
    let sim = start(SimConfig {
        devices: 400,
        ..SimConfig::default()
    })
    .await;
    let token = token(&sim).await;

    let page = get_json(&sim, &token, "/api/1.0/devices/all/?limit=400").await;

    let rendered = sim.rendered_devices("/api/1.0/devices/all/", &[]);
    let average = rendered.iter().map(|(_, json)| json.len()).sum::<usize>() / rendered.len();
    assert!(
        (2000..=3200).contains(&average),
        "average v1 record is {average} bytes"
    );
    let devices = page["Devices"].as_array().unwrap();
    let widest = devices
        .iter()
        .map(|d| d.as_object().unwrap().len())
        .max()
        .unwrap();
    assert!((55..=70).contains(&widest), "{widest} fields");
    for device in devices {
        assert_eq!(device["id"], device["device_id"]);
        assert!(device["in_service"].is_boolean());
        assert!(["yes", "no"].contains(&device["is_it_switch"].as_str().unwrap()));
        let racked = device.get("rack_id").is_some();
        assert_eq!(racked, device.get("start_at").is_some());
        assert!(
            !racked || device["type"] == "physical",
            "only physical devices are racked"
        );
        assert_eq!(
            device.get("virtual_host_name").is_some(),
            device["type"] == "virtual"
        );
        let custom_fields = device["custom_fields"].as_array().unwrap();
        assert!(
            custom_fields
                .iter()
                .all(|f| f.get("key").is_some() && f.get("value").is_some())
        );
        for ip in device["ip_addresses"].as_array().unwrap() {
            assert!(ip.get("subnet_id").is_some());
        }
        for mac in device["mac_addresses"].as_array().unwrap() {
            assert!(mac.get("port_name").is_some());
        }
    }
    let unracked_physical = devices
        .iter()
        .filter(|d| d["type"] == "physical" && d.get("rack").is_none());
    assert!(
        unracked_physical.count() > 0,
        "some physical devices are not racked"
    );
    assert!(
        devices.iter().any(|d| d["ram"].is_f64()),
        "ram is sometimes a float"
    );
    assert!(
        devices
            .iter()
            .any(|d| d["custom_fields"][0]["value"].is_null())
    );
}

#[tokio::test]
async fn the_same_seed_gives_the_same_records_and_another_seed_others() {
    let one = start(SimConfig {
        devices: 50,
        ..SimConfig::default()
    })
    .await;
    let same = start(SimConfig {
        devices: 50,
        ..SimConfig::default()
    })
    .await;
    let other = start(SimConfig {
        devices: 50,
        seed: 7,
        ..SimConfig::default()
    })
    .await;

    let render = |sim: &Simulator| sim.rendered_devices("/api/1.0/devices/all/", &[]);

    assert_eq!(render(&one), render(&same));
    assert_ne!(render(&one), render(&other));
}

#[tokio::test]
async fn edits_additions_and_removals_show_in_the_next_pull() {
    let sim = start(SimConfig {
        devices: 10,
        ..SimConfig::default()
    })
    .await;
    let token = token(&sim).await;
    let before = get_json(
        &sim,
        &token,
        "/api/2.0/devices/?include_cols=notes,last_updated",
    )
    .await;
    let first = sim.device_ids()[0];
    let max = *sim.device_ids().last().unwrap();

    assert!(sim.edit_device(first));
    assert!(sim.remove_device(sim.device_ids()[1]));
    let added = sim.add_devices(2);
    assert!(!sim.edit_device(-1));
    let after = get_json(
        &sim,
        &token,
        "/api/2.0/devices/?include_cols=notes,last_updated",
    )
    .await;

    assert_eq!(added, vec![max + 1, max + 2]);
    assert_eq!(after["total_count"], 11);
    assert_eq!(page_ids(&after, "Devices"), sim.device_ids());
    let (old, new) = (&before["Devices"][0], &after["Devices"][0]);
    assert_ne!(old["name"], new["name"]);
    assert_ne!(old["notes"], new["notes"]);
    assert!(new["last_updated"].as_str().unwrap() > old["last_updated"].as_str().unwrap());
}

#[tokio::test]
async fn last_edited_gt_keeps_devices_updated_on_or_after_that_day() {
    let sim = start(SimConfig {
        devices: 20,
        ..SimConfig::default()
    })
    .await;
    let token = token(&sim).await;
    let edited = sim.device_ids()[3];
    sim.edit_device(edited);
    let today = chrono::Utc::now().format("%Y-%m-%d");

    let page = get_json(
        &sim,
        &token,
        &format!("/api/2.0/devices/?last_edited_gt={today}"),
    )
    .await;

    assert_eq!(page_ids(&page, "Devices"), vec![edited]);
    assert_eq!(page["total_count"], 1);
}

#[tokio::test]
async fn drift_inserts_and_deletes_between_pages_so_offsets_shift() {
    let sim = start(SimConfig {
        devices: 30,
        ..SimConfig::default()
    })
    .await;
    let token = token(&sim).await;
    let initial = sim.device_ids();
    sim.set_drift(Drift {
        inserts_per_page: 3,
        deletes_per_page: 5,
        pages: 2,
    });

    let first = get_json(&sim, &token, "/api/2.0/devices/?limit=10&offset=0").await;
    let second = get_json(&sim, &token, "/api/2.0/devices/?limit=10&offset=10").await;
    let third = get_json(&sim, &token, "/api/2.0/devices/?limit=10&offset=20").await;

    assert_eq!(first["total_count"], 30);
    assert_eq!(second["total_count"], 28);
    assert_eq!(third["total_count"], 26, "drift stops after two pages");
    assert_eq!(
        page_ids(&second, "Devices")[0],
        initial[15],
        "five rows were skipped"
    );
    assert_eq!(sim.device_count(), 26);
}

#[tokio::test]
async fn four_hundred_thousand_devices_are_generated_quickly() {
    let started = Instant::now();

    let sim = start(SimConfig {
        devices: 400_000,
        ..SimConfig::default()
    })
    .await;

    assert_eq!(sim.device_count(), 400_000);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn churn_removes_a_device_listed_before_the_offset_and_adds_one_at_the_end() {
    let sim = start(SimConfig {
        devices: 30,
        ..SimConfig::default()
    })
    .await;
    let token = token(&sim).await;
    let initial = sim.device_ids();
    let last_before = sim.last_id();
    sim.set_churn(Churn {
        delete_every: 2,
        add_every: 3,
        requests: 6,
    });

    let mut totals = Vec::new();
    for _ in 0..7 {
        let page = get_json(&sim, &token, "/api/2.0/devices/?limit=10&offset=10").await;
        totals.push(page["total_count"].as_i64().unwrap());
    }

    assert_eq!(
        totals,
        [30, 30, 29, 30, 29, 29, 29],
        "a deletion after every second request, an addition after every third, for six requests"
    );
    let now = sim.device_ids();
    let removed: Vec<i64> = initial
        .iter()
        .copied()
        .filter(|id| !now.contains(id))
        .collect();
    assert_eq!(removed.len(), 3);
    assert!(
        // Two earlier deletions shift two more devices before offset 10.
        removed.iter().all(|id| initial[..12].contains(id)),
        "each removed device was listed before the offset asked: {removed:?}"
    );
    assert_eq!(
        now.iter().filter(|id| **id > last_before).count(),
        2,
        "two devices added above every id used before"
    );
    assert_eq!(sim.last_id(), last_before + 2);
}

#[tokio::test]
async fn a_server_that_ignores_offset_answers_every_request_with_the_first_page() {
    let sim = start(SimConfig {
        devices: 30,
        ..SimConfig::default()
    })
    .await;
    let token = token(&sim).await;
    sim.set_ignores_offset(true);

    let first = get_json(&sim, &token, "/api/2.0/devices/?limit=10&offset=0").await;
    let second = get_json(&sim, &token, "/api/2.0/devices/?limit=10&offset=9").await;

    assert_eq!(page_ids(&second, "Devices"), page_ids(&first, "Devices"));
    assert_eq!(page_ids(&first, "Devices"), sim.device_ids()[..10]);
}
