//! Rosters as schools export them (`tests/rosters/`, made by `make.py`): each planned
//! exactly, names kept in PVE and shown, grades out as a spreadsheet and Moodle's CSV, bad
//! rosters refused with file, row and column and nothing made.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::common::{stand, text};

const LAB: &str = r#"
for u in users("students.txt") {
    let user = create_user(u);
    clone(user, #{ template: "debian-12", name: "pc", memory: 512 });
}

fn check(stand) {
    let pc = stand.vm("pc");
    grade("report", 1.5, exec(pc, ["test", "-f", "/root/report.txt"]).code == 0, "write /root/report.txt");
    grade("agent", 1, agent_ok(pc), "start qemu-guest-agent");
}
"#;

fn roster(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rosters").join(name).display().to_string()
}

fn lab(dir: &Path) -> PathBuf {
    let p = dir.join("lab.rhai");
    std::fs::write(&p, LAB).unwrap();
    std::fs::write(dir.join("students.txt"), "nobody@pve\n").unwrap();
    p
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// `(userid, "Surname First Patronymic")` of each planned user, in the plan's order.
fn planned(dir: &Path, args: &[&str]) -> (Vec<(String, String)>, Vec<String>) {
    let lab = lab(dir);
    let mut all = vec!["plan", lab.to_str().unwrap(), "--sim", "--output", "json"];
    all.extend_from_slice(args);
    let o = stand(dir, &all, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let plan = json(&o)["plan"].clone();
    let users = plan["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let n = &u["full_name"];
            let name = ["surname", "first", "patronymic"]
                .iter()
                .filter_map(|k| n[k].as_str().filter(|s| !s.is_empty()))
                .collect::<Vec<_>>()
                .join(" ");
            (u["userid"].as_str().unwrap().to_string(), name)
        })
        .collect();
    let warnings = plan["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect();
    (users, warnings)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(u, n)| (u.to_string(), n.to_string())).collect()
}

#[test]
fn each_roster_of_the_corpus_is_planned_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let school = roster("school.xlsx");
    // A department's xlsx: a title, a numbered header, an empty row, namesakes, a total.
    let (users, warnings) = planned(dir.path(), &["--users", &school]);
    assert_eq!(
        users,
        pairs(&[
            ("ivanov-ps@pve", "Иванов Пётр Сергеевич"),
            ("petrova-av@pve", "Петрова Анна Викторовна"),
            ("ivanov-ps-2@pve", "Иванов Павел Семёнович"),
            ("shchukina-ia@pve", "Щукина Юлия Андреевна"),
            ("elkin-a@pve", "Ёлкин Артём"),
        ])
    );
    assert_eq!(
        warnings,
        [format!("{school}: skipped rows 1–3 (a title above the header), row 8 (empty), row 11 (a total: Итого 5)")]
    );
    // One group of it: the namesake keeps the login the whole roster gives them.
    let (users, _) = planned(dir.path(), &["--users", &school, "--group", "ис-22"]);
    assert_eq!(
        users,
        pairs(&[("ivanov-ps-2@pve", "Иванов Павел Семёнович"), ("shchukina-ia@pve", "Щукина Юлия Андреевна")])
    );
    // An electronic journal's CSV: `;`, Windows-1251 without a BOM, name columns, a total.
    let journal = roster("journal-cp1251.csv");
    let (users, warnings) = planned(dir.path(), &["--users", &journal]);
    assert_eq!(
        users,
        pairs(&[
            ("smirnova-oi@pve", "Смирнова Ольга Игоревна"),
            ("kuznetsov-d@pve", "Кузнецов Дмитрий"),
            ("li-v@pve", "Ли Вэй")
        ])
    );
    assert_eq!(warnings, [format!("{journal}: skipped row 5 (a total: Всего: 3)")]);
    // A learning system's export: UTF-8 with a BOM, logins given, names beside them.
    let (users, warnings) = planned(dir.path(), &["--users", &roster("lms-export-bom.csv")]);
    assert_eq!(users, pairs(&[("s.orlov@pve", "Орлов Сергей"), ("a.volkova@pve", "Волкова Алина")]));
    assert!(warnings.is_empty(), "{warnings:?}");
    // LibreOffice's .ods with English headers.
    let (users, _) = planned(dir.path(), &["--users", &roster("class.ods")]);
    assert_eq!(users, pairs(&[("smith-a@pve", "Smith Anna"), ("garcia-l@pve", "Garcia Luis")]));
}

#[test]
fn a_group_in_the_script_selects_and_a_plain_list_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let school = roster("school.xlsx");
    let script = dir.path().join("group.rhai");
    let body = format!("for u in users({school:?}, #{{ group: \"ИС-21\" }}) {{ create_user(u); }}");
    std::fs::write(&script, body).unwrap();
    let o = stand(dir.path(), &["plan", script.to_str().unwrap(), "--sim", "--output", "json"], &[]);
    let users: Vec<String> =
        json(&o)["plan"]["users"].as_array().unwrap().iter().map(|u| u["userid"].as_str().unwrap().into()).collect();
    assert_eq!(users, ["ivanov-ps@pve", "petrova-av@pve", "elkin-a@pve"]);
    // deploy-stand's list and a one-per-line file are not rosters: read as before.
    std::fs::write(dir.path().join("list.txt"), "# the class\nanna@pve\nboris@pve\n").unwrap();
    let (users, _) = planned(dir.path(), &["--users", "list.txt"]);
    assert_eq!(users, pairs(&[("anna@pve", ""), ("boris@pve", "")]));
    // A group of a list without one is an error, not every student.
    let lab = lab(dir.path());
    let o =
        stand(dir.path(), &["plan", lab.to_str().unwrap(), "--sim", "--users", "list.txt", "--group", "ИС-21"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("list.txt: group 'ИС-21': the list has no header with a group column"), "{}", text(&o));
}

#[test]
fn a_bad_roster_names_file_row_and_column_and_nothing_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path());
    let lab = lab.to_str().unwrap();
    let cases = [
        (
            roster("bad-row.csv"),
            format!("{}, row 3, column «ФИО»: no name: fill it in, or delete the row", roster("bad-row.csv")),
        ),
        (
            roster("photo.csv"),
            format!(
                "{}: is not a text file or a spreadsheet (save the roster as CSV, .xlsx or .ods)",
                roster("photo.csv")
            ),
        ),
    ];
    for (file, message) in &cases {
        let o = stand(dir.path(), &["up", lab, "--sim", "--yes", "--users", file], &[]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(message.as_str()), "{message}\n{}", text(&o));
    }
    let o = stand(dir.path(), &["plan", lab, "--sim", "--users", &roster("school.xlsx"), "--group", "ИС-99"], &[]);
    assert!(text(&o).contains("no student of group 'ИС-99'; its groups: ИС-21, ИС-22"), "{}", text(&o));
    // Nothing was made: the cluster has no user, pool or VM of the lab.
    let o = stand(dir.path(), &["status", "--sim", "--output", "json"], &[]);
    assert_eq!(json(&o)["stands"], serde_json::json!([]), "{}", text(&o));
    assert!(!dir.path().join("lab-credentials.csv").exists(), "no credentials for students never made");
}

