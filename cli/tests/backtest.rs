//! `creatorflow backtest` through the binary, on SQLite and PostgreSQL: the
//! sample batch is ingested with the shipped pack, then replayed against a
//! copy whose `high-value-order` threshold is lowered from 200 to 100. The
//! report must equal, key for key, what `creatorflow eval` computes with
//! each pack over the same orders in creation order (the independent
//! oracle), the threshold's effect is checked by hand, and the store is
//! unchanged afterwards (SQLite: byte for byte; PostgreSQL: row for row).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::Connection;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_creatorflow"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run creatorflow")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/orders.jsonl");
const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules");

/// The sample orders, sorted by `created_at` (its times are distinct).
fn sorted_sample() -> Vec<(DateTime<Utc>, Value)> {
    let text = std::fs::read_to_string(SAMPLE).expect("sample");
    let mut v: Vec<(DateTime<Utc>, Value)> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let o: Value = serde_json::from_str(l).expect("json");
            let t = DateTime::parse_from_rfc3339(o["created_at"].as_str().expect("time"))
                .expect("rfc3339")
                .with_timezone(&Utc);
            (t, o)
        })
        .collect();
    v.sort_by_key(|(t, _)| *t);
    v
}

/// A copy of the shipped pack with `high-value-order` at 100 instead of 200.
fn changed_pack(dir: &Path) -> PathBuf {
    let new = dir.join("new-rules");
    std::fs::create_dir_all(&new).expect("mkdir");
    for e in std::fs::read_dir(SHIPPED).expect("rules dir") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "yaml") && p.is_file() {
            std::fs::copy(&p, new.join(p.file_name().expect("name"))).expect("copy");
        }
    }
    let f = new.join("20-priority.yaml");
    let text = std::fs::read_to_string(&f).expect("read");
    let at = text.find("id: high-value-order").expect("the rule");
    let v = at + text[at..].find("value: 200").expect("its threshold");
    let text = format!(
        "{}value: 100{}",
        &text[..v],
        &text[v + "value: 200".len()..]
    );
    std::fs::write(&f, text).expect("write");
    new
}

/// `eval` of `orders` (JSON lines) with `rules` (the shipped pack if `None`).
fn eval(dir: &Path, orders: &[Value], rules: Option<&Path>) -> Vec<Value> {
    let file = dir.join("sorted.jsonl");
    let lines: Vec<String> = orders.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n")).expect("write");
    let mut args = vec!["eval", "--orders", file.to_str().expect("utf-8")];
    if let Some(r) = rules {
        args.extend(["--rules", r.to_str().expect("utf-8")]);
    }
    ok(&run(&args))
        .lines()
        .map(|l| serde_json::from_str(l).expect("eval json"))
        .collect()
}

/// The report rules.md describes, computed from two `eval` outputs (the
/// orders from index `from` on).
fn oracle(before: &[Value], after: &[Value], from: usize) -> Value {
    let mut rules: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for d in before.iter().chain(after) {
        for r in d["matched"].as_array().expect("matched") {
            rules.entry(r.as_str().expect("id").to_owned()).or_default();
        }
    }
    let (mut changed, mut pm, mut im) = (0, BTreeMap::new(), BTreeMap::new());
    for (b, a) in before.iter().zip(after).skip(from) {
        for r in b["matched"].as_array().expect("matched") {
            rules.get_mut(r.as_str().expect("id")).expect("listed").0 += 1;
        }
        for r in a["matched"].as_array().expect("matched") {
            rules.get_mut(r.as_str().expect("id")).expect("listed").1 += 1;
        }
        if b["priority"] != a["priority"]
            || b["impact"] != a["impact"]
            || b["matched"] != a["matched"]
        {
            changed += 1;
        }
        for (k, m) in [("priority", &mut pm), ("impact", &mut im)] {
            if b[k] != a[k] {
                let key = format!(
                    "{}->{}",
                    b[k].as_str().expect("s"),
                    a[k].as_str().expect("s")
                );
                *m.entry(key).or_insert(0u64) += 1;
            }
        }
    }
    json!({
        "orders": before.len() - from,
        "changed": changed,
        "priority_moves": pm,
        "impact_moves": im,
        "rules": rules.into_iter().map(|(k, (b, a))| (k, json!({"before": b, "after": a})))
            .collect::<serde_json::Map<_, _>>(),
    })
}

