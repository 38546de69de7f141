//! The lab's settings: `lab(#{ ... })`.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, FuncRegistration, Map, NativeCallContext};

use super::{ApiContext, Res, fail, plan_err};
use crate::capi::CapiSettings;
use crate::plan::{LabSettings, Quota};

fn lab_settings(ctx: &NativeCallContext, cur: &LabSettings, m: &Map) -> Res<LabSettings> {
    const KEYS: &[&str] = &[
        "name",
        "vmid_range",
        "bridge_base",
        "password_length",
        "role",
        "teacher",
        "overcommit",
        "snapshot",
        "expires",
        "quota",
        "student_reset",
        "network",
        "zone",
        "spread",
        "capi",
    ];
    let mut s = cur.clone();
    let mut zone = None;
    for (k, v) in m {
        match k.as_str() {
            "name" => s.name = v.to_string(),
            "vmid_range" => {
                let a = v.clone().try_cast::<Array>().filter(|a| a.len() == 2 && a.iter().all(Dynamic::is_int));
                let Some(a) = a else { return fail(ctx, "lab: `vmid_range` must be [first, last]") };
                s.vmid_range = (
                    a[0].as_int().unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
                    a[1].as_int().unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
                );
            }
            "bridge_base" => match v.as_int() {
                Ok(n) if (1..=9000).contains(&n) => s.bridge_base = n as u32,
                _ => return fail(ctx, "lab: `bridge_base` must be an integer within 1..9000"),
            },
            "password_length" => s.password_length = v.as_int().unwrap_or(0).max(0) as usize,
            "role" => s.role = v.to_string(),
            "teacher" => s.teacher = Some(v.to_string()),
            "overcommit" => match (v.as_float(), v.as_int()) {
                (Ok(f), _) => s.overcommit = f,
                (_, Ok(i)) => s.overcommit = i as f64,
                _ => {
                    return fail(ctx, format!("lab: `overcommit` must be a number such as 1.5, got {}", v.type_name()));
                }
            },
            "snapshot" => {
                s.baseline = match (v.as_bool(), v.clone().into_immutable_string()) {
                    (Ok(true), _) => Some("start".into()),
                    (Ok(false), _) => None,
                    (_, Ok(name)) => {
                        crate::plan::course::valid_snapshot_name(&name)
                            .or_else(|e| fail(ctx, format!("lab: `snapshot`: {e}")))?;
                        Some(name.to_string())
                    }
                    _ => return fail(ctx, "lab: `snapshot` must be true, false or a snapshot name such as \"start\""),
                }
            }
            "expires" => {
                let text = v.to_string();
                crate::plan::expiry::parse(&text).or_else(|e| fail(ctx, format!("lab: `expires`: {e}")))?;
                s.expires = Some(text);
            }
            "quota" => s.quota = Some(quota(ctx, v)?),
            "student_reset" => match v.as_bool() {
                Ok(b) => s.student_reset = b,
                Err(_) => return fail(ctx, "lab: `student_reset` must be true or false"),
            },
            "network" => match v.to_string().as_str() {
                "bridges" => s.vxlan_zone = None,
                "vxlan" => {
                    s.vxlan_zone.get_or_insert_with(|| "stand".to_string());
                }
                other => {
                    return fail(ctx, format!("lab: `network` is \"bridges\" (default) or \"vxlan\", got \"{other}\""));
                }
            },
            "zone" => zone = Some(v.to_string()),
            "spread" => match v.as_bool() {
                Ok(b) => s.spread = b,
                Err(_) => return fail(ctx, "lab: `spread` must be true or false"),
            },
            "capi" => s.capi = Some(capi(ctx, v)?),
            other => return fail(ctx, format!("lab: unknown key `{other}`; valid keys: {}", KEYS.join(", "))),
        }
    }
    if let Some(z) = zone {
        match &mut s.vxlan_zone {
            Some(current) => *current = z,
            None => return fail(ctx, "lab: `zone` names the SDN zone of `network: \"vxlan\"`; add that key"),
        }
    }
    Ok(s)
}

