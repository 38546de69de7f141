//! What runs inside a simulated VM, as far as its QEMU guest agent can see: files, a
//! hostname, interface addresses, and a small set of read-only commands over them. A guest
//! is part of the disk: a clone inherits its template's, a snapshot keeps it, a rollback
//! brings it back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A canned result for a command line (fixture `guest: { commands: { "<line>": {...} } }`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Canned {
    /// Exit code.
    #[serde(default)]
    pub code: i64,
    /// Standard output.
    #[serde(default)]
    pub out: String,
    /// Standard error.
    #[serde(default)]
    pub err: String,
}

/// A process started by `agent/exec`, until its status is read once it ended (qemu-ga
/// `guest-exec-status` forgets a finished process once it reported it).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Process {
    /// Sim ms it ends.
    pub done_ms: u64,
    /// What it printed and how it ended.
    pub result: Canned,
}

/// The guest of a VM.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Guest {
    /// qemu-ga is installed and starts at boot.
    pub agent: bool,
    /// Files by absolute path.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Canned results by command line.
    #[serde(default)]
    pub commands: BTreeMap<String, Canned>,
    /// Addresses (`10.0.0.1/24`) by interface name, besides those in `/etc/network/interfaces`.
    #[serde(default)]
    pub addresses: BTreeMap<String, Vec<String>>,
    /// Processes started by `agent/exec` (gone when the VM stops).
    #[serde(default)]
    pub processes: BTreeMap<u64, Process>,
    /// Last pid handed out.
    #[serde(default)]
    pub last_pid: u64,
}

/// The name a VM's `net<i>` has in a Linux guest: virtio NICs on PVE's PCI layout come up
/// as `ens18`, `ens19`, ...
pub fn nic_name(index: usize) -> String {
    format!("ens{}", 18 + index)
}

impl Guest {
    /// A copy for a clone or a snapshot: the disk's content, no running processes.
    pub fn disk_copy(&self) -> Guest {
        Guest { processes: BTreeMap::new(), last_pid: 0, ..self.clone() }
    }

    /// The hostname (`/etc/hostname`, else `localhost`).
    pub fn hostname(&self) -> String {
        self.files
            .get("/etc/hostname")
            .and_then(|h| h.lines().next())
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .unwrap_or("localhost")
            .to_string()
    }

