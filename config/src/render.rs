//! What `sparkwing profile` prints.

use serde_json::{Value, json};

use crate::resolve::Resolved;
use crate::surface::SurfaceKind;

/// The human form of `sparkwing profile`:
///
/// ```text
/// effective profile: ci-team
///   source:  flag
///   file:    /home/ada/.config/sparkwing/profiles.yaml
///   reason:  `--profile ci-team` names a profile in the user profiles file `…`
///   state:   s3://team-ci/state
///   logs:    s3://team-ci/logs
///   cache:   filesystem:/home/ada/.sparkwing/artifacts  (built-in default)
///
/// resolution chain considered:
///   flag             ci-team  ← selected
/// ```
pub fn render_pretty(r: &Resolved) -> String {
    let mut out = format!("effective profile: {}\n", r.name);
    out.push_str(&format!("  source:  {}\n", r.source));
    if let Some(file) = &r.file {
        out.push_str(&format!("  file:    {}\n", file.display()));
    }
    out.push_str(&format!("  reason:  {}\n", r.reason));
    for kind in SurfaceKind::ALL {
        let mut line = format!(
            "  {:<8} {}",
            format!("{kind}:"),
            r.surface(kind).spec_string()
        );
        if r.defaulted.contains(&kind) {
            line.push_str("  (built-in default)");
        }
        if kind == SurfaceKind::Cache && r.cache_read_only {
            line.push_str("  (read-only)");
        }
        if kind == SurfaceKind::Cache && !r.cache_trusted_keys.is_empty() {
            line.push_str(&format!(
                "  (signed: {} trusted key{})",
                r.cache_trusted_keys.len(),
                if r.cache_trusted_keys.len() == 1 {
                    ""
                } else {
                    "s"
                }
            ));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("\nresolution chain considered:\n");
    let width = r
        .considered
        .iter()
        .map(|c| c.name.as_deref().map_or(1, str::len))
        .max()
        .unwrap_or(1);
    for c in &r.considered {
        let name = c.name.as_deref().unwrap_or("-");
        let tail = if c.selected {
            "← selected".to_owned()
        } else {
            c.reason.clone()
        };
        out.push_str(&format!(
            "  {:<16} {:<width$}  {}\n",
            c.source.as_str(),
            name,
            tail,
            width = width
        ));
    }
    out
}

/// The `-o json` form of `sparkwing profile`:
/// `{"effective": {name, source, file, reason, state, logs, cache, defaulted}, "considered": [{source, name, file, reason, selected}]}`.
/// Surfaces are spec strings; absent values are `null`.
pub fn to_json(r: &Resolved) -> Value {
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map_or(Value::Null, |p| Value::String(p.display().to_string()))
    };
    json!({
        "effective": {
            "name": r.name,
            "source": r.source.as_str(),
            "file": path(&r.file),
            "reason": r.reason,
            "state": r.state.spec_string(),
            "logs": r.logs.spec_string(),
            "cache": r.cache.spec_string(),
            "cache_read_only": r.cache_read_only,
            "cache_trusted_keys": r.cache_trusted_keys,
            "defaulted": r.defaulted.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        },
        "considered": r.considered.iter().map(|c| json!({
            "source": c.source.as_str(),
            "name": c.name,
            "file": path(&c.file),
            "reason": c.reason,
            "selected": c.selected,
        })).collect::<Vec<_>>(),
    })
}
