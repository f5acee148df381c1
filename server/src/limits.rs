//! Budgets per token and per connection (contract: rate limits "count per connection and per
//! token, never per IP address: a whole venue shares one").
//!
//! - Connections per token: counted before the upgrade ([`TokenLimits::open`]); past the role's
//!   budget the upgrade gets 429. The slot is given back when the connection ends.
//! - Messages per token: a `governor` keyed limiter per role (keyed by [`TokenHash`]); a token
//!   whose connections together send too fast has them slowed (reads paused), never cut.
//! - Reply bytes: a sync step 1 or query-awareness costs what its answer weighs. The room
//!   charges each answer to the asking connection's [`ReplyMeter`]; before the connection may ask
//!   again it pays: its own byte bucket (sustained rate, debt allowed so that one answer of any
//!   size is always served) and, for answers the room had to encode (not served from a cache),
//!   the token's byte limiter. One such request per connection is in the room at a time, so a
//!   flood never queues work in the room faster than it is paid for.

use crate::auth::{Role, TokenHash};
use crate::config::Config;
use dashmap::DashMap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Reply bytes are counted by the token limiter in KiB (governor counts in `u32` cells).
const CELL_BYTES: u64 = 1024;

/// One role's budget for each of its tokens.
#[derive(Debug, Clone, Copy)]
pub struct RoleBudget {
    pub connections: usize,
    pub messages_per_sec: u32,
}

pub struct TokenLimits {
    participant: RoleBudget,
    moderator: RoleBudget,
    rapporteur: RoleBudget,
    open: DashMap<TokenHash, usize>,
    messages: [DefaultKeyedRateLimiter<TokenHash>; 3],
    reply_kib: DefaultKeyedRateLimiter<TokenHash>,
    reply_burst_kib: NonZeroU32,
    /// Per connection, for [`DebtBucket`].
    pub reply_bytes_per_sec: u32,
}

fn role_index(role: &Role) -> usize {
    match role {
        Role::Participant => 0,
        Role::Moderator => 1,
        Role::Rapporteur(_) => 2,
    }
}

