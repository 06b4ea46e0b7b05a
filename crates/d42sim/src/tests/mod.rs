//! Tests of the simulator over real HTTP on 127.0.0.1, one file per area.

mod auth;
mod buildings;
mod devices;
mod faults;
mod lifecycle;
mod shapes;
mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use super::{SimConfig, Simulator};

/// Any free port on the loopback interface.
fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A simulator with `cfg`, on a free port.
async fn start(cfg: SimConfig) -> Simulator {
    Simulator::start(cfg, loopback())
        .await
        .expect("the simulator starts")
}

/// A client that never uses a proxy and never waits long.
fn client() -> reqwest::Client {
    client_with_timeout(Duration::from_secs(10))
}

/// A client that never uses a proxy, giving up after `timeout`.
fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .timeout(timeout)
        .build()
        .expect("the client builds")
}

/// Gets a token with the default credentials.
async fn token(sim: &Simulator) -> String {
    let cfg = SimConfig::default();
    let answer: Value = client()
        .post(format!("{}/tauth/1.0/token/", sim.base_url()))
        .basic_auth(&cfg.client_key, Some(&cfg.secret_key))
        .send()
        .await
        .unwrap()
        .json_value()
        .await
        .unwrap();
    answer["token"].as_str().expect("a token").to_string()
}

/// `GET path_and_query` with a Bearer token, expecting 200 JSON.
async fn get_json(sim: &Simulator, token: &str, path_and_query: &str) -> Value {
    let response = client()
        .get(format!("{}{}", sim.base_url(), path_and_query))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET {path_and_query}");
    response.json_value().await.unwrap()
}

/// Reading a response body as JSON (reqwest's own `json` feature is not enabled in this crate).
trait JsonBody {
    /// The body parsed as JSON; an error when it cannot be read or parsed.
    async fn json_value(self) -> anyhow::Result<Value>;
}

impl JsonBody for reqwest::Response {
    async fn json_value(self) -> anyhow::Result<Value> {
        Ok(serde_json::from_slice(&self.bytes().await?)?)
    }
}

/// The `device_id`s of a devices page.
fn page_ids(page: &Value, key: &str) -> Vec<i64> {
    page[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_i64().unwrap())
        .collect()
}
