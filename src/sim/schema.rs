//! Parameter verification against the official PVE API schema (embedded extract of the
//! endpoints the simulator serves), giving PVE's `400 Parameter verification failed.`

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::pve::{ApiFailure, Method, Params};

static SCHEMA_JSON: &str = include_str!("schema.json");

struct Endpoint {
    template: String,
    regex: Regex,
    vars: Vec<String>,
    literal: usize,
    methods: BTreeMap<String, Value>,
}

static ENDPOINTS: LazyLock<Vec<Endpoint>> = LazyLock::new(|| {
    let v: Value = serde_json::from_str(SCHEMA_JSON).expect("embedded schema is JSON");
    let mut out: Vec<Endpoint> = v["paths"]
        .as_object()
        .expect("schema has paths")
        .iter()
        .map(|(tpl, methods)| {
            let mut rx = String::from("^");
            let mut vars = Vec::new();
            let mut literal = 0;
            for seg in tpl.split('/').filter(|s| !s.is_empty()) {
                if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    rx.push_str("/([^/]+)");
                    vars.push(name.to_string());
                } else {
                    rx.push('/');
                    rx.push_str(&regex::escape(seg));
                    literal += 1;
                }
            }
            rx.push('$');
            let methods = methods.as_object().expect("methods").iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            Endpoint { template: tpl.clone(), regex: Regex::new(&rx).expect("path regex"), vars, literal, methods }
        })
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.literal));
    out
});

static FORMATS: LazyLock<BTreeMap<&'static str, Regex>> = LazyLock::new(|| {
    let userid = r"[^\s:/]+@[A-Za-z][A-Za-z0-9\.\-_]+";
    let list = |item: &str| format!(r"^{item}(?:[,;\s]+{item})*$");
    let mut m = BTreeMap::new();
    let mut add = |name: &'static str, rx: String| {
        m.insert(name, Regex::new(&rx).expect("format regex"));
    };
    add("pve-vmid", r"^[1-9][0-9]{2,8}$".into());
    add("pve-node", r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?$".into());
    add(
        "dns-name",
        r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?$".into(),
    );
    add("pve-poolid", r"^[A-Za-z0-9_\-]+(?:/[A-Za-z0-9_\-]+){0,2}$".into());
    add("pve-userid", format!("^{userid}$"));
    add("pve-userid-list", list(userid));
    add("pve-groupid", r"^[A-Za-z0-9\.\-_]+$".into());
    add("pve-groupid-list", list(r"[A-Za-z0-9\.\-_]+"));
    add("pve-roleid-list", list(r"[A-Za-z0-9\.\-_]+"));
    add("pve-tokenid-list", list(&format!(r"{userid}![A-Za-z][A-Za-z0-9\.\-_]+")));
    add("pve-storage-id", r"^[a-z][a-z0-9\-_.]*[a-z0-9]$".into());
    // pve-common JSONSchema.pm `$CONFIGID_RE` (with '-' since 6b0c18d, 2020; case-insensitive).
    add("pve-configid", r"(?i)^[a-z][a-z0-9_-]+$".into());
    add("pve-configid-list", list(r"(?i:[a-z][a-z0-9_-]+)"));
    add("pve-iface", r"^[a-zA-Z][a-zA-Z0-9_.\-]*$".into());
    add("pve-iface-list", list(r"[a-zA-Z][a-zA-Z0-9_.\-]*"));
    add("pve-bridge-id", r"^[-_.\w\d]+$".into());
    add("mac-addr", r"^[a-fA-F0-9]{2}(?::[a-fA-F0-9]{2}){5}$".into());
    add("pve-tag-list", r"^[a-zA-Z0-9_][a-zA-Z0-9_\-+.]*(?:[;, ][a-zA-Z0-9_][a-zA-Z0-9_\-+.]*)*$".into());
    add("ipv4", r"^(?:\d{1,3}\.){3}\d{1,3}$".into());
    add("CIDRv4", r"^(?:\d{1,3}\.){3}\d{1,3}/\d{1,2}$".into());
    add("pve-priv-list", list(r"[A-Za-z\.]+"));
    add("pve-realm", r"^[A-Za-z][A-Za-z0-9\.\-_]+$".into());
    m
});

/// The endpoint template a request path matches, with its path variables.
pub struct Route {
    /// e.g. `/nodes/{node}/qemu/{vmid}/clone`.
    pub template: String,
    /// Path variables, unescaped.
    pub vars: BTreeMap<String, String>,
    /// Whether API tokens may call it.
    pub allowtoken: bool,
}

