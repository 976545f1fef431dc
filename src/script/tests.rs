use std::time::{Duration, Instant};

use rhai::Scope;

use super::*;

fn run(src: &str) -> Result<bool, String> {
    let sb = Sandbox::default();
    let script = sb.compile(src, &["c0"]).map_err(|e| e.message)?;
    let mut scope = Scope::new();
    scope.push("order", rhai::Map::new());
    scope.push("c0", true);
    sb.eval_bool(&script, &mut scope)
}

fn fails_fast(src: &str, needle: &str) {
    let t = Instant::now();
    let e = run(src).unwrap_err();
    assert!(e.contains(needle), "{src}: {e}");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "{src} took {:?}",
        t.elapsed()
    );
}

#[test]
fn evaluates_bool_expressions() {
    assert_eq!(run("c0 && !false"), Ok(true));
    assert_eq!(run("if c0 { 1 > 2 } else { true }"), Ok(false));
}

#[test]
fn runaway_scripts_fail_quickly() {
    fails_fast("loop {} ; true", "operation limit");
    fails_fast("while true { let x = 1; } true", "operation limit");
    fails_fast("fn f(x) { f(x + 1) } f(0)", "call depth");
    fails_fast(
        "let s = \"xxxxxxxxxx\"; loop { s += s; } true",
        "size limit",
    );
    fails_fast("let a = [1]; loop { a += a; } true", "size limit");
    assert!(run("42").unwrap_err().contains("expected a bool"));
}

#[test]
fn sandbox_refuses_unknown_names_eval_and_clock() {
    let sb = Sandbox::default();
    assert!(
        sb.compile("c1", &["c0"])
            .unwrap_err()
            .message
            .contains("c1")
    );
    assert!(sb.compile("eval(\"true\")", &[]).is_err());
    let e = sb.compile("order.quantiy > 1", &[]).unwrap_err();
    assert!(
        e.message.contains("did you mean `quantity`"),
        "{}",
        e.message
    );
    assert_eq!((e.line, e.col), (Some(1), Some(1)));
    assert!(
        sb.compile("order.product_orders > 1", &[])
            .unwrap_err()
            .message
            .contains("window")
    );
    // No clock in the sandbox: `timestamp()` is not a function.
    assert!(run("timestamp(); true").is_err());
}

#[test]
fn scans_order_fields() {
    let sb = Sandbox::default();
    let s = sb
        .compile(
            "order.quantity > 2 && order.price < 10.0 // order.nope",
            &[],
        )
        .unwrap();
    assert_eq!(
        s.access(),
        &OrderAccess::Fields(vec![
            crate::model::facts::Field::Price,
            crate::model::facts::Field::Quantity
        ])
    );
    let s = sb
        .compile("let o = order; o[\"quantity\"] > 2", &[])
        .unwrap();
    assert_eq!(s.access(), &OrderAccess::All);
}
