//! Any bytes as either configuration file: an error or a config, never a panic or a hang, and
//! every error points inside the file it names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkwing_config::{ConfigError, ProfilesFile, ProjectConfig};
use std::path::Path;

fn check(src: &str, err: ConfigError) {
    let msg = err.to_string();
    if let ConfigError::Invalid { at, .. } = &err {
        // YAML breaks lines at `\n`, `\r\n` and a lone `\r`.
        let lines = src.replace("\r\n", "\n").split(['\n', '\r']).count();
        assert!(
            at.line >= 1 && at.line <= lines,
            "line {} outside a {lines}-line file: {msg}",
            at.line
        );
        assert!(at.column >= 1, "column 0: {msg}");
    }
    assert!(!msg.is_empty());
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let home = Some(Path::new("/home/u"));
    if let Err(e) = ProjectConfig::parse(src, Path::new("/p/.sparkwing/sparkwing.yaml"), home) {
        check(src, e);
    }
    if let Err(e) = ProfilesFile::parse(src, Path::new("/home/u/profiles.yaml"), home) {
        check(src, e);
    }
});
