//! The server's life: bind the address (TLS if configured), announce `listening on ..`, accept
//! connections and answer them, reload the config on SIGHUP (swapped in only once it loaded
//! whole), and on SIGTERM or SIGINT stop accepting, finish what is in flight within the grace
//! period, and return.
//!
//! In flight, at shutdown, means every request the server has started to answer, and the first
//! request of every connection it has accepted: a client that has just connected has a request on
//! its way, and closing on it would drop a login that reached the server before the signal. Those
//! are answered with `Connection: close`; keep-alive connections idle between requests are closed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::header::{CONNECTION, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, SemaphorePermit, mpsc, watch};

use crate::answer::answer;
use crate::deployment::{Current, Deployment};
use crate::error::ServeError;
use crate::metrics::Metrics;
use crate::tls;

/// A client has this long to send a request's headers (and to finish a TLS handshake).
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// What every connection's requests share.
pub(crate) struct Shared {
    pub current: Current,
    pub metrics: Metrics,
    /// One permit per request being answered (`max_in_flight`), held until its rules finish
    /// even when the request's deadline passed first.
    pub in_flight: Arc<Semaphore>,
    /// The I/O threads' seats for running a login's rules where its request was read.
    pub inline: InlineSeats,
    /// Set once the server answers, cleared when it starts shutting down (`/readyz`).
    pub ready: AtomicBool,
    /// Set when the server starts shutting down: every connection finishes what it has started
    /// and closes.
    draining: watch::Sender<bool>,
    /// Set while a reload runs, so that SIGHUPs in a burst load once at a time.
    reloading: AtomicBool,
    config: PathBuf,
    listen: Option<SocketAddr>,
    /// The stack the runtime's threads were made with: a reload cannot give rules more.
    thread_stack: usize,
}

/// Load the config at `config` and serve it until SIGTERM or SIGINT (see the crate's docs).
pub fn serve(config: &Path, listen: Option<SocketAddr>) -> Result<(), ServeError> {
    let deployment = Deployment::load(config, listen, None)?;
    let acceptor = deployment
        .server
        .tls
        .as_ref()
        .map(tls::acceptor)
        .transpose()?;
    // Rules run on the I/O threads (one per core) where their deadlines fit in the request's,
    // else on the blocking pool: one thread per request in flight. Either way never more
    // threads than the sandbox has instance slots (a request waits for a thread rather than
    // failing for a slot).
    let slots = deployment.issuer.config().sandbox.max_concurrent_instances as usize;
    let rule_threads = deployment.server.max_in_flight.min(slots).max(1);
    // Up to one login per core runs its rules on an I/O thread, and one I/O thread more is
    // always free to read requests and answer 503s and probes; the rest run on the blocking
    // pool. Together never more than the sandbox's slots.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let seats = cores.min(rule_threads - 1);
    let thread_stack = deployment.issuer.config().sandbox.thread_stack_bytes();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("claimsmith-serve")
        // Rules run on these threads: their wasm frames need the stack `stack_bytes` promises.
        .thread_stack_size(thread_stack)
        .worker_threads(seats + 1)
        .max_blocking_threads((rule_threads - seats).max(1))
        .build()
        .map_err(ServeError::Runtime)?;
    let shared = Arc::new(Shared {
        inline: InlineSeats::new(seats),
        in_flight: Arc::new(Semaphore::new(deployment.server.max_in_flight)),
        current: Current::new(deployment),
        metrics: Metrics::new(),
        ready: AtomicBool::new(false),
        draining: watch::Sender::new(false),
        reloading: AtomicBool::new(false),
        config: config.to_owned(),
        listen,
        thread_stack,
    });
    let served = runtime.block_on(run(shared, acceptor));
    // Past the grace, a rule still running (bounded by its own deadline, which may be longer)
    // must not hold the exit: dropping the runtime would wait for every thread running one.
    runtime.shutdown_timeout(SHUTDOWN_WAIT);
    served
}

/// How long, once `run` returns, the runtime's threads get to stop before the process goes on
/// without them.
const SHUTDOWN_WAIT: Duration = Duration::from_millis(100);

async fn run(
    shared: Arc<Shared>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
) -> Result<(), ServeError> {
    let (address, grace) = {
        let deployment = shared.current.get();
        (deployment.server.listen, deployment.server.shutdown_grace)
    };
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Listen { address, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Listen { address, source })?;
    let mut hangup = signal(SignalKind::hangup()).map_err(ServeError::Runtime)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(ServeError::Runtime)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(ServeError::Runtime)?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    shared.ready.store(true, Ordering::Release);
    tracing::info!(target: "claimsmith::server", %bound, "serving");
    eprintln!("listening on {scheme}://{bound}");
    // Each connection's task holds a sender; once all of them are dropped, every one has ended.
    let (open, mut ended) = mpsc::channel::<()>(1);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => connection(&shared, &open, acceptor.clone(), stream, peer),
                Err(error) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    tracing::warn!(target: "claimsmith::server", %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            _ = hangup.recv() => reload(&shared),
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    shared.ready.store(false, Ordering::Release);
    drop(listener);
    tracing::info!(target: "claimsmith::server", grace_ms = grace.as_millis() as u64, "shutting down: finishing requests in flight");
    shared.draining.send_replace(true);
    drop(open);
    tokio::select! {
        _ = ended.recv() => {
            tracing::info!(target: "claimsmith::server", "every request finished; stopped");
        }
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(target: "claimsmith::server", "shutdown_grace_ms passed with requests still in flight; stopping");
        }
    }
    Ok(())
}

