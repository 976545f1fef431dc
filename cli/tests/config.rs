//! The service configuration file (`--config`): its loader tests as data,
//! and the commands that read it, through the binary.
//!
//! Data: each `tests/data/config/<case>.yaml` is loaded (with the
//! environment of [`ENV`]) and resolved (the packs and machine it names, the
//! bindings' coverage); its diagnostics are compared with
//! `<case>.expected`, one per line as `check` prints them. Every `E06xx`
//! code has a case (`E0601`, an unreadable file, is shown through the
//! binary). `UPDATE_EXPECT=1` rewrites the expected files; review the diff.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use creatorflow::diag::{Code, Diagnostic, Severity};
use creatorflow_cli::config::load::parse;
use creatorflow_cli::config::{Overrides, SetupError, resolve};

/// The environment the data cases are loaded with. No value may appear in
/// any diagnostic.
const ENV: &[(&str, &str)] = &[
    ("TIKTOK_APP_KEY", "app-key-v4lue"),
    ("TIKTOK_APP_SECRET", "app-s3cret-v4lue"),
    ("HOOK_SECRET", "hook-s3cret-v4lue"),
    ("ADMIN_TOKEN", "admin-t0ken-v4lue"),
    ("CREATOR1_TOKEN", "creator1-t0ken-v4lue"),
    ("METRICS_TOKEN", "metrics-t0ken-v4lue"),
    ("EMPTY_VAR", ""),
];

fn env(name: &str) -> Option<String> {
    ENV.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| (*v).to_owned())
}

/// Relative to the package (the working directory of tests), so that the
/// expected files name stable paths.
const DATA: &str = "tests/data/config";

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(DATA)
        .expect("tests/data/config")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no cases in {DATA}");
    v
}

/// Loads and resolves one case: (accepted, diagnostics).
fn load_case(case: &Path) -> (bool, Vec<Diagnostic>) {
    let text = std::fs::read_to_string(case).expect("read case");
    let name = case
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let config = match parse(&text, &name, Path::new(DATA), &env) {
        Ok(c) => c,
        Err(d) => return (false, d),
    };
    match resolve(Some(config), &Overrides::default()) {
        Ok(setup) => (true, setup.warnings),
        Err(SetupError::Invalid(d)) => (false, d),
        Err(SetupError::Failed(e)) => panic!("{}: {e}", case.display()),
    }
}

#[test]
fn config_cases() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    // Every case's expected and actual diagnostics, under a header naming it.
    let (mut expected_all, mut actual_all) = (String::new(), String::new());
    for case in cases() {
        let (accepted, diags) = load_case(&case);
        let errors = diags.iter().any(|d| d.severity() == Severity::Error);
        assert_eq!(
            accepted,
            !errors,
            "{}: accepted iff no errors",
            case.display()
        );
        let actual: String = diags.iter().map(|d| format!("{d}\n")).collect();
        for (name, value) in ENV.iter().filter(|(_, v)| !v.is_empty()) {
            assert!(
                !actual.contains(value),
                "{}: {name}'s value shown",
                case.display()
            );
        }
        let expected_path = case.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &actual).expect("write expected");
        }
        let header = format!("==> {}", case.display());
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        expected_all.push_str(&format!("{header}\n{expected}"));
        actual_all.push_str(&format!("{header}\n{actual}"));
    }
    assert_eq!(
        expected_all, actual_all,
        "the cases' diagnostics differ from the expected files (UPDATE_EXPECT=1 rewrites them)"
    );
}

#[test]
fn every_config_code_has_a_case() {
    let text: String = cases()
        .iter()
        .map(|c| std::fs::read_to_string(c.with_extension("expected")).unwrap_or_default())
        .collect();
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| c.starts_with("E06") && *c != "E0601")
        .filter(|c| !text.contains(&format!("[{c}]")))
        .collect();
    assert!(missing.is_empty(), "codes without a case: {missing:?}");
}

// ---- through the binary ----

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_creatorflow"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, v) in ENV {
        c.env(k, v);
    }
    c.env_remove("NOT_SET_ANYWHERE");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run creatorflow")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A configuration file in a fresh directory, with the data packs beside it.
struct TempConfig {
    dir: tempfile::TempDir,
}

