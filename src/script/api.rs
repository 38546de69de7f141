//! The stand primitives and snapshot queries as Rhai functions (design section 2).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use rhai::{Array, Dynamic, Engine, EvalAltResult, FuncRegistration, Map, NativeCallContext};

use crate::plan::{CloneSpec, Device, LabSettings, PlanError, Planner, Snapshot, TemplateRef, UserPlan, VmPlan};
use crate::pve::NetDevice;

/// What the functions share: the planner, the snapshot, the script's folder.
pub struct ApiContext {
    pub(super) planner: Mutex<Planner>,
    pub(super) snap: Arc<Snapshot>,
    pub(super) dir: PathBuf,
    pub(super) users_file: Option<PathBuf>,
    pub(super) args: Vec<String>,
}

type Res<T> = Result<T, Box<EvalAltResult>>;

fn fail<T>(ctx: &NativeCallContext, msg: impl Into<String>) -> Res<T> {
    Err(Box::new(EvalAltResult::ErrorRuntime(msg.into().into(), ctx.call_position())))
}

impl ApiContext {
    fn planner(&self) -> MutexGuard<'_, Planner> {
        self.planner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() { p } else { self.dir.join(p) }
    }
}

fn plan_err<T>(ctx: &NativeCallContext, f: &str, e: PlanError) -> Res<T> {
    fail(ctx, format!("{f}: {e}"))
}

/// A user argument: a userid string or a User map.
fn userid(ctx: &NativeCallContext, f: &str, d: &Dynamic) -> Res<String> {
    if let Some(s) = d.clone().try_cast::<rhai::ImmutableString>() {
        return Ok(s.to_string());
    }
    if let Some(m) = d.read_lock::<Map>()
        && let Some(u) = m.get("userid")
    {
        return Ok(u.to_string());
    }
    fail(
        ctx,
        format!("{f}: the first argument must be a user (from create_user) or a userid string, got {}", d.type_name()),
    )
}

fn to_dyn<T: serde::Serialize>(ctx: &NativeCallContext, v: &T) -> Res<Dynamic> {
    rhai::serde::to_dynamic(v).or_else(|e| fail(ctx, format!("internal error: {e}")))
}

fn user_handle(u: &UserPlan) -> Map {
    let mut m = Map::new();
    m.insert("userid".into(), u.userid.clone().into());
    m.insert("name".into(), u.name.clone().into());
    m.insert("pool".into(), u.pool.clone().into());
    m.insert("node".into(), u.node.clone().map(Dynamic::from).unwrap_or(Dynamic::UNIT));
    m
}

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

/// The keys `clone` takes.
pub const CLONE_KEYS: &[&str] =
    &["template", "name", "device", "nets", "full", "storage", "memory", "cores", "start", "tags"];

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
        span: None,
    })
}

fn lab_settings(ctx: &NativeCallContext, cur: &LabSettings, m: &Map) -> Res<LabSettings> {
    const KEYS: &[&str] = &["name", "vmid_range", "bridge_base", "password_length", "role", "teacher", "overcommit"];
    let mut s = cur.clone();
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
            other => return fail(ctx, format!("lab: unknown key `{other}`; valid keys: {}", KEYS.join(", "))),
        }
    }
    Ok(s)
}

fn read_data(ctx: &NativeCallContext, api: &ApiContext, path: &str, yaml: bool) -> Res<Dynamic> {
    let p = api.path(path);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) => return fail(ctx, format!("cannot read {}: {e}", p.display())),
    };
    let value: Result<serde_json::Value, String> = if yaml {
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
    } else {
        serde_json::from_str(&text).map_err(|e| format!("{}:{}:{}: {e}", p.display(), e.line(), e.column()))
    };
    match value {
        Ok(v) => to_dyn(ctx, &v),
        Err(e) => fail(ctx, e),
    }
}

