//! The students: `users(..)` and `create_user`.

use std::path::Path;
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, FuncRegistration, Map, NativeCallContext};

use super::{ApiContext, Res, fail, plan_err, userid};
use crate::plan::UserPlan;
use crate::roster;
use crate::script::users::{check_users, read_users};

/// `users(src, #{ group, realm })`'s options.
struct ListOptions {
    group: Option<String>,
    realm: String,
}

impl ListOptions {
    fn of(ctx: &NativeCallContext, api: &ApiContext, opts: Option<&Map>) -> Res<ListOptions> {
        let mut out = ListOptions { group: None, realm: "pve".into() };
        for (k, v) in opts.into_iter().flatten() {
            match k.as_str() {
                "group" => out.group = Some(v.to_string()),
                "realm" => out.realm = v.to_string(),
                other => return fail(ctx, format!("users: unknown key `{other}`; valid keys: group, realm")),
            }
        }
        // `--group` on the command line wins, as `--users` does.
        if let Some(g) = &api.group {
            out.group = Some(g.clone());
        }
        Ok(out)
    }
}

fn users_from(ctx: &NativeCallContext, api: &ApiContext, src: &Dynamic, opts: Option<&Map>) -> Res<Array> {
    let opts = ListOptions::of(ctx, api, opts)?;
    let file = match &api.users_file {
        Some(file) => Some(file.clone()),
        None if src.is_string() => Some(api.path(&src.to_string())),
        None => None,
    };
    let list = if let Some(file) = file {
        from_file(ctx, api, &file, &opts)?
    } else if let Some(a) = src.clone().try_cast::<Array>() {
        if opts.group.is_some() {
            return fail(ctx, "users: a group selects students of a roster file, not of an array");
        }
        let entries = a.iter().map(|x| (None, x.to_string())).collect();
        check_users("users([...])", entries).or_else(|e| fail(ctx, e.message))?
    } else {
        return fail(ctx, format!("users: give a file path or an array of userids, got {}", src.type_name()));
    };
    Ok(list.into_iter().map(Dynamic::from).collect())
}

/// A roster (headers naming logins or names; see [`crate::roster`]), else a plain list.
fn from_file(ctx: &NativeCallContext, api: &ApiContext, file: &Path, opts: &ListOptions) -> Res<Vec<String>> {
    let yaml = matches!(file.extension().and_then(|e| e.to_str()), Some("yml" | "yaml"));
    let roster = if yaml { None } else { roster::read(file, &opts.realm).or_else(|e| fail(ctx, e.to_string()))? };
    let Some(mut roster) = roster else {
        if let Some(g) = &opts.group {
            return fail(
                ctx,
                format!("{}: group '{g}': the list has no header with a group column (Группа, group)", file.display()),
            );
        }
        return read_users(file).or_else(|e| fail(ctx, e.to_string()));
    };
    if let Some(g) = &opts.group {
        roster = roster.only_group(g).or_else(|m| fail(ctx, format!("{}: {m}", file.display())))?;
    }
    api.planner().read_roster(&roster);
    Ok(roster.people.into_iter().map(|p| p.userid).collect())
}

fn user_handle(u: &UserPlan) -> Map {
    let mut m = Map::new();
    m.insert("userid".into(), u.userid.clone().into());
    m.insert("name".into(), u.name.clone().into());
    m.insert("pool".into(), u.pool.clone().into());
    m.insert("node".into(), u.node.clone().map(Dynamic::from).unwrap_or(Dynamic::UNIT));
    m
}

const DOC_USERS: &str = r#"/// The students: from a file next to the script or from an array. A roster as schools
/// export it (CSV with `;`, `,` or tab in UTF-8 or Windows-1251, or `.xlsx`/`.ods`) whose
/// header names a login column (`login`, `логин`) or name columns (`ФИО`, `Фамилия`/`Имя`/
/// `Отчество`, `name`): logins are made from names as `ivanov-ps@pve` (a namesake gets
/// `-2`) and the names go to the PVE users. A file without such a header is a list of
/// userids (deploy-stand's `users_list.yml`, a CSV's first column, one per line).
/// `--users FILE` on the command line wins over `src`.
///
/// ```rhai
/// for u in users("students.txt") { create_user(u); }
/// ```"#;
const DOC_USERS_OPTS: &str = r#"/// The students of a roster, with options: `group` (only the students of this group, by
/// the roster's group column; `--group` wins) and `realm` (of logins made from names,
/// `pve`).
///
/// ```rhai
/// for u in users("class.xlsx", #{ group: "ИС-21" }) { create_user(u); }
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

/// Registers `users`, `create_user`.
pub(super) fn register(engine: &mut Engine, api: &Arc<ApiContext>) {
    let a = api.clone();
    FuncRegistration::new("users")
        .with_params_info(["src: Dynamic", "Array"])
        .with_comments([DOC_USERS])
        .register_into_engine(engine, move |ctx: NativeCallContext, src: Dynamic| users_from(&ctx, &a, &src, None));
    let a = api.clone();
    FuncRegistration::new("users")
        .with_params_info(["src: Dynamic", "options: Map", "Array"])
        .with_comments([DOC_USERS_OPTS])
        .register_into_engine(engine, move |ctx: NativeCallContext, src: Dynamic, opts: Map| {
            users_from(&ctx, &a, &src, Some(&opts))
        });
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
            users_from(&ctx, &a, &Dynamic::UNIT, None)
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
