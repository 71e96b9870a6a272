//! The HTTP server: routes, the guards every `/api/v1` request passes, and the foreground loop.

use super::api;
use super::assets;
use super::plan::Plan;
use super::state::AppState;
use crate::error::{CliError, CliResult};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

/// Builds the router for a plan. Write routes exist only when the plan allows writes.
pub fn router(plan: Plan) -> Router {
    router_with(Arc::new(AppState::new(plan)))
}

/// [`router`] over a prepared state (tests set its limits).
fn router_with(state: Arc<AppState>) -> Router {
    let writes = !state.plan.read_only;

    let mut api = Router::new()
        .route("/version", get(api::version))
        .route("/capabilities", get(api::capabilities))
        .route("/runs", get(api::list_runs))
        .route("/runs/{id}", get(api::get_run))
        .route("/runs/{id}/changes", get(api::run_changes))
        .route("/runs/{id}/logs/{*node}", get(api::node_log))
        .route("/artifacts/{*key}", get(api::artifact));
    if writes {
        api = api.route("/runs/{id}/cancel", post(api::cancel));
    }
    let api = api
        .fallback(api::not_found)
        .layer(middleware::from_fn(move |req, next| {
            guard_api(writes, req, next)
        }));

    let allowed = Arc::new(allowed_hosts(state.plan.addr, &state.plan.allowed_hosts));
    Router::new()
        .route("/", get(index))
        .route("/assets/{name}", get(asset))
        .nest("/api/v1", api)
        .with_state(state)
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(move |req, next| {
            guard_origin(allowed.clone(), req, next)
        }))
}

/// Host names (lowercase, without port) the dashboard answers to: loopback names, the bound
/// address, and the `--allowed-host` names.
fn allowed_hosts(addr: std::net::SocketAddr, extra: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
        .into_iter()
        .map(str::to_string)
        .collect();
    hosts.push(match addr.ip() {
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    });
    hosts.extend(extra.iter().cloned());
    hosts
}

/// The host part of a `Host` header value (`name`, `name:port`, `[v6]:port`), lowercase.
fn host_name(value: &str) -> String {
    let value = value.trim();
    let host = if value.starts_with('[') {
        value.find(']').map_or(value, |end| &value[..=end])
    } else {
        match value.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => value,
        }
    };
    host.to_ascii_lowercase()
}

/// A page on another site must not drive this dashboard through the browser: the `Host` must be
/// a name this dashboard answers to (defeats DNS rebinding, on loopback and beyond), and a write
/// must come from this origin (or from a non-browser client, which sends no `Origin`).
async fn guard_origin(allowed: Arc<Vec<String>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_name)
        .unwrap_or_default();
    if !allowed.contains(&host) {
        return api::error(
            StatusCode::FORBIDDEN,
            format!(
                "unexpected Host header `{}`: this dashboard answers only to loopback names, its bound address and `--allowed-host` names; restart it with `--allowed-host {}` to serve that name",
                host.escape_debug(),
                if host.is_empty() {
                    "NAME".to_string()
                } else {
                    host.escape_debug().to_string()
                }
            ),
        );
    }
    let writes = req.method() != Method::GET && req.method() != Method::HEAD;
    if let Some(origin) = req.headers().get(header::ORIGIN).filter(|_| writes) {
        let origin = origin.to_str().unwrap_or("");
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let same = origin
            .strip_prefix("http://")
            .is_some_and(|o| o.eq_ignore_ascii_case(host));
        if !same {
            return api::error(StatusCode::FORBIDDEN, "cross-origin writes are not allowed");
        }
    }
    next.run(req).await
}

