//! Any text as a `state.ndjson` (from a bucket someone else can write): parsing never panics,
//! reports only lines that exist, keeps one record per node, and what it read renders and
//! parses back to the same records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkwing_contract::StateDump;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let dump = StateDump::parse(&text);
    let lines = text.lines().count();
    for (n, _) in &dump.bad_lines {
        assert!(*n >= 1 && *n <= lines, "bad line {n} of {lines}");
    }
    let mut ids: Vec<&str> = dump.nodes.iter().map(|n| n.id.as_str()).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "a node listed twice");
    if let Some(run) = &dump.run {
        let again = StateDump::parse(&StateDump::render(run, &dump.nodes));
        assert!(again.bad_lines.is_empty(), "{:?}", again.bad_lines);
        assert_eq!(again.run.as_ref(), Some(run));
        assert_eq!(again.nodes, dump.nodes);
    }
});
