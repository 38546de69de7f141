//! Grading inside `fn check(stand)`: the `stand` and its VMs, the guest agent functions
//! (`exec`, `read_file`, `hostname`, `interfaces`, `agent_ok`) and `grade`. They work only
//! while `stand check` runs the function; elsewhere they say so.

use std::time::Duration;

use rhai::{Array, Dynamic, Engine, FuncRegistration, Map, NativeCallContext};

use super::{Res, fail};
use crate::script::grading::{ExecOutput, Grade, GuestVm, StandUnderCheck};

const DOC_EXEC: &str = r#"/// Runs a command in the VM through the QEMU guest agent and waits for it to end (30 s,
/// or the seconds given): `#{ code, out, err }`. The command is a line split like a shell
/// would (`"grep -c listen /etc/nginx/nginx.conf"`) or an array of words; pipes and
/// redirections need `["sh", "-c", "..."]`. When the guest cannot be reached (a stopped VM,
/// an agent that does not answer), `code` is -1, `err` says why, and the criteria graded
/// next are not met with that reason. Only inside `fn check(stand)`.
///
/// ```rhai
/// let r = exec(stand.vm("web"), "systemctl is-active nginx");
/// grade("nginx runs", 2, r.code == 0);
/// ```"#;

const DOC_READ_FILE: &str = r#"/// The content of a file in the VM (guest agent `file-read`). A file that cannot be read
/// (missing, or the guest not reachable) gives `""`, and the criteria graded next are not met,
/// with the reason. Only inside `fn check(stand)`.
///
/// ```rhai
/// let conf = read_file(stand.vm("gw"), "/etc/network/interfaces");
/// ```"#;

const DOC_HOSTNAME: &str = r#"/// The VM's host name as its guest reports it. Only inside `fn check(stand)`.
///
/// ```rhai
/// grade("hostname of the router", 1, hostname(stand.vm("hq-rtr")) == "hq-rtr.au-team.irpo");
/// ```"#;

const DOC_INTERFACES: &str = r#"/// The VM's interfaces: `[#{ name, mac, ips }]`, `ips` as `"10.0.0.1/24"`. Only inside
/// `fn check(stand)`.
///
/// ```rhai
/// let lan = interfaces(stand.vm("gw")).filter(|i| i.name == "ens19");
/// ```"#;

const DOC_AGENT_OK: &str = r#"/// Whether the VM's guest agent answers (false when the VM is stopped, still booting,
/// or has no agent). Only inside `fn check(stand)`.
///
/// ```rhai
/// grade("the server is up", 1, agent_ok(stand.vm("web")));
/// ```"#;

const DOC_GRADE: &str = r#"/// Records one criterion of the stand: its title, the points it is worth, whether the
/// stand meets it, and a hint shown to the student when it does not. Each title once per
/// stand. Only inside `fn check(stand)`.
///
/// ```rhai
/// grade("web answers on port 80", 2, r.code == 0, "start nginx and enable it");
/// ```"#;

const DOC_VM: &str = r#"/// The VM `name` (its name in the script: `clone(user, #{ name: "gw", .. })`) of the
/// stand `check` is grading, with `.name`, `.vmid`, `.node`; an error names the stand's VMs
/// when it has none of that name. The stand itself has `.user` and `.node`.
///
/// ```rhai
/// fn check(stand) {
///     let gw = stand.vm("gw");
///     grade(`hostname of ${stand.user}'s gateway`, 1, hostname(gw) == "gw");
/// }
/// ```"#;

const DOC_VMS: &str = r#"/// Every VM of the stand `check` is grading, in VMID order.
///
/// ```rhai
/// for vm in stand.vms() { grade(`${vm.name} is up`, 1, agent_ok(vm)); }
/// ```"#;

/// Where in `script` a guest read was made, for its failure: ` (lab3.rhai:12)`.
fn at(ctx: &NativeCallContext, script: &str) -> String {
    let file = std::path::Path::new(script).file_name().and_then(|f| f.to_str()).unwrap_or(script);
    match ctx.call_position().line() {
        Some(line) if !file.is_empty() => format!(" ({file}:{line})"),
        Some(line) => format!(" (line {line})"),
        None => String::new(),
    }
}

/// The stand `stand check` is running `check` for.
fn current(ctx: &NativeCallContext, f: &str) -> Res<StandUnderCheck> {
    match ctx.tag().and_then(|t| t.clone().try_cast::<StandUnderCheck>()) {
        Some(s) => Ok(s),
        None => fail(ctx, format!("{f}: works only inside `fn check(stand)`, which `stand check LAB.rhai` runs")),
    }
}

