use super::frame::is_json;
use super::*;

#[test]
fn json_media_types() {
    assert!(is_json(Some("application/json")));
    assert!(is_json(Some("Application/JSON")));
    assert!(is_json(Some("application/problem+json")));
    assert!(is_json(Some("application/vnd.api+json")));
    assert!(!is_json(Some("application/x-ndjson2")));
    assert!(!is_json(Some("text/html")));
    assert!(!is_json(None));
}

#[test]
fn counts_sort_by_requests_then_value_and_keep_the_top() {
    let m = BTreeMap::from([
        ("b".to_string(), 3u64),
        ("a".to_string(), 3),
        ("c".to_string(), 9),
        ("d".to_string(), 1),
    ]);
    let v = sorted_counts(m, 3);
    let got: Vec<(&str, u64)> = v.iter().map(|c| (c.value.as_str(), c.count)).collect();
    assert_eq!(got, [("c", 9), ("a", 3), ("b", 3)]);
}
