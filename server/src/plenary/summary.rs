//! The curated summary of a meeting and its exports (contract, "Exports").
//!
//! Built from the plenary document's JSON: groups in the moderator's order (meeting order when
//! there is none; unknown ids ignored, missing groups appended in meeting order), conclusions in
//! document order, hidden ones and those whose text is blank left out.

use plenary_protocol::layout::plenary as pk;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub meeting: MeetingRef,
    pub generated_at: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub intro: String,
    pub groups: Vec<SummaryGroup>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub closing: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingRef {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryGroup {
    pub id: String,
    pub title: String,
    pub conclusions: Vec<SummaryConclusion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryConclusion {
    pub id: String,
    pub text: String,
    pub status: String,
}

fn s(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// The summary of a plenary document given as `plenary_json` output.
pub fn from_plenary(meeting_id: &str, title: &str, plenary: &Value, generated_at: String) -> Summary {
    let empty = Vec::new();
    let sections = plenary
        .get(pk::GROUPS)
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let curation = plenary.get(pk::CURATION).cloned().unwrap_or(Value::Null);
    let hidden = curation.get(pk::HIDDEN).and_then(Value::as_object);
    let order: Vec<String> = curation
        .get(pk::ORDER)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let mut ordered: Vec<&Value> = Vec::new();
    for id in &order {
        if let Some(sec) = sections.iter().find(|g| s(g, pk::GROUP_ID) == *id) {
            if !ordered.iter().any(|o| std::ptr::eq(*o, sec)) {
                ordered.push(sec);
            }
        }
    }
    for sec in sections {
        if !ordered.iter().any(|o| std::ptr::eq(*o, sec)) {
            ordered.push(sec);
        }
    }
    let groups = ordered
        .into_iter()
        .map(|g| {
            let gid = s(g, pk::GROUP_ID);
            let conclusions = g
                .get(pk::GROUP_CONCLUSIONS)
                .and_then(Value::as_array)
                .unwrap_or(&empty)
                .iter()
                .filter(|c| !s(c, "text").trim().is_empty())
                .filter(|c| {
                    let key = pk::item_key(&gid, &s(c, "id"));
                    !hidden
                        .map(|h| h.get(&key).map(|v| v.as_bool() == Some(true)).unwrap_or(false))
                        .unwrap_or(false)
                })
                .map(|c| SummaryConclusion {
                    id: s(c, "id"),
                    text: s(c, "text"),
                    status: s(c, "status"),
                })
                .collect();
            SummaryGroup {
                id: gid,
                title: s(g, pk::GROUP_TITLE),
                conclusions,
            }
        })
        .collect();
    Summary {
        meeting: MeetingRef {
            id: meeting_id.to_owned(),
            title: title.to_owned(),
        },
        generated_at,
        intro: s(&curation, pk::INTRO),
        groups,
        closing: s(&curation, pk::CLOSING),
    }
}

pub fn to_json(summary: &Summary) -> String {
    serde_json::to_string_pretty(summary).unwrap_or_else(|_| "{}".into())
}

/// One line per conclusion; line breaks inside a conclusion are kept inside its list item.
pub fn to_markdown(summary: &Summary) -> String {
    let mut out = format!("# {}\n\n", one_line(&summary.meeting.title));
    if !summary.intro.trim().is_empty() {
        out.push_str(summary.intro.trim());
        out.push_str("\n\n");
    }
    for g in &summary.groups {
        out.push_str(&format!("## {}\n\n", one_line(&g.title)));
        for c in &g.conclusions {
            out.push_str(&format!("- {}\n", c.text.trim().replace('\n', "\n  ")));
        }
        out.push('\n');
    }
    if !summary.closing.trim().is_empty() {
        out.push_str(summary.closing.trim());
        out.push('\n');
    }
    out
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A standalone, printable page.
pub fn to_html(summary: &Summary) -> String {
    let t = escape_html(&summary.meeting.title);
    let mut body = String::new();
    if !summary.intro.trim().is_empty() {
        body.push_str(&format!(
            "<p class=\"intro\">{}</p>\n",
            escape_html(summary.intro.trim())
        ));
    }
    for g in &summary.groups {
        body.push_str(&format!("<section>\n<h2>{}</h2>\n", escape_html(&g.title)));
        if g.conclusions.is_empty() {
            body.push_str("<p class=\"none\">No conclusions.</p>\n");
        } else {
            body.push_str("<ul>\n");
            for c in &g.conclusions {
                let mark = if c.status == "final" {
                    ""
                } else {
                    " <span class=\"draft\">(draft)</span>"
                };
                body.push_str(&format!("<li>{}{}</li>\n", escape_html(c.text.trim()), mark));
            }
            body.push_str("</ul>\n");
        }
        body.push_str("</section>\n");
    }
    if !summary.closing.trim().is_empty() {
        body.push_str(&format!(
            "<p class=\"closing\">{}</p>\n",
            escape_html(summary.closing.trim())
        ));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{t}</title>\n<style>\nbody{{font-family:Georgia,serif;max-width:48rem;margin:2rem auto;padding:0 1rem;color:#111;line-height:1.5}}\nh1{{font-size:1.8rem;border-bottom:2px solid #111}}\nh2{{font-size:1.3rem;margin-top:2rem}}\nli{{margin:.4rem 0;white-space:pre-wrap}}\n.draft{{color:#555;font-size:.85em}}\nfooter{{margin-top:3rem;color:#555;font-size:.85rem}}\n@media print{{body{{margin:0}} section{{break-inside:avoid}}}}\n</style>\n</head>\n<body>\n<h1>{t}</h1>\n{body}<footer>Generated {}</footer>\n</body>\n</html>\n",
        escape_html(&summary.generated_at)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plenary() -> Value {
        json!({
            "groups": [
                {"id":"a","title":"A","conclusions":[{"id":"1","text":"one","status":"final"},{"id":"2","text":"  ","status":"draft"},{"id":"3","text":"three <b>","status":"draft"}]},
                {"id":"b","title":"B","conclusions":[]}
            ],
            "curation": {"order":["b","zz","a"],"hidden":{"a/3":true}}
        })
    }

    #[test]
    fn follows_curation_and_drops_blank_and_hidden() {
        let s = from_plenary("m", "Meeting", &plenary(), "2026-01-01T00:00:00Z".into());
        assert_eq!(
            s.groups.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
            vec!["b", "a"]
        );
        assert_eq!(s.groups[1].conclusions.len(), 1);
        assert_eq!(s.groups[1].conclusions[0].text, "one");
        assert!(s.groups[0].conclusions.is_empty());
    }

    #[test]
    fn renders_markdown_and_escaped_html() {
        let mut p = plenary();
        p["curation"]["hidden"] = json!({});
        let s = from_plenary("m", "Meeting", &p, "now".into());
        let md = to_markdown(&s);
        assert!(md.starts_with("# Meeting\n"));
        assert!(md.contains("## A\n\n- one\n- three <b>\n"));
        let html = to_html(&s);
        assert!(html.contains("three &lt;b&gt;"));
        assert!(!html.contains("three <b>"));
    }
}
