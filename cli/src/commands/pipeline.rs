//! `sparkwing pipeline new | list | sparks update`.

use crate::cli::{Format, PipelineCommand};
use crate::error::{CliError, CliResult};
use crate::project::{self, Project};
use std::path::{Path, PathBuf};

const CARGO_TOML: &str = include_str!("../../templates/Cargo.toml.tmpl");
const MAIN_RS: &str = include_str!("../../templates/main.rs.tmpl");
const PIPELINES_MOD_RS: &str = include_str!("../../templates/pipelines_mod.rs.tmpl");
const PIPELINE_RS: &str = include_str!("../../templates/pipeline.rs.tmpl");
const SPARKWING_YAML: &str = include_str!("../../templates/sparkwing.yaml.tmpl");
const MODULES_MARKER: &str = "// sparkwing: modules";
const REGISTRATIONS_MARKER: &str = "// sparkwing: registrations";

pub fn execute(cmd: PipelineCommand) -> CliResult {
    match cmd {
        PipelineCommand::New { name, description } => new(&name, description.as_deref()),
        PipelineCommand::List { output } => list(output),
        PipelineCommand::Sparks(crate::cli::SparksCommand::Update) => sparks_update(),
    }
}

/// `sparkwing pipeline sparks update`: the deliberate refresh of `.sparkwing/.resolved.lock`.
fn sparks_update() -> CliResult {
    let project = project::find(&current_dir()?)?;
    let config = project::load_config(&project)?;
    if config.sparks.is_empty() {
        println!(
            "no sparks declared in `{}`; nothing to resolve",
            project.config_path().display()
        );
        return Ok(0);
    }
    let home = crate::home::sparkwing_home()?;
    let ctx = crate::run::binary::BuildContext::new(&project.sparkwing_dir, &home);
    ctx.ensure_lockfile()?;
    if let Some(report) = ctx.sparks(&config, true)? {
        print!("{}", sparkwing_bincache::render_report(&report));
    }
    Ok(0)
}

fn list(output: Format) -> CliResult {
    let cwd = current_dir()?;
    let project = project::find(&cwd)?;
    let config = project::load_config(&project)?;
    let visible: Vec<_> = config.pipelines.iter().filter(|p| !p.hidden).collect();
    match output {
        Format::Json => {
            let items: Vec<serde_json::Value> = visible
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "name": p.name,
                        "entrypoint": p.entrypoint,
                        "description": p.description,
                    })
                })
                .collect();
            crate::output::print_json(&serde_json::json!({ "pipelines": items }))?;
        }
        Format::Pretty => {
            if visible.is_empty() {
                println!("no pipelines in `{}`", project.config_path().display());
                println!("  hint: add one with `sparkwing pipeline new --name NAME`");
            }
            let width = visible.iter().map(|p| p.name.len()).max().unwrap_or(0);
            for p in visible {
                println!(
                    "{:width$}  {}",
                    p.name,
                    p.description.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(0)
}

/// Kebab-case: `[a-z][a-z0-9-]*`, no trailing or doubled dash.
fn validate_name(name: &str) -> Result<(), CliError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(CliError::usage(format!("invalid pipeline name `{}`", name.escape_debug())).with_hint(
            "use lowercase letters, digits and single dashes, starting with a letter (e.g. `build-and-test`)",
        ))
    }
}

fn module_name(name: &str) -> String {
    let m = name.replace('-', "_");
    // A few names are Rust keywords; suffix them so the module compiles.
    match m.as_str() {
        "as" | "async" | "await" | "break" | "const" | "continue" | "crate" | "dyn" | "else"
        | "enum" | "extern" | "false" | "fn" | "for" | "gen" | "if" | "impl" | "in" | "let"
        | "loop" | "match" | "mod" | "move" | "mut" | "pub" | "ref" | "return" | "self"
        | "static" | "struct" | "super" | "trait" | "true" | "type" | "unsafe" | "use"
        | "where" | "while" | "yield" | "main" => format!("{m}_pipeline"),
        _ => m,
    }
}

fn current_dir() -> Result<PathBuf, CliError> {
    std::env::current_dir()
        .map_err(|e| CliError::failure(format!("read the current directory: {e}")))
}

