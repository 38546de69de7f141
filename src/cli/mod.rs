//! The `stand` command line: argument parsing, and each command's glue.

mod arguments;
mod check;
mod cluster_cmd;
mod confirm;
mod course;
mod doctor;
mod down;
mod export;
mod graph;
mod lab;
mod logins;
mod render;
mod repl;
mod serve;
mod sim_cmd;
mod sim_state;
mod status;
mod suggest;
mod target;
mod templates;
mod up;

use std::process::ExitCode;

use clap::Parser;

pub use arguments::{Arguments, ClusterCommand, Command, GuestCommand, SimCommand};

/// Exit codes (documented in the README).
pub mod exit {
    /// Everything converged.
    pub const OK: u8 = 0;
    /// The command failed: nothing converged, or the cluster could not be reached, trusted
    /// or logged into, or a doctor check failed.
    pub const FAILED: u8 = 1;
    /// Bad input: usage, script, student list, fixture.
    pub const USAGE: u8 = 2;
    /// Partially converged: some objects are done, others failed (the summary names them;
    /// running the command again continues).
    pub const PARTIAL: u8 = 3;
    /// Interrupted (Ctrl-C): what was done is kept, and running the command again continues.
    pub const INTERRUPTED: u8 = 130;

    /// One line for the end of a run that Ctrl-C stopped.
    pub fn interrupted_line(not_started: usize, again: &str) -> String {
        format!(
            "interrupted: {not_started} steps did not start; what was done is kept, and `{again}` again continues from here"
        )
    }

    /// The exit code of an error that ended a command: bad input (a script, a command line,
    /// a setting that cannot work) is [`USAGE`], anything else [`FAILED`].
    pub fn of_error(e: &anyhow::Error) -> u8 {
        if e.is::<crate::script::ScriptError>() || e.is::<super::Usage>() { USAGE } else { FAILED }
    }

    /// The exit code of a run that changes the cluster: [`OK`] when it all converged,
    /// [`PARTIAL`] when some of it is done, [`FAILED`] when none is.
    pub fn of_run(converged: bool, some_done: bool) -> u8 {
        match (converged, some_done) {
            (true, _) => OK,
            (false, true) => PARTIAL,
            (false, false) => FAILED,
        }
    }
}

/// A command line that cannot work as given (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Runs the `stand` command line and returns its exit code.
pub fn main() -> ExitCode {
    let args = Arguments::parse();
    init_tracing(args.verbose, args.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            crate::errln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Rendered once, here; a script error shows its file, line and source.
            match e.downcast_ref::<crate::script::ScriptError>() {
                Some(script) => crate::errln!("error: {script}"),
                // A long message (a list of students) wraps to the terminal, like warnings.
                None => crate::errln!("{}", render::for_terminal(&format!("error: {e:#}"))),
            }
            ExitCode::from(exit::of_error(&e))
        }
    }
}

