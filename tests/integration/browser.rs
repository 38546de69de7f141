//! `stand serve` in a real browser: headless Chromium driven over WebDriver (chromedriver)
//! by fantoccini. A student logs in, sees only their VMs, resets one and sees it back; the
//! instructor sees the class and the grade sheet. Screenshots of both pages are written to
//! `docs/screenshots/` (the README shows them).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them
//! the test says it is skipped, and fails when `STAND_REQUIRE_BROWSER` is set.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::{PrintConfiguration, PrintSize};
use fantoccini::{Client, ClientBuilder, Locator};
use stand::grade::{GradeSheet, History, StandOutcome};
use stand::pve::{ApiRequest, PveExt};
use stand::script::Grade;
use stand::serve::{ServeConfig, router};
use stand::sim::{Fixture, LatencyModel, Sim, SimOptions};

use crate::serve::{PASSWORD, TEACHER, TEACHER_PASSWORD, backend, deploy};

/// chromedriver, stopped when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|n| std::env::split_paths(&path).map(|d| d.join(n)).find(|p| p.is_file()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts chromedriver and connects a headless Chromium session.
async fn browser(driver: &Path, chromium: &Path) -> (Driver, Client) {
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--disable-quic", "--window-size=1280,1000",
                     format!("--user-data-dir={}", tempfile::tempdir().unwrap().keep().display())]
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    // chromedriver listens a moment after it starts: connect until it answers (bounded).
    let mut last = None;
    for _ in 0..100 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
            Ok(client) => return (driver, client),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer: {last:?}");
}

async fn log_in(c: &Client, base: &str, user: &str, password: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    c.find(Locator::Css("input[name=username]")).await.unwrap().send_keys(user).await.unwrap();
    c.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(password).await.unwrap();
    c.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
}

async fn log_out_and_in(c: &Client, base: &str, user: &str, password: &str) {
    c.find(Locator::Css("form[action='/logout'] button")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("input[name=username]")).await.unwrap();
    log_in(c, base, user, password).await;
}

fn screenshot(name: &str, png: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, png).unwrap();
    path
}

/// Clicks the button with this text, when the page has it now.
async fn click_if_there(c: &Client, text: &str) {
    if let Ok(button) = c.find(Locator::XPath(&format!("//button[text()='{text}']"))).await {
        let _ = button.click().await;
    }
}

