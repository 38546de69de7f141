//! `stand export capi LAB.rhai`: each student's Kubernetes cluster as Cluster API manifests,
//! and with `--with-credentials` the lab's CAPMOX API token and its Secret.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::arguments::{LabInput, Output};
use super::target::Cluster;
use super::{Usage, exit, lab, render, up};
use crate::capi::{self, CapiError, TokenPlan};
use crate::pve::{ApiRequest, Pve, PveError, PveExt};

/// `stand export capi`.
pub async fn capi(
    cluster: &Cluster,
    input: &LabInput,
    dir: Option<&Path>,
    credentials: Option<Option<PathBuf>>,
    quiet: bool,
) -> anyhow::Result<u8> {
    let snap = up::snapshot(cluster).await?;
    let class = class_of(input, &snap)?;
    let lab_name = class.lab.clone();
    let secret_name = credentials.as_ref().map(|_| format!("{}-capmox", lab_name.replace('_', "-")));
    let clusters = capi::export(&class, &snap, secret_name.as_deref()).map_err(|e| match e {
        CapiError::NotConfigured { .. } => Usage(e.to_string()),
        other => Usage(format!("{}: {other}", lab_name)),
    })?;
    let settings = class.settings.clone().context("the lab's capi settings")?;
    // Everything is decided before anything is written or made.
    let per_student: Vec<(String, Vec<serde_json::Value>)> =
        clusters.iter().map(|c| (c.name.clone(), c.documents(&settings))).collect();
    if let Some(file) = &credentials {
        let token = capi::token_plan(&class, &snap, &settings, &clusters);
        let file = file.clone().unwrap_or_else(|| PathBuf::from(format!("{lab_name}-capmox-secret.yaml")));
        make_token(cluster, &snap, &token, &settings.namespace, &file, quiet).await?;
    }
    match (dir, cluster.output) {
        (Some(dir), _) => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, docs) in &per_student {
                let path = dir.join(format!("{name}.yaml"));
                let text = capi::to_yaml(docs).context("cannot write YAML")?;
                std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
            }
            if quiet {
                return Ok(exit::OK);
            }
            crate::errln!(
                "{} of lab {lab_name} written to {}: `kubectl apply -f {}` on the management cluster",
                render::count(per_student.len(), "cluster"),
                dir.display(),
                dir.display()
            );
        }
        (None, Output::Json) => {
            let docs: Vec<&serde_json::Value> = per_student.iter().flat_map(|(_, d)| d).collect();
            crate::outln!("{}", serde_json::json!({ "lab": lab_name, "documents": docs }));
        }
        (None, Output::Text) => {
            for (_, docs) in &per_student {
                crate::out!("{}", capi::to_yaml(docs).context("cannot write YAML")?);
            }
        }
    }
    Ok(exit::OK)
}

/// The class to export: the script's plan (warning when the cluster is not as it says), or
/// a deployed lab named instead of a script (with the settings `up` recorded).
fn class_of(input: &LabInput, snap: &std::sync::Arc<crate::plan::Snapshot>) -> anyhow::Result<capi::Class> {
    let named = input.legacy.is_none() && input.lab.as_ref().is_some_and(|p| !p.exists());
    if let (true, Some(arg)) = (named, &input.lab) {
        let arg = arg.display().to_string();
        let name = lab::lab_name(&arg);
        let Some(class) = capi::Class::deployed(snap, &name) else {
            let labs = snap.labs();
            let labs =
                if labs.is_empty() { "none".to_string() } else { labs.into_iter().collect::<Vec<_>>().join(", ") };
            return Err(
                Usage(format!("{arg}: no such file, and no lab {name} is deployed (deployed labs: {labs})")).into()
            );
        };
        if class.settings.is_none() {
            return Err(Usage(format!(
                "lab {name} is deployed without Cluster API settings on record: give its script (`stand export capi {name}.rhai`), or run `stand up` with lab(#{{ capi: .. }}) once to record them"
            ))
            .into());
        }
        return Ok(class);
    }
    let plan = lab::plan_lab(input, snap.clone(), false)?;
    if !plan.is_noop() {
        crate::errln!(
            "{}",
            render::for_terminal(&format!(
                "warning: lab {} is not deployed as its script says: run `stand up` first, or CAPMOX finds no stand to build on",
                plan.lab_name()
            ))
        );
    }
    Ok(capi::Class::of_plan(&plan))
}