fn guest_vm(ctx: &NativeCallContext, f: &str, vm: &Dynamic) -> Res<GuestVm> {
    match vm.clone().try_cast::<GuestVm>() {
        Some(v) => Ok(v),
        None => fail(ctx, format!("{f}: the first argument must be a VM (stand.vm(\"name\")), got {}", vm.type_name())),
    }
}

fn argv(ctx: &NativeCallContext, cmd: &Dynamic) -> Res<Vec<String>> {
    if let Some(line) = cmd.clone().try_cast::<rhai::ImmutableString>() {
        return shell_words::split(&line).or_else(|e| fail(ctx, format!("exec: cannot split '{line}': {e}")));
    }
    if let Some(words) = cmd.clone().try_cast::<Array>() {
        return Ok(words.iter().map(|w| w.to_string()).collect());
    }
    fail(ctx, format!("exec: the command must be a string or an array of words, got {}", cmd.type_name()))
}

fn exec(ctx: &NativeCallContext, vm: &Dynamic, cmd: &Dynamic, timeout: Option<Duration>) -> Res<Map> {
    let stand = current(ctx, "exec")?;
    let vm = guest_vm(ctx, "exec", vm)?;
    let argv = argv(ctx, cmd)?;
    if argv.is_empty() {
        return fail(ctx, "exec: the command is empty");
    }
    let result = stand.agent.exec(&vm, &argv, timeout.unwrap_or(stand.exec_timeout));
    let failed = result.as_ref().err().map(|e| e.to_string()).unwrap_or_default();
    let out = stand.read(
        result.map_err(|e| e.map(|e| format!("exec on {}: {e}{}", vm.name, at(ctx, &stand.script)))),
        ExecOutput { code: -1, out: String::new(), err: failed },
    );
    let mut m = Map::new();
    m.insert("code".into(), Dynamic::from_int(out.code));
    m.insert("out".into(), out.out.into());
    m.insert("err".into(), out.err.into());
    Ok(m)
}

fn record(ctx: &NativeCallContext, title: &str, points: &Dynamic, passed: &Dynamic, hint: Option<&str>) -> Res<()> {
    let stand = current(ctx, "grade")?;
    let points = match (points.as_int(), points.as_float()) {
        (Ok(i), _) => i as f64,
        (_, Ok(f)) => f,
        _ => return fail(ctx, format!("grade: points must be a number, got {}", points.type_name())),
    };
    if !(points.is_finite() && points >= 0.0) {
        return fail(ctx, format!("grade: points must be 0 or more, got {points}"));
    }
    let Ok(passed) = passed.as_bool() else {
        return fail(
            ctx,
            format!("grade: the third argument must be true or false (a comparison), got {}", passed.type_name()),
        );
    };
    if title.trim().is_empty() {
        return fail(ctx, "grade: the title is empty");
    }
    let mut grades = stand.grades.lock().unwrap_or_else(|e| e.into_inner());
    if grades.iter().any(|g| g.title == title) {
        return fail(
            ctx,
            format!("grade: '{title}' is graded twice for {}; give each criterion its own title", stand.user),
        );
    }
    // A read this criterion may use failed: it cannot be checked, so it is not met.
    let (reason, unreached) = stand.failed.lock().unwrap_or_else(|e| e.into_inner()).graded();
    let passed = passed && reason.is_none();
    grades.push(Grade { title: title.to_string(), points, passed, hint: hint.map(str::to_string), reason, unreached });
    Ok(())
}