/// The printed logins: `pdftotext` finds every slip (name, login, password, the class
/// page's address); `pdftoppm` renders the first page to `docs/screenshots/logins.png`.
/// Without poppler-utils the check says it is skipped (and fails under
/// `STAND_REQUIRE_BROWSER`).
fn printed(pdf: &[u8], base: &str, students: &[String]) -> Option<PathBuf> {
    assert!(pdf.starts_with(b"%PDF"), "Chromium printed a PDF");
    let (Some(to_text), Some(to_png)) = (find(&["pdftotext"]), find(&["pdftoppm"])) else {
        if std::env::var_os("STAND_REQUIRE_BROWSER").is_some() {
            panic!("STAND_REQUIRE_BROWSER is set but pdftotext or pdftoppm is missing (apt install poppler-utils)");
        }
        eprintln!("SKIPPED: reading the printed logins needs pdftotext and pdftoppm (apt install poppler-utils)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("logins.pdf");
    std::fs::write(&file, pdf).unwrap();
    let out = Command::new(to_text).arg("-layout").arg(&file).arg("-").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    for (login, name) in students.iter().zip(["Петрова Анна Викторовна", "Сидоров Иван Ильич", "Козлова Мария"])
    {
        assert!(text.contains(name) && text.contains(login.as_str()), "{name} ({login}) on a slip:\n{text}");
    }
    assert_eq!(text.matches(PASSWORD).count(), students.len(), "a password per slip:\n{text}");
    assert_eq!(text.matches(&format!("{base}/")).count(), students.len(), "the class page on each slip:\n{text}");
    let stem = dir.path().join("page");
    let status = Command::new(to_png)
        .args(["-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&file)
        .arg(&stem)
        .status()
        .unwrap();
    assert!(status.success());
    Some(screenshot("logins.png", &std::fs::read(stem.with_extension("png")).unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_resets_a_vm_and_the_instructor_sees_the_class_in_chromium() {
    let _one_at_a_time = super::common::SERVE_IN_PROCESS.lock().await;
    let (Some(driver), Some(chromium)) = (find(&["chromedriver"]), find(&["chromium", "chromium-browser"])) else {
        if std::env::var_os("STAND_REQUIRE_BROWSER").is_some() {
            panic!("STAND_REQUIRE_BROWSER is set but chromium or chromedriver is missing");
        }
        eprintln!("SKIPPED: the browser test needs chromium and chromedriver (apt install chromium chromium-driver)");
        return;
    };
    // Real time, PVE's durations at 1/20: a rollback takes a moment, as it would.
    let opts = SimOptions { latency: LatencyModel::realistic(), time_scale: 0.05, ..SimOptions::default() };
    let sim = Sim::new(&Fixture::default_cluster(), opts);
    let students = ["петрова@pve".to_string(), "sidorov@pve".to_string(), "kozlova@pve".to_string()];
    deploy(&sim, "lab3", &students, true).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stand.db");
    let outcomes: Vec<StandOutcome> = students
        .iter()
        .enumerate()
        .map(|(i, u)| StandOutcome {
            user: u.clone(),
            node: "pve1".into(),
            grades: vec![
                Grade {
                    title: "router named gw".into(),
                    points: 1.0,
                    passed: true,
                    hint: None,
                    reason: None,
                    unreached: false,
                },
                Grade {
                    title: "LAN address on gw".into(),
                    points: 2.0,
                    passed: i != 0,
                    hint: Some("give gw's LAN interface 192.168.1.1/24".into()),
                    reason: None,
                    unreached: false,
                },
                Grade {
                    title: "SSH on port 2024".into(),
                    points: 1.0,
                    passed: i == 1,
                    hint: Some("Port 2024 in sshd_config".into()),
                    reason: None,
                    unreached: false,
                },
            ],
            error: None,
            defined: Vec::new(),
        })
        .collect();
    History::open(&db)
        .unwrap()
        .record(&GradeSheet::new("lab3", &outcomes), "2026-11-23T10:00:00Z", "stand-sim")
        .unwrap();
    // The credentials `stand up` wrote from a roster: names for two, PVE's name for the third.
    let creds = format!(
        "user,password,node,vms,name\n{}\n{}\n{}\n",
        format_args!("{},{PASSWORD},pve1,gw-petrova pc-petrova,Петрова Анна Викторовна", students[0]),
        format_args!("{},{PASSWORD},pve1,gw-sidorov pc-sidorov,", students[1]),
        format_args!("{},{PASSWORD},pve1,gw-kozlova pc-kozlova,Козлова Мария", students[2]),
    );
    std::fs::write(dir.path().join("lab3-credentials.csv"), creds).unwrap();
    let root = sim.session("root@pam");
    let named =
        ApiRequest::put("/access/users/sidorov@pve").param("firstname", "Иван Ильич").param("lastname", "Сидоров");
    root.exec(named).await.unwrap();
    let config = ServeConfig {
        db: Some(db),
        cluster: "stand-sim".into(),
        credentials_dir: dir.path().to_path_buf(),
        ..ServeConfig::default()
    };
    let app = router(backend(&sim), config).into_make_service_with_connect_info::<SocketAddr>();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp(listener).handle(handle.clone());
    tokio::spawn(async move { server.serve(app).await });

    let (_driver, c) = browser(&driver, &chromium).await;

    // The student: their stand only.
    log_in(&c, &base, &students[0], PASSWORD).await;
    c.wait().for_element(Locator::Css("article.stand")).await.unwrap();
    let text = c.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(text.contains("gw-petrova") && text.contains("pc-petrova"), "{text}");
    assert!(!text.contains("sidorov") && !text.contains("kozlova"), "another student's stand on the page: {text}");
    assert!(text.contains("give gw's LAN interface 192.168.1.1/24"), "the hint of a failed criterion");

    // Something breaks in pc; the student resets that VM, confirms, and sees it back.
    let pc = root
        .resources(Some("vm"))
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.name.as_deref() == Some("pc-petrova"))
        .unwrap();
    let (node, vmid) = (pc.node.clone().unwrap(), pc.vmid.unwrap());
    root.set_vm_config(&node, vmid, [("memory".to_string(), "4096".to_string())].into()).await.unwrap();
    c.find(Locator::XPath("//tr[@data-vm='pc']//a[text()='Reset VM']")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("confirm-reset")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("article.stand")).await.unwrap();
    let mut back = false;
    for _ in 0..200 {
        let config = root.vm_config(&node, vmid).await.unwrap();
        let running = root.vm_status(&node, vmid).await.unwrap().status == "running";
        if config.get("memory").as_deref() == Some("512") && running {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "pc rolled back to its snapshot and started again");
    // The page (refreshed in place by its script) shows the VM running again.
    let mut shown = false;
    for _ in 0..100 {
        // A refresh may land while the page is being replaced: look again next time.
        if c.refresh().await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let row = c.find(Locator::Css("tr[data-vm='pc']")).await.unwrap();
        if row.attr("data-status").await.unwrap().as_deref() == Some("running")
            && c.find(Locator::Css("article.stand")).await.unwrap().text().await.unwrap().contains("running")
            && c.find_all(Locator::Css("span.pill.busy")).await.unwrap().is_empty()
        {
            shown = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(shown, "the page shows pc running after the reset");
    let student_png = screenshot("student.png", &c.screenshot().await.unwrap());

    // Log out, log in as the instructor: the class, its live state and the grade sheet.
    c.find(Locator::Css("form[action='/logout'] button")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("input[name=username]")).await.unwrap();
    log_in(&c, &base, TEACHER, TEACHER_PASSWORD).await;
    c.wait().for_element(Locator::Css("table.class")).await.unwrap();
    let rows = c.find_all(Locator::Css("table.class tr.stand-row")).await.unwrap();
    assert_eq!(rows.len(), students.len(), "every stand of the class");
    let sheet = c.find(Locator::Css("table.sheet")).await.unwrap().text().await.unwrap();
    for s in &students {
        assert!(sheet.contains(s.as_str()), "{s} in the grade sheet");
    }
    assert!(sheet.contains("SSH on port 2024") && sheet.contains("4 / 4") && sheet.contains("1 / 4"), "{sheet}");
    let instructor_png = screenshot("instructor.png", &c.screenshot().await.unwrap());

    // Logins on paper: the page Chromium prints to PDF has one slip per student.
    let href = c.find(Locator::XPath("//a[text()='Print logins']")).await.unwrap().attr("href").await.unwrap();
    assert_eq!(href.as_deref(), Some("/labs/lab3/logins"));
    c.goto(&format!("{base}/labs/lab3/logins")).await.unwrap();
    let pdf = c.print(PrintConfiguration::builder().size(PrintSize::A4).build().unwrap()).await.unwrap();
    let logins_png = printed(&pdf, &base, &students);
    c.goto(&base).await.unwrap();

    // The exam from the page: every stand's uplinks cut, shown on the page, then restored.
    c.find(Locator::XPath("//button[text()='Cut uplinks (exam)']")).await.unwrap().click().await.unwrap();
    let mut cut = false;
    for i in 0..200 {
        // A refresh may land while the page is being replaced: look again next time.
        if c.refresh().await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        // A click that landed while the page script replaced the page was lost: click again
        // (cutting what is cut changes nothing).
        if i % 40 == 39 {
            click_if_there(&c, "Cut uplinks (exam)").await;
        }
        let head = match c.find(Locator::Css(".lab-head")).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if head.contains(&format!("uplinks cut on {n} of {n} stands (exam)", n = students.len())) {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = c.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(cut, "the page shows the class's uplinks cut:\n{page}");
    let gw = root
        .resources(Some("vm"))
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.name.as_deref() == Some("gw-petrova"))
        .unwrap();
    let config = root.vm_config(&gw.node.clone().unwrap(), gw.vmid.unwrap()).await.unwrap();
    assert!(config.get("net1").is_some_and(|n| n.contains("link_down=1")), "gw's uplink is cut: {config:?}");
    assert_eq!(c.find_all(Locator::Css("table.class .pill.exam")).await.unwrap().len(), students.len());
    c.find(Locator::XPath("//button[text()='Restore uplinks']")).await.unwrap().click().await.unwrap();
    let mut restored = false;
    for i in 0..200 {
        // A refresh may land while the page is being replaced: look again next time.
        if c.refresh().await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        if i % 40 == 39 {
            click_if_there(&c, "Restore uplinks").await;
        }
        if c.find_all(Locator::Css(".pill.exam")).await.is_ok_and(|pills| pills.is_empty()) {
            restored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(restored, "the uplinks are back");

    // A phone: the instructor's page at 400 px wide does not scroll sideways.
    c.set_window_size(400, 900).await.unwrap();
    c.refresh().await.unwrap();
    c.wait().for_element(Locator::Css("table.class")).await.unwrap();
    let width = c.execute("return [document.documentElement.scrollWidth, window.innerWidth];", vec![]).await.unwrap();
    let (page, window) = (width[0].as_u64().unwrap(), width[1].as_u64().unwrap());
    assert!(page <= window, "the page is {page} px wide in a {window} px window");
    let phone_png = screenshot("instructor-phone.png", &c.screenshot().await.unwrap());
    c.set_window_size(1280, 1000).await.unwrap();

    // Times are the reader's local time, readable, never raw RFC 3339.
    log_out_and_in(&c, &base, &students[0], PASSWORD).await;
    c.wait().for_element(Locator::Css("article.stand time")).await.unwrap();
    let shown = c.find(Locator::Css("article.stand time")).await.unwrap().text().await.unwrap();
    assert!(!shown.contains('T') && !shown.contains('Z') && shown.contains("2026"), "a readable local time: {shown}");
    // A student's session is refused the logins.
    c.goto(&format!("{base}/labs/lab3/logins")).await.unwrap();
    let refused = c.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(
        refused.contains("Only the lab's instructor may print its logins") && !refused.contains(PASSWORD),
        "{refused}"
    );
    eprintln!(
        "screenshots: {} {} {} {}",
        student_png.display(),
        instructor_png.display(),
        phone_png.display(),
        logins_png.map(|p| p.display().to_string()).unwrap_or_else(|| "(no logins.png: pdftoppm missing)".into())
    );
    c.close().await.unwrap();
    handle.shutdown();
}
