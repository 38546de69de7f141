//! Unique process ids of PVE tasks: `UPID:node:pid:pstart:starttime:type:id:user:`.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

/// A decoded UPID, as pve-common `PVE::UPID` encodes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Upid {
    /// Node the task runs on.
    pub node: String,
    /// Worker process id.
    pub pid: u32,
    /// Process start time (jiffies since boot); may need 9 hex digits.
    pub pstart: u64,
    /// Task start, Unix seconds.
    pub starttime: u64,
    /// Worker type (`qmclone`, `srvreload`, ...).
    pub task_type: String,
    /// Object id (may be empty).
    pub id: String,
    /// Who started it: `user@realm` or `user@realm!token`.
    pub user: String,
}

static UPID_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^UPID:([a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$",
    )
    .expect("UPID regex is valid")
});

/// The text is not a UPID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse worker upid '{0}'")]
pub struct UpidParseError(pub String);

impl FromStr for Upid {
    type Err = UpidParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let caps = UPID_RE.captures(s).ok_or_else(|| UpidParseError(s.to_string()))?;
        let hex = |i: usize| u64::from_str_radix(&caps[i], 16).map_err(|_| UpidParseError(s.to_string()));
        Ok(Upid {
            node: caps[1].to_string(),
            pid: hex(2)? as u32,
            pstart: hex(3)?,
            starttime: hex(4)?,
            task_type: caps[5].to_string(),
            id: caps[6].to_string(),
            user: caps[7].to_string(),
        })
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UPID:{}:{:08X}:{:08X}:{:08X}:{}:{}:{}:",
            self.node, self.pid, self.pstart, self.starttime, self.task_type, self.id, self.user
        )
    }
}

impl Upid {
    /// The user part without a token id, and the token id if any.
    pub fn user_and_token(&self) -> (&str, Option<&str>) {
        match self.user.split_once('!') {
            Some((u, t)) => (u, Some(t)),
            None => (&self.user, None),
        }
    }
}

/// PVE's exit status from the last line of a task log.
pub fn exitstatus_from_log_line(line: &str) -> String {
    if line == "TASK OK" {
        "OK".into()
    } else if let Some(msg) = line.strip_prefix("TASK ERROR: ") {
        msg.into()
    } else if let Some(n) = line.strip_prefix("TASK WARNINGS: ") {
        format!("WARNINGS: {n}")
    } else {
        "unexpected status".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_from_pve_common_decode_and_encode_back() {
        let raw =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upid-vectors.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
        for case in v["valid"].as_array().unwrap() {
            let s = case["in"].as_str().unwrap();
            let u: Upid = s.parse().unwrap();
            assert_eq!(u.node, case["node"].as_str().unwrap());
            assert_eq!(u.pid as u64, case["pid"].as_u64().unwrap());
            assert_eq!(u.pstart, case["pstart"].as_u64().unwrap());
            assert_eq!(u.starttime, case["starttime"].as_u64().unwrap());
            assert_eq!(u.task_type, case["type"].as_str().unwrap());
            assert_eq!(u.id, case["id"].as_str().unwrap());
            assert_eq!(u.user, case["user"].as_str().unwrap());
            assert_eq!(u.to_string(), s, "re-encoding must give the same text");
        }
        for bad in v["invalid"].as_array().unwrap() {
            assert!(bad.as_str().unwrap().parse::<Upid>().is_err());
        }
        for real in v["real_world_upids"].as_array().unwrap() {
            let s = real.as_str().unwrap();
            assert_eq!(s.parse::<Upid>().unwrap().to_string(), s);
        }
        for rs in v["read_status_vectors"].as_array().unwrap() {
            assert_eq!(
                exitstatus_from_log_line(rs["last_log_line"].as_str().unwrap()),
                rs["exitstatus"].as_str().unwrap()
            );
        }
    }

    #[test]
    fn token_user_splits() {
        let u: Upid = "UPID:pve-mp:00000ACD:00006AE8:679A423B:qmclone:112:capmox@pve!capi:".parse().unwrap();
        assert_eq!(u.user_and_token(), ("capmox@pve", Some("capi")));
    }
}
