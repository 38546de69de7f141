//! From a script's intents to a concrete, reviewable plan: the cluster snapshot, ownership
//! markers, the plan data, the pure planner (VMIDs, bridges, MACs, placement decided up
//! front) and the diff against the cluster.

mod action;
pub mod course;
pub mod course_ops;
mod diff;
pub mod expiry;
mod lab_objects;
mod marker;
mod model;
mod names;
mod object;
mod owner;
mod planner;
mod snapshot;
pub mod templates;
mod translit;

pub use action::{Action, ActionGraph, PowerOp, Step, VmRef};
pub use diff::{Change, ChangeKind, Diff};
pub use lab_objects::LabObjects;
pub use marker::{Marker, STAND_TAG, lab_tag};
pub use model::{BridgePlan, GroupPlan, LabSettings, Plan, Quota, SdnPlan, Span, UserPlan, VmPlan, VnetPlan};
pub use names::{dns_safe, generate_password, valid_lab_name, valid_userid};
pub use object::ObjectRef;
pub use owner::Owner;
pub use planner::{CloneSpec, Device, PlanError, Planner, TemplateRef, resolve_template};
pub use snapshot::{
    BridgeSnap, GroupSnap, NodeSnap, PoolSnap, Snapshot, StorageSnap, UserSnap, VmSnap, VnetSnap, ZoneSnap,
};
pub use translit::latin;
