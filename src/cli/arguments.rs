//! The command line, as clap parses it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Deploy lab stands for students on a Proxmox VE cluster.
#[derive(Debug, Parser)]
#[command(name = "stand", version, about, long_about = None)]
pub struct Arguments {
    /// The cluster.
    #[command(flatten)]
    pub target: Target,
    /// More log output on stderr (-v every API write, -vv every request).
    #[arg(help_heading = "Output options", short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(help_heading = "Output options", short, long, global = true)]
    pub quiet: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Which cluster a command talks to, and how it prints.
#[derive(Clone, Debug, clap::Args)]
pub struct Target {
    /// Run against the built-in simulator (optionally starting from a fixture: --sim=FILE).
    /// Its state is kept between commands; `stand sim reset` forgets it.
    #[arg(help_heading = "Cluster options", long, global = true, num_args = 0..=1, require_equals = true, value_name = "FIXTURE", default_missing_value = "")]
    pub sim: Option<String>,
    /// Where --sim keeps its cluster.
    #[arg(help_heading = "Cluster options", long, global = true, value_name = "PATH", env = "STAND_SIM_STATE")]
    pub sim_state: Option<PathBuf>,
    /// Simulated durations, as a fraction of real ones (--sim).
    #[arg(help_heading = "Cluster options", long, global = true, default_value_t = 0.02, value_name = "F")]
    pub sim_time_scale: f64,
    /// Injected faults of the simulator (--sim), e.g. http5xx=0.05,task_fail=0.02.
    #[arg(help_heading = "Cluster options", long, global = true, default_value = "", value_name = "SPEC")]
    pub sim_faults: String,
    /// Seed of the simulator's random choices (--sim); the banner prints the one used, so a
    /// run with faults can be replayed.
    #[arg(help_heading = "Cluster options", long, global = true, value_name = "N")]
    pub sim_seed: Option<u64>,
    /// A cluster of ~/.config/stand/clusters.toml (else PVE_URL and PVE_TOKEN).
    #[arg(help_heading = "Cluster options", long, global = true, value_name = "NAME", env = "STAND_CLUSTER")]
    pub cluster: Option<String>,
    /// Do not verify the cluster's TLS certificate (prefer PVE_FINGERPRINT).
    #[arg(help_heading = "Cluster options", long, global = true)]
    pub insecure: bool,
    /// Output for people or for programs.
    #[arg(help_heading = "Output options", long, global = true, value_enum, default_value = "text")]
    pub output: Output,
}

/// Which VMs of a lab a course command means.
#[derive(Clone, Debug, clap::Args)]
pub struct VmScope {
    /// The lab script (LAB.rhai) or the lab's name.
    pub lab: String,
    /// Only these students' stands.
    #[arg(long, num_args = 1.., value_name = "USER")]
    pub only: Vec<String>,
    /// Only these VMs: the script's name (gw) or the cluster's (gw-ivanov).
    #[arg(long = "vm", num_args = 1.., value_name = "NAME")]
    pub vms: Vec<String>,
    /// Show the actions; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `stand power` operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PowerArg {
    /// Start stopped VMs.
    On,
    /// Stop running VMs at once.
    Off,
    /// Ask guests to power off; stop them after --timeout.
    Shutdown,
    /// Reboot running VMs, start stopped ones.
    Reboot,
}

/// `stand uplinks` operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum UplinksArg {
    /// Disconnect every NIC on a shared bridge (link_down=1), remembering which.
    Off,
    /// Reconnect exactly the NICs `off` disconnected.
    On,
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables and a summary.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// What `stand export` writes.
#[derive(Clone, Debug, Subcommand)]
pub enum ExportCommand {
    /// Each student's Kubernetes cluster as Cluster API manifests for CAPMOX.
    #[command(long_about = "Writes, for each student of the lab, the manifests a Cluster API management cluster \
            with the Proxmox provider (CAPMOX) applies to make that student's Kubernetes cluster on \
            their part of the cluster: Cluster, ProxmoxCluster (their nodes, their address range, \
            their control plane endpoint), KubeadmControlPlane, MachineDeployment, \
            KubeadmConfigTemplate and a ProxmoxMachineTemplate for control planes and for workers \
            (the template's copy on their node, their pool, their network). The lab's settings are \
            lab(#{ capi: #{ .. } }); a deployed lab's name works too (its students as they are, and \
            the settings `up` recorded). Multi-document YAML on stdout, or one file per student with \
            --dir. --with-credentials also makes the lab's CAPMOX API token (privilege-separated, \
            limited to the lab's pools, networks and templates) and writes its Secret to a 0600 \
            file, never to stdout.\n\
            \n\
            Examples:\n\
            \x20\x20stand export capi k8s.rhai --sim\n\
            \x20\x20stand export capi k8s.rhai --dir capi/ --with-credentials\n\
            \x20\x20stand export capi k8s --sim\n\
            \x20\x20kubectl apply -f capi/")]
    Capi {
        /// The lab.
        #[command(flatten)]
        input: LabInput,
        /// One file per student in this folder, instead of stdout.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Make the lab's CAPMOX API token and write its Secret (see --secret-file).
        #[arg(long)]
        with_credentials: bool,
        /// Where the Secret goes [default: <lab>-capmox-secret.yaml].
        #[arg(long, value_name = "FILE", requires = "with_credentials")]
        secret_file: Option<PathBuf>,
    },
}