/// `report` without its examples and without the rules that fired on
/// neither side (the report lists every rule of both packs; `eval` shows
/// only those that fired).
fn comparable(report: &Value) -> Value {
    let mut r = report.clone();
    let o = r.as_object_mut().expect("object");
    o.remove("examples");
    if let Some(rules) = o.get_mut("rules").and_then(Value::as_object_mut) {
        rules.retain(|_, f| f["before"] != 0 || f["after"] != 0);
    }
    r
}

/// Runs `backtest` with `extra` arguments; the JSON report and stderr.
fn backtest(store: &str, tenant: &str, extra: &[&str]) -> (Value, String) {
    let mut args = vec![
        "backtest", "--store", store, "--tenant", tenant, "--format", "json",
    ];
    args.extend(extra);
    let out = run(&args);
    let report = serde_json::from_str(&ok(&out)).expect("backtest json");
    (report, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The shared body: ingest, backtest, compare with the oracle; `settle`
/// runs once after the ingest, `snapshot` captures the store's state
/// before and after the backtests.
fn backtest_matches_eval(
    store: &str,
    tenant: &str,
    settle: &dyn Fn(),
    snapshot: &dyn Fn() -> String,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let new = changed_pack(dir.path());
    let new_s = new.to_str().expect("utf-8");
    ok(&run(&[
        "ingest", "--orders", SAMPLE, "--store", store, "--tenant", tenant,
    ]));
    settle();
    let state = snapshot();

    let sample = sorted_sample();
    let orders: Vec<Value> = sample.iter().map(|(_, o)| o.clone()).collect();
    let before = eval(dir.path(), &orders, None);
    let after = eval(dir.path(), &orders, Some(&new));

    let (report, stderr) = backtest(store, tenant, &["--rules", new_s]);
    let mut keys: Vec<&str> = report
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "changed",
            "examples",
            "impact_moves",
            "orders",
            "priority_moves",
            "rules"
        ],
        "exactly the keys of rules.md"
    );
    assert_eq!(
        comparable(&report),
        comparable(&oracle(&before, &after, 0)),
        "{report:#}"
    );
    let examples = report["examples"].clone();
    // Every rule of the packs is listed, those that never fired at 0.
    assert_eq!(
        report["rules"]["viral-content-signal"],
        json!({"before": 0, "after": 0})
    );
    assert_eq!(report["rules"].as_object().expect("rules").len(), 20);
    assert!(!stderr.contains("another pack version"), "{stderr}");

    // By hand: the lowered threshold adds exactly the orders worth
    // [100, 200) (`order_value` is the order's price) to
    // `high-value-order`, and nothing else changes.
    let cents = |o: &Value| -> u64 {
        let p = match &o["price"] {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        let p = p.as_str();
        let (whole, frac) = p.split_once('.').unwrap_or((p, "0"));
        let frac = format!("{frac:0<2}");
        whole.parse::<u64>().expect("units") * 100 + frac[..2].parse::<u64>().expect("cents")
    };
    let newly = orders
        .iter()
        .filter(|o| (10_000..20_000).contains(&cents(o)))
        .count() as u64;
    assert!(newly > 0, "the sample has orders the change affects");
    let hv = &report["rules"]["high-value-order"];
    assert_eq!(
        hv["after"].as_u64(),
        Some(hv["before"].as_u64().expect("n") + newly)
    );
    assert_eq!(report["changed"].as_u64(), Some(newly), "{report:#}");
    assert_eq!(report["orders"].as_u64(), Some(orders.len() as u64));
    for (id, f) in report["rules"].as_object().expect("rules") {
        if id != "high-value-order" {
            assert_eq!(f["before"], f["after"], "{id}");
        }
    }
    // Every example is one of the changed orders, as `eval` decided it.
    let by_id: BTreeMap<&str, (&Value, &Value)> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (b["order_id"].as_str().expect("id"), (b, a)))
        .collect();
    let examples = examples.as_array().expect("array");
    assert_eq!(
        examples.len() as u64,
        newly,
        "fewer than 20 per kind: all listed"
    );
    for e in examples {
        let (b, a) = by_id[e["order_id"].as_str().expect("id")];
        for (side, d) in [("before", b), ("after", a)] {
            assert_eq!(e[side]["priority"], d["priority"]);
            assert_eq!(e[side]["impact"], d["impact"]);
            assert_eq!(e[side]["matched"], d["matched"]);
        }
    }

    // --since / --until: the orders of the range, their windows warmed by
    // the earlier ones (so they decide exactly as in the full replay).
    let from = sample.len() / 3;
    let until = sample.len() * 2 / 3;
    let since_t = sample[from].0.to_rfc3339();
    let until_t = sample[until].0.to_rfc3339();
    let (ranged, _) = backtest(
        store,
        tenant,
        &["--rules", new_s, "--since", &since_t, "--until", &until_t],
    );
    assert_eq!(
        comparable(&ranged),
        comparable(&oracle(&before[..until], &after[..until], from))
    );

    // The new pack as the "before" pack too: nothing changes, and every
    // order is noted as decided by another pack version.
    let (same, stderr) = backtest(store, tenant, &["--rules", new_s, "--rules-before", new_s]);
    assert_eq!(same["changed"], 0);
    assert!(
        stderr.contains(&format!(
            "{} of {} order(s) were decided by another pack version",
            orders.len(),
            orders.len()
        )),
        "{stderr}"
    );

    // The table: orders, changes, a move, the rule line.
    let text = ok(&run(&[
        "backtest", "--store", store, "--tenant", tenant, "--rules", new_s,
    ]));
    assert!(
        text.contains(&format!(
            "{} orders replayed, {newly} changed",
            orders.len()
        )),
        "{text}"
    );
    assert!(
        text.contains("priority moves:") && text.contains("high-value-order"),
        "{text}"
    );

    // A bad new pack: located diagnostics, exit 1, nothing read.
    std::fs::write(new.join("99-bad.yaml"), "rules:\n  - id: [\n").expect("write");
    let bad = run(&[
        "backtest", "--store", store, "--tenant", tenant, "--rules", new_s,
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("99-bad.yaml:"));

    assert_eq!(snapshot(), state, "backtest wrote nothing");
}

/// SQLite: every file of the store, byte for byte.
#[test]
fn backtest_on_sqlite_matches_eval_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cf.db");
    let url = format!("sqlite://{}", path.display());
    let files = || {
        let mut v: Vec<(String, usize, u64)> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| {
                let p = e.expect("entry").path();
                let bytes = std::fs::read(&p).unwrap_or_default();
                // Byte for byte, shown short: length and a 64-bit FNV-1a.
                let fnv = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
                });
                (p.display().to_string(), bytes.len(), fnv)
            })
            .collect();
        v.sort();
        v.iter()
            .map(|(p, n, h)| format!("{p}: {n} bytes, {h:016x}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    // `ingest` closes the store: its WAL is moved into the files and
    // removed, so the store is exactly its two files (a command that
    // exited with its connections still open would leave `-wal` / `-shm`
    // files, which the next command's close removes: a false "write").
    let settle = || {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["cf.db", "cf.db-inbox"],
            "ingest left the store whole"
        );
    };
    backtest_matches_eval(&url, "default", &settle, &files);
}