fn users_from(ctx: &NativeCallContext, api: &ApiContext, src: &Dynamic) -> Res<Array> {
    let list = if let Some(file) = &api.users_file {
        super::users::read_users(file).or_else(|e| fail(ctx, e.to_string()))?
    } else if src.is_string() {
        super::users::read_users(&api.path(&src.to_string())).or_else(|e| fail(ctx, e.to_string()))?
    } else if let Some(a) = src.clone().try_cast::<Array>() {
        let entries = a.iter().map(|x| (None, x.to_string())).collect();
        super::users::check_users("users([...])", entries).or_else(|e| fail(ctx, e.message))?
    } else {
        return fail(ctx, format!("users: give a file path or an array of userids, got {}", src.type_name()));
    };
    Ok(list.into_iter().map(Dynamic::from).collect())
}

const DOC_LAB: &str = r#"/// The lab's settings; call it before any `create_user`, `alias` or `clone`.
///
/// Keys: `name` (default: the script's file name; it marks everything the lab makes),
/// `vmid_range` (`[first, last]`, default `[1000, 999999]`), `bridge_base` (first private
/// bridge number, 1000), `password_length` (8..64, 12), `role` (the students' role on their
/// pool, `PVEVMAdmin`), `teacher` (an existing user who gets that role on every stand's pool),
/// `overcommit` (memory running guests may take, as a multiple of a node's RAM, 1.0).
///
/// ```rhai
/// lab(#{ vmid_range: [3000, 3999], teacher: "teacher@pve", overcommit: 1.5 });
/// ```"#;
const DOC_USERS: &str = r#"/// The students: from a file next to the script (deploy-stand's `users_list.yml`, a CSV
/// whose first column is the userid, or one `name@realm` per line) or from an array. Each is
/// checked as a PVE userid; `--users FILE` on the command line wins over `src`.
///
/// ```rhai
/// for u in users("students.txt") { create_user(u); }
/// ```"#;
const DOC_USERS_1: &str = r#"/// The students of `--users FILE` (an error without it).
///
/// ```rhai
/// for u in users() { create_user(u); }
/// ```"#;
const DOC_CREATE_USER: &str = r#"/// A student: the PVE user (a new password when it is made), their pool `<lab>-<name>`
/// (names transliterated: `дмитрий@pve` → `lab3-dmitrii`), the lab's role on it, and the group
/// `<lab>-students`. Returns `#{ userid, name, pool, node }`.
///
/// ```rhai
/// let user = create_user("ivanov@pve");
/// ```"#;
const DOC_PLACE_BALANCED: &str = r#"/// The node of the student's stand: the online node with the most memory left after what is
/// planned (a deployed stand stays where it is).
///
/// ```rhai
/// let node = place_balanced(user);
/// ```"#;
const DOC_PLACE_BALANCED_1: &str = r#"/// The same among some nodes only: `#{ nodes: ["pve1", "pve2"] }`.
///
/// ```rhai
/// place_balanced(user, #{ nodes: ["pve2", "pve3"] });
/// ```"#;
const DOC_PLACE: &str = r#"/// Pins the student's stand to `node`.
///
/// ```rhai
/// place(user, "pve2");
/// ```"#;
const DOC_ENSURE_BRIDGE: &str = r#"/// A shared bridge that must exist on `node`: made when missing; every lab that ensures it is
/// recorded on it, and `down` removes it only when no VM is wired to it and no other lab
/// uses it. A bridge `stand` did not make is never changed.
///
/// ```rhai
/// let common = ensure_bridge("pve1", "vmbr60");
/// ```"#;
const DOC_ALIAS: &str = r#"/// The student's private bridge for the network `name` on their node (`vmbr1000`+, the first
/// free number, the same on every run); only its owner gets `SDN.Use` on it. `"lan.10"`
/// makes the bridge VLAN aware and tags the NICs on it with 10; the untagged alias on the
/// same bridge is a trunk.
///
/// ```rhai
/// let lan = alias(user, "lan");
/// let lan10 = alias(user, "lan.10");
/// ```"#;
const DOC_ALIAS_1: &str = r#"/// The same with the VLAN as a setting: `#{ vlan: 10 }`.
///
/// ```rhai
/// let lan10 = alias(user, "lan", #{ vlan: 10 });
/// ```"#;
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
///
/// Returns `#{ vmid, name, node, user, nets: [#{ bridge, model, mac, tag }] }`.
///
/// ```rhai
/// clone(user, #{ template: "ecorouter", name: "gw", device: "ecorouter", nets: ["vmbr0", lan] });
/// clone(user, #{ template: "debian-12", name: "pc", nets: [lan], memory: 1024, start: false });
/// ```"#;
const DOC_NODES: &str = r#"/// The cluster's nodes: `#{ name, online, maxmem, mem, maxcpu }`.
///
/// ```rhai
/// for n in nodes() { print(`${n.name}: ${n.mem / 1073741824} GiB used`); }
/// ```"#;
const DOC_VMS: &str = r#"/// The guests (not templates): `#{ vmid, node, name, status, maxmem, tags, pool, lock,
/// uptime, owner }`; `owner` names the lab and student of `stand`'s VMs.
///
/// ```rhai
/// vms().filter(|v| v.status == "running").len()
/// ```"#;
const DOC_TEMPLATES: &str = r#"/// The templates: `#{ vmid, node, name, ... }` as `vms()`.
///
/// ```rhai
/// templates().map(|t| t.name)
/// ```"#;
const DOC_STORAGES: &str = r#"/// The storages: `#{ id, kind, shared, content, nodes }`.
///
/// ```rhai
/// storages().filter(|s| s.shared)
/// ```"#;
const DOC_BRIDGES: &str = r#"/// The bridges of a node: `#{ iface, active, vlan_aware, comments, owner }`.
///
/// ```rhai
/// bridges("pve1").map(|b| b.iface)
/// ```"#;
const DOC_POOLS: &str = r#"/// The pools: `#{ poolid, comment, owner }`.
///
/// ```rhai
/// pools().len()
/// ```"#;
const DOC_CLUSTER_USERS: &str = r#"/// The cluster's users: `#{ userid, comment, groups, owner }`.
///
/// ```rhai
/// cluster_users().filter(|u| u.userid.ends_with("@pve"))
/// ```"#;
const DOC_YAML: &str = r#"/// A YAML file next to the script, as maps and arrays.
///
/// ```rhai
/// let cfg = yaml("deployment_config.yml");
/// ```"#;
const DOC_JSON: &str = r#"/// A JSON file next to the script, as maps and arrays.
///
/// ```rhai
/// let groups = json("groups.json");
/// ```"#;
const DOC_ARGS: &str = r#"/// The arguments after the script in `stand run SCRIPT ARGS..`.
///
/// ```rhai
/// let node = args()[0];
/// ```"#;

