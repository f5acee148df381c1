//! The curated summary of a meeting and its exports (contract, "Exports").
//!
//! Built from the plenary document's JSON: groups in the moderator's order (meeting order when
//! there is none; unknown ids ignored, missing groups appended in meeting order), conclusions in
//! document order, hidden ones and those whose text is blank left out.

pub mod numbering;

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

/// An adopted version, as its files show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionRef {
    pub id: String,
    pub label: String,
    /// RFC 3339.
    pub adopted_at: String,
}

/// The contract's JSON, each shown conclusion with its `number` ("G.N", the one numbering of
/// [`numbering`]; an extension, the contract's fields stay).
pub fn to_json(summary: &Summary) -> String {
    to_json_version(summary, None)
}

/// [`to_json`], and for an adopted version `"version": {"id", "label", "adopted_at"}`.
pub fn to_json_version(summary: &Summary, version: Option<&VersionRef>) -> String {
    #[derive(Serialize)]
    struct C<'a> {
        id: &'a str,
        text: &'a str,
        status: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        number: Option<&'a str>,
    }
    #[derive(Serialize)]
    struct G<'a> {
        id: &'a str,
        title: &'a str,
        conclusions: Vec<C<'a>>,
    }
    #[derive(Serialize)]
    struct S<'a> {
        meeting: &'a MeetingRef,
        generated_at: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<&'a VersionRef>,
        #[serde(skip_serializing_if = "str::is_empty")]
        intro: &'a str,
        groups: Vec<G<'a>>,
        #[serde(skip_serializing_if = "str::is_empty")]
        closing: &'a str,
    }
    let nums = numbers(summary);
    let out = S {
        meeting: &summary.meeting,
        generated_at: &summary.generated_at,
        version,
        intro: &summary.intro,
        groups: summary
            .groups
            .iter()
            .enumerate()
            .map(|(gi, g)| G {
                id: &g.id,
                title: &g.title,
                conclusions: g
                    .conclusions
                    .iter()
                    .map(|c| C {
                        id: &c.id,
                        text: &c.text,
                        status: &c.status,
                        number: nums.get(&(gi, c.id.clone())).map(String::as_str),
                    })
                    .collect(),
            })
            .collect(),
        closing: &summary.closing,
    };
    serde_json::to_string_pretty(&out).unwrap_or_else(|_| "{}".into())
}

/// "Adopted version «Final», 22 November 2023 16:05 UTC" (as the minutes say it).
fn version_sentence(v: &VersionRef) -> String {
    super::wording::version_line(&v.label, &v.adopted_at)
}

/// Items' numbers by `(group index, conclusion id)`, from [`numbering::number`].
fn numbers(summary: &Summary) -> std::collections::HashMap<(usize, String), String> {
    numbering::number(summary)
        .iter()
        .flat_map(|g| {
            g.items
                .iter()
                .map(move |i| ((g.number - 1, i.conclusion.id.clone()), i.label()))
        })
        .collect()
}

/// One list item per conclusion; line breaks inside a conclusion stay inside its item. Every
/// text is escaped ([`escape_markdown`]), so a title or conclusion can neither inject HTML nor
/// change the `# ` / `## ` / `- ` structure.
pub fn to_markdown(summary: &Summary) -> String {
    to_markdown_version(summary, None)
}

