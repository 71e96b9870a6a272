//! Who holds a TCP port: the listening socket's inode from `/proc/net/tcp{,6}`, then the process
//! whose `/proc/<pid>/fd` links to that socket. Linux only; elsewhere (or without permission to
//! read other processes' fds) the answer is `None` and the caller names only the address.

use std::path::Path;

/// A process that holds a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// `/proc/<pid>/comm` (the short command name).
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` (pid {})", self.command, self.pid)
    }
}

/// The process listening on TCP `port`, if it can be found.
pub fn holder_of(port: u16) -> Option<Holder> {
    let proc = Path::new("/proc");
    let inodes = listening_inodes(proc, port);
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in std::fs::read_dir(proc).ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if wanted.iter().any(|w| target.as_os_str() == w.as_str()) {
                let command = std::fs::read_to_string(entry.path().join("comm"))
                    .map(|c| c.trim().to_string())
                    .unwrap_or_else(|_| "?".into());
                return Some(Holder { pid, command });
            }
        }
    }
    None
}

/// Inodes of sockets in state LISTEN on `port` (IPv4 and IPv6 tables).
fn listening_inodes(proc: &Path, port: u16) -> Vec<u64> {
    let mut out = Vec::new();
    for table in ["net/tcp", "net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(proc.join(table)) {
            out.extend(parse_tcp_table(&text, port));
        }
    }
    out
}

/// Rows look like `sl local_address rem_address st … uid timeout inode`; addresses are
/// `HEXADDR:HEXPORT` and state `0A` is LISTEN.
fn parse_tcp_table(text: &str, port: u16) -> Vec<u64> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local = cols.get(1)?;
            let state = cols.get(3)?;
            let inode = cols.get(9)?.parse::<u64>().ok()?;
            let (_, hex_port) = local.rsplit_once(':')?;
            let p = u16::from_str_radix(hex_port, 16).ok()?;
            (p == port && *state == "0A" && inode != 0).then_some(inode)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listen_rows_only() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:10EF 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:10EF 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1\n\
   2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5555 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(parse_tcp_table(text, 4335), vec![4242]);
        assert_eq!(parse_tcp_table(text, 8080), vec![5555]);
        assert!(parse_tcp_table(text, 1).is_empty());
    }

    #[test]
    fn finds_this_process_as_the_holder() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let holder = holder_of(port).expect("the test process holds the port");
        assert_eq!(holder.pid, std::process::id());
        assert!(!holder.command.is_empty());
    }
}
