//! The building upsert and list.

use serde_json::Value;

use super::{JsonBody, client, get_json, start, token};
use crate::{Rejection, SimConfig, Simulator};

/// `POST /api/1.0/buildings/` with this form.
async fn post_form(sim: &Simulator, token: &str, form: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(format!("{}/api/1.0/buildings/", sim.base_url()))
        .bearer_auth(token)
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn posting_the_same_name_twice_updates_one_building_with_one_id() {
    let sim = start(SimConfig::default()).await;
    let token = token(&sim).await;

    let first = post_form(&sim, &token, &[("name", "HQ"), ("address", "1 Main St")]).await;
    let second = post_form(
        &sim,
        &token,
        &[("name", "HQ"), ("address", "2 Main St"), ("notes", "moved")],
    )
    .await;
    let other = post_form(&sim, &token, &[("name", "Annex")]).await;

    let first: Value = first.json_value().await.unwrap();
    let second: Value = second.json_value().await.unwrap();
    let other: Value = other.json_value().await.unwrap();
    assert_eq!(first["code"], 0);
    assert_eq!(
        first["msg"],
        serde_json::json!(["Building added/updated successfully", 1, "HQ", true, true])
    );
    assert_eq!(second["msg"][1], 1);
    assert_eq!(other["msg"][1], 2);
    let buildings = sim.buildings();
    let hq = buildings.iter().find(|b| b.name == "HQ").unwrap();
    assert_eq!(hq.fields["address"], "2 Main St");
    assert_eq!(hq.fields["notes"], "moved");
    assert_eq!(buildings.len(), 2);
    assert_eq!(sim.building_posts("HQ"), 2);
}

#[tokio::test]
async fn a_json_body_or_a_missing_name_is_refused_with_400_code_1() {
    let sim = start(SimConfig::default()).await;
    let token = token(&sim).await;

    let json = client()
        .post(format!("{}/api/1.0/buildings/", sim.base_url()))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"name": "HQ"}"#)
        .send()
        .await
        .unwrap();
    let nameless = post_form(&sim, &token, &[("address", "nowhere")]).await;

    for response in [json, nameless] {
        assert_eq!(response.status(), 400);
        let answer: Value = response.json_value().await.unwrap();
        assert_eq!(answer["code"], 1);
        assert!(answer["msg"].is_string());
    }
    assert!(sim.buildings().is_empty());
}

#[tokio::test]
async fn rejected_names_get_400_or_200_with_code_1_or_a_license_error() {
    let sim = start(SimConfig::default()).await;
    let token = token(&sim).await;
    sim.reject_building("Bad", Rejection::Http400);
    sim.reject_building("Sneaky", Rejection::Code1);
    sim.reject_building("Unlicensed", Rejection::LicenseExpired);

    let bad = post_form(&sim, &token, &[("name", "Bad")]).await;
    let sneaky = post_form(&sim, &token, &[("name", "Sneaky")]).await;
    let unlicensed = post_form(&sim, &token, &[("name", "Unlicensed")]).await;

    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json_value().await.unwrap()["code"], 1);
    assert_eq!(sneaky.status(), 200);
    assert_eq!(sneaky.json_value().await.unwrap()["code"], "1");
    assert_eq!(unlicensed.status(), 500);
    let license: Value = unlicensed.json_value().await.unwrap();
    assert!(
        license["msg"]
            .as_str()
            .unwrap()
            .starts_with("License expired")
    );
    assert!(sim.buildings().is_empty());
    assert_eq!(sim.building_posts("Bad"), 1);
}

#[tokio::test]
async fn the_building_list_filters_by_name() {
    let sim = start(SimConfig::default()).await;
    let token = token(&sim).await;
    post_form(
        &sim,
        &token,
        &[
            ("name", "Las Vegas Office"),
            ("tags", "a, b"),
            ("latitude", "30"),
        ],
    )
    .await;
    post_form(&sim, &token, &[("name", "Reno")]).await;

    let all = get_json(&sim, &token, "/api/1.0/buildings/").await;
    let one = get_json(
        &sim,
        &token,
        "/api/1.0/buildings/?name=Las%20Vegas%20Office",
    )
    .await;

    assert_eq!(all["total_count"], 2);
    assert_eq!(one["total_count"], 1);
    let building = &one["buildings"][0];
    assert_eq!(building["building_id"], 1);
    assert_eq!(building["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(building["latitude"], "30");
    assert_eq!(building["address"], "");
}

#[tokio::test]
async fn new_name_renames_a_building_and_keeps_its_id() {
    let sim = start(SimConfig::default()).await;
    let token = token(&sim).await;
    post_form(&sim, &token, &[("name", "Old")]).await;

    let renamed: Value = post_form(&sim, &token, &[("name", "Old"), ("new_name", "New")])
        .await
        .json_value()
        .await
        .unwrap();

    assert_eq!(renamed["msg"][1], 1);
    let names: Vec<String> = sim.buildings().into_iter().map(|b| b.name).collect();
    assert_eq!(names, vec!["New".to_string()]);
}