async fn run(mut args: Arguments) -> anyhow::Result<u8> {
    let verbose = args.verbose > 0;
    let quiet = args.quiet;
    let command = match args.command {
        guest @ Command::Sim(SimCommand::Guest(_)) => {
            // A student's work on the `--sim` cluster, whether `--sim` was given or not.
            args.target.sim.get_or_insert_default();
            guest
        }
        Command::Sim(cmd) => return sim_cmd::run(cmd).await,
        Command::Cluster(cmd) => return cluster_cmd::run(cmd).await,
        Command::Docs { function } => {
            let docs = crate::script::functions(None);
            return match crate::script::markdown(&docs, function.as_deref()) {
                Some(text) => {
                    crate::out!("{text}");
                    Ok(exit::OK)
                }
                None => {
                    let mut names: Vec<&str> = docs.iter().map(|d| d.name.as_str()).collect();
                    names.dedup();
                    let asked = function.as_deref().unwrap_or_default();
                    Err(anyhow::anyhow!("{}", suggest::not_found("function", asked, names)))
                }
            };
        }
        Command::Check { lab, only, lab_name, db, history: true, .. } => {
            return check::history(&lab, lab_name.as_deref(), &only, db.as_deref(), args.target.output);
        }
        Command::Credentials { lab, html, file, url } => {
            return logins::write(&lab, &html, file.as_deref(), url.as_deref(), quiet);
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Arguments::command(), "stand", &mut script);
            crate::out!("{}", String::from_utf8_lossy(&script));
            return Ok(exit::OK);
        }
        other => other,
    };
    let changes = changes(&command);
    let mut cluster = target::Cluster::open(&args.target, changes)?;
    if stops_on_ctrl_c(&command) {
        cluster.stop_on_ctrl_c();
    }
    if cluster.output == arguments::Output::Text && !quiet {
        crate::errln!("{}", render::wrap(&cluster.banner(), 2));
    }
    let code = match &command {
        Command::Up { input, apply } => up::up(&cluster, input, apply, quiet).await,
        Command::Plan { input, reset_passwords, prune } => {
            up::plan(&cluster, input, *reset_passwords, *prune, verbose).await
        }
        Command::Run { script, args: script_args, apply } => up::run(&cluster, script, script_args, apply, quiet).await,
        Command::Down { lab: Some(lab), only, dry_run, yes, .. } => {
            down::down(&cluster, lab, only, *dry_run, *yes).await
        }
        Command::Down { lab: None, dry_run, yes, .. } => down::down_expired(&cluster, *dry_run, *yes).await,
        Command::Reset { scope, to, yes } => course::reset(&cluster, scope, to, *yes).await,
        Command::Power { op, scope, timeout, per_node } => {
            course::power(&cluster, scope, *op, *timeout, *per_node).await
        }
        Command::Uplinks { op, scope } => course::uplinks(&cluster, scope, *op).await,
        Command::Snapshot { scope, name, list, delete } => {
            course::snapshots(&cluster, scope, name.as_deref(), *list, *delete).await
        }
        Command::Check { lab, only, lab_name, users, group, csv, format, xlsx, db, timeout, per_node, .. } => {
            let opts = check::CheckArgs {
                lab,
                only,
                lab_name: lab_name.as_deref(),
                users: users.as_deref(),
                group: group.as_deref(),
                csv: csv.as_deref(),
                format: *format,
                xlsx: xlsx.as_deref(),
                db: db.as_deref(),
                timeout: *timeout,
                per_node: *per_node,
                verbose,
                quiet,
            };
            check::check(&cluster, opts).await
        }
        Command::Status { lab, only, watch } => status::watch(&mut cluster, lab.as_deref(), only, *watch).await,
        Command::Doctor { lab, users, capi } => {
            let input = lab.clone().map(|lab| arguments::LabInput {
                lab: Some(lab),
                legacy: None,
                users: users.clone(),
                group: None,
                only: Vec::new(),
                lab_name: None,
                overcommit: None,
            });
            doctor::doctor(&cluster, input.as_ref(), *capi).await
        }
        Command::Graph { input, format, student } => {
            let snap = up::snapshot(&cluster).await?;
            let plan = lab::plan_lab(input, snap, false)?;
            match graph::render(&plan, student.as_deref(), *format) {
                Ok(text) => {
                    crate::out!("{text}");
                    Ok(exit::OK)
                }
                Err(e) => Err(Usage(e).into()),
            }
        }
        Command::Templates { action } => templates::run(&cluster, action.as_ref()).await,
        Command::Export(arguments::ExportCommand::Capi { input, dir, with_credentials, secret_file }) => {
            let creds = with_credentials.then(|| secret_file.clone());
            export::capi(&cluster, input, dir.as_deref(), creds, quiet).await
        }
        Command::Repl { load, lab } => repl::repl(&cluster, load.as_deref(), lab).await,
        Command::Serve { listen, labs, tls_cert, tls_key, metrics_token_file, db, credentials_dir, console_url } => {
            let args = serve::ServeArgs {
                listen: *listen,
                labs,
                tls: tls_cert.as_deref().zip(tls_key.as_deref()),
                metrics_token_file: metrics_token_file.as_deref(),
                db: Some(db.clone().unwrap_or_else(check::default_db)),
                credentials_dir,
                console_url: console_url.as_deref(),
            };
            serve::serve(&cluster, args).await
        }
        Command::Sim(SimCommand::Guest(GuestCommand::Write { lab, user, vm, path, text })) => {
            sim_cmd::guest_write(&cluster, lab, user, vm, path, text.as_deref()).await
        }
        Command::Sim(_)
        | Command::Cluster(_)
        | Command::Completions { .. }
        | Command::Docs { .. }
        | Command::Credentials { .. } => Ok(exit::OK),
    };
    // The simulator keeps what happened, even when the command failed halfway. Commands
    // that only read leave the saved state alone (another `--sim` command may be writing).
    if changes {
        cluster.close()?;
    }
    code
}

/// Whether Ctrl-C stops `command`'s run part way (the steps under way finish and it reports
/// what was done) rather than the process at once.
fn stops_on_ctrl_c(command: &Command) -> bool {
    matches!(
        command,
        Command::Up { .. }
            | Command::Run { .. }
            | Command::Down { .. }
            | Command::Reset { .. }
            | Command::Power { .. }
            | Command::Uplinks { .. }
            | Command::Snapshot { .. }
            | Command::Templates { .. }
    )
}

/// Whether `command` may change the cluster: on `--sim` it then holds the simulated cluster
/// to its end and saves it; a command that only reads lets others at it once it has read it.
fn changes(command: &Command) -> bool {
    matches!(
        command,
        Command::Up { .. }
            | Command::Run { .. }
            | Command::Down { .. }
            | Command::Repl { .. }
            | Command::Reset { .. }
            | Command::Power { .. }
            | Command::Uplinks { .. }
            | Command::Snapshot { list: false, .. }
            | Command::Serve { .. }
            | Command::Sim(SimCommand::Guest(_))
            | Command::Export(arguments::ExportCommand::Capi { with_credentials: true, .. })
            | Command::Templates {
                action: Some(
                    arguments::TemplatesCommand::Sync { dry_run: false, .. }
                        | arguments::TemplatesCommand::Prune { dry_run: false, .. }
                )
            }
    )
}

fn init_tracing(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STAND_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("stand={level}")));
    // Colours only on a terminal that wants them.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        // A closed stderr loses the logs, never the run (the default reports with eprint!).
        .log_internal_errors(false)
        .with_target(false)
        .try_init();
}
