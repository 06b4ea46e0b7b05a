//! The endpoints, and the handler in front of them: it records each request, applies faults,
//! checks the Bearer token on `/api/`, and dispatches to the endpoint modules.

mod auth;
mod buildings;
mod devices;

use std::sync::Arc;

use crate::answers::{is_refusal, not_allowed, not_found};
use crate::faults::Fault;
use crate::http::{Delivery, Request, Response};
use crate::state::Shared;
use crate::support::lock;
use devices::Endpoint;

/// Answers one request, keeping the journal and fault rules up to date.
pub(crate) async fn handle(shared: Arc<Shared>, request: Request) -> Response {
    let seq = lock(&shared.journal).arrived(&request);
    let fault = lock(&shared.faults).take(&request.method, &request.path);
    let response = match fault.as_ref().and_then(Fault::instead) {
        Some(response) => response,
        None => {
            if let Some(Fault::Delay(delay)) = &fault {
                tokio::time::sleep(*delay).await;
            }
            let response = route(shared.clone(), &request).await;
            match &fault {
                Some(fault) => fault.spoil(response),
                None => response,
            }
        }
    };
    let status = match response.delivery {
        Delivery::Reset | Delivery::Hang => 0,
        _ => response.status,
    };
    let refused = is_refusal(&response) && status != 0;
    lock(&shared.journal).answered(seq, &request.path, status, refused);
    response
}

/// Finds the endpoint for a request and runs it.
async fn route(shared: Arc<Shared>, request: &Request) -> Response {
    let method = request.method.as_str();
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["tauth", "1.0", "token"] => match method {
            "POST" => auth::issue(&shared, request),
            _ => not_allowed(method),
        },
        ["tauth", "1.0", "token", id] => {
            let Ok(id) = id.parse() else {
                return not_found();
            };
            match method {
                "PUT" => auth::extend(&shared, request, id),
                "DELETE" => auth::revoke(&shared, request, id),
                _ => not_allowed(method),
            }
        }
        ["api", ..] => api(shared, request, &segments).await,
        _ => not_found(),
    }
}

/// The `/api/` endpoints, all behind the Bearer check.
async fn api(shared: Arc<Shared>, request: &Request, segments: &[&str]) -> Response {
    let method = request.method.as_str();
    let known = matches!(
        segments,
        ["api", "2.0", "devices"]
            | ["api", "2.0", "devices", _]
            | ["api", "1.0", "devices", "all"]
            | ["api", "1.0", "buildings"]
    );
    if !known {
        return not_found();
    }
    if let Err(response) = auth::bearer(&shared, request) {
        return response;
    }
    match (method, segments) {
        ("GET", ["api", "2.0", "devices"]) => devices::list(shared, request, Endpoint::V2).await,
        ("GET", ["api", "1.0", "devices", "all"]) => {
            devices::list(shared, request, Endpoint::V1All).await
        }
        ("GET", ["api", "2.0", "devices", id]) => match id.parse() {
            Ok(id) => devices::one(&shared, request, id),
            Err(_) => not_found(),
        },
        ("POST", ["api", "1.0", "buildings"]) => buildings::post(&shared, request).await,
        ("GET", ["api", "1.0", "buildings"]) => buildings::list(&shared, request),
        _ => not_allowed(method),
    }
}
