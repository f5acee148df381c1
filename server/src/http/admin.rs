//! The admin bearer check, with a server-wide budget for wrong guesses.
//!
//! Wrong admin tokens take a cell from one global `governor` limiter (`--admin-failures-per-sec`,
//! bursts of twice that). Once it is empty, every admin request, right or wrong, gets 429 until
//! the next cell is due: answering a right token then would tell a guesser which guess was right,
//! so the budget bounds the guesses checked per second. A correct token never takes a cell, so
//! the admin is held back by others' failures only while the budget is empty.

use super::error::ApiError;
use crate::auth::TokenHash;
use axum::http::{HeaderMap, StatusCode};
use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

pub struct AdminGate<C: Clock = DefaultClock> {
    admin: TokenHash,
    failures: RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    /// While `clock.now()` is before this, no token is checked.
    closed_until: Mutex<Option<C::Instant>>,
}

/// Why an admin request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminRefusal {
    /// No token, or a wrong one (401).
    Invalid,
    /// The failure budget is spent; retry after this long (429).
    Throttled(Duration),
}

impl AdminGate<DefaultClock> {
    pub fn new(admin: TokenHash, failures_per_sec: u32) -> Self {
        Self::with_clock(admin, failures_per_sec, DefaultClock::default())
    }
}

impl<C: Clock + Clone> AdminGate<C> {
    pub fn with_clock(admin: TokenHash, failures_per_sec: u32, clock: C) -> Self {
        let rate = NonZeroU32::new(failures_per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = rate.saturating_mul(NonZeroU32::MIN.saturating_add(1));
        let quota = Quota::per_second(rate).allow_burst(burst);
        AdminGate {
            admin,
            failures: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
            closed_until: Mutex::new(None),
        }
    }

    /// Checks a presented admin token (`None`: no bearer at all, which counts as a wrong one).
    pub fn check(&self, presented: Option<&str>) -> Result<(), AdminRefusal> {
        let now = self.clock.now();
        {
            let mut closed = self.closed_until.lock().unwrap_or_else(|e| e.into_inner());
            match *closed {
                Some(until) if now < until => {
                    return Err(AdminRefusal::Throttled(until.duration_since(now).into()));
                }
                Some(_) => *closed = None,
                None => {}
            }
        }
        if presented.is_some_and(|t| TokenHash::of(t).ct_eq(&self.admin)) {
            return Ok(());
        }
        match self.failures.check() {
            Ok(()) => Err(AdminRefusal::Invalid),
            Err(not_until) => {
                let until = not_until.earliest_possible();
                let mut closed = self.closed_until.lock().unwrap_or_else(|e| e.into_inner());
                *closed = Some(until);
                Err(AdminRefusal::Throttled(not_until.wait_time_from(now)))
            }
        }
    }
}

impl From<AdminRefusal> for ApiError {
    fn from(r: AdminRefusal) -> Self {
        match r {
            AdminRefusal::Invalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the admin token is required",
            ),
            AdminRefusal::Throttled(wait) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "too many wrong admin tokens lately; retry in a moment",
            )
            .with_retry_after(wait),
        }
    }
}

/// The admin bearer of a request, checked through the gate.
pub fn require_admin(gate: &AdminGate, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = super::token::request_token(headers, None);
    gate.check(token.as_deref()).map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn gate(per_sec: u32) -> (AdminGate<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (
            AdminGate::with_clock(TokenHash::of("the-admin"), per_sec, clock.clone()),
            clock,
        )
    }

    #[test]
    fn wrong_tokens_get_a_burst_of_401_then_429() {
        let (g, _) = gate(10);
        for i in 0..20 {
            assert_eq!(g.check(Some("guess")), Err(AdminRefusal::Invalid), "attempt {i}");
        }
        assert!(matches!(g.check(Some("guess")), Err(AdminRefusal::Throttled(_))));
        assert!(matches!(g.check(None), Err(AdminRefusal::Throttled(_))));
    }

    #[test]
    fn the_right_token_takes_no_cell_and_waits_only_while_the_budget_is_empty() {
        let (g, clock) = gate(10);
        for _ in 0..1000 {
            assert_eq!(g.check(Some("the-admin")), Ok(()));
        }
        for _ in 0..21 {
            let _ = g.check(Some("guess"));
        }
        // spent: even the right token is not checked (it would reveal a right guess)
        let Err(AdminRefusal::Throttled(wait)) = g.check(Some("the-admin")) else {
            panic!("expected 429 while the budget is empty");
        };
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        clock.advance(wait);
        assert_eq!(g.check(Some("the-admin")), Ok(()));
    }

    #[test]
    fn refills_at_the_configured_rate() {
        let (g, clock) = gate(10);
        for _ in 0..21 {
            let _ = g.check(Some("guess"));
        }
        let mut checked = 0;
        for _ in 0..100 {
            clock.advance(Duration::from_millis(10));
            if g.check(Some("guess")) == Err(AdminRefusal::Invalid) {
                checked += 1;
            }
        }
        // one second: about 10 more guesses checked, never the 100 attempted
        assert!((9..=11).contains(&checked), "{checked}");
    }
}
