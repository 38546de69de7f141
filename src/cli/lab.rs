//! Turning `LAB.rhai` (or a deploy-stand `deployment_config.yml`) into a plan.

use std::path::Path;
use std::sync::Arc;

use super::arguments::LabInput;
use super::suggest::{did_you_mean, resolve_students};
use crate::plan::{Plan, Snapshot, dns_safe};
use crate::script::{RunOptions, ScriptError, run_file, run_source};

/// Whether `path` is a deploy-stand config rather than a script.
fn is_legacy_config(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yml" | "yaml"))
}

/// Runs the lab of `input` against `snap`; with `--only`, keeps those students' stands (a
/// student the lab does not have fails with the list of those it has).
pub fn plan_lab(input: &LabInput, snap: Arc<Snapshot>, reset_passwords: bool) -> anyhow::Result<Plan> {
    let mut plan = run_lab(input, snap, reset_passwords)?;
    if !input.only.is_empty() {
        let students: Vec<&str> = plan.users.iter().map(|u| u.userid.as_str()).collect();
        let only =
            resolve_students(plan.lab_name(), &input.only, &students).map_err(|e| anyhow::anyhow!("--only: {e}"))?;
        plan.retain_students(&only);
    }
    // The planner has no clock: a last day already past is found here.
    if let Some(day) = plan.lab.as_ref().and_then(|l| l.expires.clone())
        && crate::plan::expiry::is_past(&day, crate::plan::expiry::today())
    {
        plan.warnings.push(format!(
            "the lab's last day ({day}) is past: its students cannot log in, and `stand down --expired` removes it; change `expires` in lab(#{{ .. }})"
        ));
    }
    Ok(plan)
}

fn run_lab(input: &LabInput, snap: Arc<Snapshot>, reset_passwords: bool) -> Result<Plan, ScriptError> {
    let opts = RunOptions {
        users_file: input.users.clone(),
        group: input.group.clone(),
        reset_passwords,
        args: Vec::new(),
        lab: input.lab_name.clone(),
        overcommit: input.overcommit,
        ..RunOptions::default()
    };
    let (path, legacy) = match (&input.legacy, &input.lab) {
        (Some(config), _) => (config.as_path(), true),
        (None, Some(lab)) => (lab.as_path(), is_legacy_config(lab)),
        (None, None) => return Err(ScriptError::plain("stand", "give LAB.rhai or --legacy deployment_config.yml")),
    };
    if !path.exists() {
        return Err(ScriptError::plain(&path.display().to_string(), missing_file(path)));
    }
    if !legacy {
        return Ok(run_file(path, snap, &opts)?.plan);
    }
    let name = path.display().to_string();
    if input.users.is_none() {
        return Err(ScriptError::plain(
            &name,
            "a deploy-stand config needs its student list: add --users users_list.yml",
        ));
    }
    let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default();
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let quoted = serde_json::to_string(file).unwrap_or_default();
    // `users(...)` reads --users whatever the script names, so the argument is a placeholder.
    let source = format!("import \"legacy\" as legacy;\nlegacy::deploy({quoted}, \"--users\");\n");
    let lab = opts.lab.clone().unwrap_or_else(|| {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("lab");
        dns_safe(stem)
    });
    Ok(run_source(&name, dir, &source, snap, &RunOptions { lab: Some(lab), ..opts })?.plan)
}

/// `no such file`, with the closest file of the same kind in its folder.
fn missing_file(path: &Path) -> String {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let script =
        |n: &String| matches!(Path::new(n).extension().and_then(|e| e.to_str()), Some("rhai" | "yml" | "yaml"));
    let near: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().filter_map(|e| e.file_name().to_str().map(str::to_string)).filter(script).collect()
        })
        .unwrap_or_default();
    match did_you_mean(name, near.iter().map(String::as_str)) {
        Some(m) => format!("no such file (did you mean {}?)", dir.join(m).display()),
        None => "no such file".to_string(),
    }
}

/// The lab name of `down`/`status` arguments: a script path or a plain name.
pub fn lab_name(arg: &str) -> String {
    let path = Path::new(arg);
    let is_file = matches!(path.extension().and_then(|e| e.to_str()), Some("rhai" | "yml" | "yaml"));
    if is_file { dns_safe(path.file_stem().and_then(|s| s.to_str()).unwrap_or(arg)) } else { arg.to_string() }
}
