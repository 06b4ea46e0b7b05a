//! The device endpoints: `GET /api/2.0/devices/` (brief items plus `include_cols`),
//! `GET /api/2.0/devices/{id}/` and `GET /api/1.0/devices/all/` (full records), each with
//! `blankasnull`.
//!
//! A page is the cached JSON of its items joined together; the join runs on the blocking pool so
//! that rendering a thousand uncached records does not stall other connections.

use std::sync::Arc;

use serde_json::json;

use crate::http::{Request, Response};
use crate::inventory::{Filter, View};
use crate::state::Shared;
use crate::support::now_ms;

/// Which list endpoint is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `/api/2.0/devices/`.
    V2,
    /// `/api/1.0/devices/all/`.
    V1All,
}

/// A devices list request.
pub(crate) async fn list(shared: Arc<Shared>, request: &Request, endpoint: Endpoint) -> Response {
    let delay = shared.knobs().page_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (offset, limit) = match paging(request, shared.cfg.max_limit) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let offset = if shared.knobs().ignores_offset {
        0
    } else {
        offset
    };
    let filter = match filter(request) {
        Ok(filter) => filter,
        Err(response) => return response,
    };
    let view = match endpoint {
        Endpoint::V1All => View::v1(blank_as_null(request)),
        Endpoint::V2 => View::v2(&include_cols(request), blank_as_null(request)),
    };
    let list_key = match endpoint {
        Endpoint::V1All => "Devices",
        Endpoint::V2 => shared.cfg.list_key.as_str(),
    };
    let (total, entries) = shared.inventory().page(&filter, offset, limit);
    let with_total = shared.cfg.include_total_count;
    let page_shared = shared.clone();
    let body = tokio::task::spawn_blocking(move || {
        let seed = page_shared.cfg.seed;
        let key = view.cache_key();
        let items: Vec<Arc<str>> = entries
            .iter()
            .map(|e| e.rendered(seed, &view, &key))
            .collect();
        let size: usize = items.iter().map(|i| i.len() + 2).sum();
        let mut body = String::with_capacity(size + 128);
        if with_total {
            body.push_str(&format!("{{\"total_count\": {total}, "));
        } else {
            body.push('{');
        }
        body.push_str(&format!(
            "\"offset\": {offset}, \"limit\": {limit}, \"{list_key}\": ["
        ));
        for (n, item) in items.iter().enumerate() {
            if n > 0 {
                body.push_str(", ");
            }
            body.push_str(item);
        }
        body.push_str("]}");
        body
    })
    .await
    .unwrap_or_default();
    shared.inventory_mut().drift_after_page(now_ms(), offset);
    Response::json(200, body)
}

/// `GET /api/2.0/devices/{id}/`: one v2 item (with `include_cols`), or 404.
pub(crate) fn one(shared: &Shared, request: &Request, id: i64) -> Response {
    let Some(entry) = shared.inventory().get(id) else {
        return Response::json(404, r#"{"detail": "Not found."}"#);
    };
    let view = View::v2(&include_cols(request), blank_as_null(request));
    Response::json(
        200,
        entry
            .rendered(shared.cfg.seed, &view, &view.cache_key())
            .as_bytes(),
    )
}

/// `offset` and `limit`: limit defaults to, and is capped at, `max_limit`.
fn paging(request: &Request, max_limit: usize) -> Result<(usize, usize), Response> {
    let number = |key: &str| -> Result<usize, Response> {
        match request.query_param(key).filter(|v| !v.is_empty()) {
            None => Ok(0),
            Some(value) => value.trim().parse().map_err(|_| {
                Response::json_value(
                    400,
                    &json!({"msg": format!("invalid {key}: {value}"), "code": 1}),
                )
            }),
        }
    };
    let offset = number("offset")?;
    let limit = match number("limit")? {
        0 => max_limit,
        limit => limit.min(max_limit),
    };
    Ok((offset, limit))
}

/// The `last_edited_gt`/`_lt` (v2) or `last_updated_gt`/`_lt` (v1) filter: day-granular, "equal
/// to or greater than" the day for `_gt`, before the day for `_lt`.
fn filter(request: &Request) -> Result<Filter, Response> {
    let day = |keys: [&str; 2]| -> Result<Option<i64>, Response> {
        let Some((key, value)) = keys
            .iter()
            .find_map(|k| request.query_param(k).map(|v| (*k, v)))
        else {
            return Ok(None);
        };
        let date = value.get(..10).unwrap_or(&value);
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .map(|d| {
                Some(
                    d.and_time(chrono::NaiveTime::MIN)
                        .and_utc()
                        .timestamp_millis(),
                )
            })
            .map_err(|_| {
                Response::json_value(
                    400,
                    &json!({"msg": format!("invalid {key}: {value}"), "code": 1}),
                )
            })
    };
    Ok(Filter {
        updated_from_ms: day(["last_edited_gt", "last_updated_gt"])?,
        updated_before_ms: day(["last_edited_lt", "last_updated_lt"])?,
    })
}

/// The `include_cols` list, split on commas.
fn include_cols(request: &Request) -> Vec<String> {
    request
        .query_param("include_cols")
        .map(|cols| {
            cols.split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `blankasnull=yes` (or `true`) asks for null instead of empty strings.
fn blank_as_null(request: &Request) -> bool {
    request
        .query_param("blankasnull")
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "yes" | "true"))
}
