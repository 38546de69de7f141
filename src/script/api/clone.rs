//! VMs of a stand: `clone` and its keys.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, FuncRegistration, Map, NativeCallContext};

use super::{ApiContext, Res, fail, plan_err, userid};
use crate::plan::{CloneSpec, Device, TemplateRef, VmPlan};
use crate::pve::NetDevice;

/// The keys `clone` takes.
pub const CLONE_KEYS: &[&str] =
    &["template", "name", "device", "nets", "full", "storage", "memory", "cores", "start", "tags", "node"];

fn vm_handle(v: &VmPlan) -> Map {
    let mut m = Map::new();
    m.insert("vmid".into(), (v.vmid as i64).into());
    m.insert("name".into(), v.name.clone().into());
    m.insert("node".into(), v.node.clone().into());
    m.insert("user".into(), v.user.clone().into());
    let nets: Array = v
        .nets
        .iter()
        .flatten()
        .filter_map(|n| n.parse::<NetDevice>().ok())
        .map(|d| {
            let mut nm = Map::new();
            nm.insert("bridge".into(), d.bridge.clone().unwrap_or_default().into());
            nm.insert("model".into(), d.model.as_str().to_string().into());
            nm.insert("mac".into(), d.mac.clone().map(Dynamic::from).unwrap_or(Dynamic::UNIT));
            nm.insert("tag".into(), d.tag.map(|t| Dynamic::from(t as i64)).unwrap_or(Dynamic::UNIT));
            Dynamic::from(nm)
        })
        .collect();
    m.insert("nets".into(), nets.into());
    m
}

