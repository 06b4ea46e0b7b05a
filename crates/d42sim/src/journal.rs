//! What the simulator saw: every request in arrival order (the most recent [`MAX_RECORDED`]), and
//! the counters tests assert on.

use std::collections::{HashMap, VecDeque};

use crate::http::{self, Request};

/// How many requests are kept: enough for any test, bounded so that a benchmark pulling 400 000
/// devices (or running for hours) does not grow memory without end.
pub const MAX_RECORDED: usize = 100_000;

/// One request as the simulator received it, with the status it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The HTTP method.
    pub method: String,
    /// The path, still percent-encoded, without the query.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The headers as sent, including `Authorization`, so that tests can check what was sent.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy for non-UTF-8).
    pub body: String,
    /// The status answered; 0 while unanswered, or when the fault sent none (reset, hang).
    pub status: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl RecordedRequest {
    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        http::header_in(&self.headers, name)
    }

    /// The first query parameter with this key, decoded.
    pub fn query_param(&self, key: &str) -> Option<String> {
        http::query_param_in(&self.query, key)
    }
}

/// The request log and counters.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    /// The most recent requests, oldest first.
    entries: VecDeque<RecordedRequest>,
    /// Sequence number of `entries[0]`, to find an entry again when its answer is known.
    first_seq: u64,
    /// `POST /tauth/1.0/token/` requests, answered or not.
    pub token_requests: usize,
    /// Answers under `/api/` that refused the credential (401, or the 500 permission error).
    pub unauthorized: usize,
    /// Building POSTs received, by the `name` field of their form.
    pub building_posts: HashMap<String, usize>,
}

impl Journal {
    /// Records a request on arrival; returns its sequence number for [`Journal::answered`].
    pub fn arrived(&mut self, request: &Request) -> u64 {
        if request.method == "POST" && request.path == "/tauth/1.0/token/" {
            self.token_requests += 1;
        }
        if request.method == "POST"
            && request.path == "/api/1.0/buildings/"
            && let Some((_, name)) = request.form().into_iter().find(|(k, _)| k == "name")
        {
            *self.building_posts.entry(name).or_default() += 1;
        }
        if self.entries.len() == MAX_RECORDED {
            self.entries.pop_front();
            self.first_seq += 1;
        }
        self.entries.push_back(RecordedRequest {
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            body: String::from_utf8_lossy(&request.body).into_owned(),
            status: 0,
            at: std::time::Instant::now(),
        });
        self.first_seq + self.entries.len() as u64 - 1
    }

    /// Notes the status answered to request `seq` (0 when none was sent), and whether the answer
    /// refused the credential.
    pub fn answered(&mut self, seq: u64, path: &str, status: u16, refused: bool) {
        if refused && path.starts_with("/api/") {
            self.unauthorized += 1;
        }
        if let Some(index) = seq.checked_sub(self.first_seq)
            && let Some(entry) = self.entries.get_mut(index as usize)
        {
            entry.status = status;
        }
    }

    /// Every kept request, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.entries.iter().cloned().collect()
    }
}
