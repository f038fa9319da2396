//! The server's listeners: a Unix socket whose connections carry the peer's credentials
//! from the kernel (`SO_PEERCRED`), and TCP, plain or TLS. Each accepted connection's
//! [`Peer`] reaches the handlers as axum connect info.
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// Who is on the other end of a connection, as the transport says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A Unix-socket peer: its user and group ids from the kernel (the pid, when known,
    /// only for the log).
    Unix {
        uid: u32,
        gid: u32,
        pid: Option<i32>,
    },
    /// A TCP peer; identity comes from its token.
    Tcp(SocketAddr),
}

macro_rules! peer_connect_info {
    ($($listener:ty),*) => {$(
        impl Connected<IncomingStream<'_, $listener>> for Peer {
            fn connect_info(stream: IncomingStream<'_, $listener>) -> Self {
                stream.remote_addr().clone()
            }
        }
    )*};
}

peer_connect_info!(UnixPeerListener, TcpPeerListener, TlsPeerListener);

/// Waits a little after a failed accept (out of file descriptors: let some close).
async fn accept_failed(e: io::Error) {
    tracing::warn!("accepting a connection failed: {e}");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// A Unix socket listener that reads each peer's credentials.
pub struct UnixPeerListener {
    inner: UnixListener,
}

impl Listener for UnixPeerListener {
    type Io = UnixStream;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, _)) => match stream.peer_cred() {
                    Ok(cred) => {
                        let peer = Peer::Unix {
                            uid: cred.uid(),
                            gid: cred.gid(),
                            pid: cred.pid(),
                        };
                        return (stream, peer);
                    }
                    // Without credentials nobody can say who this is: drop it.
                    Err(e) => tracing::warn!("a socket peer's credentials are unreadable: {e}"),
                },
                Err(e) => accept_failed(e).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(Peer::Unix {
            uid: 0,
            gid: 0,
            pid: None,
        })
    }
}

/// The socket file this server made; removed when the server stops.
pub struct SocketFile {
    pub path: PathBuf,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the Unix socket at `path` with mode 0660. A socket file left by a server that
/// is gone is replaced; one that still answers, or anything that is not a socket, is
/// left alone and reported.
pub fn bind_unix(path: &Path) -> anyhow::Result<(UnixPeerListener, SocketFile)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => anyhow::bail!(
                    "another server is listening on {}; stop it first, or pass another --socket",
                    path.display()
                ),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    tracing::info!(socket = %path.display(), "replacing a stale socket file");
                    std::fs::remove_file(path).map_err(|e| {
                        anyhow::anyhow!("cannot remove the stale socket {}: {e}", path.display())
                    })?;
                }
                Err(e) => anyhow::bail!(
                    "{} exists and cannot be checked ({e}); remove it if no server uses it",
                    path.display()
                ),
            }
        }
        Ok(_) => anyhow::bail!(
            "{} exists and is not a socket; refusing to replace it",
            path.display()
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot check {}: {e}", path.display()),
    }
    let inner = UnixListener::bind(path)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
    let file = SocketFile {
        path: path.to_path_buf(),
    };
    // The socket's group decides who may connect at all; [server.access] decides the rest.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| anyhow::anyhow!("cannot set the mode of {}: {e}", path.display()))?;
    Ok((UnixPeerListener { inner }, file))
}

/// A TCP listener; with TLS, handshakes run in their own tasks so a slow client never
/// holds up the next connection.
pub struct TcpPeerListener {
    inner: TcpListener,
}

impl TcpPeerListener {
    pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpPeerListener> {
        let inner = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        Ok(TcpPeerListener { inner })
    }

    pub fn local(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Serves TLS on this listener with `config`.
    pub fn tls(self, config: Arc<tokio_rustls::rustls::ServerConfig>) -> TlsPeerListener {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = self.inner;
        let task = tokio::spawn(async move {
            loop {
                let (stream, addr) = match listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        accept_failed(e).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let hs = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await;
                    match hs {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%addr, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        TlsPeerListener { rx, task }
    }
}

impl Listener for TcpPeerListener {
    type Io = TcpStream;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (stream, Peer::Tcp(addr));
                }
                Err(e) => accept_failed(e).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr().map(Peer::Tcp)
    }
}

/// TLS connections whose handshake finished.
pub struct TlsPeerListener {
    rx: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsPeerListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener for TlsPeerListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some((io, addr)) => (io, Peer::Tcp(addr)),
            // The accepting task is gone (it never ends on its own): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Err(io::Error::other(
            "the TLS listener's address is known at bind",
        ))
    }
}

/// The rustls server configuration from PEM files: the certificate chain and its key.
pub fn tls_config(
    cert: &Path,
    key: &Path,
) -> anyhow::Result<Arc<tokio_rustls::rustls::ServerConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| anyhow::anyhow!("cannot read the TLS certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("the TLS certificate {} is not PEM: {e}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("cannot read the TLS key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS setup failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("the TLS certificate and key do not fit together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
