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

/// Form parameters, as strings the way PVE receives them. An array parameter (`command` of
/// `agent/exec`) travels as the same key repeated, which pve-http-server's
/// `decode_urlencoded` collects into a list; here its items are joined by [`LIST_SEP`].
pub type Params = BTreeMap<String, String>;

/// What joins the items of an array parameter in [`Params`] (NUL, which no form value
/// carries; PVE's own `split_list` accepts it too).
pub const LIST_SEP: char = '\0';

/// The items of a parameter value: one, or several joined by [`LIST_SEP`].
pub fn list_items(value: &str) -> impl Iterator<Item = &str> {
    value.split(LIST_SEP)
}

/// Adds `key=value` to `params`, appending to a list when the key is already there
/// (the way PVE reads a repeated key).
pub fn push_param(params: &mut Params, key: String, value: String) {
    match params.get_mut(&key) {
        Some(old) => {
            old.push(LIST_SEP);
            old.push_str(&value);
        }
        None => {
            params.insert(key, value);
        }
    }
}

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

    /// Adds an array parameter (sent as the key repeated, once per item).
    pub fn list<S: AsRef<str>>(mut self, key: &str, items: &[S]) -> Self {
        let joined: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
        self.params.insert(key.to_string(), joined.join(&LIST_SEP.to_string()));
        self
    }

    /// The form pairs on the wire: an array parameter's key once per item.
    pub fn wire_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().flat_map(|(k, v)| list_items(v).map(move |item| (k.as_str(), item)))
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

    #[test]
    fn an_array_parameter_goes_out_as_the_key_repeated_and_comes_back_whole() {
        let req = super::ApiRequest::post("/x").list("command", &["grep", "-c", "a b"]).param("pid", 7);
        let wire: Vec<(&str, &str)> = req.wire_pairs().collect();
        assert_eq!(wire, [("command", "grep"), ("command", "-c"), ("command", "a b"), ("pid", "7")]);
        let mut back = super::Params::new();
        for (k, v) in wire {
            super::push_param(&mut back, k.to_string(), v.to_string());
        }
        assert_eq!(back, req.params);
    }
}