/// The layout of `stand check --csv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CsvFormat {
    /// `user,name,total,max,<criterion>...,hints`.
    Stand,
    /// Moodle's grade import: `username`, one column per criterion, `total`.
    Moodle,
}

/// What `up`, `plan` and `run` read.
#[derive(Clone, Debug, clap::Args)]
pub struct LabInput {
    /// The lab script (LAB.rhai), or a deploy-stand deployment_config.yml.
    #[arg(required_unless_present = "legacy", conflicts_with = "legacy")]
    pub lab: Option<PathBuf>,
    /// A deploy-stand deployment_config.yml (with --users users_list.yml).
    #[arg(long, value_name = "CONFIG")]
    pub legacy: Option<PathBuf>,
    /// The students, instead of the script's: a roster (CSV, .xlsx, .ods with a ФИО or login
    /// column) or a list of userids (YAML, CSV, one per line).
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// Only the students of this group of the roster (its Группа/group column).
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Only these students.
    #[arg(long, num_args = 1.., value_name = "USER")]
    pub only: Vec<String>,
    /// The lab's name (default: the file's name), which marks everything it makes.
    #[arg(long = "lab", value_name = "NAME")]
    pub lab_name: Option<String>,
    /// Memory running guests may take, as a multiple of a node's RAM (over the lab's
    /// `overcommit`; default 1.0). Stopped VMs never count.
    #[arg(long, value_name = "RATIO")]
    pub overcommit: Option<f64>,
}

/// How `up` and `run` apply.
#[derive(Clone, Debug, clap::Args)]
pub struct ApplyArgs {
    /// Show what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Give existing students new passwords (written to the credentials file).
    #[arg(long)]
    pub reset_passwords: bool,
    /// VM pipelines at once per node.
    #[arg(long, default_value_t = 6, value_name = "N")]
    pub per_node: usize,
    /// Clones at once per storage.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub per_storage: usize,
    /// Apply a node's network even with pending changes stand did not make.
    #[arg(long)]
    pub apply_foreign_network: bool,
    /// Where to write the students' credentials (default: <lab>-credentials.csv).
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// Also remove what this lab made earlier but the script no longer has (asks first on a
    /// terminal).
    #[arg(long)]
    pub prune: bool,
    /// Remove with --prune without asking (needed where nobody can be asked: a pipe, a script).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Include passwords in --output json.
    #[arg(long)]
    pub show_passwords: bool,
}

