//! A process that serves HTTP on a loopback port and says where on stderr (`listening on
//! http://ADDR`): `claimsmith serve` (tests/serve.rs, tests/oidc_provider.rs) or the example
//! Node.js issuer (tests/oidc_provider.rs). Killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{bin, workspace};

/// A running server, stopped (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub address: SocketAddr,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    /// Start `claimsmith serve` on `config` (on a free loopback port) and wait for its
    /// `listening on` line.
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_with_scheme(config, env, "http")
    }

    /// [`Server::start`] for a server that announces `scheme` (`https` with TLS).
    pub fn start_with_scheme(config: &Path, env: &[(&str, &str)], scheme: &str) -> Server {
        let mut command = Command::new(bin());
        command
            .args(["serve", "--config", config.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0"])
            .env(
                "CLAIMSMITH_CACHE_DIR",
                workspace().join("target/claimsmith-test-cache"),
            )
            .envs(env.iter().copied());
        Server::spawn(&mut command, scheme, Duration::from_secs(60))
    }

    /// Start `command` and wait up to `within` for its `listening on {scheme}://ADDR` line on
    /// stderr; panics with what it printed when it does not come.
    pub fn spawn(command: &mut Command, scheme: &str, within: Duration) -> Server {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let (lines, stderr) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match stderr.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix(&format!("listening on {scheme}://")) {
                        let address = url.parse().expect("an address after `listening on`");
                        return Server {
                            child,
                            address,
                            stderr,
                        };
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the server did not start: {seen:#?}")
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Send a signal to the server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait for the server to exit; its exit code.
    pub fn wait(&mut self, within: Duration) -> i32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stderr lines printed so far.
    pub fn logs(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
