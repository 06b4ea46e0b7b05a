//! Each injected fault does what it says, rules count and skip, and `fail_rate` spoils `/api/`.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{JsonBody, client, client_with_timeout, get_json, start, token};
use crate::{Fault, FaultRule, SimConfig, Simulator};

const DEVICES: &str = "/api/2.0/devices/";

/// A simulator with a token, and `fault` set for the next devices request.
async fn with_fault(fault: Fault) -> (Simulator, String) {
    let sim = start(SimConfig {
        devices: 20,
        ..SimConfig::default()
    })
    .await;
    let token = token(&sim).await;
    sim.inject(FaultRule::new(DEVICES, fault));
    (sim, token)
}

/// `GET /api/2.0/devices/` with `client`.
async fn get_devices(
    sim: &Simulator,
    token: &str,
    client: &reqwest::Client,
) -> reqwest::Result<reqwest::Response> {
    client
        .get(format!("{}{DEVICES}", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
}

#[tokio::test]
async fn a_status_fault_answers_json_code_1_once_then_normal_answers_resume() {
    let (sim, token) = with_fault(Fault::Status(500)).await;

    let faulted = get_devices(&sim, &token, &client()).await.unwrap();
    let next = get_devices(&sim, &token, &client()).await.unwrap();

    assert_eq!(faulted.status(), 500);
    assert_eq!(faulted.json_value().await.unwrap()["code"], 1);
    assert_eq!(next.status(), 200);
    let statuses: Vec<u16> = sim.requests().iter().skip(1).map(|r| r.status).collect();
    assert_eq!(statuses, vec![500, 200]);
}

#[tokio::test]
async fn a_rule_skips_then_faults_several_times_for_its_method_only() {
    let sim = start(SimConfig::default()).await;
    let token = token(&sim).await;
    sim.inject(
        FaultRule::new("/api/", Fault::Status(503))
            .method("GET")
            .skip(1)
            .times(2),
    );

    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            get_devices(&sim, &token, &client())
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    let post = client()
        .post(format!("{}/api/1.0/buildings/", sim.base_url()))
        .bearer_auth(&token)
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();

    assert_eq!(statuses, vec![200, 503, 503, 200]);
    assert_eq!(post.status(), 200);
}

#[tokio::test]
async fn permission_denied_is_a_500_with_the_recorded_message() {
    let (sim, token) = with_fault(Fault::PermissionDenied).await;

    let response = get_devices(&sim, &token, &client()).await.unwrap();

    assert_eq!(response.status(), 500);
    let answer: Value = response.json_value().await.unwrap();
    assert_eq!(
        answer["msg"],
        "You don't have permissions to access this resource."
    );
    assert_eq!(answer["code"], "1");
}

#[tokio::test]
async fn an_html_page_fault_answers_text_html() {
    let (sim, token) = with_fault(Fault::HtmlPage(502)).await;

    let response = get_devices(&sim, &token, &client()).await.unwrap();

    assert_eq!(response.status(), 502);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("<center>nginx</center>")
    );
}

#[tokio::test]
async fn too_many_requests_and_unavailable_carry_retry_after_when_given() {
    let (sim, token) = with_fault(Fault::TooManyRequests {
        retry_after: Some("7".into()),
    })
    .await;
    let date = "Wed, 21 Oct 2037 07:28:00 GMT".to_string();
    sim.inject(FaultRule::new(
        DEVICES,
        Fault::Unavailable {
            retry_after: Some(date.clone()),
        },
    ));
    sim.inject(FaultRule::new(DEVICES, Fault::Unavailable { retry_after: None }).skip(2));

    let throttled = get_devices(&sim, &token, &client()).await.unwrap();
    let unavailable = get_devices(&sim, &token, &client()).await.unwrap();
    let bare = get_devices(&sim, &token, &client()).await.unwrap();

    assert_eq!(throttled.status(), 429);
    assert_eq!(throttled.headers()["retry-after"], "7");
    assert_eq!(unavailable.status(), 503);
    assert_eq!(unavailable.headers()["retry-after"].to_str().unwrap(), date);
    assert_eq!(bare.status(), 503);
    assert!(bare.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn an_unauthorized_fault_answers_401_and_is_counted() {
    let (sim, token) = with_fault(Fault::Unauthorized).await;

    let response = get_devices(&sim, &token, &client()).await.unwrap();

    assert_eq!(response.status(), 401);
    assert_eq!(sim.unauthorized_responses(), 1);
}

#[tokio::test]
async fn a_truncated_body_fails_the_client_read() {
    let (sim, token) = with_fault(Fault::Truncate).await;

    let response = get_devices(&sim, &token, &client()).await.unwrap();

    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.is_err());
}

#[tokio::test]
async fn a_reset_is_a_connection_error_not_a_timeout_and_has_no_status() {
    let (sim, token) = with_fault(Fault::Reset).await;

    let error = get_devices(&sim, &token, &client()).await.unwrap_err();

    assert!(!error.is_timeout(), "{error:?}");
    assert_eq!(sim.requests().last().unwrap().status, 0);
}

#[tokio::test]
async fn a_hang_times_out_a_client_with_a_short_timeout() {
    let (sim, token) = with_fault(Fault::Hang).await;

    let error = get_devices(
        &sim,
        &token,
        &client_with_timeout(Duration::from_millis(300)),
    )
    .await
    .unwrap_err();

    assert!(error.is_timeout(), "{error:?}");
}

#[tokio::test]
async fn a_dribbled_answer_sends_its_head_but_times_out_the_body() {
    let (sim, token) = with_fault(Fault::Dribble).await;
    let client = client_with_timeout(Duration::from_millis(500));

    let response = get_devices(&sim, &token, &client).await.unwrap();

    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.unwrap_err().is_timeout());
}

#[tokio::test]
async fn a_delay_answers_normally_but_late() {
    let (sim, token) = with_fault(Fault::Delay(Duration::from_millis(200))).await;
    let started = Instant::now();

    let response = get_devices(&sim, &token, &client()).await.unwrap();

    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn malformed_json_is_a_200_that_does_not_parse() {
    let (sim, token) = with_fault(Fault::MalformedJson).await;

    let response = get_devices(&sim, &token, &client()).await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.json_value().await.is_err());
}

#[tokio::test]
async fn a_wrong_id_type_turns_one_device_id_into_a_string() {
    let (sim, token) = with_fault(Fault::WrongIdType).await;

    let page: Value = get_devices(&sim, &token, &client())
        .await
        .unwrap()
        .json_value()
        .await
        .unwrap();

    assert_eq!(page["Devices"][0]["device_id"], "abc");
    assert!(page["Devices"][1]["device_id"].is_i64());
}

#[tokio::test]
async fn a_missing_id_removes_the_ids_of_one_item_in_v1_and_v2() {
    let (sim, token) = with_fault(Fault::MissingId).await;
    sim.inject(FaultRule::new("/api/1.0/devices/all/", Fault::MissingId));

    let v2: Value = get_devices(&sim, &token, &client())
        .await
        .unwrap()
        .json_value()
        .await
        .unwrap();
    let v1 = get_json(&sim, &token, "/api/1.0/devices/all/").await;

    assert!(v2["Devices"][0].get("device_id").is_none());
    assert!(v2["Devices"][0].get("name").is_some());
    assert!(v1["Devices"][0].get("device_id").is_none());
    assert!(v1["Devices"][0].get("id").is_none());
    assert!(v1["Devices"][1]["id"].is_i64());
}

#[tokio::test]
async fn an_oversize_page_is_valid_json_of_at_least_the_size_asked() {
    let (sim, token) = with_fault(Fault::Oversize(1 << 20)).await;

    let body = get_devices(&sim, &token, &client())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();

    assert!(body.len() >= 1 << 20);
    let page: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(page["Devices"].as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn a_fail_rate_of_one_spoils_every_api_request_but_not_the_token() {
    let sim = start(SimConfig {
        fail_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let token = token(&sim).await;

    for _ in 0..8 {
        let outcome = get_devices(&sim, &token, &client()).await;
        let spoiled = match outcome {
            Err(_) => true,
            Ok(response) if response.status().is_server_error() => true,
            Ok(response) => response.bytes().await.is_err(),
        };
        assert!(spoiled);
    }
}

#[tokio::test]
async fn every_request_is_recorded_with_its_answer() {
    let sim = start(SimConfig::default()).await;
    let token = token(&sim).await;

    client()
        .post(format!("{}/api/1.0/buildings/?x=1", sim.base_url()))
        .bearer_auth(&token)
        .form(&[("name", "HQ")])
        .send()
        .await
        .unwrap();

    let requests = sim.requests();
    assert_eq!(requests.len(), 2);
    let post = &requests[1];
    assert_eq!(
        (
            post.method.as_str(),
            post.path.as_str(),
            post.query.as_str()
        ),
        ("POST", "/api/1.0/buildings/", "x=1")
    );
    assert_eq!(
        post.header("Authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(post.body, "name=HQ");
    assert_eq!(post.status, 200);
}