/// `stand` commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plan a lab and apply it: clone, wire, start, and give each student access.
    #[command(long_about = "Runs LAB.rhai against a snapshot of the cluster, then applies the plan in parallel \
        across nodes: users, pools and rights; private bridges (one network reload per node); \
        clones, NICs, start. Re-running does only what is missing and finishes an interrupted \
        run. New students' logins go to <lab>-credentials.csv (mode 0600).\n\
        \n\
        Examples:\n\
        \x20\x20stand up lab3.rhai --sim\n\
        \x20\x20stand up lab3.rhai --cluster lab --users group-b.txt\n\
        \x20\x20stand up lab3.rhai --only ivanov@pve --reset-passwords\n\
        \x20\x20stand up --legacy deployment_config.yml --users users_list.yml --lab lab1")]
    Up {
        /// The lab.
        #[command(flatten)]
        input: LabInput,
        /// Apply settings.
        #[command(flatten)]
        apply: ApplyArgs,
    },
    /// Show what `up` would change; change nothing.
    #[command(long_about = "Shows, object by object, what `stand up` would create (+), update (~) or leave (=, with \
            -v), and what of the lab is no longer in the script (-, removed only by `up --prune`).\n\
            \n\
            Examples:\n\
            \x20\x20stand plan lab3.rhai --sim\n\
            \x20\x20stand plan lab3.rhai --cluster lab --output json")]
    Plan {
        /// The lab.
        #[command(flatten)]
        input: LabInput,
        /// Give existing students new passwords (shown as updates).
        #[arg(long)]
        reset_passwords: bool,
        /// Also list what `up --prune` would remove: the lab's objects the script no longer has.
        #[arg(long)]
        prune: bool,
    },
    /// Run any script (reports, queries, lab logic) and apply what it recorded.
    #[command(long_about = "Runs SCRIPT.rhai with ARGS as `args()`. A script that only reads (nodes(), vms(), ...) \
        prints its report; one that records users or VMs has them applied like `stand up`.\n\
        \n\
        Example:\n\
        \x20\x20stand run report.rhai --sim -- pve1")]
    Run {
        /// The script.
        script: PathBuf,
        /// Arguments of the script, as `args()`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
        /// Apply settings.
        #[command(flatten)]
        apply: ApplyArgs,
    },
    /// Remove what carries the lab's marker, and nothing else.
    #[command(long_about = "Stops and deletes the lab's VMs, deletes its bridges (one network reload per node), \
            pools, group, and the users no other lab uses. Only objects carrying the lab's marker \
            are touched.\n\
            \n\
            Examples:\n\
            \x20\x20stand down lab3 --sim --dry-run\n\
            \x20\x20stand down lab3.rhai --only ivanov@pve")]
    Down {
        /// The lab script (LAB.rhai) or the lab's name.
        #[arg(required_unless_present = "expired")]
        lab: Option<String>,
        /// Only these students' stands.
        #[arg(long, num_args = 1.., value_name = "USER")]
        only: Vec<String>,
        /// Remove every lab past its last day (`lab(#{ expires: .. })`), and nothing else.
        #[arg(long, conflicts_with_all = ["lab", "only"])]
        expired: bool,
        /// Show what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask (needed where nobody can be asked: a pipe, a script).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Roll students' VMs back to a snapshot and start again those that ran.
    #[command(long_about = "Rolls each chosen VM back to a snapshot (`start`, which `up` takes of every VM it makes, \
            or --to NAME) and starts again the VMs that were running. Only the lab's VMs are \
            touched, and of those only the students and VMs chosen. Asks first on a terminal when \
            more than one stand is affected (--yes does not ask).\n\
            \n\
            Examples:\n\
            \x20\x20stand reset lab3 --only ivanov@pve\n\
            \x20\x20stand reset lab3 --vm gw --to before-ospf --yes")]
    Reset {
        /// Which VMs.
        #[command(flatten)]
        scope: VmScope,
        /// The snapshot to go back to.
        #[arg(long, value_name = "SNAPSHOT", default_value = "start")]
        to: String,
        /// Do not ask, whatever is affected.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Power a lab's VMs on, off, down through the guest, or reboot them.
    #[command(long_about = "Powers the chosen VMs of a lab, a few per node at a time (--per-node): `on` starts \
        stopped VMs, `off` stops running ones at once, `shutdown` asks each guest to power off \
        and stops it after --timeout seconds, `reboot` reboots running VMs and starts stopped \
        ones.\n\
        \n\
        Examples:\n\
        \x20\x20stand power on lab3\n\
        \x20\x20stand power shutdown lab3 --only ivanov@pve --timeout 60")]
    Power {
        /// What to do.
        #[arg(value_enum)]
        op: PowerArg,
        /// Which VMs.
        #[command(flatten)]
        scope: VmScope,
        /// Seconds a guest gets to shut down before it is stopped.
        #[arg(long, value_name = "SECONDS", default_value_t = 120)]
        timeout: u64,
        /// VMs started at once per node.
        #[arg(long, value_name = "N", default_value_t = 4)]
        per_node: usize,
    },
    /// Cut or restore a lab's access to shared networks (an exam without the internet).
    #[command(long_about = "`off` disconnects (link_down=1) every connected NIC of the chosen VMs that sits on a \
        shared bridge (vmbr0, a bridge from ensure_bridge, any bridge that is not a student's \
        private one) and writes which ones into each VM's marker in the same config change. `on` \
        reconnects exactly those, never a NIC that was down before. Re-running `up` meanwhile \
        keeps them cut.\n\
        \n\
        Examples:\n\
        \x20\x20stand uplinks off lab3\n\
        \x20\x20stand uplinks on lab3 --only ivanov@pve")]
    Uplinks {
        /// What to do.
        #[arg(value_enum)]
        op: UplinksArg,
        /// Which VMs.
        #[command(flatten)]
        scope: VmScope,
    },
    /// Take, list or delete a snapshot of a lab's VMs.
    #[command(long_about = "Takes snapshot NAME of the chosen VMs (disks and config), lists their snapshots \
        (--list), or deletes snapshot NAME (--delete). Names: a letter, then letters, digits, \
        '-' or '_', up to 40 characters.\n\
        \n\
        Examples:\n\
        \x20\x20stand snapshot lab3 before-ospf\n\
        \x20\x20stand snapshot lab3 --list --only ivanov@pve\n\
        \x20\x20stand snapshot lab3 before-ospf --delete")]
    Snapshot {
        /// Which VMs.
        #[command(flatten)]
        scope: VmScope,
        /// The snapshot.
        #[arg(required_unless_present = "list")]
        name: Option<String>,
        /// List the VMs' snapshots.
        #[arg(long, conflicts_with_all = ["delete", "name"])]
        list: bool,
        /// Delete snapshot NAME.
        #[arg(long)]
        delete: bool,
    },
    /// Grade every stand of a lab with the script's `fn check(stand)`, through the guest agent.
    #[command(long_about = "Runs the lab script's `fn check(stand)` once per deployed stand, all at once (--per-node \
            agent calls at a time per node): it reads the guests through the QEMU guest agent (exec, \
            read_file, hostname, interfaces) and records criteria with grade(). Prints students x \
            criteria, writes --csv for a gradebook, and keeps each run in a SQLite database (--db) \
            that --history reads. Changes nothing on the cluster. Exit 0 when every stand was \
            checked, whatever the grades; 3 when some could not be; 2 for a script without `fn \
            check`.\n\
            \n\
            Examples:\n\
            \x20\x20stand check lab3.rhai --sim\n\
            \x20\x20stand check lab3.rhai --only ivanov@pve --csv grades.csv\n\
            \x20\x20stand check lab3 --history --only ivanov@pve")]
    Check {
        /// The lab script (LAB.rhai); with --history, its name is enough.
        lab: PathBuf,
        /// Only these students' stands.
        #[arg(long, num_args = 1.., value_name = "USER")]
        only: Vec<String>,
        /// The lab's name (default: the file's name).
        #[arg(long = "lab", value_name = "NAME")]
        lab_name: Option<String>,
        /// The student list the script reads with users(), instead of its own.
        #[arg(long, value_name = "FILE")]
        users: Option<PathBuf>,
        /// Only the students of this group of the roster (its Группа/group column).
        #[arg(long, value_name = "GROUP")]
        group: Option<String>,
        /// Also write the grade sheet as CSV (see --format).
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// The CSV's layout: `stand` (user,name,total,max,<criterion>...) or `moodle` (what
        /// Moodle's grade import takes: username, one column per criterion, total).
        #[arg(long, value_name = "FORMAT", default_value = "stand", requires = "csv")]
        format: CsvFormat,
        /// Also write the grade sheet as a spreadsheet (.xlsx): students x criteria, totals,
        /// hints.
        #[arg(long, value_name = "FILE")]
        xlsx: Option<PathBuf>,
        /// The grade history database [default: ~/.local/state/stand/stand.db].
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// Show each student's results over the recorded runs; check nothing.
        #[arg(long)]
        history: bool,
        /// Seconds one command in a guest may take (exec's default).
        #[arg(long, value_name = "SECONDS", default_value_t = 30)]
        timeout: u64,
        /// Guest agent calls at once per node.
        #[arg(long, value_name = "N", default_value_t = 8)]
        per_node: usize,
    },
    /// Serve the class's web page (students and instructors), its JSON API and /metrics.
    #[command(long_about = "Serves the class's web page. Each student logs in with their own Proxmox VE account and \
        sees their stand: VMs, state, console links, the network picture, the last grades, and a \
        reset button when the lab allows it (lab(#{ student_reset: true })). The lab's teacher \
        or a PVE administrator sees the class: live state, grade sheet, reset and power per \
        student, credentials. What a person sees is what PVE shows them; what they do runs with \
        their own ticket. Also a JSON API under /api, and Prometheus metrics at /metrics in \
        prometheus-pve-exporter's names (loopback, or with --metrics-token-file). Plain HTTP \
        listens on loopback only; elsewhere give --tls-cert and --tls-key.\n\
        \n\
        Examples:\n\
        \x20\x20stand serve --sim\n\
        \x20\x20stand serve --cluster lab --lab lab3\n\
        \x20\x20stand serve --cluster lab --listen 0.0.0.0:8443 \\\n\
        \x20\x20\x20\x20\x20\x20--tls-cert cert.pem --tls-key key.pem")]
    Serve {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Only these labs (default: every lab on the cluster).
        #[arg(long = "lab", num_args = 1.., value_name = "LAB")]
        labs: Vec<String>,
        /// TLS certificate (PEM); with --tls-key.
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM); with --tls-cert.
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// A file holding the bearer token /metrics wants from other hosts than this one.
        #[arg(long, value_name = "FILE")]
        metrics_token_file: Option<PathBuf>,
        /// The grade history `stand check` writes [default: ~/.local/state/stand/stand.db].
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// Where the labs' <lab>-credentials.csv files are (for the instructor's download).
        #[arg(long, value_name = "DIR", default_value = ".")]
        credentials_dir: PathBuf,
        /// The PVE web UI console links open [default: the cluster's URL].
        #[arg(long, value_name = "URL")]
        console_url: Option<String>,
    },
    /// Read-only preflight checks of the cluster (and of a lab, if given), each with its fix.
    #[command(long_about = "Read-only preflight checks, one row each (ok / warn / FAIL) with the fix:\n\
        reachability, TLS, authentication, version, quorum, the privileges a lab needs, API \
        latency, templates, storage for linked clones, vmbr0 on each node, pending network \
        changes, capacity. With LAB.rhai, also whether that lab fits the cluster.\n\
        \n\
        Examples:\n\
        \x20\x20stand doctor\n\
        \x20\x20stand doctor lab3.rhai --cluster lab\n\
        \x20\x20stand doctor --sim --output json")]
    Doctor {
        /// A lab to check against the cluster.
        lab: Option<PathBuf>,
        /// Its student list.
        #[arg(long, value_name = "FILE")]
        users: Option<PathBuf>,
        /// Also check what CAPMOX needs for the lab's Kubernetes clusters (`stand export capi`).
        #[arg(long, requires = "lab")]
        capi: bool,
    },
    /// The topology of one stand and the lab's layout over the nodes (DOT or Mermaid).
    #[command(long_about = "Draws the stand of one student (VMs, NICs, bridges, uplink) and how the lab's stands \
        spread over the nodes.\n\
        \n\
        Examples:\n\
        \x20\x20stand graph lab3.rhai --sim | dot -Tsvg > lab3.svg\n\
        \x20\x20stand graph lab3.rhai --sim --format mermaid --student ivanov@pve")]
    Graph {
        /// The lab.
        #[command(flatten)]
        input: LabInput,
        /// Picture format.
        #[arg(long, value_enum, default_value = "dot")]
        format: super::graph::Format,
        /// Whose stand to draw (default: the first student).
        #[arg(long, value_name = "USER")]
        student: Option<String>,
    },
    /// Explore the cluster interactively with the script functions; `:plan` and `:apply`
    /// what the session recorded.
    #[command(long_about = "An interactive session with the functions of lab scripts, against the cluster (or \
        --sim). Variables and the recorded plan persist between inputs; Tab completes functions \
        and node, template and bridge names; get(\"/path\") reads any API path. Commands: :help \
        [fn], :plan, :apply, :refresh, :load FILE, :quit. Reads statements from a pipe when \
        stdin is not a terminal.\n\
        \n\
        Examples:\n\
        \x20\x20stand repl --sim\n\
        \x20\x20echo 'nodes()' | stand repl --sim")]
    Repl {
        /// A script to evaluate first.
        #[arg(long, value_name = "FILE")]
        load: Option<PathBuf>,
        /// The lab name of what the session records.
        #[arg(long, default_value = "repl", value_name = "NAME")]
        lab: String,
    },
    /// The reference of the lab functions, as Markdown (generated from the engine itself).
    #[command(long_about = "Prints the reference of the functions lab scripts call (create_user, alias, clone, ...), \
            each with its parameters, what it does and an example, as Markdown. It is generated from \
            the functions as registered, so it is always the running version's.\n\
            \n\
            Examples:\n\
            \x20\x20stand docs\n\
            \x20\x20stand docs clone\n\
            \x20\x20stand docs > LAB-FUNCTIONS.md")]
    Docs {
        /// Only this function.
        function: Option<String>,
    },
    /// Export a lab for other tools: `capi` (each student's Kubernetes cluster through Cluster API).
    #[command(subcommand)]
    Export(ExportCommand),
    /// Print the students' logins: one slip per student (name, login, password) on A4.
    #[command(long_about = "Writes the printable logins of a lab as an HTML page: one slip per student with their \
            name, login and password (and the class page's address with --url), laid out for A4, \
            sorted by name. Open it in a browser and print it, or save it as PDF. It reads the \
            credentials file `stand up` wrote and needs no cluster; `stand serve` shows the same \
            page to the lab's instructor (Print logins).\n\
            \n\
            Examples:\n\
            \x20\x20stand credentials lab3 --html logins.html\n\
            \x20\x20stand credentials lab3 --html logins.html --url https://class.example:8443/")]
    Credentials {
        /// The lab (its script or its name).
        lab: String,
        /// The page to write.
        #[arg(long, value_name = "FILE")]
        html: PathBuf,
        /// The credentials file [default: <lab>-credentials.csv].
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// The class page's address, printed on each slip.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Shell completions: `stand completions bash > /etc/bash_completion.d/stand`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Stands, VMs, nodes and their states.
    Status {
        /// Only this lab (name or LAB.rhai).
        lab: Option<String>,
        /// Only these students' stands (with a lab).
        #[arg(long, num_args = 1.., value_name = "USER", requires = "lab")]
        only: Vec<String>,
        /// Refresh every SECONDS until Ctrl-C.
        #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "2")]
        watch: Option<f64>,
    },
    /// Templates by name, their copies on each node; make (sync) or remove (prune) copies.
    #[command(long_about = "Templates by name, with their copies on each node and storage.\n\
        \n\
        `stand templates sync` puts a copy of each template on every node's own storage (same \
        name, marker `stand: template-of=<vmid>`), so that `clone` by name picks the copy on the \
        stand's node and the nodes make their linked clones in parallel. `stand templates prune` \
        removes the copies no linked clone uses.")]
    Templates {
        /// List (the default), sync or prune.
        #[command(subcommand)]
        action: Option<TemplatesCommand>,
    },
    /// Named clusters in ~/.config/stand/clusters.toml.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// The built-in Proxmox VE simulator.
    #[command(subcommand)]
    Sim(SimCommand),
}

/// `stand templates ...`.
#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Templates by name, with their copies per node and storage.
    List,
    /// Copy templates to every (chosen) node's own storage; refresh outdated copies.
    Sync {
        /// Templates by name or VMID (default: all).
        #[arg(value_name = "NAME")]
        names: Vec<String>,
        /// Storage of the copies (default: each node's own storage for VM images, LVM-thin first).
        #[arg(long, value_name = "STORAGE")]
        storage: Option<String>,
        /// Only these nodes (default: every online node).
        #[arg(long, value_name = "NODE", num_args = 1..)]
        nodes: Vec<String>,
        /// Replace copies whose original changed since they were made.
        #[arg(long)]
        refresh: bool,
        /// The first VMID copies may take.
        #[arg(long, value_name = "VMID", default_value_t = 9000)]
        first_vmid: u32,
        /// Show what would be copied; copy nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove copies made by `sync` (those no linked clone uses).
    Prune {
        /// Copies of these templates only (default: all copies).
        #[arg(value_name = "NAME")]
        names: Vec<String>,
        /// Only on these nodes.
        #[arg(long, value_name = "NODE", num_args = 1..)]
        nodes: Vec<String>,
        /// Show what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `stand cluster ...`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Check a connection, then record it as NAME (secrets stay in their file or variable).
    #[command(long_about = "Checks that the cluster answers with these settings, then adds [clusters.NAME] to \
        ~/.config/stand/clusters.toml (mode 0600). The token secret is referenced, never copied.\n\
        \n\
        Example:\n\
        \x20\x20stand cluster add lab --url https://pve1.example.org:8006 \\\n\
        \x20\x20\x20\x20--token-id 'stand@pve!deploy' --token-file ~/.config/stand/lab.token \\\n\
        \x20\x20\x20\x20--fingerprint AB:CD:...")]
    Add {
        /// The name to use with --cluster.
        name: String,
        /// `https://host:8006`.
        #[arg(long)]
        url: String,
        /// `user@realm!tokenid`.
        #[arg(long, value_name = "ID")]
        token_id: String,
        /// A file holding the token secret.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// An environment variable holding the token secret.
        #[arg(long, value_name = "VAR")]
        token_env: Option<String>,
        /// The certificate's SHA-256 fingerprint, for a self-signed cluster.
        #[arg(long, value_name = "FP")]
        fingerprint: Option<String>,
        /// A CA certificate (PEM) that signed the cluster's certificate.
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
        /// Replace an existing entry of that name.
        #[arg(long)]
        force: bool,
    },
}

/// How long simulated operations take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Latency {
    /// Every operation ends at once.
    None,
    /// Durations of a small real cluster (see README).
    Realistic,
}

/// `stand sim ...`.
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve the simulator as a Proxmox VE API over HTTPS.
    #[command(long_about = "Serve the simulator as a Proxmox VE API over HTTPS at /api2/json.\n\
        \n\
        The first lines on stdout are shell exports for PVE_URL, PVE_TOKEN and PVE_FINGERPRINT; \
        logs go to stderr. Any Proxmox client works against it, for example:\n\
        \n\
        \x20\x20eval \"$(stand sim serve | head -3)\"   # in another shell, keep it running\n\
        \x20\x20curl --cacert <(...) -H \"Authorization: PVEAPIToken=$PVE_TOKEN\" \
        $PVE_URL/api2/json/nodes")]
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8006")]
        listen: SocketAddr,
        /// Cluster fixture (YAML); the built-in 3-node cluster when absent.
        #[arg(long)]
        fixture: Option<PathBuf>,
        /// Password of root@pam for ticket login (none: token login only).
        #[arg(long, env = "STAND_SIM_ROOT_PASSWORD", hide_env_values = true)]
        root_password: Option<String>,
        /// Latency model.
        #[arg(long, value_enum, default_value = "realistic")]
        latency: Latency,
        /// Multiplies every simulated duration (0.1 = ten times faster).
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
        /// Injected faults: comma list of kind=probability (http5xx, reset, lock_timeout, task_fail, slow_task).
        #[arg(long, default_value = "")]
        faults: String,
        /// Seed of the simulator's random choices (default: a new one, printed at start).
        #[arg(long)]
        seed: Option<u64>,
        /// Append every request received as a JSON line {"method","path","params"}.
        #[arg(long)]
        request_log: Option<PathBuf>,
    },
    /// Forget the --sim cluster's saved state.
    Reset {
        /// State file (default: the user's data directory).
        #[arg(long)]
        sim_state: Option<PathBuf>,
    },
    /// Act in a student's guest on the --sim cluster, as the student would (to try grading).
    #[command(subcommand)]
    Guest(GuestCommand),
}

