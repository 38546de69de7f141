//! The students: `users(..)` and `create_user`.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, FuncRegistration, Map, NativeCallContext};

use super::{ApiContext, Res, fail, plan_err, userid};
use crate::plan::UserPlan;
use crate::script::users::{check_users, read_users};

fn users_from(ctx: &NativeCallContext, api: &ApiContext, src: &Dynamic) -> Res<Array> {
    let list = if let Some(file) = &api.users_file {
        read_users(file).or_else(|e| fail(ctx, e.to_string()))?
    } else if src.is_string() {
        read_users(&api.path(&src.to_string())).or_else(|e| fail(ctx, e.to_string()))?
    } else if let Some(a) = src.clone().try_cast::<Array>() {
        let entries = a.iter().map(|x| (None, x.to_string())).collect();
        check_users("users([...])", entries).or_else(|e| fail(ctx, e.message))?
    } else {
        return fail(ctx, format!("users: give a file path or an array of userids, got {}", src.type_name()));
    };
    Ok(list.into_iter().map(Dynamic::from).collect())
}

fn user_handle(u: &UserPlan) -> Map {
    let mut m = Map::new();
    m.insert("userid".into(), u.userid.clone().into());
    m.insert("name".into(), u.name.clone().into());
    m.insert("pool".into(), u.pool.clone().into());
    m.insert("node".into(), u.node.clone().map(Dynamic::from).unwrap_or(Dynamic::UNIT));
    m
}

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

/// Registers `users`, `create_user`.
pub(super) fn register(engine: &mut Engine, api: &Arc<ApiContext>) {
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
}
