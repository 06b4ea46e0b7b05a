//! The building endpoints: `POST /api/1.0/buildings/` (a form-encoded upsert keyed by name) and
//! `GET /api/1.0/buildings/`.

use std::collections::BTreeMap;

use serde_json::json;

use crate::buildings::SimBuilding;
use crate::http::{Request, Response};
use crate::state::Shared;
use crate::support::lock;

/// The form fields a building POST may carry besides `name`; others are ignored, as Device42 does.
const FIELDS: &[&str] = &[
    "address",
    "contact_name",
    "contact_phone",
    "notes",
    "latitude",
    "longitude",
    "groups",
    "tags",
    "tags_remove",
    "new_name",
];

/// `POST /api/1.0/buildings/`.
pub(crate) async fn post(shared: &Shared, request: &Request) -> Response {
    let delay = shared.knobs().post_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let content_type = request
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return error(
            400,
            "unsupported content type: send application/x-www-form-urlencoded",
        );
    }
    let form = request.form();
    let Some(name) = form
        .iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.trim().to_string())
    else {
        return error(400, "name is required");
    };
    if name.is_empty() {
        return error(400, "name is required");
    }
    let mut fields: BTreeMap<String, String> = form
        .into_iter()
        .filter(|(k, _)| FIELDS.contains(&k.as_str()))
        .collect();
    fields.insert("name".to_string(), name.clone());
    let mut buildings = lock(&shared.buildings);
    if let Some(rejection) = buildings.rejections.get(&name) {
        return rejection.response(&name);
    }
    let building = buildings.upsert(&name, fields);
    Response::json_value(
        200,
        &json!({
            "msg": ["Building added/updated successfully", building.building_id, building.name, true, true],
            "code": 0
        }),
    )
}

/// `GET /api/1.0/buildings/?name=`.
pub(crate) fn list(shared: &Shared, request: &Request) -> Response {
    let wanted = request.query_param("name");
    let buildings = lock(&shared.buildings).all();
    let items: Vec<serde_json::Value> = buildings
        .iter()
        .filter(|b| wanted.as_ref().is_none_or(|name| &b.name == name))
        .map(render)
        .collect();
    let total = items.len();
    Response::json_value(
        200,
        &json!({"buildings": items, "total_count": total, "offset": 0, "limit": shared.cfg.max_limit}),
    )
}

/// One building as the list renders it.
fn render(building: &SimBuilding) -> serde_json::Value {
    let field = |key: &str| building.fields.get(key).cloned().unwrap_or_default();
    let tags: Vec<String> = field("tags")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    json!({
        "building_id": building.building_id,
        "name": building.name,
        "address": field("address"),
        "contact_name": field("contact_name"),
        "contact_phone": field("contact_phone"),
        "notes": field("notes"),
        "groups": field("groups"),
        "custom_fields": [],
        "tags": tags,
        "latitude": field("latitude"),
        "longitude": field("longitude"),
    })
}

/// A Device42-style error answer.
fn error(status: u16, msg: &str) -> Response {
    Response::json_value(status, &json!({"msg": msg, "code": 1}))
}
