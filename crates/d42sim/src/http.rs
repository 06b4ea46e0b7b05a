//! Requests and answers as the simulator's endpoints see them: plain data, whole bodies, and the
//! way an answer is to be delivered, which a fault may break on purpose.
//!
//! [`crate::server`] turns hyper's requests into these and these into hyper's responses; the
//! endpoints never see a socket.

/// One request, its body read in full.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method as sent, e.g. `GET`.
    pub method: String,
    /// The path part of the request target, still percent-encoded, without the query.
    pub path: String,
    /// The query string after `?`, still encoded; empty when there is none.
    pub query: String,
    /// Headers in arrival order (look them up with [`Request::header`]).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The first header called `name` (compared case-insensitively) in a header list.
pub fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The first parameter `key` of a query string, percent- and `+`-decoded.
pub fn query_param_in(query: &str, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

impl Request {
    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// The first query parameter with this key, percent- and `+`-decoded.
    pub fn query_param(&self, key: &str) -> Option<String> {
        query_param_in(&self.query, key)
    }

    /// The body read as `application/x-www-form-urlencoded` pairs, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// How an answer reaches the client. Everything but [`Delivery::Normal`] closes the connection
/// afterwards; those variants exist so that clients can be tested against broken servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Send the whole answer.
    Normal,
    /// Send the head with the full `Content-Length`, then only `keep` body bytes, then close.
    Truncate {
        /// How many body bytes are sent before the close.
        keep: usize,
    },
    /// Send nothing and close with `SO_LINGER` 0, so that the client sees a connection reset.
    Reset,
    /// Send nothing and keep the connection open until the client leaves or the server stops.
    Hang,
    /// Send the head at once, then the body slowly.
    Dribble {
        /// Body bytes per second.
        bytes_per_sec: u32,
    },
}

/// One answer, built by an endpoint.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// Headers to send; `content-length` and `date` are added by the server.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
    /// How the answer is sent.
    pub delivery: Delivery,
}

impl Response {
    /// An answer with this content type and body, delivered normally.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("content-type".to_string(), content_type.to_string())],
            body: body.into(),
            delivery: Delivery::Normal,
        }
    }

    /// An `application/json` answer whose body is already-serialized JSON text.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "application/json", body)
    }

    /// An `application/json` answer serialized from a value.
    pub fn json_value(status: u16, value: &serde_json::Value) -> Response {
        Response::json(status, value.to_string())
    }

    /// A `text/plain` answer.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body.into())
    }

    /// A `text/html` answer.
    pub fn html(status: u16, body: impl Into<String>) -> Response {
        Response::new(status, "text/html; charset=utf-8", body.into())
    }

    /// The same answer with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The same answer, delivered differently.
    pub fn with_delivery(mut self, delivery: Delivery) -> Response {
        self.delivery = delivery;
        self
    }
}