/// `capi: #{ addresses, gateway, endpoint, network, template, .. }`: the students' Kubernetes
/// clusters (`stand export capi`). Addresses are checked here; what depends on the class
/// (enough addresses, the endpoints outside them) when exporting.
fn capi(ctx: &NativeCallContext, v: &Dynamic) -> Res<CapiSettings> {
    const REQUIRED: &[&str] = &["addresses", "gateway", "endpoint", "network", "template"];
    const KEYS: &[&str] = &[
        "addresses",
        "prefix",
        "gateway",
        "dns",
        "endpoint",
        "port",
        "network",
        "template",
        "control_planes",
        "workers",
        "memory",
        "cores",
        "disk",
        "disk_gb",
        "full",
        "storage",
        "kubernetes",
        "namespace",
        "pod_cidr",
        "ssh_keys",
        "iso_storage",
        "vmids",
    ];
    let Some(m) = v.read_lock::<Map>() else {
        return fail(
            ctx,
            "lab: `capi` must be a map such as #{ addresses: \"10.10.0.0/25\", prefix: 24, gateway: \"10.10.0.1\", endpoint: \"10.10.0.200\", network: \"lan\", template: \"debian-12\" }",
        );
    };
    if let Some(missing) = REQUIRED.iter().find(|k| !m.contains_key(**k)) {
        return fail(ctx, format!("lab: `capi` needs `{missing}` (required: {})", REQUIRED.join(", ")));
    }
    let text = |k: &str| m.get(k).map(|v| v.to_string()).unwrap_or_default();
    let ip = |k: &str, t: &str| -> Res<std::net::Ipv4Addr> {
        t.trim().parse().or_else(|_| fail(ctx, format!("lab: `capi.{k}`: `{t}` is not an IPv4 address")))
    };
    let addresses = text("addresses");
    crate::capi::parse_addresses(&addresses).or_else(|e| fail(ctx, format!("lab: `capi.addresses`: {e}")))?;
    let mut s = CapiSettings::new(
        &addresses,
        ip("gateway", &text("gateway"))?,
        ip("endpoint", &text("endpoint"))?,
        &text("network"),
        &text("template"),
    );
    let number = |k: &str, v: &Dynamic, max: i64| -> Res<u32> {
        match v.as_int() {
            Ok(n) if (1..=max).contains(&n) => Ok(n as u32),
            _ => fail(ctx, format!("lab: `capi.{k}` must be an integer within 1..{max}, got {v}")),
        }
    };
    let strings = |k: &str, v: &Dynamic| -> Res<Vec<String>> {
        match v.clone().try_cast::<Array>() {
            Some(a) => Ok(a.iter().map(|x| x.to_string()).collect()),
            None => Ok(vec![v.to_string()]),
        }
        .and_then(|l: Vec<String>| if l.is_empty() { fail(ctx, format!("lab: `capi.{k}` is empty")) } else { Ok(l) })
    };
    for (k, v) in m.iter() {
        match k.as_str() {
            "addresses" | "gateway" | "endpoint" | "network" | "template" => {}
            "prefix" => s.prefix = Some(number("prefix", v, 32)? as u8),
            "dns" => s.dns = strings("dns", v)?.iter().map(|d| ip("dns", d)).collect::<Res<_>>()?,
            "port" => s.port = number("port", v, 65535)? as u16,
            "control_planes" => s.control_planes = number("control_planes", v, 7)?,
            "workers" => {
                s.workers = v.as_int().ok().filter(|n| (0..=100).contains(n)).map(|n| n as u32).map_or_else(
                    || fail(ctx, format!("lab: `capi.workers` must be an integer within 0..100, got {v}")),
                    Ok,
                )?
            }
            "memory" => s.memory = number("memory", v, 1 << 20)?,
            "cores" => s.cores = number("cores", v, 512)?,
            "disk" => s.disk = v.to_string(),
            "disk_gb" => s.disk_gb = number("disk_gb", v, 65536)?,
            "full" => s.full = v.as_bool().or_else(|_| fail(ctx, "lab: `capi.full` must be true or false"))?,
            "storage" => s.storage = Some(v.to_string()),
            "kubernetes" => s.kubernetes = v.to_string(),
            "namespace" => s.namespace = v.to_string(),
            "pod_cidr" => s.pod_cidr = v.to_string(),
            "ssh_keys" => s.ssh_keys = strings("ssh_keys", v)?,
            "iso_storage" => s.iso_storage = v.to_string(),
            "vmids" => {
                let a = v.clone().try_cast::<Array>().filter(|a| a.len() == 2 && a.iter().all(Dynamic::is_int));
                let Some(a) = a else { return fail(ctx, "lab: `capi.vmids` must be [first, last]") };
                let (first, last) = (a[0].as_int().unwrap_or(0), a[1].as_int().unwrap_or(0));
                if !(100..=999_999_999).contains(&first) || last < first || last > 999_999_999 {
                    return fail(ctx, "lab: `capi.vmids` must be [first, last] within 100..999999999");
                }
                s.vmids = Some((first as u32, last as u32));
            }
            other => return fail(ctx, format!("lab: unknown key `capi.{other}`; valid keys: {}", KEYS.join(", "))),
        }
    }
    if !s.kubernetes.starts_with('v') {
        return fail(ctx, format!("lab: `capi.kubernetes` is a version such as \"v1.31.4\", got \"{}\"", s.kubernetes));
    }
    Ok(s)
}

