//! Token issue, failure, expiry, extension and revocation.

use std::time::Duration;

use serde_json::Value;

use super::{JsonBody, client, get_json, start, token};
use crate::{SimConfig, TokenRefusal};

/// `POST /tauth/1.0/token/` with these Basic credentials (none when `None`).
async fn post_token(base_url: &str, credentials: Option<(&str, &str)>) -> reqwest::Response {
    let request = client().post(format!("{base_url}/tauth/1.0/token/"));
    let request = match credentials {
        Some((key, secret)) => request.basic_auth(key, Some(secret)),
        None => request,
    };
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_right_credentials_get_a_jwt_looking_token_with_ttl_in_minutes() {
    let sim = start(SimConfig::default()).await;
    let before = chrono::Utc::now();

    let response = post_token(&sim.base_url(), Some(("sim-client-key", "sim-secret-key"))).await;

    assert_eq!(response.status(), 200);
    let answer: Value = response.json_value().await.unwrap();
    assert_eq!(answer["code"], 0);
    assert_eq!(answer["msg"], "connected");
    assert_eq!(answer["ttl"], 10);
    assert_eq!(answer["token_id"], 1);
    let token = answer["token"].as_str().unwrap();
    assert!(
        token.starts_with("eyJ") && token.split('.').count() == 3,
        "{token}"
    );
    let expires =
        chrono::DateTime::parse_from_rfc3339(answer["expires"].as_str().unwrap()).unwrap();
    let lifetime = expires.with_timezone(&chrono::Utc) - before;
    assert!((599..=601).contains(&lifetime.num_seconds()), "{lifetime}");
    assert_eq!(sim.issued_tokens(), vec![token.to_string()]);
    assert_eq!(sim.token_requests(), 1);
}

#[tokio::test]
async fn bad_or_missing_credentials_get_the_recorded_permission_error_with_500() {
    let sim = start(SimConfig::default()).await;

    let wrong = post_token(&sim.base_url(), Some(("sim-client-key", "wrong"))).await;
    let missing = post_token(&sim.base_url(), None).await;

    for response in [wrong, missing] {
        assert_eq!(response.status(), 500);
        let answer: Value = response.json_value().await.unwrap();
        assert_eq!(
            answer["msg"],
            "You don't have permissions to access this resource."
        );
        assert_eq!(answer["code"], "1");
    }
    assert_eq!(sim.token_requests(), 2);
    assert!(sim.issued_tokens().is_empty());
}

#[tokio::test]
async fn a_short_ttl_is_fractional_minutes_and_the_skew_moves_only_expires() {
    let cfg = SimConfig {
        token_ttl: Duration::from_secs(5),
        expires_skew: 600,
        ..SimConfig::default()
    };
    let sim = start(cfg).await;
    let before = chrono::Utc::now();

    let answer: Value = post_token(&sim.base_url(), Some(("sim-client-key", "sim-secret-key")))
        .await
        .json_value()
        .await
        .unwrap();

    let ttl = answer["ttl"].as_f64().unwrap();
    assert!((ttl - 5.0 / 60.0).abs() < 1e-9, "{ttl}");
    let expires =
        chrono::DateTime::parse_from_rfc3339(answer["expires"].as_str().unwrap()).unwrap();
    let lifetime = (expires.with_timezone(&chrono::Utc) - before).num_seconds();
    assert!((604..=606).contains(&lifetime), "{lifetime}");
}

/// Asserts that `response` is the appliance's refused-credential answer: HTTP 500 with the
/// recorded permission message.
async fn assert_refused(response: reqwest::Response) {
    assert_eq!(response.status(), 500);
    let answer: Value = response.json_value().await.unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"msg": "You don't have permissions to access this resource.", "code": "1"})
    );
}

#[tokio::test]
async fn api_requests_without_a_live_token_get_the_permission_500_and_are_counted() {
    let sim = start(SimConfig::default()).await;
    let devices = format!("{}/api/2.0/devices/", sim.base_url());

    let none = client().get(&devices).send().await.unwrap();
    let bogus = client()
        .get(&devices)
        .bearer_auth("eyJ.bogus.token")
        .send()
        .await
        .unwrap();

    for response in [none, bogus] {
        assert_refused(response).await;
    }
    assert_eq!(sim.unauthorized_responses(), 2);
}

#[tokio::test]
async fn expired_tokens_get_the_permission_500() {
    let sim = start(SimConfig::default()).await;
    let old = token(&sim).await;
    sim.expire_tokens();
    sim.set_token_ttl(Duration::ZERO);
    let born_dead = token(&sim).await;
    let devices = format!("{}/api/2.0/devices/", sim.base_url());

    let with_old = client()
        .get(&devices)
        .bearer_auth(&old)
        .send()
        .await
        .unwrap();
    let with_born_dead = client()
        .get(&devices)
        .bearer_auth(&born_dead)
        .send()
        .await
        .unwrap();

    assert_refused(with_old).await;
    assert_refused(with_born_dead).await;
    assert_eq!(sim.unauthorized_responses(), 2);
}

#[tokio::test]
async fn a_simulator_set_to_answer_401_refuses_tokens_with_401() {
    let sim = start(SimConfig {
        token_refusal: TokenRefusal::Unauthorized,
        ..SimConfig::default()
    })
    .await;
    let old = token(&sim).await;
    sim.expire_tokens();

    let response = client()
        .get(format!("{}/api/2.0/devices/", sim.base_url()))
        .bearer_auth(&old)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 401);
    let answer: Value = response.json_value().await.unwrap();
    assert_eq!(answer["detail"], "Invalid token.");
    assert_eq!(sim.unauthorized_responses(), 1);
}

#[tokio::test]
async fn extending_a_token_gives_a_new_one_and_kills_the_old_one() {
    let sim = start(SimConfig::default()).await;
    let old = token(&sim).await;

    let response = client()
        .put(format!("{}/tauth/1.0/token/1/", sim.base_url()))
        .bearer_auth(&old)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let answer: Value = response.json_value().await.unwrap();
    assert_eq!(answer["token_id"], 2);
    let new = answer["token"].as_str().unwrap();
    assert_ne!(new, old);
    get_json(&sim, new, "/api/2.0/devices/?limit=1").await;
    let with_old = client()
        .get(format!("{}/api/2.0/devices/", sim.base_url()))
        .bearer_auth(&old)
        .send()
        .await
        .unwrap();
    assert_refused(with_old).await;
}

#[tokio::test]
async fn deleting_a_token_revokes_it() {
    let sim = start(SimConfig::default()).await;
    let token = token(&sim).await;

    let response = client()
        .delete(format!("{}/tauth/1.0/token/1/", sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let answer: Value = response.json_value().await.unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"msg": "API Token deleted", "code": "0"})
    );
    let after = client()
        .get(format!("{}/api/2.0/devices/", sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_refused(after).await;
}
