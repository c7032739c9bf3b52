//! The main journeys in a real browser: headless Chromium driven through
//! ChromeDriver (Debian's `chromium` and `chromium-driver`, installed by
//! .ci/run). Every page visited is checked with axe-core (WCAG 2.1 A/AA and
//! best practices) and kept as a screenshot in `target/screenshots/`.

use std::{path::PathBuf, process::Stdio, time::Duration};

use fantoccini::{Client, ClientBuilder, Locator, key::Key};
use kindred::db::entities::{post, user};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestInstance, eventually};

pub struct Browser {
    client: Client,
    _driver: tokio::process::Child,
    axe: String,
    shots: PathBuf,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(cmd))
            .find(|p| p.is_file())
    })
}

impl Browser {
    pub async fn start() -> Browser {
        Self::start_with(&[]).await
    }

    pub async fn start_with(extra_args: &[&str]) -> Browser {
        let driver_bin = which("chromedriver").expect(
            "chromedriver is not installed: `apt-get install -y chromium chromium-driver` (.ci/run does this)",
        );
        let chromium = which("chromium").expect("chromium is not installed (see .ci/run)");
        let axe_path = repo().join("tests/browser/node_modules/axe-core/axe.min.js");
        let axe = std::fs::read_to_string(&axe_path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `npm ci` in tests/browser (.ci/run does this)",
                axe_path.display()
            )
        });
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let driver = tokio::process::Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let mut args = vec![
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--window-size=1100,1000",
            "--lang=en-GB",
        ];
        args.extend_from_slice(extra_args);
        let caps = json!({
            "goog:chromeOptions": { "binary": chromium, "args": args }
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let mut client = None;
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let shots = repo().join("target/screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Browser {
            client: client.expect("ChromeDriver answers"),
            _driver: driver,
            axe,
            shots,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("goto");
    }

    pub async fn path(&self) -> String {
        let u = self.client.current_url().await.expect("url");
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.client.find(Locator::Css(css)).await.expect(css);
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .expect("click");
    }

    /// Click the button or link whose text is `text`, and wait for the next
    /// page to load.
    pub async fn press(&self, text: &str) {
        // Buttons first: "Sign in" is both the nav link and the form's button.
        let button = format!(
            "//main//button[normalize-space(.)='{text}'] | //header//button[normalize-space(.)='{text}']"
        );
        let link =
            format!("//main//a[normalize-space(.)='{text}'] | //a[normalize-space(.)='{text}']");
        let target = match self.client.find(Locator::XPath(&button)).await {
            Ok(b) => b,
            Err(_) => self
                .client
                .find(Locator::XPath(&link))
                .await
                .unwrap_or_else(|e| panic!("no button or link '{text}': {e}")),
        };
        self.client
            .execute("window.__kindredOld = true", vec![])
            .await
            .expect("mark page");
        target.click().await.expect("click");
        for _ in 0..200 {
            let fresh = self
                .client
                .execute(
                    "return window.__kindredOld !== true && document.readyState === 'complete'",
                    vec![],
                )
                .await
                .unwrap_or(Value::Bool(false));
            if fresh == Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("pressing '{text}' did not load a new page");
    }

    pub async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .expect("body")
            .text()
            .await
            .expect("text")
    }

    pub async fn sees(&self, needle: &str) {
        let t = self.text().await;
        assert!(
            t.contains(needle),
            "expected {needle:?} on {}:\n{t}",
            self.path().await
        );
    }

    /// axe-core on the current page: no violations, and a screenshot.
    pub async fn check(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("write screenshot");
        self.client
            .execute(&self.axe, vec![])
            .await
            .expect("inject axe-core");
        let script = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } })
              .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')) }))))
              .catch(e => done([{ id: 'axe-error', help: String(e) }]));
        "#;
        let violations = self
            .client
            .execute_async(script, vec![])
            .await
            .expect("run axe-core");
        let list = violations.as_array().cloned().unwrap_or_default();
        assert!(
            list.is_empty(),
            "accessibility violations on {name} ({}):\n{}",
            self.path().await,
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

const PW: &str = "a long enough password";

#[tokio::test]
async fn main_journeys_in_chromium() {
    let a = TestInstance::spawn(Backend::Sqlite).await;
    let b = TestInstance::spawn(Backend::Sqlite).await;
    b.create_group("eds", "Ehlers-Danlos").await;
    let br = Browser::start().await;

    // First visitor: creates the admin account, no CLI.
    br.goto(&a.base).await;
    assert_eq!(br.path().await, "/setup");
    br.check("01-setup").await;
    br.fill("#instance_name", "Rare Together").await;
    br.fill("#username", "root").await;
    br.fill("#password", PW).await;
    br.fill("#confirm", PW).await;
    br.press("Create the admin account").await;
    assert!(br.path().await.starts_with("/admin"));
    br.sees("you are its admin").await;
    // Keyboard: the first Tab lands on the skip link, and focus is visible.
    br.client
        .find(Locator::Css("body"))
        .await
        .expect("body")
        .send_keys(&Key::Tab.to_string())
        .await
        .expect("tab");
    let focused = br.client.active_element().await.expect("focus");
    assert_eq!(focused.text().await.expect("text"), "Skip to content");
    let outline = br
        .client
        .execute(
            "return getComputedStyle(document.activeElement).outlineStyle",
            vec![],
        )
        .await
        .expect("style");
    assert_eq!(outline, json!("solid"), "focus is visible");
    br.check("02-admin-instance").await;

    // Sign-ups by approval; a group.
    br.click("#mode-approval").await;
    br.fill(
        "#description",
        "Groups for rare conditions, run by volunteers.",
    )
    .await;
    br.press("Save").await;
    br.sees("Saved.").await;
    br.goto(&format!("{}/admin/groups", a.base)).await;
    br.check("03-admin-groups").await;
    br.fill("#name", "mg").await;
    br.fill("#title", "Myasthenia gravis").await;
    br.fill(
        "#summary",
        "Peer support for people with MG and their carers.",
    )
    .await;
    br.press("Create group").await;
    br.sees("The group is created").await;
    br.check("04-admin-group").await;
    // Federation: block a domain, then the instances and audit pages, and the
    // group's own instance list.
    br.goto(&format!("{}/admin/federation", a.base)).await;
    br.fill("#domain", "spam.example").await;
    br.fill("#reason", "Sends spam to patient groups").await;
    br.press("Add").await;
    br.sees("in force now").await;
    br.sees("spam.example").await;
    br.check("04b-admin-federation").await;
    br.goto(&format!("{}/admin/instances", a.base)).await;
    br.check("04c-admin-instances").await;
    br.goto(&format!("{}/admin/audit", a.base)).await;
    br.sees("federation.block").await;
    br.check("04d-admin-audit").await;
    br.goto(&format!("{}/g/mg/federation", a.base)).await;
    br.click("#scope-only").await;
    br.fill("#domains", "partner.example").await;
    br.press("Save").await;
    br.sees("in force now").await;
    br.check("04e-group-federation").await;
    // The group's moderation page: settings, requests, bans; and its log.
    br.goto(&format!("{}/g/mg/moderation", a.base)).await;
    br.fill("#default_content_warning", "Medication details")
        .await;
    br.press("Save settings").await;
    br.sees("settings are saved").await;
    br.check("04f-group-moderation").await;
    br.goto(&format!("{}/g/mg/moderation/log", a.base)).await;
    br.sees("group.settings").await;
    br.check("04g-moderation-log").await;
    br.press("Sign out root").await;
    br.sees("You are signed out").await;
    br.check("05-landing").await;

    // A newcomer asks to join; the admin approves.
    br.press("Create an account").await;
    br.check("06-signup").await;
    br.fill("#username", "ben").await;
    br.fill("#password", PW).await;
    br.fill("#confirm", PW).await;
    br.fill("#application", "My daughter was just diagnosed with MG.")
        .await;
    br.press("Send my request").await;
    br.sees("Request sent").await;
    br.goto(&format!("{}/signin", a.base)).await;
    br.check("07-signin").await;
    br.fill("#username", "ben").await;
    br.fill("#password", PW).await;
    br.press("Sign in").await;
    br.sees("waiting for an admin").await;
    br.fill("#username", "root").await;
    br.fill("#password", PW).await;
    br.press("Sign in").await;
    br.goto(&format!("{}/admin/signups", a.base)).await;
    br.sees("My daughter was just diagnosed with MG.").await;
    br.check("08-admin-signups").await;
    br.press("Approve ben").await;
    br.sees("approved").await;
    br.goto(&format!("{}/admin/users", a.base)).await;
    br.check("09-admin-users").await;
    br.press("Sign out root").await;

    // The member joins a local group, posts with a content warning, replies.
    br.goto(&format!("{}/signin", a.base)).await;
    br.fill("#username", "ben").await;
    br.fill("#password", PW).await;
    br.press("Sign in").await;
    br.sees("You have not joined a group yet").await;
    br.check("10-home-empty").await;
    br.press("Find a group").await;
    br.check("11-directory").await;
    br.press("Myasthenia gravis").await;
    br.check("12-group").await;
    br.press("Join this group").await;
    br.sees("You joined this group").await;
    br.press("Start a thread").await;
    br.check("13-compose").await;
    br.fill("#title", "Tiredness after meals").await;
    br.fill("#body", "Does anyone else get **very** tired after eating?")
        .await;
    br.fill("#content_warning", "symptoms").await;
    br.press("Preview").await;
    let preview = br
        .client
        .find(Locator::Css(".preview strong"))
        .await
        .expect("preview rendered");
    assert_eq!(preview.text().await.expect("text"), "very");
    br.check("14-compose-preview").await;
    br.press("Post").await;
    br.sees("Your thread is posted").await;
    // The content warning hides the text until opened.
    let body = br
        .client
        .find(Locator::Css("#main article.op details.cw .content"))
        .await
        .expect("cw content");
    assert!(!body.is_displayed().await.expect("displayed"));
    br.check("15-thread-cw-closed").await;
    br.click("#main article.op details.cw summary").await;
    assert!(body.is_displayed().await.expect("displayed"));
    br.fill("#body", "Yes, it gets better with the right dose.")
        .await;
    br.press("Post reply").await;
    br.sees("Your reply is posted").await;
    br.sees("Yes, it gets better with the right dose.").await;
    br.check("16-thread-reply").await;
    let thread_path = br.path().await;
    let op_id: i64 = thread_path
        .trim_start_matches("/t/")
        .split('?')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("thread id");
    br.goto(&format!("{}/p/{op_id}/edit", a.base)).await;
    br.check("17-edit").await;
    br.goto(&format!("{}/p/{op_id}/delete", a.base)).await;
    br.check("18-delete-confirm").await;
    br.goto(&format!("{}/settings", a.base)).await;
    br.check("19-settings").await;
    br.goto(&a.base).await;
    br.sees("Tiredness after meals").await;
    br.check("20-home").await;

    // A group on another instance: look it up, join, write in it.
    br.goto(&format!("{}/directory", a.base)).await;
    br.fill("#handle", &format!("@eds@{}", b.domain)).await;
    br.press("Look up").await;
    assert_eq!(br.path().await, format!("/g/eds@{}", b.domain));
    br.sees("this group lives on another instance").await;
    br.press("Join this group").await;
    let remote_page = format!("{}/g/eds@{}", a.base, b.domain);
    eventually("the remote group accepts", || async {
        br.goto(&remote_page).await;
        br.text().await.contains("You are a member").then_some(())
    })
    .await;
    br.check("21-remote-group").await;
    br.press("Start a thread").await;
    br.fill("#title", "Hello from Rare Together").await;
    br.fill("#body", "Glad to find you all.").await;
    br.press("Post").await;
    br.sees("Your thread is posted").await;
    eventually("the post reaches the other instance", || async {
        post::Entity::find()
            .filter(post::Column::Title.eq("Hello from Rare Together"))
            .one(b.db())
            .await
            .ok()
            .flatten()
    })
    .await;

    // A bad handle gets a message on the page.
    br.goto(&format!("{}/directory", a.base)).await;
    br.fill("#handle", "not a handle!").await;
    br.press("Look up").await;
    br.sees("No group found at").await;
    br.check("22-lookup-error").await;

    let ben = user::Entity::find().all(a.db()).await.expect("users");
    assert_eq!(ben.len(), 2);
    br.close().await;
}

/// Dark mode (from the system setting) and a phone-sized window: still no
/// accessibility violations (contrast included), and the thread page with
/// its stylesheet stays small.
#[tokio::test]
async fn dark_mode_on_a_phone() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    let mut admin = crate::web::admin_of(&k).await;
    admin
        .post(
            "/admin/groups",
            &[
                ("name", "mg"),
                ("title", "Myasthenia gravis"),
                ("summary", "Peer support."),
            ],
        )
        .await;
    admin.post("/g/mg/join", &[]).await;
    let posted = admin
        .post(
            "/g/mg/new",
            &[
                ("title", "Night-time symptoms"),
                ("body", "Anyone *else*?"),
                ("content_warning", "symptoms"),
                ("action", "post"),
            ],
        )
        .await;
    let thread = posted
        .location()
        .split('?')
        .next()
        .expect("thread")
        .to_string();
    admin
        .post(
            &format!("{thread}/reply"),
            &[("body", "Me too."), ("action", "post")],
        )
        .await;

    let br = Browser::start_with(&["--force-dark-mode", "--window-size=390,844"]).await;
    br.goto(&k.base).await;
    let dark = br
        .client
        .execute(
            "return matchMedia('(prefers-color-scheme: dark)').matches",
            vec![],
        )
        .await
        .expect("media query");
    assert_eq!(dark, json!(true), "the browser prefers dark");
    br.check("dark-01-landing").await;
    br.goto(&format!("{}/signin", k.base)).await;
    br.fill("#username", "root").await;
    br.fill("#password", PW).await;
    br.press("Sign in").await;
    for (name, path) in [
        ("dark-02-home", "/".to_string()),
        ("dark-03-group", "/g/mg".to_string()),
        ("dark-04-thread", thread.clone()),
        ("dark-05-compose", "/g/mg/new".to_string()),
        ("dark-06-admin", "/admin".to_string()),
    ] {
        br.goto(&format!("{}{path}", k.base)).await;
        br.sees("Sign out").await;
        br.check(name).await;
    }
    br.close().await;

    // Page weight: the thread page and its stylesheet, well under 50 KB.
    let page = admin.get(&thread).await;
    let css = admin.get("/static/kindred.css").await;
    let total = page.body.len() + css.body.len();
    assert!(total < 50 * 1024, "thread page + CSS = {total} bytes");
    assert!(!page.body.contains("<script"), "no scripts");
}