/// Registers the `Stand` and `Vm` types and the grading functions.
pub(super) fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<StandUnderCheck>("Stand")
        .register_get("user", |s: &mut StandUnderCheck| s.user.clone())
        .register_get("node", |s: &mut StandUnderCheck| s.node.clone())
        .register_fn("to_string", |s: &mut StandUnderCheck| format!("stand of {} on {}", s.user, s.node));
    FuncRegistration::new("vm")
        .with_params_info(["stand: Stand", "name: &str", "Vm"])
        .with_comments([DOC_VM])
        .register_into_engine(engine, |ctx: NativeCallContext, s: &mut StandUnderCheck, name: &str| -> Res<GuestVm> {
            s.vm(name).or_else(|e| fail(&ctx, e))
        });
    FuncRegistration::new("vms")
        .with_params_info(["stand: Stand", "Array"])
        .with_comments([DOC_VMS])
        .register_into_engine(engine, |s: &mut StandUnderCheck| -> Array {
            s.vms.iter().cloned().map(Dynamic::from).collect()
        });
    engine
        .register_type_with_name::<GuestVm>("Vm")
        .register_get("name", |v: &mut GuestVm| v.name.clone())
        .register_get("vmid", |v: &mut GuestVm| v.vmid as i64)
        .register_get("node", |v: &mut GuestVm| v.node.clone())
        .register_fn("to_string", |v: &mut GuestVm| format!("{} ({})", v.name, v.vmid));

    FuncRegistration::new("exec")
        .with_params_info(["vm: Vm", "command: Dynamic", "Map"])
        .with_comments([DOC_EXEC])
        .register_into_engine(engine, |ctx: NativeCallContext, vm: Dynamic, cmd: Dynamic| -> Res<Map> {
            exec(&ctx, &vm, &cmd, None)
        });
    FuncRegistration::new("exec")
        .with_params_info(["vm: Vm", "command: Dynamic", "timeout_seconds: i64", "Map"])
        .with_comments([DOC_EXEC])
        .register_into_engine(engine, |ctx: NativeCallContext, vm: Dynamic, cmd: Dynamic, secs: i64| -> Res<Map> {
            if secs <= 0 {
                return fail(&ctx, format!("exec: the timeout must be a positive number of seconds, got {secs}"));
            }
            exec(&ctx, &vm, &cmd, Some(Duration::from_secs(secs as u64)))
        });
    FuncRegistration::new("read_file")
        .with_params_info(["vm: Vm", "path: &str", "String"])
        .with_comments([DOC_READ_FILE])
        .register_into_engine(engine, |ctx: NativeCallContext, vm: Dynamic, path: &str| -> Res<String> {
            let stand = current(&ctx, "read_file")?;
            let vm = guest_vm(&ctx, "read_file", &vm)?;
            let result = stand
                .agent
                .read_file(&vm, path)
                .map_err(|e| e.map(|e| format!("read_file {path} on {}: {e}{}", vm.name, at(&ctx, &stand.script))));
            Ok(stand.read(result, String::new()))
        });
    FuncRegistration::new("hostname")
        .with_params_info(["vm: Vm", "String"])
        .with_comments([DOC_HOSTNAME])
        .register_into_engine(engine, |ctx: NativeCallContext, vm: Dynamic| -> Res<String> {
            let stand = current(&ctx, "hostname")?;
            let vm = guest_vm(&ctx, "hostname", &vm)?;
            Ok(stand.read(
                stand
                    .agent
                    .hostname(&vm)
                    .map_err(|e| e.map(|e| format!("hostname of {}: {e}{}", vm.name, at(&ctx, &stand.script)))),
                String::new(),
            ))
        });
    FuncRegistration::new("interfaces")
        .with_params_info(["vm: Vm", "Array"])
        .with_comments([DOC_INTERFACES])
        .register_into_engine(engine, |ctx: NativeCallContext, vm: Dynamic| -> Res<Array> {
            let stand = current(&ctx, "interfaces")?;
            let vm = guest_vm(&ctx, "interfaces", &vm)?;
            let list = stand.read(
                stand
                    .agent
                    .interfaces(&vm)
                    .map_err(|e| e.map(|e| format!("interfaces of {}: {e}{}", vm.name, at(&ctx, &stand.script)))),
                Vec::new(),
            );
            list.iter().map(|i| super::to_dyn(&ctx, i)).collect()
        });
    FuncRegistration::new("agent_ok")
        .with_params_info(["vm: Vm", "bool"])
        .with_comments([DOC_AGENT_OK])
        .register_into_engine(engine, |ctx: NativeCallContext, vm: Dynamic| -> Res<bool> {
            let stand = current(&ctx, "agent_ok")?;
            let vm = guest_vm(&ctx, "agent_ok", &vm)?;
            // Its answer is the result: an agent that does not answer is `false`, no failure.
            Ok(stand.read(Ok(stand.agent.ping(&vm).is_ok()), false))
        });
    FuncRegistration::new("grade")
        .with_params_info(["title: &str", "points: Dynamic", "passed: Dynamic", "()"])
        .with_comments([DOC_GRADE])
        .register_into_engine(
            engine,
            |ctx: NativeCallContext, title: &str, points: Dynamic, passed: Dynamic| -> Res<()> {
                record(&ctx, title, &points, &passed, None)
            },
        );
    FuncRegistration::new("grade")
        .with_params_info(["title: &str", "points: Dynamic", "passed: Dynamic", "hint: &str", "()"])
        .with_comments([DOC_GRADE])
        .register_into_engine(
            engine,
            |ctx: NativeCallContext, title: &str, points: Dynamic, passed: Dynamic, hint: &str| -> Res<()> {
                record(&ctx, title, &points, &passed, Some(hint))
            },
        );
}
