//! A small JSON writer: objects written member by member into one buffer, Python-style
//! separators, strings escaped only when they need it.

use std::fmt::Write;

/// Writes `s` as a JSON string literal.
pub fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    let special = s.bytes().fold(false, |seen, b| {
        seen | (b == b'"') | (b == b'\\') | (b < 0x20)
    });
    if !special {
        // The common case, and the one the benchmark's hundreds of thousands of records hit.
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON object being written into a borrowed buffer, one member at a time; nested objects
/// write into the same buffer, so a record is one allocation.
pub struct Obj<'a> {
    /// The text so far, this object starting with `{`.
    out: &'a mut String,
    /// Whether no member has been written yet (no separator needed).
    empty: bool,
    /// Whether an empty string member is written as null (`blankasnull=yes`). Only a record's
    /// own fields are: what the appliance does inside nested lists is not known.
    blank_as_null: bool,
}

impl<'a> Obj<'a> {
    /// Starts an object at the end of `out`.
    pub fn open(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj {
            out,
            empty: true,
            blank_as_null: false,
        }
    }

    /// Starts a device record at the end of `out`, its empty strings null when `blank_as_null`.
    pub fn open_record(out: &'a mut String, blank_as_null: bool) -> Obj<'a> {
        let mut record = Obj::open(out);
        record.blank_as_null = blank_as_null;
        record
    }

    /// Ends the object.
    pub fn close(self) {
        self.out.push('}');
    }

    /// Starts a member: separator, key and colon. Keys are this module's own identifiers, which
    /// need no escaping.
    fn key(&mut self, key: &str) -> &mut String {
        if !self.empty {
            self.out.push_str(", ");
        }
        self.empty = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\": ");
        self.out
    }

    pub fn str(&mut self, key: &str, value: &str) {
        if value.is_empty() && self.blank_as_null {
            self.null(key);
        } else {
            escape_into(self.key(key), value);
        }
    }

    pub fn opt_str(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => self.str(key, value),
            None => self.null(key),
        }
    }

    pub fn int(&mut self, key: &str, value: i64) {
        let _ = write!(self.key(key), "{value}");
    }

    pub fn opt_int(&mut self, key: &str, value: Option<i64>) {
        match value {
            Some(value) => self.int(key, value),
            None => self.null(key),
        }
    }

    /// A float written as Python does: `2.0`, never `2`.
    pub fn float(&mut self, key: &str, value: f64) {
        let _ = write!(self.key(key), "{value:?}");
    }

    pub fn opt_float(&mut self, key: &str, value: Option<f64>) {
        match value {
            Some(value) => self.float(key, value),
            None => self.null(key),
        }
    }

    pub fn bool(&mut self, key: &str, value: bool) {
        self.key(key).push_str(if value { "true" } else { "false" });
    }

    pub fn null(&mut self, key: &str) {
        self.key(key).push_str("null");
    }

    /// A member whose value is already-rendered JSON.
    pub fn raw(&mut self, key: &str, json: &str) {
        self.key(key).push_str(json);
    }

    /// A list of strings.
    pub fn str_list<'s>(&mut self, key: &str, items: impl Iterator<Item = &'s str>) {
        let out = self.key(key);
        out.push('[');
        for (n, item) in items.enumerate() {
            if n > 0 {
                out.push_str(", ");
            }
            escape_into(out, item);
        }
        out.push(']');
    }

    /// A list of objects, each written by `write`.
    pub fn list<T>(&mut self, key: &str, items: &[T], mut write: impl FnMut(&mut Obj<'_>, &T)) {
        let out = self.key(key);
        out.push('[');
        for (n, item) in items.iter().enumerate() {
            if n > 0 {
                out.push_str(", ");
            }
            let mut object = Obj::open(out);
            write(&mut object, item);
            object.close();
        }
        out.push(']');
    }
}