/// Where a new `.sparkwing/` goes when none exists: the git work tree root, else the current dir.
fn new_project_root(cwd: &Path) -> PathBuf {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .current_dir(cwd)
        .stderr(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let s = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if s.is_empty() {
                cwd.to_path_buf()
            } else {
                PathBuf::from(s)
            }
        }
        _ => cwd.to_path_buf(),
    }
}

fn new(name: &str, description: Option<&str>) -> CliResult {
    validate_name(name)?;
    let description = description.unwrap_or("Describe what this pipeline does");
    if description.contains(['\n', '"', '\\']) {
        return Err(CliError::usage(
            "the description must be one line without quotes or backslashes",
        ));
    }
    let cwd = current_dir()?;
    let module = module_name(name);
    let fill = |t: &str, package: &str| {
        t.replace("{{name}}", name)
            .replace("{{module}}", &module)
            .replace("{{description}}", description)
            .replace("{{package}}", package)
            .replace("{{sdk_version}}", sparkwing_contract::SDK_VERSION)
    };
    let mut created = Vec::new();
    let project = match project::find(&cwd) {
        Ok(p) => {
            let config = project::load_config(&p)?;
            if let Some(existing) = config.pipeline(name) {
                return Err(CliError::usage(format!(
                    "pipeline `{name}` already exists in `{}` (entrypoint `{}`)",
                    p.config_path().display(),
                    existing.entrypoint
                ))
                .with_hint("pick another name, or edit the existing pipeline"));
            }
            add_to_existing(&p, &module, &fill(PIPELINE_RS, ""), &mut created)?;
            p
        }
        Err(_) => {
            let root = new_project_root(&cwd);
            let dir = root.join(".sparkwing");
            let package = "pipelines";
            write_new(
                &dir.join("Cargo.toml"),
                &fill(CARGO_TOML, package),
                &mut created,
            )?;
            write_new(&dir.join("src/main.rs"), MAIN_RS, &mut created)?;
            write_new(
                &dir.join("src/pipelines/mod.rs"),
                &fill(PIPELINES_MOD_RS, package),
                &mut created,
            )?;
            write_new(
                &dir.join(format!("src/pipelines/{module}.rs")),
                &fill(PIPELINE_RS, package),
                &mut created,
            )?;
            write_new(
                &dir.join("rust-toolchain.toml"),
                &format!(
                    "# Pinning the exact toolchain keeps the pipeline cache key stable and lets a\n\
                     # cached binary run with no Rust toolchain on the machine at all.\n\
                     [toolchain]\nchannel = \"{}\"\n",
                    toolchain_version()
                ),
                &mut created,
            )?;
            write_new(&dir.join(".gitignore"), "/target/\n", &mut created)?;
            write_new(&dir.join("sparkwing.yaml"), SPARKWING_YAML, &mut created)?;
            Project {
                root,
                sparkwing_dir: dir,
            }
        }
    };
    append_pipeline_entry(&project.config_path(), name, description)?;
    // What was written must load: a broken config is caught here, not at the next run.
    project::load_config(&project)?;
    println!(
        "created pipeline `{name}` in `{}`",
        project.sparkwing_dir.display()
    );
    for f in &created {
        let rel = f.strip_prefix(&project.root).unwrap_or(f);
        println!("  + {}", rel.display());
    }
    println!("  ~ .sparkwing/sparkwing.yaml (pipelines: {name})");
    println!("run it with: sparkwing run {name}");
    Ok(0)
}

