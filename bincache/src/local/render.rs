//! `sparkwing cache info` and `sparkwing cache prune` as text.

use super::{CacheInfo, PruneReport, Source};
use sparkwing_contract::human::bytes as human_bytes;

/// `sparkwing cache info` as text.
pub fn render_info(info: &CacheInfo) -> String {
    let limit = |v: Option<u64>, f: &dyn Fn(u64) -> String| v.map_or("unlimited".into(), f);
    let mut s = format!("pipeline cache: {}\n", info.root.display());
    s.push_str(&format!(
        "entries: {} of {}, size: {} of {}\n",
        info.entries.len(),
        limit(info.limits.max_entries, &|n| n.to_string()),
        human_bytes(info.total_bytes),
        limit(info.limits.max_bytes, &human_bytes),
    ));
    if info.entries.is_empty() {
        return s;
    }
    s.push_str(&format!(
        "\n  {:<32}  {:>10}  {:<12}  {:<30}  status\n",
        "key", "size", "source", "last used"
    ));
    for e in &info.entries {
        let status = match (&e.problem, e.in_use) {
            (Some(p), _) => format!("unusable: {p}"),
            (None, true) => "in use".to_string(),
            (None, false) => "ok".to_string(),
        };
        s.push_str(&format!(
            "  {:<32}  {:>10}  {:<12}  {:<30}  {}\n",
            e.key,
            human_bytes(e.bytes),
            e.source.map_or("?", Source::as_str),
            e.last_used,
            status
        ));
    }
    s
}

/// `sparkwing cache prune` as text.
pub fn render_prune(r: &PruneReport) -> String {
    let mut s = format!(
        "removed {} {} ({}); {} left ({})\n",
        r.removed.len(),
        if r.removed.len() == 1 {
            "entry"
        } else {
            "entries"
        },
        human_bytes(r.freed_bytes),
        r.remaining_entries,
        human_bytes(r.remaining_bytes),
    );
    if !r.kept_in_use.is_empty() {
        s.push_str(&format!(
            "kept {} in use: {}\n",
            r.kept_in_use.len(),
            r.kept_in_use.join(", ")
        ));
    }
    if r.stale_staging_removed > 0 {
        s.push_str(&format!(
            "removed {} abandoned build {}\n",
            r.stale_staging_removed,
            if r.stale_staging_removed == 1 {
                "directory"
            } else {
                "directories"
            }
        ));
    }
    s
}