/// Serve one connection on a task of its own.
fn connection(
    shared: &Arc<Shared>,
    open: &mpsc::Sender<()>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let shared = Arc::clone(shared);
    let open = open.clone();
    tokio::spawn(async move {
        let _open = open;
        let draining = shared.draining.subscribe();
        let served = Arc::new(AtomicBool::new(false));
        let service = {
            let served = Arc::clone(&served);
            service_fn(move |request| {
                served.store(true, Ordering::Release);
                let shared = Arc::clone(&shared);
                async move {
                    let mut response = answer(&shared, request).await;
                    // Not ready once the server drains (an atomic, not the watch's lock, on
                    // every request).
                    if !shared.ready.load(Ordering::Acquire) {
                        response
                            .headers_mut()
                            .insert(CONNECTION, HeaderValue::from_static("close"));
                    }
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .keep_alive(true);
        let result = match acceptor {
            None => {
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                until_drained(connection, draining, &served).await
            }
            Some(acceptor) => {
                match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let connection = builder.serve_connection(TokioIo::new(stream), service);
                        until_drained(connection, draining, &served).await
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(target: "claimsmith::server", %peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(target: "claimsmith::server", %peer, "TLS handshake too slow");
                        return;
                    }
                }
            }
        };
        if let Err(error) = result {
            tracing::debug!(target: "claimsmith::server", %peer, %error, "connection ended with an error");
        }
    });
}

/// Serve `connection` until it ends; once the server drains, close it if it is idle between
/// requests, else after the request it is answering. A connection that has not yet sent its first
/// request is left to send it (within [`HEADER_TIMEOUT`]): that one is answered with
/// `Connection: close`.
async fn until_drained<C: GracefulConnection>(
    connection: C,
    mut draining: watch::Receiver<bool>,
    served: &AtomicBool,
) -> Result<(), C::Error> {
    let mut connection = std::pin::pin!(connection);
    let mut asked = false;
    loop {
        tokio::select! {
            ended = connection.as_mut() => return ended,
            _ = draining.wait_for(|draining| *draining), if !asked => {
                asked = true;
                if served.load(Ordering::Acquire) {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Load the config again and swap it in if all of it loads; otherwise keep serving the old.
fn reload(shared: &Arc<Shared>) {
    if shared.reloading.swap(true, Ordering::AcqRel) {
        tracing::info!(target: "claimsmith::server", "a reload is already running");
        return;
    }
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let (config, listen, stack) = (shared.config.clone(), shared.listen, shared.thread_stack);
        let loaded =
            tokio::task::spawn_blocking(move || Deployment::load(&config, listen, Some(stack)))
                .await;
        let old = shared.current.get();
        // The server stays on the socket it listens on: the new config is checked there.
        let loaded = loaded.map(|next| {
            next.and_then(|next| {
                if next.server.listen != old.server.listen {
                    tracing::warn!(target: "claimsmith::server", setting = "listen", "changed in the config: takes effect at the next restart");
                }
                next.served_on(old.server.listen, &shared.config)
            })

        });
        match loaded {
            Ok(Ok(next)) => {
                for (what, changed) in [
                    ("tls", next.server.tls != old.server.tls),
                    (
                        "max_in_flight",
                        next.server.max_in_flight != old.server.max_in_flight,
                    ),
                ] {
                    if changed {
                        tracing::warn!(target: "claimsmith::server", setting = what, "changed in the config: takes effect at the next restart");
                    }
                }
                shared.current.swap(next);
                shared.metrics.reload(true);
                tracing::info!(target: "claimsmith::server", "config reloaded");
            }
            Ok(Err(error)) => {
                shared.metrics.reload(false);
                tracing::error!(target: "claimsmith::server", %error, "config reload failed; still serving the previous config");
            }
            Err(panic) => {
                shared.metrics.reload(false);
                tracing::error!(target: "claimsmith::server", error = %panic, "config reload panicked; still serving the previous config");
            }
        }
        shared.reloading.store(false, Ordering::Release);
    });
}

/// How many logins may run their rules on an I/O thread at once: one per core, so that one I/O
/// thread stays free to read requests (and answer 503s and probes) while the others run rules.
/// A login that finds every seat taken waits up to [`SEAT_WAIT`] for one (rules take
/// microseconds, so one is usually free well before), then runs its rules on the blocking pool,
/// as a hook whose rules could outlast the request always does. A rule that runs to its deadline
/// (a looping one) holds its seat that long, but delays the other logins by no more than
/// [`SEAT_WAIT`].
pub(crate) struct InlineSeats(Semaphore);

/// How long a login waits for a seat on an I/O thread before it takes the blocking pool.
pub(crate) const SEAT_WAIT: Duration = Duration::from_millis(1);

impl InlineSeats {
    fn new(seats: usize) -> InlineSeats {
        InlineSeats(Semaphore::new(seats))
    }

    /// A seat, now or within [`SEAT_WAIT`]; given back when dropped.
    pub(crate) async fn take(&self) -> Option<InlineSeat<'_>> {
        if let Ok(seat) = self.0.try_acquire() {
            return Some(InlineSeat(seat));
        }
        match tokio::time::timeout(SEAT_WAIT, self.0.acquire()).await {
            Ok(Ok(seat)) => Some(InlineSeat(seat)),
            // The seats are never closed: the wait ran out.
            Ok(Err(_)) | Err(_) => None,
        }
    }
}

/// A login's seat on an I/O thread ([`InlineSeats::take`]), given back when dropped.
pub(crate) struct InlineSeat<'a>(
    #[expect(dead_code, reason = "held for its drop")] SemaphorePermit<'a>,
);