/// Makes the lab's CAPMOX user (if missing) and its token, writes the token's Secret to
/// `file` (0600), and grants what the lab needs to both. A token that exists already keeps
/// its secret (PVE shows it once, when it is made, and `stand` wrote it then): only its
/// missing grants are added, for students or templates added since.
async fn make_token(
    cluster: &Cluster,
    snap: &crate::plan::Snapshot,
    t: &TokenPlan,
    namespace: &str,
    file: &Path,
    quiet: bool,
) -> anyhow::Result<()> {
    let pve = &cluster.pve;
    let user = crate::pve::segment(&t.userid);
    let token_path = format!("/access/users/{user}/token/{}", t.tokenid);
    let full = t.full_tokenid();
    let exists = match pve.call(ApiRequest::get(token_path.clone())).await {
        Ok(_) => true,
        // PVE answers a missing token (or user) with 500 "no such token".
        Err(PveError::Api { failure, .. }) if matches!(failure.status, 404 | 500) => false,
        Err(e) => return Err(e).context("cannot read the lab's CAPMOX token"),
    };
    if !exists {
        if snap.user(&t.userid).is_none() {
            let comment = format!("CAPMOX token of stand lab {}", t.secret.trim_end_matches("-capmox"));
            pve.create_user(&t.userid, None, Some(&comment)).await.context("cannot make the CAPMOX user")?;
        }
        let made = pve
            .call(
                ApiRequest::post(token_path.clone())
                    .param("privsep", "1")
                    .param("comment", "CAPMOX (stand export capi)"),
            )
            .await
            .context("cannot make the CAPMOX token")?;
        // The secret is shown this once: it is written before anything else happens, and a
        // token whose secret could not be kept is removed again.
        let secret = made.get("data").and_then(|d| d.get("value")).and_then(|v| v.as_str());
        let written = secret.context("PVE did not return the token's secret").and_then(|secret| {
            let doc = capi::secret(&t.secret, namespace, &pve.endpoint(), &full, secret);
            let text = capi::to_yaml(&[doc]).context("cannot write YAML")?;
            crate::sim::write_private(file, text.as_bytes()).with_context(|| format!("cannot write {}", file.display()))
        });
        if let Err(e) = written {
            let _ = pve.call(ApiRequest::delete(token_path)).await;
            return Err(e.context(format!("the token {full} was removed again; nothing was granted")));
        }
    }
    let has = |ugid: &str, g: &capi::Grant| {
        exists
            && snap
                .acl
                .iter()
                .any(|a| a.ugid == ugid && a.path == g.path && a.roleid == g.role && a.propagate == g.propagate)
    };
    let missing: Vec<&capi::Grant> = t.grants.iter().filter(|g| !has(&full, g) || !has(&t.userid, g)).collect();
    for g in &missing {
        let req = ApiRequest::put("/access/acl")
            .param("path", &g.path)
            .param("roles", g.role)
            .param("users", &t.userid)
            .param("tokens", &full)
            .param("propagate", if g.propagate { "1" } else { "0" });
        pve.exec(req).await.with_context(|| format!("cannot grant {} on {}", g.role, g.path))?;
    }
    let message = if exists {
        format!(
            "the token {full} exists (its Secret was written when it was made): {} of its {} grants added",
            missing.len(),
            t.grants.len()
        )
    } else {
        format!(
            "made the API token {full} ({} grants: the lab's pools, networks and templates) and wrote its Secret to {} (mode 0600): `kubectl apply -f {}` before the clusters",
            t.grants.len(),
            file.display(),
            file.display()
        )
    };
    if !quiet {
        crate::errln!("{}", render::for_terminal(&message));
    }
    Ok(())
}