/// Rejects what no `/api/v1` route may see, before routing: encoded separators inside a path
/// segment (they would let a segment smuggle `/` past the router), and writes that are not
/// mounted (405, so clients can tell "not allowed here" from "no such thing").
async fn guard_api(writes: bool, req: Request, next: Next) -> Response {
    let raw = req.uri().path().to_ascii_lowercase();
    if raw.contains("%2f") || raw.contains("%5c") || raw.contains("%00") {
        return api::error(
            StatusCode::BAD_REQUEST,
            "encoded `/`, `\\` or NUL in a path segment is not allowed",
        );
    }
    let method = req.method();
    if method != Method::GET && method != Method::HEAD {
        let is_cancel = raw.ends_with("/cancel") && method == Method::POST;
        if !writes || !is_cancel {
            let mut r = api::error(
                StatusCode::METHOD_NOT_ALLOWED,
                if writes {
                    "this endpoint only reads"
                } else {
                    "read-only dashboard: writes are disabled"
                },
            );
            let allow = if writes && raw.ends_with("/cancel") {
                "POST"
            } else {
                "GET, HEAD"
            };
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            return r;
        }
    }
    let mut resp = next.run(req).await;
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Headers that keep data from ever being run as code: no MIME sniffing (a log with `<script>`
/// served as text stays text), and a policy allowing only this origin's own scripts and styles.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    resp
}

async fn index() -> Response {
    asset_response(&assets::INDEX)
}

async fn asset(Path(name): Path<String>) -> Response {
    match assets::get(&name) {
        Some(a) => asset_response(&a),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

fn asset_response(a: &assets::Asset) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, a.content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from(a.body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Binds, writes the pid file, serves until SIGTERM or SIGINT, removes the pid file.
pub fn serve_foreground(plan: Plan) -> CliResult {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("start the runtime: {e}")))?;
    rt.block_on(async move {
        let listener = bind(plan.addr)?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::failure(format!("read the bound address: {e}")))?;
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| CliError::failure(format!("listen on `{addr}`: {e}")))?;
        let files = super::pidfiles::PidFiles::new(&plan.home);
        files.write(std::process::id(), addr)?;
        println!(
            "dashboard: serving {} (runs: {}, logs: {}, artifacts: {}, {})",
            super::pidfiles::url(addr),
            plan.runs.spec(),
            plan.logs
                .as_ref()
                .map(|l| l.describe())
                .unwrap_or_else(|| "none".into()),
            plan.artifacts
                .as_ref()
                .map(|a| a.describe())
                .unwrap_or_else(|| "none".into()),
            if plan.read_only {
                "read-only"
            } else {
                "writes enabled"
            },
        );
        let app = router(plan);
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await;
        files.remove_if_mine(std::process::id());
        served.map_err(|e| CliError::failure(format!("serve the dashboard on `{addr}`: {e}")))?;
        println!("dashboard: stopped");
        Ok(0)
    })
}

/// Binds `addr`; a taken port names the process holding it.
pub fn bind(addr: std::net::SocketAddr) -> Result<std::net::TcpListener, CliError> {
    match std::net::TcpListener::bind(addr) {
        Ok(l) => {
            l.set_nonblocking(true)
                .map_err(|e| CliError::failure(format!("listen on `{addr}`: {e}")))?;
            Ok(l)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let holder = super::port::holder_of(addr.port())
                .map(|h| format!("by {h}"))
                .unwrap_or_else(|| "by another process".into());
            Err(CliError::failure(format!(
                "bind `{addr}`: the address is already in use {holder}"
            ))
            .with_hint("stop that process, or pass `--addr 127.0.0.1:<port>` to bind elsewhere"))
        }
        Err(e) => Err(CliError::failure(format!("bind `{addr}`: {e}"))
            .with_hint("pass `--addr HOST:PORT` with an address of this machine")),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the server still stops when the process is killed.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparkwing_storage::{FsLogStore, LogStore};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn log_requests_beyond_the_slots_wait_then_get_503_with_retry_after() {
        let tmp = tempfile::tempdir().unwrap();
        let logs: Arc<dyn LogStore> = Arc::new(FsLogStore::new(tmp.path().join("logs")));
        let run = "run-20260101-000000-00000001";
        logs.append_part(run, "n", b"{\"msg\":\"hello\"}\n".to_vec())
            .await
            .unwrap();
        let plan = Plan {
            addr: "127.0.0.1:0".parse().unwrap(),
            read_only: true,
            runs: crate::reader::Runs::local(tmp.path().join("state.db")),
            logs: Some(logs),
            log_root: Some(tmp.path().join("logs")),
            artifacts: None,
            home: sparkwing_contract::Home::at(tmp.path()),
            profile: "test".into(),
            allowed_hosts: Vec::new(),
        };
        let mut state = AppState::new(plan);
        state.log_wait = Duration::from_millis(200);
        let state = Arc::new(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(axum::serve(listener, router_with(state.clone())).into_future());
        let path = format!("/api/v1/runs/{run}/logs/n?tail=1");

        let busy = state
            .log_reads
            .clone()
            .acquire_many_owned(super::super::state::LOG_READS as u32)
            .await
            .unwrap();
        let r = get(addr, &path).await;
        assert!(r.starts_with("HTTP/1.1 503"), "{r}");
        assert!(r.to_ascii_lowercase().contains("retry-after: 2"), "{r}");
        assert!(r.contains("log requests are being served"), "{r}");
        // A request that waits gets its slot once one frees up.
        let waiting = tokio::spawn(async move { get(addr, &path).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(busy);
        let r = waiting.await.unwrap();
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(r.contains("hello"), "{r}");
        assert_eq!(
            state.log_reads.available_permits(),
            super::super::state::LOG_READS
        );
    }
}