    /// Addresses of `iface`: the fixture's, then the static ones of `/etc/network/interfaces`
    /// (`iface X inet static` with `address A/P`, or `address A` and `netmask M`).
    pub fn addresses_of(&self, iface: &str) -> Vec<String> {
        let mut out = self.addresses.get(iface).cloned().unwrap_or_default();
        let Some(text) = self.files.get("/etc/network/interfaces") else { return out };
        let mut current: Option<&str> = None;
        let mut pending: Option<String> = None;
        let flush = |pending: &mut Option<String>, out: &mut Vec<String>| {
            if let Some(a) = pending.take() {
                out.push(if a.contains('/') { a } else { format!("{a}/24") });
            }
        };
        for line in text.lines().map(str::trim) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["iface", name, ..] => {
                    flush(&mut pending, &mut out);
                    current = Some(name);
                }
                ["address", a] if current == Some(iface) => {
                    flush(&mut pending, &mut out);
                    pending = Some(a.to_string());
                }
                ["netmask", m] if current == Some(iface) => {
                    if let (Some(a), Some(p)) = (pending.take(), prefix_of_mask(m)) {
                        out.push(format!("{}/{p}", a.split('/').next().unwrap_or_default()));
                    }
                }
                _ => {}
            }
        }
        flush(&mut pending, &mut out);
        out.dedup();
        out
    }

    /// Runs `argv` over the guest's state (see the README's "Simulator" section).
    pub fn run(&self, argv: &[String]) -> Canned {
        if let Some(c) = self.commands.get(&argv.join(" ")) {
            return c.clone();
        }
        let Some((cmd, args)) = argv.split_first() else {
            return fail(127, ": command not found\n".into());
        };
        let program = cmd.rsplit('/').next().unwrap_or(cmd);
        match program {
            "sh" | "bash" if args.first().map(String::as_str) == Some("-c") => {
                match args.get(1).map(|line| shell_words::split(line)) {
                    Some(Ok(inner)) => self.run(&inner),
                    _ => fail(2, format!("{program}: -c: syntax error\n")),
                }
            }
            "cat" => self.cat(args),
            "hostname" => ok(format!("{}\n", self.hostname())),
            "test" | "[" => self.test(args),
            "grep" => self.grep(args),
            "ls" => self.ls(args),
            "true" => ok(String::new()),
            "false" => fail(1, String::new()),
            _ => fail(127, format!("{cmd}: command not found\n")),
        }
    }

    fn is_dir(&self, path: &str) -> bool {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        path == "/" || self.files.keys().any(|f| f.starts_with(&prefix))
    }

    fn cat(&self, args: &[String]) -> Canned {
        let mut r = ok(String::new());
        for f in args {
            match self.files.get(f.as_str()) {
                Some(text) => r.out.push_str(text),
                None => {
                    r.code = 1;
                    r.err.push_str(&format!("cat: {f}: No such file or directory\n"));
                }
            }
        }
        r
    }

    fn test(&self, args: &[String]) -> Canned {
        let args: Vec<&str> = args.iter().map(String::as_str).filter(|a| *a != "]").collect();
        let yes = match args.as_slice() {
            ["-e", p] => self.files.contains_key(*p) || self.is_dir(p),
            ["-f", p] => self.files.contains_key(*p),
            ["-d", p] => self.is_dir(p),
            ["-s", p] => self.files.get(*p).is_some_and(|t| !t.is_empty()),
            _ => return fail(2, format!("test: unsupported expression: {}\n", args.join(" "))),
        };
        if yes { ok(String::new()) } else { fail(1, String::new()) }
    }

    /// `grep [-q] [-c] [-i] [-E] PATTERN FILE...`: the pattern is a regular expression.
    fn grep(&self, args: &[String]) -> Canned {
        let (mut quiet, mut count, mut icase) = (false, false, false);
        let mut rest = Vec::new();
        for a in args {
            match a.as_str() {
                "-q" => quiet = true,
                "-c" => count = true,
                "-i" => icase = true,
                "-E" | "-e" => {}
                _ => rest.push(a.as_str()),
            }
        }
        let Some((pattern, files)) = rest.split_first() else {
            return fail(2, "Usage: grep [OPTION]... PATTERNS [FILE]...\n".into());
        };
        let re = match regex::RegexBuilder::new(pattern).case_insensitive(icase).build() {
            Ok(re) => re,
            Err(_) => return fail(2, format!("grep: invalid regular expression: {pattern}\n")),
        };
        let mut r = ok(String::new());
        let mut matched = 0;
        let mut missing = false;
        for f in files {
            let Some(text) = self.files.get(*f) else {
                missing = true;
                r.err.push_str(&format!("grep: {f}: No such file or directory\n"));
                continue;
            };
            let lines: Vec<&str> = text.lines().filter(|l| re.is_match(l)).collect();
            matched += lines.len();
            let tag = |line: &str| if files.len() > 1 { format!("{f}:{line}\n") } else { format!("{line}\n") };
            if count {
                r.out.push_str(&tag(&lines.len().to_string()));
            } else {
                lines.iter().for_each(|l| r.out.push_str(&tag(l)));
            }
        }
        if quiet {
            r.out.clear();
        }
        r.code = if missing && !(quiet && matched > 0) {
            2
        } else if matched > 0 {
            0
        } else {
            1
        };
        r
    }

    fn ls(&self, args: &[String]) -> Canned {
        let dir = args.iter().find(|a| !a.starts_with('-')).map(String::as_str).unwrap_or("/root");
        if self.files.contains_key(dir) {
            return ok(format!("{dir}\n"));
        }
        if !self.is_dir(dir) {
            return fail(2, format!("ls: cannot access '{dir}': No such file or directory\n"));
        }
        let prefix = if dir == "/" { "/".to_string() } else { format!("{}/", dir.trim_end_matches('/')) };
        let mut names: Vec<&str> =
            self.files.keys().filter_map(|f| f.strip_prefix(&prefix)).filter_map(|r| r.split('/').next()).collect();
        names.dedup();
        ok(names.iter().map(|n| format!("{n}\n")).collect())
    }
}

