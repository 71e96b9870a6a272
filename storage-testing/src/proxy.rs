//! A loopback TCP proxy in front of the S3 test server: cutting it is a real outage as a client
//! sees it (connection refused, open connections reset), and it counts the requests through it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Requests seen by the proxy, by `<HTTP method> <logs|state|other>`.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub by_method: BTreeMap<String, u64>,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

impl Counts {
    pub fn requests(&self) -> u64 {
        self.by_method.values().sum()
    }
    /// Requests of `key` (`"PUT logs"`), or of every key starting with it (`"PUT"`).
    pub fn of(&self, key: &str) -> u64 {
        self.by_method
            .iter()
            .filter(|(k, _)| k.starts_with(key))
            .map(|(_, v)| v)
            .sum()
    }
}

struct ProxyShared {
    upstream: SocketAddr,
    up: AtomicBool,
    stop: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
    counts: Mutex<Counts>,
}

/// A loopback TCP proxy in front of the S3 server. [`Proxy::cut`] closes its port and every open
/// connection, so clients get "connection refused" as from a stopped server; [`Proxy::restore`]
/// opens it again on the same port.
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<ProxyShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(ProxyShared {
            upstream,
            up: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            counts: Mutex::new(Counts::default()),
        });
        let s = shared.clone();
        let thread = std::thread::spawn(move || accept_loop(Some(listener), addr, s));
        Proxy {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn cut(&self) {
        self.shared.up.store(false, Ordering::SeqCst);
        for c in self.shared.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        // Let the accept loop drop its listener before the caller goes on.
        std::thread::sleep(Duration::from_millis(50));
    }

    pub fn restore(&self) {
        self.shared.up.store(true, Ordering::SeqCst);
    }

    pub fn counts(&self) -> Counts {
        self.shared.counts.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(mut listener: Option<TcpListener>, addr: SocketAddr, s: Arc<ProxyShared>) {
    while !s.stop.load(Ordering::SeqCst) {
        if !s.up.load(Ordering::SeqCst) {
            listener = None;
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => match TcpListener::bind(addr) {
                Ok(l) => {
                    l.set_nonblocking(true).unwrap();
                    listener.insert(l)
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            },
        };
        l.set_nonblocking(true).unwrap();
        match l.accept() {
            Ok((client, _)) => {
                let s = s.clone();
                std::thread::spawn(move || serve(client, s));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn serve(client: TcpStream, s: Arc<ProxyShared>) {
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect(s.upstream) else {
        return;
    };
    {
        let mut conns = s.conns.lock().unwrap();
        // Accepted just before a cut, registered after it drained the list: drop it, or it
        // would outlive the outage.
        if !s.up.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
            return;
        }
        conns.push(client.try_clone().unwrap());
        conns.push(server.try_clone().unwrap());
    }
    let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let s2 = s.clone();
    let up = std::thread::spawn(move || {
        let mut parser = RequestCounter::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            parser.feed(&buf[..n], &s2.counts);
            if s_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s_write.shutdown(Shutdown::Write);
    });
    let (mut s_read, mut c_write) = (server, client);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match s_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        s.counts.lock().unwrap().bytes_down += n as u64;
        if c_write.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = c_write.shutdown(Shutdown::Both);
    let _ = up.join();
}

/// Follows HTTP/1.1 request framing (headers, then `Content-Length` bytes of body) to count
/// requests by method.
#[derive(Default)]
struct RequestCounter {
    head: Vec<u8>,
    body_left: u64,
}

impl RequestCounter {
    fn feed(&mut self, mut data: &[u8], counts: &Mutex<Counts>) {
        counts.lock().unwrap().bytes_up += data.len() as u64;
        while !data.is_empty() {
            if self.body_left > 0 {
                let n = (self.body_left as usize).min(data.len());
                self.body_left -= n as u64;
                data = &data[n..];
                continue;
            }
            self.head.push(data[0]);
            data = &data[1..];
            if self.head.ends_with(b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&self.head).to_string();
                self.head.clear();
                let mut words = text.split(' ');
                let method = words.next().unwrap_or("");
                let path = words.next().unwrap_or("");
                // Which surface the request is for, by this crate's test layout.
                let kind = if path.contains("state.ndjson") {
                    "state"
                } else if path.contains("/logs") {
                    "logs"
                } else {
                    "other"
                };
                let method = format!("{method} {kind}");
                self.body_left = text
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
                *counts.lock().unwrap().by_method.entry(method).or_default() += 1;
            }
        }
    }
}