impl TempConfig {
    fn new(yaml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("config.yaml"), yaml).expect("write config");
        TempConfig { dir }
    }

    fn path(&self) -> String {
        self.dir.path().join("config.yaml").display().to_string()
    }
}

/// An absolute path to a data pack.
fn pack(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(DATA)
        .join("packs")
        .join(name)
        .display()
        .to_string()
}

/// Bindings for the shipped machine's action types (and `packs/urgent`'s).
const MACHINE_BINDINGS: &str = "actions:
  validate_address: log
  check_inventory: simulated
  reserve_inventory: simulated
  generate_shipping_label: simulated
  select_carrier: simulated
  update_tiktok_status: log
  send_customer_notification: log
";

/// `check --config` on a data case: exit code, stdout, stderr.
fn check(case: &str) -> (Option<i32>, String, String) {
    let out = run(&["check", "--config", &format!("{DATA}/{case}")]);
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

#[test]
fn a_valid_configuration_checks_clean() {
    let (code, stdout, stderr) = check("full_example_is_clean.yaml");
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("ok: "), "{stderr}");
}

#[test]
fn a_broken_configuration_prints_every_located_error_and_exits_1() {
    let (code, stdout, _) = check("bindings_are_checked.yaml");
    assert_eq!(code, Some(1), "{stdout}");
    for code in ["E0612", "E0613", "E0614", "E0615", "E0616"] {
        assert!(
            stdout.lines().any(
                |l| l.starts_with("tests/data/config/bindings_are_checked.yaml:")
                    && l.contains(&format!("error[{code}]"))
            ),
            "{code} missing: {stdout}"
        );
    }
    assert!(stdout.lines().count() >= 9, "{stdout}");

    let (code, stdout, _) = check("no-such-file.yaml");
    assert_eq!(code, Some(1));
    assert!(
        stdout.contains("no-such-file.yaml:1:1: error[E0601]"),
        "{stdout}"
    );
}

#[test]
fn an_unset_variable_is_located_and_no_value_is_shown() {
    let (code, stdout, stderr) = check("env_values.yaml");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "env_values.yaml:4:15: error[E0602]: `app_secret`: the environment variable `NOT_SET_ANYWHERE` is not set or empty"
        ),
        "{stdout}"
    );
    for (_, v) in ENV.iter().filter(|(_, v)| !v.is_empty()) {
        assert!(!stdout.contains(v) && !stderr.contains(v), "{v} shown");
    }
}

#[test]
fn serve_and_worker_refuse_an_unbound_action_type() {
    let c = TempConfig::new("store: memory\n");
    for cmd in [
        &["serve", "--listen", "127.0.0.1:0", "--config", &c.path()][..],
        &["worker", "--exit-when-idle", "--config", &c.path()][..],
    ] {
        let out = run(cmd);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {stdout}{stderr}");
        assert!(!stdout.contains("listening"), "{stdout}");
        assert!(
            stderr.contains(
                "config.yaml:1:1: error[E0617]: `check_inventory` (machine transition `reserve`"
            ),
            "{stderr}"
        );
    }
}

