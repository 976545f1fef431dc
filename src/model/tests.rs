use super::*;

const BASE: &str = r#""tiktok_order_id":"576461413038785752","customer_handle":"@ana","product_name":"Lamp","product_id":"p-1","created_at":"2025-03-01T12:00:00Z""#;

fn with(extra: &str) -> Result<Order, OrderError> {
    Order::from_json(&format!("{{{BASE},{extra}}}"))
}

#[test]
fn price_is_exact_from_number_or_string() {
    assert_eq!(
        with(r#""quantity":1,"price":49.99"#)
            .unwrap()
            .price
            .to_string(),
        "49.99"
    );
    assert_eq!(
        with(r#""quantity":1,"price":"49.99""#)
            .unwrap()
            .price
            .to_string(),
        "49.99"
    );
    // More digits than an f64 holds: still exact.
    let p = with(r#""quantity":1,"price":12345678901234567.89"#)
        .unwrap()
        .price;
    assert_eq!(p.to_string(), "12345678901234567.89");
    assert_eq!(
        with(r#""quantity":1,"price":0"#).unwrap().price,
        Decimal::ZERO
    );
}

#[test]
fn defaults_follow_the_model() {
    let o = with(r#""quantity":1,"price":1"#).unwrap();
    assert_eq!(o.current_state, "received");
    assert_eq!(o.priority, Priority::Standard);
    assert_eq!(o.impact, Impact::Med);
    assert_eq!(o.customer_tier, CustomerTier::Regular);
    assert_eq!(o.automation_status, AutomationStatus::Processing);
    assert_eq!(o.velocity_multiplier, Decimal::ONE);
    assert_eq!(o.updated_at, Some(o.created_at));
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (r#""quantity":0,"price":1"#, "quantity must be > 0"),
        (r#""quantity":1,"price":-1"#, "price must be >= 0"),
        (r#""quantity":1,"price":"abc""#, "price:"),
        (r#""quantity":-2,"price":1"#, "quantity:"),
        (
            r#""quantity":1,"price":1,"customer_tier":"vipp""#,
            "customer_tier: unknown variant `vipp`",
        ),
        (
            r#""quantity":1,"price":1,"flow_progress":101"#,
            "flow_progress must be between 0 and 100",
        ),
        (
            r#""quantity":1,"price":1,"quantiy":3"#,
            "unknown field `quantiy`",
        ),
        (r#""price":1"#, "missing field `quantity`"),
    ];
    for (input, expected) in cases {
        let e = with(input).unwrap_err().to_string();
        assert!(
            e.contains(expected),
            "{input}: got {e:?}, expected {expected:?}"
        );
    }
}

#[test]
fn round_trips_through_json() {
    let o = with(r#""quantity":3,"price":"10.50","deadline":"2025-03-02T00:00:00Z","viral_indicators":[{"type":"flash_sale","source":"host","confidence":0.9,"impact_multiplier":2.5,"detected_at":"2025-03-01T11:00:00Z","metadata":{"sale":"spring"}}]"#).unwrap();
    let text = serde_json::to_string(&o).unwrap();
    assert_eq!(Order::from_json(&text).unwrap(), o);
}

/// Found by fuzzing (`fuzz/corpus/order/`): an unknown key written `""`
/// gave an error naming no field at all.
#[test]
fn an_empty_key_is_named_in_the_error() {
    let e = with(r#""quantity":1,"price":1,"":"x""#).unwrap_err();
    assert_eq!(e.field(), ".");
    assert!(e.to_string().starts_with("unknown field ``"), "{e}");
}
