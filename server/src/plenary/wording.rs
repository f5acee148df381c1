//! How the summary and the minutes say a time and an adopted version, in words.

/// An RFC 3339 time as "22 November 2023 16:05 UTC"; anything else is shown as given.
pub fn human_time(rfc3339: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    match time::OffsetDateTime::parse(rfc3339.trim(), &Rfc3339) {
        Ok(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{} {} {} {:02}:{:02} UTC",
                t.day(),
                t.month(),
                t.year(),
                t.hour(),
                t.minute()
            )
        }
        Err(_) => rfc3339.trim().to_owned(),
    }
}

/// "Adopted version «Final», 22 November 2023 16:05 UTC".
pub fn version_line(label: &str, adopted_at: &str) -> String {
    format!(
        "Adopted version \u{ab}{}\u{bb}, {}",
        label.trim(),
        human_time(adopted_at)
    )
}