/// Finds the endpoint of `method path`; PVE's 501 when there is none.
pub fn route(method: Method, path: &str) -> Result<Route, ApiFailure> {
    let not_impl = || ApiFailure::new(501, format!("Method '{method} {path}' not implemented"));
    for ep in ENDPOINTS.iter() {
        let Some(caps) = ep.regex.captures(path) else { continue };
        let info = ep.methods.get(method.as_str()).ok_or_else(not_impl)?;
        let vars = ep
            .vars
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let raw = &caps[i + 1];
                (name.clone(), urlencoding::decode(raw).map(|s| s.into_owned()).unwrap_or_else(|_| raw.to_string()))
            })
            .collect();
        let allowtoken = info.get("allowtoken").and_then(Value::as_bool).unwrap_or(true);
        return Ok(Route { template: ep.template.clone(), vars, allowtoken });
    }
    Err(not_impl())
}

/// Verifies parameters (and path variables) against the schema, as `PVE::JSONSchema` does.
pub fn validate(method: Method, route: &Route, params: &Params) -> Result<(), ApiFailure> {
    let Some(ep) = ENDPOINTS.iter().find(|e| e.template == route.template) else {
        return Err(ApiFailure::new(501, format!("Method '{} {}' not implemented", method.as_str(), route.template)));
    };
    let props = ep.methods[method.as_str()]["parameters"].as_object().cloned().unwrap_or_default();
    let mut errors = BTreeMap::new();
    for (k, v) in &route.vars {
        if let Some(spec) = props.get(k) {
            check_value(k, v, spec, &mut errors);
        }
    }
    for (k, v) in params {
        match param_spec(&props, k) {
            Some(spec) => check_value(k, v, spec, &mut errors),
            None => {
                errors.insert(
                    k.clone(),
                    "property is not defined in schema and the schema does not allow additional properties".into(),
                );
            }
        }
    }
    for (k, spec) in &props {
        let optional = spec.get("optional").is_some_and(|o| o.as_bool() == Some(true) || o.as_u64() == Some(1));
        if k.contains("[n]") || optional || params.contains_key(k) || route.vars.contains_key(k) {
            continue;
        }
        errors.insert(k.clone(), "property is missing and it is not optional".into());
    }
    for k in params.keys() {
        if let Some(req) = param_spec(&props, k).and_then(|s| s.get("requires")).and_then(Value::as_str)
            && !params.contains_key(req)
        {
            errors.insert(k.clone(), format!("parameter '{k}' requires '{req}'"));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ApiFailure::params(errors)) }
}

fn param_spec<'a>(props: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    if let Some(s) = props.get(key) {
        return Some(s);
    }
    let split = key.find(|c: char| c.is_ascii_digit())?;
    let (base, num) = key.split_at(split);
    (num.chars().all(|c| c.is_ascii_digit())).then(|| props.get(&format!("{base}[n]"))).flatten()
}

