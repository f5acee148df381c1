//! The parent side: a few child processes, each driven by one tokio task over its pipes, with
//! a watchdog. A child that does not answer within the deadline is killed (by its PID, through
//! `Child::start_kill`); one that dies (abort, segfault) is noticed at its closed pipe. Either
//! way the request in flight fails, the child is restarted (with backoff) and its documents
//! re-seed lazily: the next `Apply` gets `NeedState`.

use super::protocol::{Request, Response, MAX_FRAME};
use crate::metrics::Metrics;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot};

/// First wait before restarting a child that failed; doubles up to `MAX_BACKOFF`.
const MIN_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Requests queued per child before callers wait.
const QUEUE: usize = 256;

#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// The `plenary` binary to run as `plenary sandbox-worker`.
    pub program: PathBuf,
    pub workers: usize,
    /// A request not answered within this is the child's fault: kill it.
    pub deadline: Duration,
    /// Pass `PLENARY_SANDBOX_TEST_CRASH=1` to children (tests of the isolation).
    pub test_crash: bool,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SandboxError {
    #[error("the sandbox worker died on this request: {0}")]
    Crashed(String),
    #[error("the sandbox worker did not answer in time")]
    Timeout,
    #[error("no sandbox worker is available: {0}")]
    Unavailable(String),
}

impl SandboxError {
    /// True when the request itself is to blame (it killed or hung the child).
    pub fn is_the_requests_fault(&self) -> bool {
        matches!(self, SandboxError::Crashed(_) | SandboxError::Timeout)
    }
}

struct Job {
    req: Request,
    reply: oneshot::Sender<Result<Response, SandboxError>>,
}

/// Handle to the pool; cheap to clone. Children stop when the last handle is dropped (their
/// stdin closes, and `kill_on_drop` makes sure).
#[derive(Clone)]
pub struct Sandbox {
    workers: Arc<Vec<mpsc::Sender<Job>>>,
    next_gen: Arc<AtomicU64>,
}

impl Sandbox {
    /// Starts one driver task per worker; children are spawned on first use.
    pub fn start(settings: SandboxSettings, metrics: Arc<Metrics>) -> Sandbox {
        let n = settings.workers.max(1);
        let mut workers = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(drive(i, settings.clone(), metrics.clone(), rx));
            workers.push(tx);
        }
        Sandbox {
            workers: Arc::new(workers),
            next_gen: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Tests of the rooms only: one worker that answers in this process (unit tests have no
    /// `plenary` executable to start children from). Production always vets in children.
    #[cfg(test)]
    pub fn in_process() -> Sandbox {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        tokio::spawn(async move {
            let mut handle = super::worker::in_process();
            while let Some(job) = rx.recv().await {
                let _ = job.reply.send(Ok(handle(job.req)));
            }
        });
        Sandbox {
            workers: Arc::new(vec![tx]),
            next_gen: Arc::new(AtomicU64::new(1)),
        }
    }

    /// A generation number never handed out before in this process.
    pub fn next_gen(&self) -> u64 {
        self.next_gen.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends `req` to the child that holds `doc`'s replica and awaits its answer.
    pub async fn call(&self, doc: &str, req: Request) -> Result<Response, SandboxError> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        doc.hash(&mut h);
        let i = (h.finish() % self.workers.len() as u64) as usize;
        let (reply, rx) = oneshot::channel();
        if self.workers[i].send(Job { req, reply }).await.is_err() {
            return Err(SandboxError::Unavailable("the sandbox stopped".into()));
        }
        rx.await
            .unwrap_or_else(|_| Err(SandboxError::Unavailable("the sandbox stopped".into())))
    }
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn spawn(settings: &SandboxSettings) -> std::io::Result<Running> {
    let mut cmd = Command::new(&settings.program);
    cmd.arg("sandbox-worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if settings.test_crash {
        cmd.env(super::worker::TEST_CRASH_ENV, "1");
    } else {
        cmd.env_remove(super::worker::TEST_CRASH_ENV);
    }
    let mut child = cmd.spawn()?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no stdin"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    Ok(Running {
        child,
        stdin,
        stdout: BufReader::new(stdout),
    })
}

async fn round_trip(r: &mut Running, body: &[u8]) -> Result<Response, String> {
    let len = u32::try_from(body.len()).map_err(|_| "request too large".to_string())?;
    let write = async {
        r.stdin.write_all(&len.to_le_bytes()).await?;
        r.stdin.write_all(body).await?;
        r.stdin.flush().await
    };
    write.await.map_err(|e| format!("writing to the child: {e}"))?;
    let mut len = [0u8; 4];
    r.stdout
        .read_exact(&mut len)
        .await
        .map_err(|e| format!("reading from the child: {e}"))?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err("the child sent an oversized frame".into());
    }
    let mut buf = vec![0u8; len];
    r.stdout
        .read_exact(&mut buf)
        .await
        .map_err(|e| format!("reading from the child: {e}"))?;
    Response::decode(&buf).map_err(|e| format!("the child's answer: {e}"))
}

/// Kills the child by its PID and reaps it (bounded: a zombie must not stall the driver).
async fn kill(mut r: Running) -> String {
    let pid = r.child.id();
    let _ = r.child.start_kill();
    match tokio::time::timeout(Duration::from_secs(2), r.child.wait()).await {
        Ok(Ok(status)) => format!("pid {pid:?}: {status}"),
        _ => format!("pid {pid:?}: not reaped"),
    }
}

async fn drive(index: usize, settings: SandboxSettings, metrics: Arc<Metrics>, mut rx: mpsc::Receiver<Job>) {
    let mut running: Option<Running> = None;
    let mut backoff = Duration::ZERO;
    while let Some(job) = rx.recv().await {
        if job.reply.is_closed() {
            continue;
        }
        let r = match running.as_mut() {
            Some(r) => r,
            None => {
                if !backoff.is_zero() {
                    tokio::time::sleep(backoff).await;
                }
                match spawn(&settings) {
                    Ok(r) => running.insert(r),
                    Err(e) => {
                        tracing::error!(worker = index, program = %settings.program.display(), error = %e,
                            "cannot start the sandbox worker");
                        backoff = (backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
                        let _ = job.reply.send(Err(SandboxError::Unavailable(e.to_string())));
                        continue;
                    }
                }
            }
        };
        let body = job.req.encode();
        let outcome = tokio::time::timeout(settings.deadline, round_trip(r, &body)).await;
        let result = match outcome {
            Ok(Ok(resp)) => {
                backoff = Duration::ZERO;
                Ok(resp)
            }
            Ok(Err(e)) => Err(SandboxError::Crashed(e)),
            Err(_) => Err(SandboxError::Timeout),
        };
        if let Err(e) = &result {
            if let Some(r) = running.take() {
                let status = kill(r).await;
                metrics.sandbox_restarts.inc();
                tracing::warn!(worker = index, error = %e, %status, "sandbox worker killed or died; restarting it");
            }
            backoff = (backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
        }
        let _ = job.reply.send(result);
    }
    if let Some(r) = running.take() {
        let _ = kill(r).await;
    }
}