/// The PostgreSQL server from `CREATORFLOW_TEST_PG` and a fresh schema in
/// it; under CI a missing server fails the test.
fn pg() -> Option<(String, String)> {
    match std::env::var("CREATORFLOW_TEST_PG") {
        Ok(url) if !url.trim().is_empty() => {
            let schema = format!(
                "cf_backtest_{}_{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0)
            );
            Some((url, schema))
        }
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(!ci, "CREATORFLOW_TEST_PG is not set but CI=true");
            eprintln!(
                "\n********************************************************************\n\
                 SKIPPED: CREATORFLOW_TEST_PG not set; the PostgreSQL backtest test did not run.\n\
                 ********************************************************************"
            );
            None
        }
    }
}

/// PostgreSQL: every row of every table of the store's schema.
#[test]
fn backtest_on_postgres_matches_eval_and_writes_nothing() {
    let Some((url, schema)) = pg() else { return };
    let sep = if url.contains('?') { '&' } else { '?' };
    let store = format!("{url}{sep}schema={schema}");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let rows = || {
        rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = $1 ORDER BY 1",
            )
            .bind(&schema)
            .fetch_all(&mut c)
            .await
            .expect("tables");
            let mut out = Vec::new();
            for t in tables {
                let sql = format!(
                    "SELECT count(*)::text || ' ' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') \
                     FROM \"{schema}\".\"{t}\" x"
                );
                let digest: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&mut c)
                    .await
                    .expect("digest");
                out.push(format!("{t}: {digest}"));
            }
            assert!(out.iter().any(|l| l.starts_with("orders: ")), "{out:?}");
            out.join("\n")
        })
    };
    backtest_matches_eval(&store, "bt", &|| {}, &rows);
}
