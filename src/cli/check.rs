//! `stand check LAB.rhai`: grade every stand of a lab with the script's `fn check(stand)`,
//! print students × criteria, write the CSV, record the run; `--history` reads the runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use super::arguments::{CsvFormat, Output};
use super::suggest::{not_in_lab, resolve_students};
use super::target::Cluster;
use super::{Usage, exit, lab, render, up};
use crate::grade::{ClusterAgent, GradeSheet, History, Progress, StandsError, check_stands, deployed_stands, number};
use crate::pve::PveExt;
use crate::script::{CheckScript, RunOptions};

/// What `stand check` was asked.
pub struct CheckArgs<'a> {
    pub lab: &'a Path,
    pub only: &'a [String],
    pub lab_name: Option<&'a str>,
    pub users: Option<&'a Path>,
    pub group: Option<&'a str>,
    pub csv: Option<&'a Path>,
    pub format: CsvFormat,
    pub xlsx: Option<&'a Path>,
    pub db: Option<&'a Path>,
    pub timeout: u64,
    pub per_node: usize,
    pub verbose: bool,
    pub quiet: bool,
}

/// Where the grade history lives by default: `$XDG_STATE_HOME/stand/stand.db`.
pub(super) fn default_db() -> PathBuf {
    super::sim_cmd::state_dir().join("stand.db")
}

