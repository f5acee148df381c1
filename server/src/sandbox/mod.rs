//! The apply sandbox: yrs runs on untrusted updates in child processes, never in the server.
//!
//! yrs 0.28 can abort (a panic inside a transaction's drop), segfault (dangling block pointers)
//! or loop forever on crafted updates; `catch_unwind` stops none of these. So every update is
//! first applied, in its own transaction, to a replica of its document in a child process
//! (`plenary sandbox-worker`, the same binary), which also does every read the server will do
//! on the result. The room applies the update to its own document only once the child accepted
//! it on an identical state (yrs is deterministic).
//!
//! - `protocol`: the request/response frames over the child's stdin/stdout (pure).
//! - `worker`: the child's loop and its replicas.
//! - `vet`: what the child checks (apply, guard, reads, stored documents, snapshots).
//! - `pool`: the parent side: a few children, a watchdog, restarts.
//! - `doctor`: `plenary doctor`, which finds and repairs documents that do not load.

pub mod doctor;
pub mod pool;
pub mod protocol;
pub mod vet;
pub mod worker;

pub use pool::{Sandbox, SandboxError, SandboxSettings};
pub use protocol::{Request, Response, Verdict};