fn ok(out: String) -> Canned {
    Canned { code: 0, out, err: String::new() }
}

fn fail(code: i64, err: String) -> Canned {
    Canned { code, out: String::new(), err }
}

/// The prefix length of a dotted netmask.
fn prefix_of_mask(mask: &str) -> Option<u32> {
    let ip: std::net::Ipv4Addr = mask.parse().ok()?;
    let bits = u32::from(ip);
    (bits.leading_ones() + bits.trailing_zeros() == 32).then_some(bits.leading_ones())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest() -> Guest {
        let mut g = Guest { agent: true, ..Guest::default() };
        g.files.insert("/etc/hostname".into(), "hq-rtr\n".into());
        g.files.insert("/etc/nginx/nginx.conf".into(), "server_name a;\nlisten 80;\n".into());
        g.files.insert(
            "/etc/network/interfaces".into(),
            "auto ens18\niface ens18 inet static\n    address 192.168.10.1/24\niface ens19 inet static\n    address 10.0.0.1\n    netmask 255.255.255.252\n".into(),
        );
        g.commands
            .insert("systemctl is-active nginx".into(), Canned { code: 3, out: "inactive\n".into(), err: "".into() });
        g
    }

    fn run(g: &Guest, line: &str) -> Canned {
        g.run(&shell_words::split(line).unwrap())
    }

    #[test]
    fn commands_read_the_guest_like_coreutils_and_grep() {
        let g = guest();
        assert_eq!(run(&g, "hostname").out, "hq-rtr\n");
        assert_eq!(run(&g, "cat /etc/hostname").out, "hq-rtr\n");
        assert_eq!(run(&g, "cat /nope"), fail(1, "cat: /nope: No such file or directory\n".into()));
        assert_eq!(run(&g, "test -f /etc/hostname").code, 0);
        assert_eq!(run(&g, "test -d /etc/nginx").code, 0);
        assert_eq!(run(&g, "test -e /etc/missing").code, 1);
        assert_eq!(run(&g, "grep -c listen /etc/nginx/nginx.conf").out, "1\n");
        assert_eq!(run(&g, "grep -q 'listen 443' /etc/nginx/nginx.conf").code, 1);
        assert_eq!(run(&g, "grep server_name /etc/nginx/nginx.conf").out, "server_name a;\n");
        assert_eq!(run(&g, "grep x /nope").code, 2);
        assert_eq!(run(&g, "ls /etc").out, "hostname\nnetwork\nnginx\n");
        assert_eq!(run(&g, "ls /srv").code, 2);
        assert_eq!(run(&g, "sh -c 'grep -q listen /etc/nginx/nginx.conf'").code, 0);
        assert_eq!(run(&g, "systemctl is-active nginx"), Canned { code: 3, out: "inactive\n".into(), err: "".into() });
        assert_eq!(run(&g, "ip -br a"), fail(127, "ip: command not found\n".into()));
    }

    #[test]
    fn addresses_come_from_the_interfaces_file() {
        let g = guest();
        assert_eq!(g.addresses_of("ens18"), ["192.168.10.1/24"]);
        assert_eq!(g.addresses_of("ens19"), ["10.0.0.1/30"]);
        assert!(g.addresses_of("ens20").is_empty());
    }
}