/// `quota: #{ vms: 6, memory_gib: 16, cores: 8 }`: each limit optional, each positive.
fn quota(ctx: &NativeCallContext, v: &Dynamic) -> Res<Quota> {
    const KEYS: &[&str] = &["vms", "memory_gib", "cores"];
    let Some(m) = v.read_lock::<Map>() else {
        return fail(ctx, "lab: `quota` must be a map such as #{ vms: 6, memory_gib: 16, cores: 8 }");
    };
    let mut q = Quota::default();
    for (k, v) in m.iter() {
        let number = v.as_float().ok().or_else(|| v.as_int().ok().map(|i| i as f64)).filter(|n| *n > 0.0);
        let Some(n) = number else {
            return fail(ctx, format!("lab: `quota.{k}` must be a positive number, got {v}"));
        };
        match k.as_str() {
            "vms" => q.vms = Some(n as u64),
            "memory_gib" => q.memory_gib = Some(n),
            "cores" => q.cores = Some(n as u64),
            other => return fail(ctx, format!("lab: unknown quota `{other}`; valid: {}", KEYS.join(", "))),
        }
    }
    Ok(q)
}

const DOC_LAB: &str = r#"/// The lab's settings; call it before any `create_user`, `alias` or `clone`.
///
/// Keys: `name` (default: the script's file name; it marks everything the lab makes),
/// `vmid_range` (`[first, last]`, default `[1000, 999999]`), `bridge_base` (first private
/// bridge number, 1000), `password_length` (8..64, 12), `role` (the students' role on their
/// pool, `PVEVMAdmin`), `teacher` (an existing user who gets that role on every stand's pool),
/// `overcommit` (memory running guests may take, as a multiple of a node's RAM, 1.0),
/// `snapshot` (the snapshot `up` takes of each VM it makes, before the first start, that
/// `stand reset` goes back to: `"start"` by default, another name, or `false` for none),
/// `expires` (the lab's last day, `"YYYY-MM-DD"`, UTC: the students' accounts expire after
/// it, `stand status` shows it, `stand down --expired` removes the lab), `quota` (what one
/// stand may take: `#{ vms: 6, memory_gib: 16, cores: 8 }`, any of them; a `clone` beyond
/// it is an error naming the student and the limit), `student_reset` (`true`: students
/// may reset their own stand, or one VM of it, from `stand serve`'s page), `network`
/// (`"bridges"`, the default: each `alias` is a Linux bridge of the stand's node; `"vxlan"`:
/// each `alias` is an SDN VNet present on every node, so a stand's VMs may sit on different
/// nodes), `zone` (the VXLAN zone, `"stand"` by default; made with the nodes' addresses as
/// peers when missing), `spread` (`true`, with `"vxlan"`: place VM by VM, not stand by stand),
/// `capi` (each student's Kubernetes cluster for `stand export capi`: `addresses` (split
/// per student), `prefix`, `gateway`, `dns`, `endpoint` (the first student's control plane
/// address, outside `addresses`), `network` (the student's alias the machines are on),
/// `template` (with a cloud-init drive), `control_planes` (1), `workers` (2), `memory`
/// (4096), `cores` (2), `disk_gb` (20), `full`, `storage`, `kubernetes` (`"v1.31.4"`),
/// `namespace`, `pod_cidr`, `ssh_keys`, `iso_storage` (`"local"`), `vmids`).
///
/// ```rhai
/// lab(#{ network: "vxlan", zone: "stand", spread: true });
/// lab(#{ capi: #{ addresses: "10.10.0.0/25", prefix: 24, gateway: "10.10.0.1", endpoint: "10.10.0.200", network: "lan", template: "debian-12" } });
/// lab(#{ vmid_range: [3000, 3999], teacher: "teacher@pve", overcommit: 1.5 });
/// lab(#{ expires: "2026-12-31", quota: #{ vms: 6, memory_gib: 16, cores: 8 } });
/// ```"#;

/// Registers `lab`.
pub(super) fn register(engine: &mut Engine, api: &Arc<ApiContext>) {
    let a = api.clone();
    FuncRegistration::new("lab")
        .with_params_info(["settings: Map", "()"])
        .with_comments([DOC_LAB])
        .register_into_engine(engine, move |ctx: NativeCallContext, m: Map| -> Res<()> {
            let mut p = a.planner();
            let s = lab_settings(&ctx, p.settings(), &m)?;
            p.set_settings(s).or_else(|e| plan_err(&ctx, "lab", e))
        });
}