fn write_new(path: &Path, text: &str, created: &mut Vec<PathBuf>) -> Result<(), CliError> {
    if path.exists() {
        return Err(CliError::usage(format!(
            "`{}` already exists; not overwriting it",
            path.display()
        )));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| CliError::failure(format!("create `{}`: {e}", parent.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|e| CliError::failure(format!("write `{}`: {e}", path.display())))?;
    created.push(path.to_path_buf());
    Ok(())
}

/// Adds a module to an existing package: a new file plus two lines at the markers of
/// `src/pipelines/mod.rs`. Without the markers, the file is still written and the lines to add
/// by hand are printed.
fn add_to_existing(
    project: &Project,
    module: &str,
    body: &str,
    created: &mut Vec<PathBuf>,
) -> Result<(), CliError> {
    let mod_rs = project.sparkwing_dir.join("src/pipelines/mod.rs");
    let file = project
        .sparkwing_dir
        .join(format!("src/pipelines/{module}.rs"));
    let text = std::fs::read_to_string(&mod_rs).unwrap_or_default();
    let has_markers = text.contains(MODULES_MARKER) && text.contains(REGISTRATIONS_MARKER);
    write_new(&file, body, created)?;
    if !has_markers {
        eprintln!(
            "warning: `{}` has no `{MODULES_MARKER}` / `{REGISTRATIONS_MARKER}` markers; register the pipeline by hand:\n  mod {module};\n  … {module}::register(pipelines) …",
            mod_rs.display()
        );
        return Ok(());
    }
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
        if line.trim() == MODULES_MARKER {
            out.push_str(&format!("{indent}mod {module};\n"));
        } else if line.trim() == REGISTRATIONS_MARKER {
            out.push_str(&format!("{indent}{module}::register,\n"));
        }
    }
    std::fs::write(&mod_rs, out)
        .map_err(|e| CliError::failure(format!("write `{}`: {e}", mod_rs.display())))
}

/// Appends `- name/entrypoint/description` under `pipelines:`, which must be the file's last
/// top-level key (as the scaffold writes it); otherwise asks the user to add the entry.
fn append_pipeline_entry(path: &Path, name: &str, description: &str) -> Result<(), CliError> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let top_keys: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with([' ', '\t', '#', '-']) && l.contains(':'))
        .collect();
    let entry =
        format!("  - name: {name}\n    entrypoint: {name}\n    description: \"{description}\"\n");
    let mut new_text = text.clone();
    match top_keys.last() {
        Some(last) if last.trim_end() == "pipelines:" => {
            if !new_text.ends_with('\n') && !new_text.is_empty() {
                new_text.push('\n');
            }
            new_text.push_str(&entry);
        }
        None => {
            if !new_text.is_empty() && !new_text.ends_with('\n') {
                new_text.push('\n');
            }
            new_text.push_str("pipelines:\n");
            new_text.push_str(&entry);
        }
        Some(_) => {
            return Err(CliError::usage(format!(
                "cannot add `{name}` to `{}` automatically: `pipelines:` is not its last block",
                path.display()
            ))
            .with_hint(format!(
                "add this entry under `pipelines:` by hand:\n{entry}"
            )));
        }
    }
    std::fs::write(path, new_text)
        .map_err(|e| CliError::failure(format!("write `{}`: {e}", path.display())))
}

/// The toolchain to pin: the machine's `rustc`, else the one this CLI was built with.
fn toolchain_version() -> String {
    let out = std::process::Command::new("rustc")
        .arg("--version")
        .output();
    let machine = out
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .nth(1)
                .map(str::to_string)
        })
        .filter(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'));
    machine.unwrap_or_else(|| env!("SPARKWING_BUILD_RUSTC").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["hello", "build-and-test", "a1"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Hello", "1a", "a--b", "a-", "a_b", "a b", "-a"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert_eq!(module_name("build-and-test"), "build_and_test");
        assert_eq!(module_name("match"), "match_pipeline");
    }

    #[test]
    fn appends_under_pipelines() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("sparkwing.yaml");
        std::fs::write(&p, SPARKWING_YAML).unwrap();
        append_pipeline_entry(&p, "one", "first").unwrap();
        append_pipeline_entry(&p, "two", "second").unwrap();
        let cfg =
            sparkwing_config::ProjectConfig::parse(&std::fs::read_to_string(&p).unwrap(), &p, None)
                .unwrap();
        let names: Vec<_> = cfg.pipelines.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["one", "two"]);
        std::fs::write(
            &p,
            "pipelines:\n  - name: a\n    entrypoint: a\ndefaults: {}\n",
        )
        .unwrap();
        assert!(append_pipeline_entry(&p, "b", "x").is_err());
    }
}
