//! The lab's settings: `lab(#{ ... })`.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, FuncRegistration, Map, NativeCallContext};

use super::{ApiContext, Res, fail, plan_err};
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
/// peers when missing), `spread` (`true`, with `"vxlan"`: place VM by VM, not stand by stand).
///
/// ```rhai
/// lab(#{ network: "vxlan", zone: "stand", spread: true });
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
