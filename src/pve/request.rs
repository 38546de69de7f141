//! API requests as data: method, path below `/api2/json`, form parameters. No I/O.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// HTTP method of an API call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// Read.
    Get,
    /// Create / start a task.
    Post,
    /// Update.
    Put,
    /// Remove.
    Delete,
}

impl Method {
    /// Whether the call only reads (safe to repeat).
    pub fn is_read(self) -> bool {
        self == Method::Get
    }

    /// The method as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Form parameters, as strings the way PVE receives them.
pub type Params = BTreeMap<String, String>;

/// One API call, built without I/O.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRequest {
    /// The method.
    pub method: Method,
    /// Path below `/api2/json`, starting with `/`; path segments already escaped.
    pub path: String,
    /// Query (GET/DELETE) or form body (POST/PUT) parameters.
    pub params: Params,
}

impl ApiRequest {
    /// A request with no parameters.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self { method, path: path.into(), params: Params::new() }
    }

    /// `GET path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::Get, path)
    }

    /// `POST path`.
    pub fn post(path: impl Into<String>) -> Self {
        Self::new(Method::Post, path)
    }

    /// `PUT path`.
    pub fn put(path: impl Into<String>) -> Self {
        Self::new(Method::Put, path)
    }

    /// `DELETE path`.
    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::Delete, path)
    }

    /// Adds a parameter.
    pub fn param(mut self, key: &str, value: impl ToString) -> Self {
        self.params.insert(key.to_string(), value.to_string());
        self
    }

    /// Adds a parameter when it has a value.
    pub fn opt(self, key: &str, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.param(key, v),
            None => self,
        }
    }

    /// Adds a boolean the way PVE wants it: `0` or `1`.
    pub fn flag(self, key: &str, value: bool) -> Self {
        self.param(key, if value { 1 } else { 0 })
    }
}

/// Escapes one path segment where RFC 3986 requires it. `@`, `:` and `!` are legal in a
/// segment and stay as they are, as other PVE clients send them (`/access/users/a@pve`,
/// UPIDs, token ids).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn segments_keep_at_and_colon_and_escape_slashes() {
        assert_eq!(super::segment("s1@pve"), "s1@pve");
        assert_eq!(super::segment("UPID:pve1:0000:x:root@pam!t:"), "UPID:pve1:0000:x:root@pam!t:");
        assert_eq!(super::segment("a/b c"), "a%2Fb%20c");
    }
}
