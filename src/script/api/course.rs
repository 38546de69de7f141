//! A running course from the script or the REPL: `reset`, `power`, `snapshot` and
//! `uplinks` of a student's stand. Each call records an operation in the plan; `stand up`
//! (or the REPL's `:apply`) runs it after the stand's own deployment, like any action.

use std::sync::Arc;

use rhai::{Dynamic, Engine, FuncRegistration, NativeCallContext};

use super::{ApiContext, Res, fail, plan_err, userid};
use crate::plan::PowerOp;
use crate::plan::course::valid_snapshot_name;
use crate::plan::course_ops::CourseOp;

const DOC_RESET: &str = r#"/// Rolls every VM of the student's stand back to the lab's baseline snapshot (`start`, or
/// the name given), starting again those that ran: `stand reset LAB --only USER` from a
/// script. Runs after the stand's deployment; `stand plan` lists it.
///
/// ```rhai
/// reset("ivanov@pve");
/// reset(user, "before-ospf");
/// ```"#;

const DOC_POWER: &str = r#"/// Powers every VM of the student's stand `"on"`, `"off"` (at once), `"shutdown"` (through
/// the guest, stopped after 120 s) or `"reboot"`, a few per node at a time.
///
/// ```rhai
/// power("ivanov@pve", "off");
/// ```"#;

const DOC_SNAPSHOT: &str = r#"/// Takes snapshot `name` of every VM of the student's stand (a VM that has it is left as
/// it is). Names: a letter, then letters, digits, `-` or `_`, up to 40 characters.
///
/// ```rhai
/// snapshot(user, "before-ospf");
/// ```"#;

const DOC_UPLINKS: &str = r#"/// `"off"`: disconnects the stand's NICs on shared bridges (`vmbr0`, `ensure_bridge`),
/// remembering which in each VM's marker; `"on"`: reconnects exactly those.
///
/// ```rhai
/// uplinks(user, "off");
/// ```"#;

fn record(ctx: &NativeCallContext, api: &ApiContext, f: &str, op: CourseOp) -> Res<()> {
    api.planner().record(op).or_else(|e| plan_err(ctx, f, e))
}

fn reset(ctx: &NativeCallContext, api: &ApiContext, user: &Dynamic, to: &str) -> Res<()> {
    let user = userid(ctx, "reset", user)?;
    valid_snapshot_name(to).or_else(|e| fail(ctx, format!("reset: {e}")))?;
    record(ctx, api, "reset", CourseOp::Reset { user, to: to.to_string() })
}

/// Registers `reset`, `power`, `snapshot`, `uplinks`.
pub(super) fn register(engine: &mut Engine, api: &Arc<ApiContext>) {
    let a = api.clone();
    FuncRegistration::new("reset")
        .with_params_info(["user: Dynamic", "()"])
        .with_comments([DOC_RESET])
        .register_into_engine(engine, move |ctx: NativeCallContext, user: Dynamic| -> Res<()> {
            let to = a.planner().settings().baseline.clone().unwrap_or_else(|| "start".into());
            reset(&ctx, &a, &user, &to)
        });
    let a = api.clone();
    FuncRegistration::new("reset")
        .with_params_info(["user: Dynamic", "snapshot: &str", "()"])
        .with_comments([DOC_RESET])
        .register_into_engine(engine, move |ctx: NativeCallContext, user: Dynamic, to: &str| -> Res<()> {
            reset(&ctx, &a, &user, to)
        });
    let a = api.clone();
    FuncRegistration::new("power")
        .with_params_info(["user: Dynamic", "op: &str", "()"])
        .with_comments([DOC_POWER])
        .register_into_engine(engine, move |ctx: NativeCallContext, user: Dynamic, op: &str| -> Res<()> {
            let user = userid(&ctx, "power", &user)?;
            let power = match op {
                "on" => PowerOp::Start,
                "off" => PowerOp::Stop,
                "shutdown" => PowerOp::Shutdown { timeout: 120 },
                "reboot" => PowerOp::Reboot,
                other => {
                    return fail(
                        &ctx,
                        format!(
                            "power: '{other}' is not an operation; use \"on\", \"off\", \"shutdown\" or \"reboot\""
                        ),
                    );
                }
            };
            record(&ctx, &a, "power", CourseOp::Power { user, power })
        });
    let a = api.clone();
    FuncRegistration::new("snapshot")
        .with_params_info(["user: Dynamic", "name: &str", "()"])
        .with_comments([DOC_SNAPSHOT])
        .register_into_engine(engine, move |ctx: NativeCallContext, user: Dynamic, name: &str| -> Res<()> {
            let user = userid(&ctx, "snapshot", &user)?;
            valid_snapshot_name(name).or_else(|e| fail(&ctx, format!("snapshot: {e}")))?;
            record(&ctx, &a, "snapshot", CourseOp::Snapshot { user, name: name.to_string() })
        });
    let a = api.clone();
    FuncRegistration::new("uplinks")
        .with_params_info(["user: Dynamic", "state: &str", "()"])
        .with_comments([DOC_UPLINKS])
        .register_into_engine(engine, move |ctx: NativeCallContext, user: Dynamic, state: &str| -> Res<()> {
            let user = userid(&ctx, "uplinks", &user)?;
            let on = match state {
                "on" => true,
                "off" => false,
                other => return fail(&ctx, format!("uplinks: '{other}' is neither \"on\" nor \"off\"")),
            };
            record(&ctx, &a, "uplinks", CourseOp::Uplinks { user, on })
        });
}