/// The lab functions, in the order of the reference.
pub(super) const ORDER: &[&str] = &[
    "lab",
    "users",
    "create_user",
    "place_balanced",
    "place",
    "ensure_bridge",
    "alias",
    "clone",
    "nodes",
    "vms",
    "templates",
    "storages",
    "bridges",
    "pools",
    "cluster_users",
    "yaml",
    "json",
    "args",
];

/// Registers every function on `engine`, each with its parameters and documentation (the
/// source of `stand docs`, `:help` and completion).
pub fn register(engine: &mut Engine, api: Arc<ApiContext>) {
    let a = api.clone();
    FuncRegistration::new("lab")
        .with_params_info(["settings: Map", "()"])
        .with_comments([DOC_LAB])
        .register_into_engine(engine, move |ctx: NativeCallContext, m: Map| -> Res<()> {
            let mut p = a.planner();
            let s = lab_settings(&ctx, p.settings(), &m)?;
            p.set_settings(s).or_else(|e| plan_err(&ctx, "lab", e))
        });
    let a = api.clone();
    FuncRegistration::new("users")
        .with_params_info(["src: Dynamic", "Array"])
        .with_comments([DOC_USERS])
        .register_into_engine(engine, move |ctx: NativeCallContext, src: Dynamic| users_from(&ctx, &a, &src));
    let a = api.clone();
    FuncRegistration::new("users").with_params_info(["Array"]).with_comments([DOC_USERS_1]).register_into_engine(
        engine,
        move |ctx: NativeCallContext| -> Res<Array> {
            if a.users_file.is_none() {
                return fail(
                    &ctx,
                    "users(): no --users FILE was given; pass a file or an array: users(\"users_list.yml\")",
                );
            }
            users_from(&ctx, &a, &Dynamic::UNIT)
        },
    );
    let a = api.clone();
    FuncRegistration::new("create_user")
        .with_params_info(["userid: Dynamic", "Map"])
        .with_comments([DOC_CREATE_USER])
        .register_into_engine(engine, move |ctx: NativeCallContext, u: Dynamic| -> Res<Map> {
            let id = userid(&ctx, "create_user", &u)?;
            a.planner().add_user(&id).map(|u| user_handle(&u)).or_else(|e| plan_err(&ctx, "create_user", e))
        });
    let a = api.clone();
    FuncRegistration::new("place_balanced")
        .with_params_info(["user: Dynamic", "String"])
        .with_comments([DOC_PLACE_BALANCED])
        .register_into_engine(engine, move |ctx: NativeCallContext, u: Dynamic| -> Res<String> {
            let id = userid(&ctx, "place_balanced", &u)?;
            a.planner().place_balanced(&id, None).or_else(|e| plan_err(&ctx, "place_balanced", e))
        });
    let a = api.clone();
    FuncRegistration::new("place_balanced")
        .with_params_info(["user: Dynamic", "opts: Map", "String"])
        .with_comments([DOC_PLACE_BALANCED_1])
        .register_into_engine(engine, move |ctx: NativeCallContext, u: Dynamic, opts: Map| -> Res<String> {
            let id = userid(&ctx, "place_balanced", &u)?;
            let nodes: Option<Vec<String>> = match opts.get("nodes") {
                None => None,
                Some(v) => match v.clone().try_cast::<Array>() {
                    Some(arr) => Some(arr.iter().map(|x| x.to_string()).collect()),
                    None => return fail(&ctx, "place_balanced: `nodes` must be an array of node names"),
                },
            };
            if let Some(k) = opts.keys().find(|k| k.as_str() != "nodes") {
                return fail(&ctx, format!("place_balanced: unknown key `{k}`; valid keys: nodes"));
            }
            a.planner().place_balanced(&id, nodes.as_deref()).or_else(|e| plan_err(&ctx, "place_balanced", e))
        });
    let a = api.clone();
    FuncRegistration::new("place")
        .with_params_info(["user: Dynamic", "node: &str", "String"])
        .with_comments([DOC_PLACE])
        .register_into_engine(engine, move |ctx: NativeCallContext, u: Dynamic, node: &str| -> Res<String> {
            let id = userid(&ctx, "place", &u)?;
            a.planner().place(&id, node).or_else(|e| plan_err(&ctx, "place", e))
        });
    let a = api.clone();
    FuncRegistration::new("ensure_bridge")
        .with_params_info(["node: &str", "name: &str", "String"])
        .with_comments([DOC_ENSURE_BRIDGE])
        .register_into_engine(engine, move |ctx: NativeCallContext, node: &str, name: &str| -> Res<String> {
            a.planner().ensure_bridge(node, name).or_else(|e| plan_err(&ctx, "ensure_bridge", e))
        });
    let a = api.clone();
    FuncRegistration::new("alias")
        .with_params_info(["user: Dynamic", "name: &str", "String"])
        .with_comments([DOC_ALIAS])
        .register_into_engine(engine, move |ctx: NativeCallContext, u: Dynamic, name: &str| -> Res<String> {
            let id = userid(&ctx, "alias", &u)?;
            a.planner().alias(&id, name, None).or_else(|e| plan_err(&ctx, "alias", e))
        });
    let a = api.clone();
    FuncRegistration::new("alias")
        .with_params_info(["user: Dynamic", "name: &str", "opts: Map", "String"])
        .with_comments([DOC_ALIAS_1])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, u: Dynamic, name: &str, opts: Map| -> Res<String> {
                let id = userid(&ctx, "alias", &u)?;
                let vlan = match opts.get("vlan") {
                    None => None,
                    Some(v) => match v.as_int() {
                        Ok(t) if (1..=4094).contains(&t) => Some(t as u16),
                        _ => return fail(&ctx, "alias: `vlan` must be an integer within 1..4094"),
                    },
                };
                if let Some(k) = opts.keys().find(|k| k.as_str() != "vlan") {
                    return fail(&ctx, format!("alias: unknown key `{k}`; valid keys: vlan"));
                }
                a.planner().alias(&id, name, vlan).or_else(|e| plan_err(&ctx, "alias", e))
            },
        );
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
    let a = api.clone();
    FuncRegistration::new("nodes")
        .with_params_info(["Array"])
        .with_comments([DOC_NODES])
        .register_into_engine(engine, move |ctx: NativeCallContext| to_dyn(&ctx, &a.snap.nodes));
    let a = api.clone();
    FuncRegistration::new("vms").with_params_info(["Array"]).with_comments([DOC_VMS]).register_into_engine(
        engine,
        move |ctx: NativeCallContext| {
            let list: Vec<_> = a.snap.vms.iter().filter(|v| !v.template).collect();
            to_dyn(&ctx, &list)
        },
    );
    let a = api.clone();
    FuncRegistration::new("templates").with_params_info(["Array"]).with_comments([DOC_TEMPLATES]).register_into_engine(
        engine,
        move |ctx: NativeCallContext| {
            let list: Vec<_> = a.snap.vms.iter().filter(|v| v.template).collect();
            to_dyn(&ctx, &list)
        },
    );
    let a = api.clone();
    FuncRegistration::new("storages")
        .with_params_info(["Array"])
        .with_comments([DOC_STORAGES])
        .register_into_engine(engine, move |ctx: NativeCallContext| to_dyn(&ctx, &a.snap.storages));
    let a = api.clone();
    FuncRegistration::new("bridges")
        .with_params_info(["node: &str", "Array"])
        .with_comments([DOC_BRIDGES])
        .register_into_engine(engine, move |ctx: NativeCallContext, node: &str| -> Res<Dynamic> {
            match a.snap.bridges.get(node) {
                Some(b) => to_dyn(&ctx, b),
                None => fail(&ctx, format!("bridges: no node '{node}'")),
            }
        });
    let a = api.clone();
    FuncRegistration::new("pools")
        .with_params_info(["Array"])
        .with_comments([DOC_POOLS])
        .register_into_engine(engine, move |ctx: NativeCallContext| to_dyn(&ctx, &a.snap.pools));
    let a = api.clone();
    FuncRegistration::new("cluster_users")
        .with_params_info(["Array"])
        .with_comments([DOC_CLUSTER_USERS])
        .register_into_engine(engine, move |ctx: NativeCallContext| to_dyn(&ctx, &a.snap.users));
    let a = api.clone();
    FuncRegistration::new("yaml")
        .with_params_info(["path: &str", "Dynamic"])
        .with_comments([DOC_YAML])
        .register_into_engine(engine, move |ctx: NativeCallContext, path: &str| read_data(&ctx, &a, path, true));
    let a = api.clone();
    FuncRegistration::new("json")
        .with_params_info(["path: &str", "Dynamic"])
        .with_comments([DOC_JSON])
        .register_into_engine(engine, move |ctx: NativeCallContext, path: &str| read_data(&ctx, &a, path, false));
    let a = api.clone();
    FuncRegistration::new("args")
        .with_params_info(["Array"])
        .with_comments([DOC_ARGS])
        .register_into_engine(engine, move || -> Array { a.args.iter().cloned().map(Dynamic::from).collect() });
}
