//! Throwaway databases for the tests, on the cluster `scripts/pg.sh` starts.
//!
//! `PLENARY_TEST_PG_URL` names a superuser URL of that cluster (`scripts/test.sh` exports it).
//! Without it the PostgreSQL tests are skipped with a message, unless `PLENARY_REQUIRE_PG=1`
//! (set by `scripts/test.sh`), where they fail: the test command never passes without having
//! run them.

use std::sync::atomic::{AtomicU32, Ordering};

/// The test cluster's URL, `None` to skip (after saying so on stderr).
///
/// # Panics
/// When `PLENARY_REQUIRE_PG=1` and `PLENARY_TEST_PG_URL` is unset or empty.
pub fn test_url() -> Option<String> {
    match std::env::var("PLENARY_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("PLENARY_REQUIRE_PG").as_deref() == Ok("1") {
                panic!("PLENARY_REQUIRE_PG=1 but PLENARY_TEST_PG_URL is unset: start a cluster with scripts/pg.sh");
            }
            eprintln!("PLENARY_TEST_PG_URL is unset: skipping a PostgreSQL test (scripts/pg.sh start DIR makes a cluster)");
            None
        }
    }
}

/// `url` with its database replaced by `db` (the path of a `postgres://…/DB?…` URL).
pub fn with_database(url: &str, db: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[after_scheme..].find('/').map(|i| after_scheme + i);
    let query_start = url[after_scheme..].find('?').map(|i| after_scheme + i);
    match (path_start, query_start) {
        (Some(p), Some(q)) if p < q => format!("{}/{db}{}", &url[..p], &url[q..]),
        (Some(p), None) => format!("{}/{db}", &url[..p]),
        (_, Some(q)) => format!("{}/{db}{}", &url[..q], &url[q..]),
        (None, None) => format!("{url}/{db}"),
    }
}

/// Creates an empty database on the cluster of `admin_url`; returns its URL.
pub async fn fresh_database(admin_url: &str) -> Result<String, tokio_postgres::Error> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "plenary_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    );
    let config: tokio_postgres::Config = admin_url.parse()?;
    let client = super::connect(&config).await?;
    // The name is ours (digits and underscores): nothing to quote.
    client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
    Ok(with_database(admin_url, &name))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5432/postgres", "x"),
            "postgres://u@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgresql://u@h:1/postgres?sslmode=disable", "x"),
            "postgresql://u@h:1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
        assert_eq!(
            with_database("postgres://u@h:1?a=b", "x"),
            "postgres://u@h:1/x?a=b"
        );
    }
}
