//! The building endpoints: `POST /api/1.0/buildings/` (a form-encoded upsert keyed by name) and
//! `GET /api/1.0/buildings/`.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use super::faults::Rejection;
use super::state::{Shared, lock};
use crate::httpd::{Request, Response};

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

/// A building as the simulator stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimBuilding {
    /// The id Device42 assigned; kept across upserts of the same name.
    pub building_id: i64,
    /// The current name (the key of the upsert).
    pub name: String,
    /// The form fields last posted for it, `name` included.
    pub fields: BTreeMap<String, String>,
}

/// All buildings and the names whose POSTs are refused.
#[derive(Debug, Default)]
pub(crate) struct Buildings {
    /// Buildings by name.
    by_name: BTreeMap<String, SimBuilding>,
    /// The last `building_id` handed out.
    last_id: i64,
    /// Names to refuse, and how.
    pub rejections: HashMap<String, Rejection>,
}

impl Buildings {
    /// Every building, by name.
    pub fn all(&self) -> Vec<SimBuilding> {
        self.by_name.values().cloned().collect()
    }

    /// Inserts or updates the building `name` (renaming it to `new_name` when given); returns it.
    fn upsert(&mut self, name: &str, fields: BTreeMap<String, String>) -> SimBuilding {
        let mut building = match self.by_name.remove(name) {
            Some(existing) => existing,
            None => {
                self.last_id += 1;
                SimBuilding {
                    building_id: self.last_id,
                    name: name.to_string(),
                    fields: BTreeMap::new(),
                }
            }
        };
        if let Some(new_name) = fields.get("new_name").filter(|n| !n.is_empty()) {
            building.name = new_name.clone();
        }
        building.fields = fields;
        self.by_name.insert(building.name.clone(), building.clone());
        building
    }
}

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