fn num(spec: &Value, key: &str) -> Option<f64> {
    match spec.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The message of a format's verifier (pve-common JSONSchema.pm: `pve_verify_vmid`,
/// `pve_verify_node_name`); others in the generic form.
fn format_error(format: &str, v: &str) -> String {
    match format {
        "pve-vmid" => "value does not look like a valid VM ID".into(),
        "pve-node" => "value does not look like a valid node name".into(),
        f => format!("value '{v}' does not look like a valid {f}"),
    }
}

fn check_value(name: &str, v: &str, spec: &Value, errors: &mut BTreeMap<String, String>) {
    let mut err = |msg: String| {
        errors.entry(name.to_string()).or_insert(msg);
    };
    match spec.get("type").and_then(Value::as_str).unwrap_or("string") {
        // An array arrives as the key repeated; each item meets the `items` schema.
        "array" => {
            let items = spec.get("items").cloned().unwrap_or(Value::Null);
            for item in crate::pve::list_items(v) {
                check_value(name, item, &items, errors);
            }
        }
        "integer" => {
            let Ok(n) = v.parse::<i64>() else { return err(format!("type check ('integer') failed - got '{v}'")) };
            // pve-common JSONSchema::check_prop runs the format's verifier before the range.
            if let Some(f) = spec.get("format").and_then(Value::as_str)
                && FORMATS.get(f).is_some_and(|rx| !rx.is_match(v))
            {
                return err(format_error(f, v));
            }
            if let Some(min) = num(spec, "minimum").filter(|m| (n as f64) < *m) {
                err(format!("value must have a minimum value of {min}"));
            } else if let Some(max) = num(spec, "maximum").filter(|m| (n as f64) > *m) {
                err(format!("value must have a maximum value of {max}"));
            }
        }
        "number" => {
            if v.parse::<f64>().is_err() {
                err(format!("type check ('number') failed - got '{v}'"));
            }
        }
        "boolean" => {
            if !matches!(v.to_ascii_lowercase().as_str(), "0" | "1" | "true" | "false" | "yes" | "no" | "on" | "off") {
                err(format!("type check ('boolean') failed - got '{v}'"));
            }
        }
        _ => {
            if let Some(en) = spec.get("enum").and_then(Value::as_array)
                && !en.iter().any(|e| e.as_str() == Some(v))
            {
                let list: Vec<&str> = en.iter().filter_map(Value::as_str).collect();
                return err(format!("value '{v}' does not have a value in the enumeration '{}'", list.join(", ")));
            }
            if let Some(max) = num(spec, "maxLength").filter(|m| v.chars().count() as f64 > *m) {
                return err(format!("value may only be {max} characters long"));
            }
            if let Some(min) = num(spec, "minLength").filter(|m| (v.chars().count() as f64) < *m) {
                return err(format!("value must be at least {min} characters long"));
            }
            if let Some(p) = spec.get("pattern").and_then(Value::as_str) {
                let inner = p.strip_prefix("(?^:").and_then(|s| s.strip_suffix(')')).unwrap_or(p);
                if let Ok(rx) = Regex::new(&format!("^(?:{inner})$"))
                    && !rx.is_match(v)
                {
                    return err("value does not match the regex pattern".into());
                }
            }
            match spec.get("format") {
                Some(Value::Object(fmt)) => {
                    if let Err(m) = check_property_string(v, fmt) {
                        err(m);
                    }
                }
                Some(Value::String(f)) => {
                    if let Some(rx) = FORMATS.get(f.as_str())
                        && !rx.is_match(v)
                    {
                        err(format_error(f, v));
                    }
                }
                _ => {}
            }
        }
    }
}

fn check_property_string(value: &str, fmt: &serde_json::Map<String, Value>) -> Result<(), String> {
    let default_key = fmt.iter().find(|(_, s)| s.get("default_key").is_some()).map(|(k, _)| k.clone());
    let mut inner = BTreeMap::new();
    for part in value.split(',').filter(|p| !p.is_empty()) {
        let (key, val) = match part.split_once('=') {
            Some((k, v)) => (k.to_string(), v),
            None => match &default_key {
                Some(d) => (d.clone(), part),
                None => {
                    return Err(format!(
                        "invalid format - value without key, but schema does not define a default key: '{part}'"
                    ));
                }
            },
        };
        let Some(spec) = fmt.get(&key) else {
            return Err(format!("invalid format - property '{key}' is not defined in schema"));
        };
        if let Some(alias) = spec.get("alias").and_then(Value::as_str) {
            if let Some(aspec) = fmt.get(alias) {
                check_value(alias, val, aspec, &mut inner);
            }
            continue;
        }
        check_value(&key, val, spec, &mut inner);
    }
    match inner.into_iter().next() {
        None => Ok(()),
        Some((k, m)) => Err(format!("invalid format - {k}: {m}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn clone_requires_newid_and_checks_types() {
        let r = route(Method::Post, "/nodes/pve1/qemu/100/clone").unwrap();
        let e = validate(Method::Post, &r, &p(&[])).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.errors["newid"], "property is missing and it is not optional");
        let e = validate(Method::Post, &r, &p(&[("newid", "abc")])).unwrap_err();
        assert_eq!(e.errors["newid"], "type check ('integer') failed - got 'abc'");
        let e = validate(Method::Post, &r, &p(&[("newid", "99")])).unwrap_err();
        assert_eq!(e.errors["newid"], "value does not look like a valid VM ID");
        assert!(validate(Method::Post, &r, &p(&[("newid", "200"), ("full", "1"), ("name", "web-1")])).is_ok());
    }

    #[test]
    fn unknown_parameters_and_bad_net_strings_are_refused() {
        let r = route(Method::Put, "/nodes/pve1/qemu/200/config").unwrap();
        let e = validate(Method::Put, &r, &p(&[("bogus", "1")])).unwrap_err();
        assert!(e.errors["bogus"].contains("not defined in schema"));
        assert!(
            validate(Method::Put, &r, &p(&[("net1", "virtio=BC:24:11:00:00:01,bridge=vmbr1000,firewall=1")])).is_ok()
        );
        assert!(validate(Method::Put, &r, &p(&[("net1", "virtio,bridge=vmbr0,colour=red")])).is_err());
    }

    #[test]
    fn unknown_path_is_501() {
        let e = route(Method::Get, "/nodes/pve1/nonsense").err().unwrap();
        assert_eq!(e.status, 501);
        assert_eq!(e.message, "Method 'GET /nodes/pve1/nonsense' not implemented");
    }

    #[test]
    fn ticket_is_not_for_tokens() {
        assert!(!route(Method::Post, "/access/ticket").unwrap().allowtoken);
    }
}