fn per_second(n: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl TokenLimits {
    pub fn new(config: &Config) -> Self {
        let participant = RoleBudget {
            connections: config.participant_token_connections,
            messages_per_sec: config.participant_token_messages_per_sec,
        };
        let moderator = RoleBudget {
            connections: config.moderator_token_connections,
            messages_per_sec: config.moderator_token_messages_per_sec,
        };
        let rapporteur = RoleBudget {
            connections: config.rapporteur_token_connections,
            messages_per_sec: config.rapporteur_token_messages_per_sec,
        };
        let kib = (u64::from(config.token_reply_bytes_per_sec) / CELL_BYTES).max(1);
        let kib = NonZeroU32::new(u32::try_from(kib).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        TokenLimits {
            messages: [participant, moderator, rapporteur]
                .map(|b| RateLimiter::keyed(per_second(b.messages_per_sec))),
            participant,
            moderator,
            rapporteur,
            open: DashMap::new(),
            reply_kib: RateLimiter::keyed(Quota::per_second(kib)),
            reply_burst_kib: kib,
            reply_bytes_per_sec: config.reply_bytes_per_sec,
        }
    }

    pub fn budget(&self, role: &Role) -> RoleBudget {
        match role {
            Role::Participant => self.participant,
            Role::Moderator => self.moderator,
            Role::Rapporteur(_) => self.rapporteur,
        }
    }

    /// Takes a connection slot for the token, or `None` past its role's budget.
    pub fn open(self: &Arc<Self>, token: TokenHash, role: &Role) -> Option<TokenSlot> {
        let limit = self.budget(role).connections;
        let mut n = self.open.entry(token).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(TokenSlot {
            limits: self.clone(),
            token,
        })
    }

    /// Open connections of a token (for tests and metrics).
    pub fn open_count(&self, token: &TokenHash) -> usize {
        self.open.get(token).map(|n| *n).unwrap_or(0)
    }

    /// Waits until the token may send one more message.
    pub async fn message(&self, token: &TokenHash, role: &Role) {
        self.messages[role_index(role)].until_key_ready(token).await;
    }

    /// Waits until the token may have `bytes` more of encoded replies.
    pub async fn encoded_reply(&self, token: &TokenHash, bytes: u64) {
        let cells = bytes.div_ceil(CELL_BYTES);
        let Some(cells) = u32::try_from(cells).ok().and_then(NonZeroU32::new) else {
            return;
        };
        // One answer larger than the whole burst costs the whole burst.
        let cells = cells.min(self.reply_burst_kib);
        let _ = self.reply_kib.until_key_n_ready(token, cells).await;
    }
}

/// A connection's hold on one of its token's slots; given back when dropped.
pub struct TokenSlot {
    limits: Arc<TokenLimits>,
    token: TokenHash,
}

impl Drop for TokenSlot {
    fn drop(&mut self) {
        self.limits.open.remove_if_mut(&self.token, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }
}

/// What the room charged a connection for the replies it asked for, not yet paid.
pub struct ReplyMeter {
    charged: AtomicU64,
    encoded: AtomicU64,
    /// One expensive request in the room at a time.
    in_room: Semaphore,
}

impl Default for ReplyMeter {
    fn default() -> Self {
        ReplyMeter {
            charged: AtomicU64::new(0),
            encoded: AtomicU64::new(0),
            in_room: Semaphore::new(1),
        }
    }
}

impl ReplyMeter {
    /// Waits until the previous request was answered; returns the ticket for the next one.
    pub async fn ticket(self: &Arc<Self>) -> ReplyTicket {
        if let Ok(p) = self.in_room.acquire().await {
            p.forget();
        }
        ReplyTicket(self.clone())
    }

    /// Bytes charged since the last call: (all replies, replies that had to be encoded).
    pub fn take(&self) -> (u64, u64) {
        (
            self.charged.swap(0, Ordering::AcqRel),
            self.encoded.swap(0, Ordering::AcqRel),
        )
    }
}

/// Travels with a sync step 1 or query-awareness to the room, which charges its answer to it.
/// Dropping it (answered, or the room is gone) lets the connection ask again.
pub struct ReplyTicket(Arc<ReplyMeter>);

impl ReplyTicket {
    /// Charges an answer of `bytes`; `encoded` if it was built for this request (a cache miss).
    pub fn charge(&self, bytes: usize, encoded: bool) {
        let bytes = bytes as u64;
        self.0.charged.fetch_add(bytes, Ordering::AcqRel);
        if encoded {
            self.0.encoded.fetch_add(bytes, Ordering::AcqRel);
        }
    }
}

impl Drop for ReplyTicket {
    fn drop(&mut self) {
        self.0.in_room.add_permits(1);
    }
}

/// A connection's own token bucket that may go into debt: what is asked is always granted, and
/// the debt says how long to wait before the next request. Two budgets use it: reply bytes (one
/// answer of any size, a whole document, is served and the next waits) and the message rate
/// (slowed past its rate, never cut). `governor` refuses a request larger than its burst
/// instead of running into debt, so it serves the per-token limits only.
pub struct DebtBucket {
    tokens: f64,
    capacity: f64,
    per_sec: f64,
    last: Instant,
}

impl DebtBucket {
    /// Reply bytes: `per_sec` a second, a burst of one second's worth.
    pub fn new(per_sec: u32) -> Self {
        Self::with_burst(per_sec, 1)
    }

    /// Messages: `per_sec` a second, a burst of ten seconds' worth.
    pub fn messages(per_sec: u32) -> Self {
        Self::with_burst(per_sec, 10)
    }

    fn with_burst(per_sec: u32, seconds: u32) -> Self {
        let per_sec = f64::from(per_sec.max(1));
        let capacity = per_sec * f64::from(seconds);
        DebtBucket {
            tokens: capacity,
            capacity,
            per_sec,
            last: Instant::now(),
        }
    }

    /// Pays `bytes`; returns how long to wait before the next request.
    pub fn take(&mut self, bytes: u64) -> Option<Duration> {
        self.pay(bytes as f64)
    }

    /// Pays for one message of `bytes`: one token plus one per 16 KiB, so the budget bounds
    /// bytes as well as messages. Returns how long to wait before handling it.
    pub fn take_message(&mut self, bytes: usize) -> Option<Duration> {
        self.pay(1.0 + (bytes / (16 * 1024)) as f64)
    }

    fn pay(&mut self, cost: f64) -> Option<Duration> {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.per_sec).min(self.capacity);
        self.last = now;
        self.tokens -= cost;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.per_sec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_serves_one_large_answer_then_makes_the_next_wait() {
        let mut b = DebtBucket::new(1000);
        assert_eq!(b.take(600), None);
        // 600 + 5000 goes 4600 into debt: about 4.6 s at 1000 B/s
        let wait = b.take(5000).unwrap();
        assert!(
            wait > Duration::from_secs(4) && wait < Duration::from_secs(5),
            "{wait:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_message_budget_bursts_ten_seconds_then_slows_to_its_rate() {
        let mut b = DebtBucket::messages(10);
        for _ in 0..100 {
            assert_eq!(b.take_message(10), None);
        }
        // the 101st message waits a tenth of a second; a 64 KiB one costs 5 tokens
        assert_eq!(b.take_message(10), Some(Duration::from_millis(100)));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.take_message(64 * 1024), None);
    }

    #[tokio::test]
    async fn one_request_in_the_room_at_a_time_and_charges_add_up() {
        let meter = Arc::new(ReplyMeter::default());
        let t = meter.ticket().await;
        t.charge(10, false);
        t.charge(5, true);
        // a second ticket waits until the first is dropped
        assert!(futures_util::FutureExt::now_or_never(meter.ticket()).is_none());
        drop(t);
        let _t2 = meter.ticket().await;
        assert_eq!(meter.take(), (15, 5));
        assert_eq!(meter.take(), (0, 0));
    }

    #[test]
    fn connection_slots_per_token_follow_the_role_budget() {
        let dir = std::env::temp_dir();
        let mut config = Config::for_tests(dir, "x");
        config.moderator_token_connections = 2;
        let limits = Arc::new(TokenLimits::new(&config));
        let (a, b) = (TokenHash::of("a"), TokenHash::of("b"));
        let s1 = limits.open(a, &Role::Moderator).unwrap();
        let _s2 = limits.open(a, &Role::Moderator).unwrap();
        assert!(limits.open(a, &Role::Moderator).is_none());
        assert!(limits.open(b, &Role::Moderator).is_some());
        drop(s1);
        assert_eq!(limits.open_count(&a), 1);
        assert!(limits.open(a, &Role::Moderator).is_some());
    }
}