#[test]
fn worker_rules_flag_overrides_the_configured_pack() {
    let c = TempConfig::new(&format!(
        "store: memory\nrules: {}\n{MACHINE_BINDINGS}",
        pack("webhook")
    ));
    // The configured pack uses trigger_webhook, bound to nothing: refused.
    let out = run(&["worker", "--exit-when-idle", "--config", &c.path()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`trigger_webhook` (rule `tell-the-creator`) is bound to nothing"),
        "{stderr}"
    );
    // `--rules` replaces it: the flag's pack needs nothing unbound.
    let out = run(&[
        "worker",
        "--exit-when-idle",
        "--config",
        &c.path(),
        "--rules",
        &pack("urgent"),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("action escalate_priority -> engine"),
        "{stderr}"
    );
    assert!(!stderr.contains("trigger_webhook"), "{stderr}");
}

const LAMP: &str = r#"{"tiktok_order_id":"576461413038785752","customer_handle":"@ana","customer_tier":"new","product_name":"Lamp","product_id":"p1","quantity":1,"price":"12.00","created_at":"2025-06-12T10:00:00Z","shipping_zone":"US-WEST"}"#;

#[test]
fn ingest_evaluates_the_tenants_own_pack() {
    let c = TempConfig::new(&format!(
        "store: sqlite://cf.db\ntenants:\n  - id: lamps\n    rules: {}\n  - id: other\n{MACHINE_BINDINGS}  log_analytics_event: log\n  enable_fast_track: log\n  trigger_webhook: log\n  schedule_follow_up: log\n  auto_reorder_inventory: log\n",
        pack("urgent")
    ));
    let orders = c.dir.path().join("orders.jsonl");
    std::fs::write(&orders, format!("{LAMP}\n")).expect("write orders");
    let orders = orders.display().to_string();
    for tenant in ["lamps", "other"] {
        let out = run(&[
            "ingest",
            "--config",
            &c.path(),
            "--tenant",
            tenant,
            "--orders",
            &orders,
        ]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        assert!(stdout.contains("1 new"), "{stdout}");
    }
    let lanes = |tenant: &str| {
        let out = run(&[
            "status",
            "--config",
            &c.path(),
            "--tenant",
            tenant,
            "--format",
            "json",
        ]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).expect("status JSON");
        v["by_lane"].clone()
    };
    assert_eq!(
        lanes("lamps")["urgent"],
        1,
        "the tenant's pack escalates lamps"
    );
    assert!(
        lanes("other").get("urgent").is_none(),
        "the shipped pack does not"
    );
    // The store is the configuration's, beside the file.
    assert!(c.dir.path().join("cf.db").exists());
}

#[test]
fn the_start_up_report_lists_the_bindings_without_secrets() {
    let c = TempConfig::new(&format!(
        "store: memory\nrules: {}\n{}  trigger_webhook: {{ http: {{ url: \"https://hooks.example.com/events\", secret: \"${{HOOK_SECRET}}\" }} }}\n",
        pack("webhook"),
        MACHINE_BINDINGS
    ));
    let out = run(&["worker", "--exit-when-idle", "--config", &c.path()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    for line in [
        "action trigger_webhook -> http https://hooks.example.com/events",
        "action check_inventory -> simulated",
        "action validate_address -> log",
    ] {
        assert!(stderr.contains(line), "{line}: {stderr}");
    }
    assert!(!stdout.contains("hook-s3cret") && !stderr.contains("hook-s3cret"));

    let out = run(&["worker", "--exit-when-idle", "--store", "memory:"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("every action type is simulated"),
        "{stderr}"
    );
    assert!(
        stderr.contains("action check_inventory -> simulated"),
        "{stderr}"
    );
}

/// One request on a fresh connection: the answer's status (0: no answer).
fn status_of(addr: &str, method: &str, path: &str, token: Option<&str>) -> u16 {
    use std::io::{Read, Write};
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.write_all(
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .expect("request");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("answer");
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|a| a.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// `serve --config` alone: the file's listen address, its bindings, and
/// its tokens, read from the environment (`${…}`), as configured: a
/// tenant's token reads its tenant only, an admin's every tenant, the
/// metrics token `/metrics` only.
#[test]
fn serve_runs_from_the_configuration_alone() {
    let c = TempConfig::new(&format!(
        "store: memory\nlisten: 127.0.0.1:0\nrules: {0}\ntiktok:\n  app_key: ${{TIKTOK_APP_KEY}}\n  app_secret: ${{TIKTOK_APP_SECRET}}\n  api_base: http://127.0.0.1:9\n  poll_every: 0\ntenants:\n  - id: lamps\n    shops: [\"7494049642642441621\"]\n    rules: {0}\n    api_tokens: [\"${{CREATOR1_TOKEN}}\"]\n  - id: desks\nadmin_tokens: [\"${{ADMIN_TOKEN}}\"]\nmetrics_token: ${{METRICS_TOKEN}}\n{MACHINE_BINDINGS}",
        pack("urgent")
    ));
    let mut child = bin()
        .args(["serve", "--config", &c.path()])
        .env_remove("TIKTOK_ACCESS_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
        .expect("the listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .map(str::to_owned);
    let statuses = addr.as_deref().map(|a| {
        let [tenant, admin, metrics] =
            ["CREATOR1_TOKEN", "ADMIN_TOKEN", "METRICS_TOKEN"].map(|n| env(n).expect("token"));
        let tenant = Some(tenant.as_str());
        let admin = Some(admin.as_str());
        let metrics = Some(metrics.as_str());
        [
            ("GET", "/healthz", None, 200),
            ("GET", "/api/orders", None, 401),
            ("GET", "/api/orders", Some("app-key-v4lue"), 401),
            ("GET", "/api/orders", tenant, 200),
            ("GET", "/api/orders?tenant=desks", tenant, 404),
            ("GET", "/api/orders?tenant=desks", admin, 200),
            ("GET", "/api/metrics?tenant=lamps", admin, 200),
            ("GET", "/api/metrics", metrics, 404),
            ("GET", "/metrics", tenant, 404),
            ("GET", "/metrics", metrics, 200),
            ("GET", "/metrics", admin, 200),
        ]
        .map(|(method, path, token, want)| {
            (
                path,
                token.is_some(),
                want,
                status_of(a, method, path, token),
            )
        })
    });
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let statuses = statuses.unwrap_or_else(|| panic!("no listening line: {line:?} {stderr}"));
    for (path, token, want, got) in statuses {
        assert_eq!(got, want, "{path} (a token: {token}) {stderr}");
    }
    assert!(
        stderr.contains("action escalate_priority -> engine"),
        "{stderr}"
    );
    assert!(
        stderr.contains("action check_inventory -> simulated"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("every action type is simulated") && !stderr.contains("no API tokens"),
        "{stderr}"
    );
    for (name, value) in ENV.iter().filter(|(_, v)| !v.is_empty()) {
        assert!(!stderr.contains(value), "{name}'s value in the log");
    }
}

/// The `http` binding end to end: a rule of the configured pack fires on
/// the ingested order; the worker delivers its `trigger_webhook` to the
/// receiver, signed with the secret read from the environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_binding_delivers_the_rule_action_signed() {
    let secret = env("HOOK_SECRET").expect("HOOK_SECRET");
    let receiver = creatorflow_testkit::receiver::Receiver::start(secret)
        .await
        .expect("receiver");
    let c = TempConfig::new(&format!(
        "store: sqlite://cf.db\nrules: {}\n{MACHINE_BINDINGS}  trigger_webhook: {{ http: {{ url: \"{}\", secret: \"${{HOOK_SECRET}}\", timeout: 5s }} }}\n",
        pack("webhook"),
        receiver.url("/events")
    ));
    let orders = c.dir.path().join("orders.jsonl");
    std::fs::write(&orders, format!("{LAMP}\n")).expect("write orders");
    let (config, orders) = (c.path(), orders.display().to_string());
    let outs = tokio::task::spawn_blocking(move || {
        let ingest = run(&["ingest", "--config", &config, "--orders", &orders]);
        let worker = run(&["worker", "--exit-when-idle", "--config", &config]);
        (ingest, worker)
    })
    .await
    .expect("the commands ran");
    for out in [&outs.0, &outs.1] {
        let (stdout, stderr) = text(out);
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    }
    let deliveries = receiver.deliveries();
    let d = deliveries
        .iter()
        .find(|d| d.action.as_deref() == Some("trigger_webhook"))
        .unwrap_or_else(|| panic!("no trigger_webhook delivery: {deliveries:?}"));
    assert!(
        d.signature_ok,
        "signed with the secret from the environment"
    );
    assert_eq!(d.path, "/events");
    assert_eq!(d.body["order"]["tiktok_order_id"], "576461413038785752");
    assert_eq!(receiver.effects().len(), 1, "{deliveries:?}");
}

/// `check --config` reports what `serve` would refuse beyond the file: with
/// no `tiktok:` section, the app must come from the environment.
#[test]
fn check_requires_a_tiktok_app_as_serve_does() {
    let c = TempConfig::new(&format!(
        "store: memory\nrules: {}\n{MACHINE_BINDINGS}",
        pack("urgent")
    ));
    let out = bin()
        .args(["check", "--config", &c.path()])
        .env_remove("TIKTOK_APP_KEY")
        .env_remove("TIKTOK_APP_SECRET")
        .output()
        .expect("run");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("`serve` needs a TikTok app"), "{stdout}");
    let out = bin()
        .args(["check", "--config", &c.path()])
        .output()
        .expect("run");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
}
