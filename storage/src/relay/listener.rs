//! The listening end of the relay: a private socket and a one-time token.

use std::path::{Path, PathBuf};

/// The listening end the supervisor opens before it spawns the child: a socket in a fresh
/// directory only this user can enter, and a random token the child must present.
pub struct RelayListener {
    listener: tokio::net::UnixListener,
    dir: PathBuf,
    socket: PathBuf,
    token: String,
}

impl std::fmt::Debug for RelayListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayListener")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl RelayListener {
    /// Binds a socket in a new private directory under `parent` (the system's temporary
    /// directory when `None`: socket paths are limited to about 100 bytes).
    pub fn bind(parent: Option<&Path>) -> std::io::Result<RelayListener> {
        use std::os::unix::fs::DirBuilderExt;
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let token = random_hex()?;
        let dir = parent.join(format!("sparkwing-{}-{}", std::process::id(), &token[..12]));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let socket = dir.join("relay.sock");
        let listener = match tokio::net::UnixListener::bind(&socket) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        Ok(RelayListener {
            listener,
            dir,
            socket,
            token,
        })
    }

    /// The socket's path, for the child's environment.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The token, for the child's environment.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Waits for the child's connection; the socket file is gone afterwards, so nobody else can
    /// connect.
    pub async fn accept(self) -> std::io::Result<tokio::net::UnixStream> {
        let r = self.listener.accept().await.map(|(s, _)| s);
        let _ = std::fs::remove_dir_all(&self.dir);
        r
    }
}

impl Drop for RelayListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn random_hex() -> std::io::Result<String> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}