/// `stand check LAB.rhai`.
pub async fn check(cluster: &Cluster, args: CheckArgs<'_>) -> anyhow::Result<u8> {
    if args.per_node == 0 || args.timeout == 0 {
        return Err(Usage("--per-node and --timeout must be at least 1".into()).into());
    }
    if !args.lab.is_file() {
        let lab = lab::lab_name(&args.lab.display().to_string());
        return Err(Usage(format!(
            "{}: no such file; grading runs the lab script (LAB.rhai), the history needs only its name: stand check {lab} --history",
            args.lab.display()
        ))
        .into());
    }
    let opts = RunOptions {
        users_file: args.users.map(Path::to_path_buf),
        group: args.group.map(str::to_string),
        lab: args.lab_name.map(str::to_string),
        ..RunOptions::default()
    };
    let script = Arc::new(CheckScript::load(args.lab, &opts)?);
    let lab = script.lab().to_string();
    let snap = up::snapshot(cluster).await?;
    let students = snap.students(&lab);
    let students: Vec<&str> = students.iter().map(String::as_str).collect();
    let only = match args.only.is_empty() {
        true => Vec::new(),
        false => resolve_students(&lab, args.only, &students).map_err(|e| anyhow::anyhow!("--only: {e}"))?,
    };
    let stands = deployed_stands(&snap, &lab, &only).map_err(|e| match e {
        StandsError::NoStand { lab, student, students } => {
            anyhow::anyhow!("--only: {}", not_in_lab(&lab, &student, students.iter().map(String::as_str)))
        }
        other => anyhow::anyhow!("{other}"),
    })?;
    let scale = cluster.time_scale().unwrap_or(1.0);
    let agent = Arc::new(
        ClusterAgent::new(cluster.pve.clone(), tokio::runtime::Handle::current(), args.per_node).time_scale(scale),
    );
    let timeout = Duration::from_secs(args.timeout);
    let outcomes = check_stands(script, snap.clone(), stands, agent.clone(), timeout).await;
    let mut sheet = GradeSheet::new(&lab, &outcomes);
    sheet.name_students(|user| snap.user(user).and_then(|u| u.name.clone()));
    if let Some(path) = args.csv {
        let text = match args.format {
            CsvFormat::Stand => sheet.to_csv(),
            CsvFormat::Moodle => sheet.to_moodle_csv(),
        };
        let text = text.context("cannot write the grade sheet as CSV")?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = args.xlsx {
        let bytes = sheet.to_xlsx().context("cannot write the grade sheet as a spreadsheet")?;
        std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let db = args.db.map(Path::to_path_buf).unwrap_or_else(default_db);
    let at = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let identity = cluster.pve.cluster_identity().await.context("cannot read which cluster this is")?;
    let run = History::open(&db)?.record(&sheet, &at, &identity)?;
    match cluster.output {
        Output::Json => crate::outln!(
            "{}",
            json!({
                "simulated": cluster.simulated(),
                "lab": sheet.lab,
                "checked": sheet.all_checked(),
                "criteria": sheet.criteria,
                "stands": sheet.stands,
                "run": run,
                "db": db.display().to_string(),
                "agent_calls": agent.calls(),
            })
        ),
        Output::Text => print_sheet(&sheet, args.verbose),
    }
    if !args.quiet && cluster.output == Output::Text {
        for path in args.csv.iter().chain(args.xlsx.iter()) {
            crate::errln!("grade sheet written to {}", path.display());
        }
        crate::errln!(
            "{}",
            render::wrap(
                &format!(
                    "recorded as run {run} in {}; `stand check {lab} --history` shows each student's progress",
                    db.display()
                ),
                2
            )
        );
    }
    Ok(if sheet.all_checked() { exit::OK } else { exit::PARTIAL })
}

/// The sheet: one line per student with ✓/✗ per criterion, the criteria below, then the
/// stands that could not be checked (and, with -v, the hints of what failed).
fn print_sheet(sheet: &GradeSheet, verbose: bool) {
    let numbers: Vec<String> = (1..=sheet.criteria.len()).map(|i| i.to_string()).collect();
    // Names (short) when the roster gave them.
    let named = sheet.stands.iter().any(|r| r.name.is_some());
    let mut header = vec!["student"];
    if named {
        header.push("name");
    }
    header.extend(numbers.iter().map(String::as_str));
    header.push("points");
    let mut t = render::table(&header);
    for row in &sheet.stands {
        let mut line = vec![row.user.clone()];
        if named {
            line.push(row.name.as_ref().map(|n| n.short()).unwrap_or_default());
        }
        for m in &row.marks {
            line.push(match (m.passed, m.unreached) {
                (true, _) => console::style("✓").green().to_string(),
                (false, true) => console::style("–").dim().to_string(),
                (false, false) => console::style("✗").red().to_string(),
            });
        }
        line.push(format!("{}/{}", number(row.total), number(row.max)));
        t.add_row(line);
    }
    crate::outln!("{t}");
    for (i, c) in sheet.criteria.iter().enumerate() {
        crate::outln!("{}", render::wrap(&format!("{:>3}  {} ({})", i + 1, c.title, number(c.points)), 5));
    }
    let unchecked: Vec<_> = sheet.stands.iter().filter(|r| !r.checked).collect();
    if !unchecked.is_empty() {
        crate::outln!("\nnot checked whole (– above: the guest could not be asked):");
        for r in unchecked {
            let reason = r.error.as_deref().unwrap_or_default().lines().next().unwrap_or_default().to_string();
            crate::outln!("{}", render::wrap(&format!("  {}: {reason}", r.user), 4));
        }
    }
    if verbose {
        for r in &sheet.stands {
            for m in r.marks.iter().filter(|m| !m.passed && !m.unreached) {
                let why = match (&m.hint, &m.reason) {
                    (Some(h), Some(r)) => format!("{h} ({r})"),
                    (Some(h), None) => h.clone(),
                    (None, Some(r)) => r.clone(),
                    (None, None) => continue,
                };
                crate::outln!("{}", render::wrap(&format!("  {}: ✗ {}: {why}", r.user, m.title), 4));
            }
        }
    }
    let checked = sheet.stands.iter().filter(|r| r.checked).count();
    crate::outln!(
        "\n{}: {checked} of {} stands checked, {} criteria, {} points",
        sheet.lab,
        sheet.stands.len(),
        sheet.criteria.len(),
        number(sheet.criteria.iter().map(|c| c.points).sum())
    );
}

/// `stand check LAB --history`: each student's runs, oldest first.
pub fn history(
    lab_arg: &Path,
    lab_name: Option<&str>,
    only: &[String],
    db: Option<&Path>,
    output: Output,
) -> anyhow::Result<u8> {
    let lab = lab_name.map(str::to_string).unwrap_or_else(|| lab::lab_name(&lab_arg.display().to_string()));
    let db = db.map(Path::to_path_buf).unwrap_or_else(default_db);
    if !db.exists() {
        anyhow::bail!("no grade history at {}: `stand check {lab}.rhai` records one", db.display());
    }
    let runs = History::open(&db)?.progress(&lab, only, None)?;
    if runs.is_empty() {
        anyhow::bail!(
            "no recorded check of lab {lab}{} in {}",
            if only.is_empty() { String::new() } else { format!(" for {}", only.join(", ")) },
            db.display()
        );
    }
    match output {
        Output::Json => crate::outln!("{}", json!({ "lab": lab, "runs": runs })),
        Output::Text => print_history(&runs),
    }
    Ok(exit::OK)
}

fn print_history(runs: &[Progress]) {
    let mut t = render::table(&["student", "run", "when (UTC)", "points", "not met"]);
    for p in runs {
        let when = p.at.replace('T', " ").trim_end_matches('Z').chars().take(16).collect::<String>();
        let failed = p.failed.iter().map(|c| match p.reasons.get(c) {
            Some(why) => format!("{c} ({})", why.lines().next().unwrap_or_default()),
            None => c.clone(),
        });
        let missing = match &p.error {
            Some(e) if p.failed.is_empty() => e.lines().next().unwrap_or_default().to_string(),
            _ => failed.collect::<Vec<_>>().join(", "),
        };
        t.add_row(vec![
            p.user.clone(),
            p.run.to_string(),
            when,
            format!("{}/{}", number(p.total), number(p.max)),
            missing,
        ]);
    }
    crate::outln!("{t}");
}
