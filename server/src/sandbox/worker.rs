//! The child's loop (`plenary sandbox-worker`): read a request from stdin, answer on stdout,
//! until stdin closes. It keeps replicas of documents keyed by doc key, each at a generation
//! the parent chose; every yrs call runs under `catch_unwind`, and what cannot be caught (an
//! abort, a segfault, an endless loop) ends this process only: the parent's watchdog restarts it.

use super::protocol::{read_frame, write_frame, Request, Response, Verdict};
use super::vet;
use crate::store::StoredDoc;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use yrs::Doc;

/// Set by the parent (when its config has `PLENARY_SANDBOX_TEST_CRASH`) for tests of the isolation only: an
/// update that carries one of the markers below aborts, segfaults or hangs this process.
pub const TEST_CRASH_ENV: &str = "PLENARY_SANDBOX_WORKER_TEST_CRASH";
pub const MARK_ABORT: &[u8] = b"PLENARY-TEST-ABORT";
pub const MARK_SEGV: &[u8] = b"PLENARY-TEST-SEGV";
pub const MARK_LOOP: &[u8] = b"PLENARY-TEST-LOOP";

/// Replicas kept before all are dropped (each is re-seeded on its next write).
const MAX_REPLICAS: usize = 4096;

struct Worker {
    replicas: HashMap<String, (u64, Doc)>,
    test_crash: bool,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Tests of the rooms only: the worker's handling of a request, in this process (no child, so
/// no isolation: production always runs it in a child).
#[cfg(test)]
pub(crate) fn in_process() -> impl FnMut(Request) -> Response {
    let mut worker = Worker {
        replicas: HashMap::new(),
        test_crash: false,
    };
    move |req| worker.handle(req)
}

impl Worker {
    fn test_markers(&self, update: &[u8]) {
        if !self.test_crash {
            return;
        }
        if contains(update, MARK_ABORT) {
            std::process::abort();
        }
        if contains(update, MARK_SEGV) {
            let _ = std::process::Command::new("kill")
                .args(["-SEGV", &std::process::id().to_string()])
                .status();
        }
        if contains(update, MARK_LOOP) || contains(update, MARK_SEGV) {
            loop {
                std::hint::spin_loop();
            }
        }
    }

    fn handle(&mut self, req: Request) -> Response {
        match req {
            Request::Load { doc, gen, state } => {
                self.replicas.remove(&doc);
                match catch_unwind(|| {
                    vet::from_state(&doc, &state).and_then(|d| {
                        vet::reads(&d, &yrs::StateVector::default(), vet::is_plenary(&doc)).map(|()| d)
                    })
                }) {
                    Ok(Ok(replica)) => {
                        if self.replicas.len() >= MAX_REPLICAS {
                            self.replicas.clear();
                        }
                        self.replicas.insert(doc, (gen, replica));
                        Response::Ok
                    }
                    Ok(Err(why)) => Response::Refused(why),
                    Err(_) => Response::Refused("yrs panicked loading the state".into()),
                }
            }
            Request::Apply {
                doc,
                gen,
                guard,
                updates,
            } => {
                let Some((g, replica)) = self.replicas.get(&doc) else {
                    return Response::NeedState;
                };
                if *g != gen {
                    return Response::NeedState;
                }
                let plenary = vet::is_plenary(&doc);
                let mut verdicts = Vec::with_capacity(updates.len());
                let mut drop_replica = false;
                for u in &updates {
                    self.test_markers(u);
                    let v = catch_unwind(AssertUnwindSafe(|| vet::vet_update(replica, u, guard, plenary)))
                        .unwrap_or_else(|_| Verdict::Invalid("yrs panicked on it".into()));
                    let accepted = v == Verdict::Accepted;
                    verdicts.push(v);
                    if !accepted {
                        drop_replica = true;
                        break;
                    }
                }
                if drop_replica {
                    self.replicas.remove(&doc);
                }
                Response::Verdicts(verdicts)
            }
            Request::Forget { doc } => {
                self.replicas.remove(&doc);
                Response::Ok
            }
            Request::LoadStored {
                doc,
                snapshot,
                updates,
            } => {
                let stored = StoredDoc {
                    snapshot,
                    updates,
                    head: 0,
                };
                match catch_unwind(AssertUnwindSafe(|| vet::load_stored(&doc, &stored))) {
                    Ok(Ok(_)) => Response::Ok,
                    Ok(Err(why)) => Response::Refused(why),
                    Err(_) => Response::Refused("yrs panicked loading it".into()),
                }
            }
            Request::CheckSnapshot {
                doc,
                snapshot,
                sv,
                fingerprint,
            } => match catch_unwind(|| vet::check_snapshot(&doc, &snapshot, &sv, &fingerprint)) {
                Ok(Ok(())) => Response::Ok,
                Ok(Err(why)) => Response::Refused(why),
                Err(_) => Response::Refused("yrs panicked on the snapshot".into()),
            },
        }
    }
}

/// Runs the child until its stdin closes. Returns the process exit code.
pub fn run() -> i32 {
    // A caught panic is an answer, not news: one line on stderr, no backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("plenary sandbox-worker: caught a panic: {info}");
    }));
    let mut worker = Worker {
        replicas: HashMap::new(),
        test_crash: std::env::var_os(TEST_CRASH_ENV).is_some_and(|v| v == "1"),
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut input = stdin.lock();
    let mut output = std::io::BufWriter::new(stdout.lock());
    loop {
        let body = match read_frame(&mut input) {
            Ok(Some(b)) => b,
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("plenary sandbox-worker: {e}");
                return 2;
            }
        };
        let resp = match Request::decode(&body) {
            Ok(req) => worker.handle(req),
            Err(e) => Response::Refused(format!("bad request: {e}")),
        };
        if write_frame(&mut output, &resp.encode()).is_err() {
            return 0;
        }
    }
}