/// `stand sim guest ...`: a student's work in a guest of the `--sim` cluster.
#[derive(Debug, Subcommand)]
pub enum GuestCommand {
    /// Write a file in a student's VM (through the guest agent, as PVE's `file-write` does).
    #[command(long_about = "Writes a file in a student's VM of the --sim cluster, through the guest agent\n\
        \x20\x20\x20\x20\x20\x20\x20\x20(PVE's agent/file-write), as if the student had: `stand check` then reads it.\n\
        \x20\x20\x20\x20\x20\x20\x20\x20The content is TEXT, or what stdin gives.\n\
        \n\
        \x20\x20\x20\x20\x20\x20\x20\x20Examples:\n\
        \x20\x20stand sim guest write lab3 petrova web /etc/hostname web\n\
        \x20\x20\x20\x20\x20\x20\x20\x20\x20\x20stand sim guest write lab3 petrova web /root/report.txt < report.txt")]
    Write {
        /// The lab.
        lab: String,
        /// The student (`petrova@pve`, `petrova`).
        user: String,
        /// The VM: its name in the script (`web`) or on the cluster (`web-petrova`).
        vm: String,
        /// The file's absolute path in the guest.
        path: String,
        /// The content (default: stdin); a newline is added when missing.
        text: Option<String>,
    },
}