fn clone_spec(ctx: &NativeCallContext, spec: &Map) -> Res<CloneSpec> {
    for k in spec.keys() {
        if !CLONE_KEYS.contains(&k.as_str()) {
            return fail(ctx, format!("clone: unknown key `{k}`; valid keys: {}", CLONE_KEYS.join(", ")));
        }
    }
    let string = |k: &str| -> Res<Option<String>> {
        match spec.get(k) {
            None => Ok(None),
            Some(v) if v.is_string() => Ok(Some(v.to_string())),
            Some(v) => fail(ctx, format!("clone: `{k}` must be a string, got {}", v.type_name())),
        }
    };
    let int = |k: &str| -> Res<Option<i64>> {
        match spec.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_int()
                .map(Some)
                .or_else(|_| fail(ctx, format!("clone: `{k}` must be an integer, got {}", v.type_name()))),
        }
    };
    let boolean = |k: &str, default: bool| -> Res<bool> {
        match spec.get(k) {
            None => Ok(default),
            Some(v) => {
                v.as_bool().or_else(|_| fail(ctx, format!("clone: `{k}` must be true or false, got {}", v.type_name())))
            }
        }
    };
    let strings = |k: &str| -> Res<Vec<String>> {
        match spec.get(k) {
            None => Ok(Vec::new()),
            Some(v) => match v.clone().try_cast::<Array>() {
                Some(a) => a
                    .iter()
                    .map(|x| {
                        if x.is_string() {
                            Ok(x.to_string())
                        } else {
                            fail(ctx, format!("clone: `{k}` must be an array of strings, found {}", x.type_name()))
                        }
                    })
                    .collect(),
                None => fail(ctx, format!("clone: `{k}` must be an array of strings, got {}", v.type_name())),
            },
        }
    };
    let template = match spec.get("template") {
        None => return fail(ctx, "clone: `template` is missing (a template VMID or name)"),
        Some(v) if v.is_int() => match u32::try_from(v.as_int().unwrap_or(0)) {
            Ok(id) => TemplateRef::Id(id),
            Err(_) => return fail(ctx, "clone: `template` VMID is out of range"),
        },
        Some(v) if v.is_string() => TemplateRef::Name(v.to_string()),
        Some(v) => return fail(ctx, format!("clone: `template` must be a VMID or a name, got {}", v.type_name())),
    };
    let name = string("name")?.ok_or(()).or_else(|_| fail(ctx, "clone: `name` is missing"))?;
    let device = match string("device")?.as_deref() {
        None | Some("linux") => Device::Linux,
        Some("ecorouter") => Device::EcoRouter,
        Some(other) => return fail(ctx, format!("clone: device `{other}` is unknown; use \"linux\" or \"ecorouter\"")),
    };
    let memory = match int("memory")? {
        Some(m) if !(16..=4_194_304).contains(&m) => {
            return fail(ctx, format!("clone: `memory` {m} MiB is not within 16..4194304"));
        }
        m => m.map(|m| m as u64),
    };
    let cores = match int("cores")? {
        Some(c) if !(1..=512).contains(&c) => return fail(ctx, format!("clone: `cores` {c} is not within 1..512")),
        c => c.map(|c| c as u32),
    };
    Ok(CloneSpec {
        template,
        name,
        device,
        nets: strings("nets")?,
        full: boolean("full", false)?,
        storage: string("storage")?,
        memory,
        cores,
        start: boolean("start", true)?,
        tags: strings("tags")?,
        node: string("node")?,
        span: None,
    })
}
const DOC_CLONE: &str = r#"/// A VM of the student's stand, cloned from a template. Keys of `spec`:
///
/// - `template`: a template's VMID, or its name (the copy on the stand's node first, then one
///   on shared storage); a linked clone needs the template there.
/// - `name`: the VM's name in the stand; the VM is named `<name>-<student>`.
/// - `device`: `"linux"` (default): `virtio` NICs with the firewall on, from `net0`;
///   `"ecorouter"`: `vmxnet3` NICs with MACs `1C:87:76:40:XX:XX`, `net0` added as the
///   management port on `vmbr0` with `link_down=1`, the `nets` from `net1`.
/// - `nets`: the bridges of the NICs in order (`"vmbr0"`, or values of `alias` and
///   `ensure_bridge`); without `nets` a Linux VM keeps the template's NICs.
/// - `full`: `true` for a full clone (default: linked).
/// - `storage`: the target storage of a full clone.
/// - `memory`, `cores`: MiB and cores (default: the template's).
/// - `start`: start after deploying (default `true`).
/// - `tags`: extra PVE tags (`stand` and `lab-<lab>` are always set).
/// - `node`: the node of this VM (default: the stand's node; with `spread: true`, the node
///   with the most free memory). A VM on another node than its stand's private networks
///   needs `lab(#{ network: "vxlan" })`.
///
/// Returns `#{ vmid, name, node, user, nets: [#{ bridge, model, mac, tag }] }`.
///
/// ```rhai
/// clone(user, #{ template: "ecorouter", name: "gw", device: "ecorouter", nets: ["vmbr0", lan] });
/// clone(user, #{ template: "debian-12", name: "pc", nets: [lan], memory: 1024, start: false });
/// ```"#;

/// Registers `clone`.
pub(super) fn register(engine: &mut Engine, api: &Arc<ApiContext>) {
    let a = api.clone();
    FuncRegistration::new("clone")
        .with_params_info(["user: Dynamic", "spec: Map", "Map"])
        .with_comments([DOC_CLONE])
        .register_into_engine(engine, move |ctx: NativeCallContext, u: Dynamic, spec: Map| -> Res<Map> {
            let id = userid(&ctx, "clone", &u)?;
            let mut spec = clone_spec(&ctx, &spec)?;
            let pos = ctx.call_position();
            spec.span = pos.line().map(|line| crate::plan::Span {
                file: ctx.call_source().map(str::to_string),
                line: line as u32,
                column: pos.position().unwrap_or(1) as u32,
            });
            a.planner().clone_vm(&id, spec).map(|v| vm_handle(&v)).or_else(|e| plan_err(&ctx, "clone", e))
        });
}
