//! The `creatorflow` binary, end to end: eval, check, graph and their exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_creatorflow"))
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = bin()
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn creatorflow");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("wait")
}

fn lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

const ORDER: &str = r#"{"tiktok_order_id":"576461413038785752","customer_handle":"@ana","customer_tier":"vip","product_name":"Lamp","product_id":"p1","quantity":1,"price":"250.00","created_at":"2025-06-12T10:00:00Z","shipping_zone":"US-WEST"}"#;

#[test]
fn eval_prints_one_decision_per_order_in_input_order() {
    let out = run(
        &["eval", "--orders", "examples/orders.jsonl", "--no-enrich"],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decisions = lines(&out);
    let input: Vec<serde_json::Value> = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/orders.jsonl"
    ))
    .unwrap()
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    assert_eq!(decisions.len(), input.len());
    for (d, o) in decisions.iter().zip(&input) {
        assert_eq!(d["order_id"], o["tiktok_order_id"]);
        for key in [
            "matched",
            "priority",
            "impact",
            "actions",
            "rate_limited",
            "errors",
        ] {
            assert!(d.get(key).is_some(), "{key} missing in {d}");
        }
    }
}

#[test]
fn eval_reads_stdin_and_escalates_vip_high_value() {
    let out = run(&["eval", "--orders", "-", "--no-enrich"], Some(ORDER));
    assert_eq!(out.status.code(), Some(0));
    let d = &lines(&out)[0];
    assert_eq!(d["order_id"], "576461413038785752");
    assert_eq!(
        d["priority"], "high",
        "vip-fast-track outranks high-value-order: {d}"
    );
    let matched: Vec<&str> = d["matched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        matched.contains(&"vip-fast-track") && matched.contains(&"high-value-order"),
        "{matched:?}"
    );
}

#[test]
fn eval_reports_bad_lines_and_exits_1() {
    let out = run(
        &[
            "eval",
            "--orders",
            "examples/bad-orders.jsonl",
            "--no-enrich",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let l = lines(&out);
    assert_eq!(l.len(), 6);
    assert_eq!(l[1]["line"], 2);
    assert_eq!(l[1]["error"], "quantity must be > 0");
    assert_eq!(l[3]["error"], "price must be >= 0");
    assert!(
        l[5]["error"]
            .as_str()
            .unwrap()
            .starts_with("customer_tier: unknown variant `vipp`")
    );
    assert!(
        l[0]["order_id"].is_string()
            && l[2]["order_id"].is_string()
            && l[4]["order_id"].is_string()
    );
}

#[test]
fn eval_explain_says_why() {
    let out = run(
        &[
            "eval",
            "--orders",
            "-",
            "--no-enrich",
            "--explain",
            "--rule",
            "near-deadline-escalation",
        ],
        Some(ORDER),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = &lines(&out)[0];
    let x = &d["explanations"][0];
    assert_eq!(x["rule"], "near-deadline-escalation");
    assert_eq!(x["verdict"], "not_matched");
    let c = &x["conditions"][0];
    assert_eq!(c["field"], "hours_until_deadline");
    assert!(c["actual"].is_null(), "no deadline: {c}");
    assert_eq!(c["result"], false);
}

#[test]
fn eval_now_and_enrichment() {
    // --now moves the evaluation time: with a deadline 10h after --now, the near-deadline rule fires.
    let o = ORDER.replace(
        r#""shipping_zone""#,
        r#""deadline":"2025-06-13T08:00:00Z","shipping_zone""#,
    );
    let out = run(
        &[
            "eval",
            "--orders",
            "-",
            "--no-enrich",
            "--now",
            "2025-06-12T22:00:00Z",
        ],
        Some(&o),
    );
    let d = &lines(&out)[0];
    assert!(
        d["matched"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "near-deadline-escalation"),
        "{d}"
    );
    // Enrichment: a product selling 4 an hour since 04:00 jumps to an order
    // every 2 seconds at 10:00; the velocity detector flags it (its 30th order
    // of the jump) and its orders go VIRAL. The plan's threshold (40 an hour)
    // is no longer shipped enabled: 45 orders an hour alone are not viral.
    let at = |m: i64| {
        (chrono::DateTime::parse_from_rfc3339("2025-06-12T04:00:00Z").unwrap()
            + chrono::TimeDelta::seconds(m))
        .to_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let times = (0..24)
        .map(|i| 900 * i)
        .chain((0..45).map(|i| 6 * 3600 + 2 * i));
    let burst: String = times
        .enumerate()
        .map(|(i, t)| {
            ORDER
                .replace("576461413038785752", &format!("5764614130387857{i:02}"))
                .replace("@ana", &format!("@buyer{i}"))
                .replace(r#""customer_tier":"vip","#, "")
                .replace("2025-06-12T10:00:00Z", &at(t))
                + "\n"
        })
        .collect();
    let enriched = lines(&run(&["eval", "--orders", "-"], Some(&burst)));
    let plain = lines(&run(
        &["eval", "--orders", "-", "--no-enrich"],
        Some(&burst),
    ));
    assert_eq!(enriched.len(), 69);
    let enriched = &enriched[24..];
    let plain = &plain[24..];
    assert_eq!(enriched[44]["impact"], "VIRAL", "{}", enriched[44]);
    assert!(enriched[0]["impact"] != "VIRAL");
    assert!(
        plain[44]["matched"].as_array().unwrap().len()
            < enriched[44]["matched"].as_array().unwrap().len(),
        "enrichment adds viral facts: {} vs {}",
        plain[44],
        enriched[44]
    );
}

#[test]
fn check_prints_located_diagnostics_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("cf-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.yaml"),
        "rules:\n  - id: a\n    name: a\n    category: viral_detection\n    priority: 5\n    conditions: [{field: quantiy, operator: equals, value: 1}]\n    actions: [{type: enable_fast_track}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b.yaml"),
        "rules:\n  - id: b\n    name: b\n    category: viral_detection\n    priority: high\n    conditions: [{field: quantity, operator: equals, value: 1}]\n    actions: [{type: enable_fast_track}]\n",
    )
    .unwrap();
    let out = run(&["check", "--rules", dir.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let a = format!(
        "{}:6:26: error[E0213]: unknown field `quantiy`; did you mean `quantity`?",
        dir.join("a.yaml").display()
    );
    let b = format!(
        "{}:5:15: error[E0110]: `priority` must be an integer, found a string",
        dir.join("b.yaml").display()
    );
    assert!(text.contains(&a) && text.contains(&b), "{text}");
    std::fs::remove_dir_all(&dir).ok();

    let ok = run(&["check"], None);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
}

#[test]
fn graph_prints_mermaid_and_dot() {
    let m = run(&["graph"], None);
    assert_eq!(m.status.code(), Some(0));
    let text = String::from_utf8_lossy(&m.stdout);
    assert!(
        text.starts_with("stateDiagram-v2") && text.contains("received --> validated"),
        "{text}"
    );
    let d = run(&["graph", "--format", "dot"], None);
    let text = String::from_utf8_lossy(&d.stdout);
    assert!(
        text.contains("digraph") && text.contains("\"shipped\" -> \"delivered\""),
        "{text}"
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["eval"], None).status.code(), Some(2));
    assert_eq!(
        run(&["eval", "--orders", "/nonexistent/x.jsonl"], None)
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&["graph", "--format", "png"], None).status.code(),
        Some(2)
    );
    assert_eq!(
        run(&["eval", "--orders", "-", "--now", "yesterday"], Some(""))
            .status
            .code(),
        Some(2)
    );
}
