//! Whose an object is: every marker `stand` writes is read here, once, into a typed
//! [`Owner`]. Every "is this ours, whose is it" question asks an `Owner`, never the text.

use std::collections::BTreeSet;

use serde::Serialize;

use super::marker::Marker;

/// The owner a marker names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Owner {
    /// A VM of a student's stand (`stand: lab=L user=U name=N` in its description).
    Vm {
        /// Lab.
        lab: String,
        /// Student.
        user: String,
        /// The VM's name in the script.
        name: String,
    },
    /// A student's private bridge (`stand: lab=L user=U alias=A`).
    Private {
        /// Lab.
        lab: String,
        /// Student.
        user: String,
        /// The alias of the network.
        alias: String,
    },
    /// A shared bridge and every lab that ensured it (`stand: labs=a,b shared=1`).
    Shared {
        /// Labs.
        labs: BTreeSet<String>,
    },
    /// A student's pool (`stand: lab=L user=U`).
    Pool {
        /// Lab.
        lab: String,
        /// Student.
        user: String,
    },
    /// A user `stand` made, and the labs that have them (`stand: labs=a,b`).
    User {
        /// Labs.
        labs: BTreeSet<String>,
    },
    /// A lab's group of students (`stand: lab=L`).
    Group {
        /// Lab.
        lab: String,
    },
}

fn field(m: &Marker, k: &str) -> Option<String> {
    m.get(k).map(str::to_string)
}

impl Owner {
    /// The owner of a VM, from its description.
    pub fn of_vm(description: &str) -> Option<Owner> {
        let m = Marker::parse(description)?;
        Some(Owner::Vm { lab: field(&m, "lab")?, user: field(&m, "user")?, name: field(&m, "name")? })
    }

    /// The owner of a bridge, from its comment: private or shared.
    pub fn of_bridge(comment: &str) -> Option<Owner> {
        let m = Marker::parse(comment)?;
        if m.get("shared").is_some() {
            return Some(Owner::Shared { labs: m.all_labs() });
        }
        Some(Owner::Private { lab: field(&m, "lab")?, user: field(&m, "user")?, alias: field(&m, "alias")? })
    }

    /// The owner of a pool, from its comment.
    pub fn of_pool(comment: &str) -> Option<Owner> {
        let m = Marker::parse(comment)?;
        Some(Owner::Pool { lab: field(&m, "lab")?, user: field(&m, "user")? })
    }

    /// The labs of a user, from their comment.
    pub fn of_user(comment: &str) -> Option<Owner> {
        Marker::parse(comment).map(|m| Owner::User { labs: m.all_labs() })
    }

    /// The lab of a group, from its comment.
    pub fn of_group(comment: &str) -> Option<Owner> {
        let m = Marker::parse(comment)?;
        Some(Owner::Group { lab: field(&m, "lab")? })
    }

    /// Every lab the owner names.
    pub fn labs(&self) -> BTreeSet<String> {
        match self {
            Owner::Vm { lab, .. } | Owner::Private { lab, .. } | Owner::Pool { lab, .. } | Owner::Group { lab } => {
                BTreeSet::from([lab.clone()])
            }
            Owner::Shared { labs } | Owner::User { labs } => labs.clone(),
        }
    }

    /// Whether it belongs to lab `lab` (alone or among others).
    pub fn has_lab(&self, lab: &str) -> bool {
        match self {
            Owner::Vm { lab: l, .. }
            | Owner::Private { lab: l, .. }
            | Owner::Pool { lab: l, .. }
            | Owner::Group { lab: l } => l == lab,
            Owner::Shared { labs } | Owner::User { labs } => labs.contains(lab),
        }
    }

    /// The student it belongs to (VMs, private bridges, pools).
    pub fn user(&self) -> Option<&str> {
        match self {
            Owner::Vm { user, .. } | Owner::Private { user, .. } | Owner::Pool { user, .. } => Some(user),
            _ => None,
        }
    }

    /// Whether it is student `user`'s in lab `lab`.
    pub fn is_stand_of(&self, lab: &str, user: &str) -> bool {
        self.has_lab(lab) && self.user() == Some(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_become_owners() {
        let vm = Owner::of_vm("Web server.\nstand: lab=lab3 name=web user=s1@pve\n").unwrap();
        assert_eq!(vm, Owner::Vm { lab: "lab3".into(), user: "s1@pve".into(), name: "web".into() });
        assert!(vm.is_stand_of("lab3", "s1@pve") && !vm.is_stand_of("lab1", "s1@pve"));
        let shared = Owner::of_bridge("stand: labs=a,b shared=1").unwrap();
        assert!(shared.has_lab("a") && shared.has_lab("b") && shared.user().is_none());
        let old = Owner::of_bridge("stand: lab=a shared=1").unwrap();
        assert_eq!(old.labs(), BTreeSet::from(["a".to_string()]), "the marker of earlier versions");
        let private = Owner::of_bridge("stand: alias=lan lab=a user=s1@pve").unwrap();
        assert_eq!(private.user(), Some("s1@pve"));
        assert!(Owner::of_vm("a VM made by hand").is_none());
        assert!(Owner::of_vm("stand: lab=a").is_none(), "a VM marker names lab, user and name");
        assert!(Owner::of_user("stand: labs=a,b").unwrap().has_lab("b"));
        assert_eq!(Owner::of_group("stand: lab=a"), Some(Owner::Group { lab: "a".into() }));
    }
}
