//! The grade sheet: students × criteria from what each stand's `check` recorded, with a
//! criterion a stand did not reach failed with the reason. Pure data; CSV for gradebooks
//! (Moodle's and the spreadsheet are in `export`).

use serde::Serialize;

use super::run::StandOutcome;
use crate::roster::FullName;

/// A name in JSON as people write it (`Иванов Пётр Сергеевич`).
fn display_name<S: serde::Serializer>(name: &Option<FullName>, s: S) -> Result<S::Ok, S::Error> {
    match name {
        Some(n) => s.serialize_str(&n.display()),
        None => s.serialize_none(),
    }
}

/// One criterion of the lab.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Criterion {
    /// Its title.
    pub title: String,
    /// Points it is worth.
    pub points: f64,
}

/// A stand's result on one criterion.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mark {
    /// The criterion.
    pub title: String,
    /// Points earned.
    pub points: f64,
    /// Met.
    pub passed: bool,
    /// The hint for the student (failed criteria only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Why it could not be checked: a guest read it may use failed, or the check stopped
    /// before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The guest could not be asked for it (so the stand is not checked whole).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unreached: bool,
}

/// One student's line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// The student.
    pub user: String,
    /// Their name (PVE's `firstname` and `lastname`, from the roster), when known.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "display_name")]
    pub name: Option<FullName>,
    /// Node of the stand.
    pub node: String,
    /// `check` ran to its end and reached every guest it read.
    pub checked: bool,
    /// Why it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Points earned.
    pub total: f64,
    /// Points possible.
    pub max: f64,
    /// One per criterion, in the sheet's order.
    pub marks: Vec<Mark>,
}

/// Students × criteria.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GradeSheet {
    /// The lab.
    pub lab: String,
    /// Its criteria, in the order `check` grades them.
    pub criteria: Vec<Criterion>,
    /// One row per stand, by student.
    pub stands: Vec<Row>,
}

impl GradeSheet {
    /// The sheet of `outcomes`. Criteria come in the order `check` graded them (stands that
    /// ran to the end first); a stand that stopped early fails the rest with its reason.
    pub fn new(lab: &str, outcomes: &[StandOutcome]) -> GradeSheet {
        let mut criteria: Vec<Criterion> = Vec::new();
        let complete = outcomes.iter().filter(|o| o.error.is_none());
        let partial = outcomes.iter().filter(|o| o.error.is_some());
        let defined = outcomes.iter().flat_map(|o| &o.defined);
        for g in complete.chain(partial).flat_map(|o| &o.grades).chain(defined) {
            if !criteria.iter().any(|c| c.title == g.title) {
                criteria.push(Criterion { title: g.title.clone(), points: g.points });
            }
        }
        let max: f64 = criteria.iter().map(|c| c.points).sum();
        let stands = outcomes
            .iter()
            .map(|o| {
                let marks: Vec<Mark> = criteria
                    .iter()
                    .map(|c| match o.grades.iter().find(|g| g.title == c.title) {
                        Some(g) => Mark {
                            title: c.title.clone(),
                            points: if g.passed { c.points } else { 0.0 },
                            passed: g.passed,
                            hint: g.hint.clone().filter(|_| !g.passed),
                            reason: g.reason.clone(),
                            unreached: g.unreached,
                        },
                        None => Mark {
                            title: c.title.clone(),
                            points: 0.0,
                            passed: false,
                            hint: None,
                            reason: Some(o.error.clone().unwrap_or_else(|| "not graded by check".into())),
                            unreached: true,
                        },
                    })
                    .collect();
                Row {
                    user: o.user.clone(),
                    name: None,
                    node: o.node.clone(),
                    checked: o.error.is_none() && !marks.iter().any(|m| m.unreached),
                    // Why the stand could not be checked whole: where `check` stopped, else
                    // the first guest it could not reach.
                    error: o
                        .error
                        .clone()
                        .or_else(|| marks.iter().find(|m| m.unreached).and_then(|m| m.reason.clone())),
                    total: marks.iter().map(|m| m.points).sum(),
                    max,
                    marks,
                }
            })
            .collect();
        GradeSheet { lab: lab.to_string(), criteria, stands }
    }

    /// Gives each student the name `name_of` knows them by.
    pub fn name_students(&mut self, name_of: impl Fn(&str) -> Option<FullName>) {
        for r in &mut self.stands {
            r.name = name_of(&r.user);
        }
    }

    /// Whether `check` ran to its end for every stand.
    pub fn all_checked(&self) -> bool {
        self.stands.iter().all(|r| r.checked)
    }

    /// The sheet as CSV for a gradebook import (Moodle's "CSV file" grade import maps
    /// `user` to the username and each criterion to a grade item):
    /// `user,total,max,<criterion>...`, points earned per criterion.
    pub fn to_csv(&self) -> Result<String, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["user".to_string(), "total".into(), "max".into()];
        header.extend(self.criteria.iter().map(|c| c.title.clone()));
        w.write_record(&header)?;
        for r in &self.stands {
            let mut line = vec![r.user.clone(), number(r.total), number(r.max)];
            line.extend(r.marks.iter().map(|m| number(m.points)));
            w.write_record(&line)?;
        }
        let bytes = w.into_inner().map_err(|e| e.into_error())?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// `2`, `1.5`: points as people write them.
pub fn number(n: f64) -> String {
    // An empty sum is -0.0.
    let n = if n == 0.0 { 0.0 } else { n };
    if n.fract() == 0.0 { format!("{n:.0}") } else { format!("{n}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Grade;

    fn grade(title: &str, points: f64, passed: bool) -> Grade {
        Grade {
            title: title.into(),
            points,
            passed,
            hint: Some(format!("fix {title}")),
            reason: None,
            unreached: false,
        }
    }

    fn outcome(user: &str, grades: Vec<Grade>, error: Option<&str>) -> StandOutcome {
        StandOutcome {
            user: user.into(),
            node: "pve1".into(),
            grades,
            error: error.map(str::to_string),
            defined: Vec::new(),
        }
    }

    #[test]
    fn a_stand_that_stopped_fails_the_rest_with_its_reason_and_the_csv_has_every_criterion() {
        let sheet = GradeSheet::new(
            "lab3",
            &[
                outcome("a@pve", vec![grade("hostname", 1.0, true)], Some("web: VM 3001 is not running")),
                outcome("b@pve", vec![grade("hostname", 1.0, true), grade("nginx", 2.5, false)], None),
            ],
        );
        assert_eq!(sheet.criteria.iter().map(|c| c.title.as_str()).collect::<Vec<_>>(), ["hostname", "nginx"]);
        let a = &sheet.stands[0];
        assert!(!a.checked && a.total == 1.0 && a.max == 3.5);
        assert_eq!(a.marks[1].reason.as_deref(), Some("web: VM 3001 is not running"));
        let b = &sheet.stands[1];
        assert_eq!((b.total, b.marks[1].hint.as_deref()), (1.0, Some("fix nginx")));
        assert_eq!(b.marks[0].hint, None, "no hint for what passed");
        assert!(!sheet.all_checked());
        assert_eq!(sheet.to_csv().unwrap(), "user,total,max,hostname,nginx\na@pve,1,3.5,1,0\nb@pve,1,3.5,1,0\n");
    }
}
