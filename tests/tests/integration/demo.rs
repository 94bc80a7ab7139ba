//! `cfsync demo`, the README's first command: it must pull the bundled signed repository
//! over its loopback server, update through the static delta, and report real figures.

use cfsync_tests::run_cfsync_ok;
use serde_json::Value;

#[test]
fn demo_pulls_v1_then_updates_through_the_delta() {
    let out = run_cfsync_ok(["demo", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let demo = cfsync_tests::demo();
    assert_eq!(v["v1"]["commit"].as_str().unwrap(), demo.v1);
    assert_eq!(v["v2"]["commit"].as_str().unwrap(), demo.v2);
    assert_eq!(
        v["v2"]["delta"].as_str().unwrap(),
        format!("{}-{}", demo.v1, demo.v2),
        "the update must go through the v1->v2 delta"
    );
    assert_eq!(v["v2"]["image"], v["v2_objects"]["image"]);
    let (d, o) = (
        v["v2"]["bytes_fetched"].as_u64().unwrap(),
        v["v2_objects"]["bytes_fetched"].as_u64().unwrap(),
    );
    assert!(d > 0 && d * 2 < o, "delta {d} bytes vs objects {o} bytes");
    assert!(
        v["v1"]["signatures"][0].as_str().unwrap().contains("valid"),
        "{}",
        v["v1"]["signatures"]
    );
    assert_eq!(v["fsck"], Value::Bool(true));
    // As root (CI), the image is mounted and read.
    if rustix::process::geteuid().is_root() {
        assert_eq!(
            v["mounted"],
            Value::Bool(true),
            "root could not mount the demo image"
        );
    }
}