#[test]
fn names_reach_pve_status_the_grade_sheet_and_the_printed_logins() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path());
    let lab = lab.to_str().unwrap();
    let school = roster("school.xlsx");
    let o = stand(dir.path(), &["up", lab, "--sim", "--users", &school, "--group", "ИС-21", "-q"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    // Again: nothing to do (the names PVE has are the roster's).
    let o = stand(dir.path(), &["plan", lab, "--sim", "--users", &school, "--group", "ИС-21", "--output", "json"], &[]);
    let changes = json(&o)["changes"].as_array().unwrap().clone();
    assert!(changes.iter().all(|c| c["kind"] == "keep"), "{changes:?}");

    // status: the login, and the name under it.
    let o = stand(dir.path(), &["status", "lab", "--sim"], &[("COLUMNS".into(), "80".into())]);
    let shown = text(&o);
    let lines: Vec<&str> = shown.lines().collect();
    let at = lines.iter().position(|l| l.contains("ivanov-ps@pve")).unwrap();
    assert!(lines[at + 1].contains("Иванов П. С."), "{shown}");
    let o = stand(dir.path(), &["status", "lab", "--sim", "--output", "json"], &[]);
    let stands = json(&o)["stands"].as_array().unwrap().clone();
    let names: Vec<&str> = stands.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Ёлкин Артём", "Иванов Пётр Сергеевич", "Петрова Анна Викторовна"]);

    // A roster whose name was corrected renames the PVE user (it is stand's), nothing else.
    let fixed = dir.path().join("fixed.csv");
    std::fs::write(
        &fixed,
        "ФИО;Группа\nИванов Пётр Сергеевич;ИС-21\nПетрова Анна Викторовна;ИС-21\nЁлкин Артемий;ИС-21\n",
    )
    .unwrap();
    let fixed = fixed.to_str().unwrap();
    let o = stand(dir.path(), &["plan", lab, "--sim", "--users", fixed, "--output", "json"], &[]);
    let changes = json(&o)["changes"].as_array().unwrap().clone();
    let changed: Vec<(&str, &str)> = changes
        .iter()
        .filter(|c| c["kind"] != "keep")
        .map(|c| (c["id"].as_str().unwrap(), c["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(changed, [("elkin-a@pve", "Ёлкин Артемий; name from the roster")]);
    let o = stand(dir.path(), &["up", lab, "--sim", "--users", fixed, "-q"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = stand(dir.path(), &["status", "lab", "--sim", "--output", "json"], &[]);
    assert_eq!(json(&o)["stands"][0]["name"], "Ёлкин Артемий", "PVE has the corrected name");

    // Grades out: the spreadsheet (read back with calamine) and Moodle's CSV.
    let o = stand(dir.path(), &["sim", "guest", "write", "lab", "ivanov-ps", "pc", "/root/report.txt", "done"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = stand(
        dir.path(),
        &[
            "check",
            lab,
            "--sim",
            "--users",
            &school,
            "--csv",
            "moodle.csv",
            "--format",
            "moodle",
            "--xlsx",
            "grades.xlsx",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Иванов П. С."), "names in the printed sheet: {}", text(&o));
    let moodle = std::fs::read_to_string(dir.path().join("moodle.csv")).unwrap();
    assert_eq!(
        moodle,
        "username,lastname,firstname,report,agent,total\n\
         elkin-a,Ёлкин,Артемий,0,1,1\n\
         ivanov-ps,Иванов,Пётр Сергеевич,1.5,1,2.5\n\
         petrova-av,Петрова,Анна Викторовна,0,1,1\n"
    );
    use calamine::{Data, Reader};
    let mut book = calamine::open_workbook_auto(dir.path().join("grades.xlsx")).unwrap();
    assert_eq!(book.sheet_names(), ["lab"]);
    let range = book.worksheet_range("lab").unwrap();
    let cells: Vec<Vec<Data>> = range.rows().map(|r| r.to_vec()).collect();
    let s = |t: &str| Data::String(t.into());
    let f = Data::Float;
    assert_eq!(
        cells,
        vec![
            vec![s("student"), s("name"), s("report (1.5)"), s("agent (1)"), s("total"), s("max"), s("hints")],
            vec![
                s("elkin-a@pve"),
                s("Ёлкин Артемий"),
                f(0.0),
                f(1.0),
                f(1.0),
                f(2.5),
                s("report: write /root/report.txt")
            ],
            vec![s("ivanov-ps@pve"), s("Иванов Пётр Сергеевич"), f(1.5), f(1.0), f(2.5), f(2.5), Data::Empty],
            vec![
                s("petrova-av@pve"),
                s("Петрова Анна Викторовна"),
                f(0.0),
                f(1.0),
                f(1.0),
                f(2.5),
                s("report: write /root/report.txt")
            ],
        ]
    );

    // The printed logins, offline: one slip per student with the roster's name.
    let o = stand(dir.path(), &["credentials", "lab", "--html", "logins.html", "--url", "https://class.example/"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let page = std::fs::read_to_string(dir.path().join("logins.html")).unwrap();
    let creds = std::fs::read_to_string(dir.path().join("lab-credentials.csv")).unwrap();
    for line in creds.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        assert!(page.contains(fields[0]) && page.contains(fields[1]), "{} and its password on a slip", fields[0]);
    }
    assert_eq!(page.matches("class=\"slip\"").count(), 3);
    assert_eq!(page.matches("class.example").count(), 3, "the class page on each slip");
    assert!(page.contains("Ёлкин Артемий") && !page.contains("Ёлкин Артём"), "the corrected name is printed");
    assert!(page.find("Ёлкин").unwrap() < page.find("Иванов").unwrap(), "slips in the class list's order");
}