/// [`to_markdown`]: each item is `- G.N text`, a draft marked `*(draft)*`; an adopted
/// version's file says its label and adoption time under the title.
pub fn to_markdown_version(summary: &Summary, version: Option<&VersionRef>) -> String {
    let nums = numbers(summary);
    let mut out = format!("# {}\n\n", escape_markdown(&one_line(&summary.meeting.title)));
    if let Some(v) = version {
        out.push_str(&format!(
            "*{}*\n\n",
            escape_markdown(&one_line(&version_sentence(v)))
        ));
    }
    if !summary.intro.trim().is_empty() {
        out.push_str(&escape_markdown(summary.intro.trim()));
        out.push_str("\n\n");
    }
    for (gi, g) in summary.groups.iter().enumerate() {
        out.push_str(&format!("## {}\n\n", escape_markdown(&one_line(&g.title))));
        for c in &g.conclusions {
            let Some(n) = nums.get(&(gi, c.id.clone())) else {
                continue;
            };
            let text = escape_markdown(c.text.trim()).replace('\n', "\n  ");
            let draft = if c.status == "final" { "" } else { " *(draft)*" };
            out.push_str(&format!("- {n} {text}{draft}\n"));
        }
        out.push('\n');
    }
    if !summary.closing.trim().is_empty() {
        out.push_str(&escape_markdown(summary.closing.trim()));
        out.push('\n');
    }
    out
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// Text as Markdown that renders as that text: no raw HTML (`<`, `>` and entity-like `&`
/// become character references), no emphasis, code, links, tables or strike-through (their
/// characters are backslash-escaped), and no block structure of its own (each line loses its
/// leading white space, so no code block, and a line starting like a heading, list item,
/// thematic break or setext underline has that character escaped). Ordinary punctuation is
/// left alone so that the file stays readable.
pub fn escape_markdown(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<String> = text.split('\n').map(escape_markdown_line).collect();
    lines.join("\n")
}

fn escape_markdown_line(line: &str) -> String {
    let line = line.trim_start();
    let mut out = String::with_capacity(line.len() + 8);
    let chars: Vec<char> = line.chars().collect();
    // "1." / "1)" at the start of a line would open an ordered list
    let digits = chars.iter().take_while(|c| c.is_ascii_digit()).count();
    let ordered_marker = (digits > 0 && matches!(chars.get(digits), Some('.' | ')'))).then_some(digits);
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' if chars
                .get(i + 1)
                .is_some_and(|n| n.is_ascii_alphanumeric() || *n == '#') =>
            {
                out.push_str("&amp;")
            }
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '#' | '=' | '+' | '-' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            // a closing sequence of an ATX heading
            '#' if i + 1 == chars.len() => out.push_str("\\#"),
            '.' | ')' if ordered_marker == Some(i) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
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
    to_html_version(summary, None)
}

/// [`to_html`]: numbered items, drafts marked; an adopted version's page says its label and
/// adoption time.
pub fn to_html_version(summary: &Summary, version: Option<&VersionRef>) -> String {
    let nums = numbers(summary);
    let t = escape_html(&summary.meeting.title);
    let mut body = String::new();
    if let Some(v) = version {
        body.push_str(&format!(
            "<p class=\"version\">{}</p>\n",
            escape_html(&version_sentence(v))
        ));
    }
    if !summary.intro.trim().is_empty() {
        body.push_str(&format!(
            "<p class=\"intro\">{}</p>\n",
            escape_html(summary.intro.trim())
        ));
    }
    for (gi, g) in summary.groups.iter().enumerate() {
        body.push_str(&format!("<section>\n<h2>{}</h2>\n", escape_html(&g.title)));
        if g.conclusions.is_empty() {
            body.push_str("<p class=\"none\">No conclusions.</p>\n");
        } else {
            body.push_str("<ul>\n");
            for c in &g.conclusions {
                let Some(n) = nums.get(&(gi, c.id.clone())) else {
                    continue;
                };
                let mark = if c.status == "final" {
                    ""
                } else {
                    " <span class=\"draft\">(draft)</span>"
                };
                body.push_str(&format!(
                    "<li><span class=\"num\">{}</span> {}{}</li>\n",
                    escape_html(n),
                    escape_html(c.text.trim()),
                    mark
                ));
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
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{t}</title>\n<style>\nbody{{font-family:Georgia,serif;max-width:48rem;margin:2rem auto;padding:0 1rem;color:#111;line-height:1.5}}\nh1{{font-size:1.8rem;border-bottom:2px solid #111}}\nh2{{font-size:1.3rem;margin-top:2rem}}\nul{{list-style:none;padding-left:0}}\nli{{margin:.4rem 0;white-space:pre-wrap;padding-left:3rem;text-indent:-3rem}}\n.num{{display:inline-block;min-width:2.6rem;text-indent:0;font-weight:bold}}\n.version{{font-weight:bold}}\n.draft{{color:#555;font-size:.85em}}\nfooter{{margin-top:3rem;color:#555;font-size:.85rem}}\n@media print{{body{{margin:0}} section{{break-inside:avoid}}}}\n</style>\n</head>\n<body>\n<h1>{t}</h1>\n{body}<footer>Generated {}</footer>\n</body>\n</html>\n",
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
        assert!(
            md.contains("## A\n\n- 2.1 one\n- 2.2 three &lt;b&gt; *(draft)*\n"),
            "{md}"
        );
        let html = to_html(&s);
        assert!(html.contains("three &lt;b&gt;"));
        assert!(!html.contains("three <b>"));
    }

    fn one_group(title: &str, texts: &[&str]) -> Summary {
        let conclusions: Vec<Value> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"id": i.to_string(), "text": t, "status": "final"}))
            .collect();
        let p = json!({"groups": [{"id": "a", "title": title, "conclusions": conclusions}]});
        from_plenary("m", title, &p, "now".into())
    }

    const HOSTILE: &[&str] = &[
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "a <a href=\"javascript:alert(1)\">link</a>",
        "<!-- comment --> and <![CDATA[x]]>",
        "&lt;script&gt; written as entities",
        "[click](javascript:alert(1)) and ![img](http://x/y.png)",
        "<javascript:alert(1)>",
        "**bold** _em_ `code` ~~strike~~ | table |",
        "line one\n# heading\n## sub\n- item\n+ item\n* item\n1. ordered\n2) ordered\n> quote\n---\n===\n    code block\n```\nfence",
        "back\\slash\r\n<b>crlf</b>\rcr",
    ];

    #[test]
    fn markdown_never_passes_raw_html_or_structure_through() {
        let s = one_group("Title <b>x</b> #", HOSTILE);
        let md = to_markdown(&s);
        // raw HTML: no '<' or '>' at all outside the escapes, no live entity
        assert!(!md.contains('<') && !md.contains('>'), "{md}");
        assert!(
            !md.contains("&lt;script&gt; written"),
            "an entity in the text must stay text: {md}"
        );
        assert!(md.contains("&amp;lt;script&amp;gt; written"), "{md}");
        // structure: exactly one '# ', one '## ', one '- ' per conclusion, at line starts
        let starts = |p: &str| md.lines().filter(|l| l.starts_with(p)).count();
        assert_eq!(starts("# "), 1, "{md}");
        assert_eq!(starts("## "), 1, "{md}");
        assert_eq!(starts("- "), HOSTILE.len(), "{md}");
        // every other line is a continuation of a list item, indented by exactly two spaces and
        // starting with no block marker
        for l in md
            .lines()
            .skip(4)
            .filter(|l| !l.is_empty() && !l.starts_with("- "))
        {
            assert!(l.starts_with("  ") && !l.starts_with("   "), "{l:?} in {md}");
            let rest = &l[2..];
            assert!(
                !rest.starts_with(['#', '-', '+', '*', '=', '>', '`', '<'])
                    && !rest.split(['.', ')']).next().is_some_and(|d| !d.is_empty()
                        && d.chars().all(|c| c.is_ascii_digit())
                        && rest.len() > d.len()),
                "line {l:?} opens a block: {md}"
            );
        }
        // inline syntax is escaped, text is still readable
        assert!(
            md.contains("\\*\\*bold\\*\\* \\_em\\_ \\`code\\` \\~\\~strike\\~\\~ \\| table \\|"),
            "{md}"
        );
        assert!(md.contains("\\[click\\](javascript:alert(1))"), "{md}");
        assert!(
            md.contains("- 1.1 &lt;script&gt;alert(1)&lt;/script&gt;\n"),
            "{md}"
        );
        assert!(md.starts_with("# Title &lt;b&gt;x&lt;/b&gt; \\#\n"), "{md}");
        assert!(md.contains("back\\\\slash"), "{md}");
        // ordinary text untouched
        let plain = to_markdown(&one_group(
            "Migrants, e.g. 2023: R & D (draft).",
            &["Keep it 100% simple, e.g. this."],
        ));
        assert!(
            plain.contains("# Migrants, e.g. 2023: R & D (draft).\n"),
            "{plain}"
        );
        assert!(
            plain.contains("- 1.1 Keep it 100% simple, e.g. this.\n"),
            "{plain}"
        );
    }

    #[test]
    fn html_escapes_every_text() {
        let s = one_group("<b>T</b>", HOSTILE);
        let html = to_html(&s);
        let body = &html[html.find("<body>").unwrap_or(0)..];
        for bad in ["<script", "<img", "<a ", "<!--", "<![CDATA", "<b>", "<javascript"] {
            assert!(!body.contains(bad), "{bad} passed through: {html}");
        }
        assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(body.contains("&lt;img src=x onerror=alert(1)&gt;"), "{html}");
        assert!(html.contains("<title>&lt;b&gt;T&lt;/b&gt;</title>"), "{html}");
    }
}
