//! Why `claimsmith serve` cannot start or goes on no longer.

use std::net::SocketAddr;
use std::path::PathBuf;

use claimsmith::ConfigError;

/// The server cannot start: the config, the TLS files, the address, or the runtime.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The config (the issuer's part or the `[server]` table) cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A TLS file cannot be used.
    #[error("{}: {message}", path.display())]
    Tls {
        /// The certificate or key file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The address cannot be listened on (in use, not this machine's, no permission).
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The async runtime or the signal handlers cannot be set up.
    #[error("cannot start the server: {0}")]
    Runtime(std::io::Error),
}
