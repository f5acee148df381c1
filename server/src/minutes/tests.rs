//! Minutes of the Skopje demo meeting: DOCX and PDF checked from the outside (unzipped XML,
//! poppler's `pdftotext`, `pdffonts`, `pdfinfo`).

use super::notes::{Block, Inline, ListItem, Marks};
use super::*;
use crate::plenary::summary::from_plenary;
use serde_json::{json, Value};
use std::io::Read;
use std::process::Command;

/// Shown conclusions of the fixture, in curated order: (label, text, draft).
pub(crate) const SHOWN: usize = 12;

fn conclusions() -> Value {
    json!([
        {"id":"wg-migrants","title":"Migrants with weapons","conclusions":[
            {"id":"m1","status":"final","text":"Armed violence among migrants on the Balkan route is rising, and border police should record every seizure of firearms from migrants in a shared regional format."},
            {"id":"m2","status":"draft","text":"Links between migrant smugglers and organised crime groups require joint investigations, with FRONTEX and IOM supporting the exchange of case files between the jurisdictions concerned."},
            {"id":"m3","status":"final","text":"   "},
            {"id":"m4","status":"final","text":"Participants asked for a common situational analysis of armed possession cases, published twice a year, so that Škopje, Beograd and Sarajevo work from the same picture."},
            {"id":"m5","status":"draft","text":"This item was hidden by the moderator and must not appear in any export, whatever its number would have been."},
            {"id":"m6","status":"draft","text":"The origin of seized weapons should be traced systematically through national focal points, and the results fed back to the customs services that made the seizure."}
        ]},
        {"id":"wg-handbook","title":"Handbook on Firearms for Border Guards and Customs and its implementation","conclusions":[
            {"id":"h1","status":"final","text":"The Handbook and its Standard Operating Procedures should be integrated into the basic training curricula of border police and customs in every participating jurisdiction by the end of next year."},
            {"id":"h2","status":"final","text":"Inter-institutional cooperation works best where border police and customs share one duty roster at crossing points; participants recommend piloting this at two more crossings."},
            {"id":"h3","status":"draft","text":"The firearms detection course held by SEESAC and FRONTEX was rated highly; a follow-up course for trainers should be organised so that national academies can repeat it."},
            {"id":"h4","status":"final","text":"Translations of the Handbook into the languages of the region, including Macedonian (Прирачник за огнено оружје) and Montenegrin, should be checked by practitioners before printing."}
        ]},
        {"id":"wg-trends","title":"New trends and threats in firearms trafficking","conclusions":[
            {"id":"t1","status":"final","text":"Blank-firing weapons converted to fire live ammunition remain the most frequent new threat; customs should share the technical features of convertible models through SEESAC."},
            {"id":"t2","status":"draft","text":"Fake guns and replicas ordered online reach the region in small parcels; postal and express courier flows need risk profiles developed jointly with the Hungarian and Bulgarian Customs."},
            {"id":"t3","status":"final","text":"New technologies used to convert firearms, including 3D-printed parts, call for specialised forensic capacity; Gordana Petrović suggested a regional expert roster hosted by UNODC."},
            {"id":"t4","status":"draft","text":"Best practices in detecting and handling explosive precursors at borders should be collected in an annex to the Handbook, with contact points for returning shipments to the sending country."}
        ]}
    ])
}

pub(crate) fn skopje_summary() -> crate::plenary::summary::Summary {
    let seed = crate::demo::SEED;
    let line = |needle: &str| seed.lines().find(|l| l.contains(needle)).unwrap_or("").to_owned();
    let plenary = json!({
        "groups": conclusions(),
        "curation": {
            "order": ["wg-trends", "no-such-group", "wg-migrants"],
            "hidden": {"wg-migrants/m5": true},
            "intro": format!("{}\n\n{}", line("was held this year"), line("gathered participants")),
            "closing": line("Lively discussions"),
        }
    });
    from_plenary(
        "skopje-2023",
        seed.lines().next().unwrap_or_default(),
        &plenary,
        "2023-11-22T15:05:00Z".into(),
    )
}

/// (label, text, draft) of every shown conclusion, in curated order.
fn expected() -> Vec<(String, String, bool)> {
    let s = skopje_summary();
    let out: Vec<_> = number(&s)
        .iter()
        .flat_map(|g| {
            g.items
                .iter()
                .map(|i| (i.label(), i.text().to_owned(), i.is_draft()))
        })
        .collect();
    assert_eq!(out.len(), SHOWN);
    assert_eq!(out[0].0, "1.1");
    assert!(out[0].1.starts_with("Blank-firing"), "wg-trends comes first");
    assert_eq!(out[4].0, "2.1");
    assert_eq!(out[6].0, "2.3");
    assert!(
        out[6].1.starts_with("Participants"),
        "the blank item takes no number"
    );
    assert_eq!(out[7].0, "2.4");
    assert!(
        out[7].1.starts_with("The origin"),
        "the hidden item takes no number"
    );
    assert_eq!(out[8].0, "3.1");
    out
}

fn t(s: &str) -> Inline {
    Inline::Text {
        text: s.into(),
        marks: Marks::default(),
    }
}

fn notes() -> std::collections::HashMap<String, Vec<Block>> {
    let bold = Marks {
        bold: true,
        ..Marks::default()
    };
    let mut m = std::collections::HashMap::new();
    let mut long = Vec::new();
    for i in 0..3 {
        long.push(Block::Paragraph(vec![t(&format!(
            "Paragraph {i} of the migrants group's notes, long enough to wrap onto a second line of the page when it is set in the body size of the annex."
        ))]));
    }
    let mut blocks = vec![
        Block::Heading {
            level: 1,
            inlines: vec![t("Discussion in Skopje")],
        },
        Block::Paragraph(vec![
            t("The group agreed on "),
            Inline::Text {
                text: "three priorities".into(),
                marks: bold,
            },
            t("."),
        ]),
        Block::BulletList(vec![
            ListItem {
                blocks: vec![Block::Paragraph(vec![t("Shared seizure format")])],
            },
            ListItem {
                blocks: vec![
                    Block::Paragraph(vec![t("Joint investigations")]),
                    Block::OrderedList {
                        start: 1,
                        items: vec![ListItem {
                            blocks: vec![Block::Paragraph(vec![t("Nested ordered point")])],
                        }],
                    },
                ],
            },
        ]),
        Block::Blockquote(vec![Block::Paragraph(vec![t("Quoted remark by the rapporteur")])]),
        Block::CodeBlock("ref: CFSP 2019/2111".into()),
    ];
    blocks.extend(long);
    m.insert("wg-migrants".to_owned(), blocks);
    m.insert(
        "wg-trends".to_owned(),
        vec![Block::Paragraph(vec![t("Notes of the trends group")])],
    );
    m
}

fn input(with_notes: bool) -> MinutesInput {
    MinutesInput {
        summary: skopje_summary(),
        version: Some(Version {
            label: "Final".into(),
            adopted_at: "2023-11-22T16:05:00+00:00".into(),
        }),
        notes: with_notes.then(notes),
    }
}

fn out_dir() -> std::path::PathBuf {
    let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-output/minutes");
    let _ = std::fs::create_dir_all(&d);
    d
}

#[tokio::test]
async fn minutes_notes_from_store_reads_each_group_document() {
    use crate::store::{DocAppend, Store};
    use yrs::{ReadTxn, Transact};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::store::sqlite::SqliteStore::open(dir.path(), crate::store::Durability::Process)
        .expect("store");
    let doc = super::notes::tests::sample_doc();
    let update = doc
        .transact()
        .encode_state_as_update_v1(&yrs::StateVector::default());
    store
        .append(vec![DocAppend {
            doc: "skopje-2023/wg-migrants".into(),
            updates: vec![update],
            fence: None,
        }])
        .await
        .expect("append");
    let s = skopje_summary();
    let stored = stored_notes(&store, &s).await.expect("stored notes");
    let notes = notes_of(&stored).expect("notes");
    assert_eq!(notes.len(), 3, "one entry per group");
    assert_eq!(notes["wg-migrants"], super::notes::read_notes(&doc.transact()));
    assert!(matches!(
        &notes["wg-migrants"][0],
        Block::Heading { level: 2, .. }
    ));
    assert!(notes["wg-trends"].is_empty());
}

// ---------- DOCX ----------

fn document_xml(bytes: &[u8]) -> String {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip file");
    for name in ["[Content_Types].xml", "word/styles.xml", "word/numbering.xml"] {
        assert!(zip.by_name(name).is_ok(), "{name} is missing");
    }
    let mut xml = String::new();
    zip.by_name("word/document.xml")
        .expect("word/document.xml")
        .read_to_string(&mut xml)
        .expect("utf-8");
    xml
}

/// The text of each `<w:p>`, tabs as `\t`.
fn paragraphs_of(xml: &str) -> Vec<String> {
    xml.split("</w:p>")
        .map(|p| {
            let p = p.replace("<w:tab />", "\t").replace("<w:tab/>", "\t");
            let mut out = String::new();
            let mut in_tag = false;
            let mut in_text = false;
            let mut tag = String::new();
            for c in p.chars() {
                match c {
                    '<' => {
                        in_tag = true;
                        tag.clear();
                    }
                    '>' => {
                        in_tag = false;
                        in_text = tag.starts_with("w:t ") || tag == "w:t";
                    }
                    '\t' if !in_tag => out.push('\t'),
                    c if in_tag => tag.push(c),
                    c if in_text => out.push(c),
                    _ => {}
                }
            }
            out.replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
        })
        .collect()
}

#[test]
fn minutes_docx_has_numbered_conclusions_in_curated_order() {
    let bytes = render_docx(&input(false)).expect("docx");
    std::fs::write(out_dir().join("summary.docx"), &bytes).expect("write");
    let xml = document_xml(&bytes);
    let paras = paragraphs_of(&xml);
    let mut at = 0;
    for (label, text, draft) in expected() {
        let want = format!("{label}\t{text}");
        let i = paras[at..]
            .iter()
            .position(|p| p.starts_with(&want))
            .unwrap_or_else(|| panic!("no paragraph {want:?} after paragraph {at}"))
            + at;
        assert_eq!(
            paras[i].ends_with("(draft)"),
            draft,
            "draft marking of {label}: {:?}",
            paras[i]
        );
        at = i + 1;
    }
    assert!(!xml.contains("must not appear"), "the hidden item is left out");
    assert!(paras
        .iter()
        .any(|p| p == "1.\tNew trends and threats in firearms trafficking"));
    assert!(paras
        .iter()
        .any(|p| p == "3.\tHandbook on Firearms for Border Guards and Customs and its implementation"));
    assert!(
        paras[0].starts_with("Regional Meeting of the Border Police"),
        "{:?}",
        paras[0]
    );
    assert!(
        paras
            .iter()
            .any(|p| p == "Adopted version \u{ab}Final\u{bb}, 22 November 2023 16:05 UTC"),
        "version line"
    );
    assert!(paras.iter().any(|p| p == "Generated 22 November 2023 15:05 UTC"));
    assert!(
        paras
            .iter()
            .any(|p| p.starts_with("The Regional Meeting of the Border Police")),
        "intro"
    );
    assert!(
        paras.iter().any(|p| p.starts_with("Lively discussions")),
        "closing"
    );
    assert!(!xml.contains(ANNEX_TITLE), "no annex unless asked");
    // A4 and a footer with "Page X of Y".
    assert!(xml.contains(r#"<w:pgSz w:w="11906" w:h="16838""#), "A4");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).expect("zip");
    let footer_name = (0..zip.len())
        .filter_map(|i| zip.by_index(i).ok().map(|f| f.name().to_owned()))
        .find(|n| n.starts_with("word/footer"))
        .expect("a footer part");
    let mut footer = String::new();
    zip.by_name(&footer_name)
        .expect("footer")
        .read_to_string(&mut footer)
        .expect("utf-8");
    assert!(
        footer.contains(">PAGE<") && footer.contains(">NUMPAGES<"),
        "{footer}"
    );
    assert!(footer.contains("Representatives \u{2014} Final"), "{footer}");
    // The draft marking is italic; a conclusion's paragraph has the hanging-indent style.
    assert!(xml.contains(r#"<w:pStyle w:val="Conclusion" />"#));
    let draft_run = xml.find("(draft)").expect("draft mark");
    let run_start = xml[..draft_run].rfind("<w:r>").expect("run");
    assert!(xml[run_start..draft_run].contains("<w:i />"), "(draft) is italic");
}

#[test]
fn minutes_docx_notes_annex() {
    let bytes = render_docx(&input(true)).expect("docx");
    std::fs::write(out_dir().join("summary-notes.docx"), &bytes).expect("write");
    let xml = document_xml(&bytes);
    let paras = paragraphs_of(&xml);
    let annex = paras
        .iter()
        .position(|p| p == ANNEX_TITLE)
        .expect("annex heading");
    let rest = &paras[annex..];
    let idx = |s: &str| {
        rest.iter()
            .position(|p| p == s)
            .unwrap_or_else(|| panic!("{s:?} missing in the annex"))
    };
    // Groups in curated order, each with its number; one without notes says so.
    assert!(idx("1.\tNew trends and threats in firearms trafficking") < idx("Notes of the trends group"));
    assert!(idx("Notes of the trends group") < idx("2.\tMigrants with weapons"));
    assert!(idx("2.\tMigrants with weapons") < idx("Discussion in Skopje"));
    assert!(
        idx("3.\tHandbook on Firearms for Border Guards and Customs and its implementation") < idx(NO_NOTES)
    );
    for s in [
        "Shared seizure format",
        "Joint investigations",
        "Nested ordered point",
        "Quoted remark by the rapporteur",
        "ref: CFSP 2019/2111",
    ] {
        idx(s);
    }
    let xml_rest = &xml[xml.find(ANNEX_TITLE).expect("annex")..];
    let para_xml = |needle: &str| {
        let at = xml_rest.find(needle).unwrap_or_else(|| panic!("{needle}"));
        let start = xml_rest[..at]
            .rfind("<w:p>")
            .or_else(|| xml_rest[..at].rfind("<w:p "))
            .expect("p");
        &xml_rest[start..at]
    };
    assert!(para_xml("Discussion in Skopje").contains(r#"<w:pStyle w:val="Heading3" />"#));
    assert!(
        para_xml("Shared seizure format").contains("<w:numPr>"),
        "a list item is numbered"
    );
    assert!(
        para_xml("Nested ordered point").contains(r#"<w:ilvl w:val="1" />"#),
        "nested one level deeper"
    );
    assert!(para_xml("Quoted remark").contains(r#"<w:pStyle w:val="Quote" />"#));
    let bold = xml_rest.find("three priorities").expect("bold text");
    let run = xml_rest[..bold].rfind("<w:r>").expect("run");
    let rpr = &xml_rest[run..bold];
    assert!(
        rpr.contains("<w:b />") || rpr.contains("<w:b/>"),
        "bold run: {rpr}"
    );
    let plain = xml_rest.find("The group agreed on").expect("plain text");
    let run = xml_rest[..plain].rfind("<w:r>").expect("run");
    assert!(!xml_rest[run..plain].contains("<w:b "), "plain run is not bold");
    // Ordered lists and bullets are defined.
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).expect("zip");
    let mut numbering = String::new();
    zip.by_name("word/numbering.xml")
        .expect("numbering")
        .read_to_string(&mut numbering)
        .expect("utf-8");
    // The list items point at numberings whose first level is a bullet, resp. a number.
    let level_format = |item: &str, ilvl: usize| -> String {
        let p = para_xml(item);
        let num_id = between(p, r#"<w:numId w:val=""#, "\"");
        let nums: Vec<&str> = numbering
            .split("<w:num ")
            .skip(1)
            .filter(|n| n.starts_with(&format!(r#"w:numId="{num_id}""#)))
            .collect();
        assert_eq!(nums.len(), 1, "numId {num_id} defined once");
        let abs = between(nums[0], r#"<w:abstractNumId w:val=""#, "\"");
        let def = numbering
            .split("<w:abstractNum ")
            .find(|a| a.starts_with(&format!(r#"w:abstractNumId="{abs}""#)))
            .unwrap_or_else(|| panic!("abstractNum {abs}"));
        let lvl = def.split("<w:lvl ").nth(ilvl + 1).expect("level");
        between(lvl, r#"<w:numFmt w:val=""#, "\"").to_owned()
    };
    assert_eq!(level_format("Shared seizure format", 0), "bullet");
    assert_eq!(level_format("Nested ordered point", 1), "decimal");
}

#[test]
fn minutes_docx_live_summary_without_version() {
    let mut i = input(false);
    i.version = None;
    i.summary.groups[1].conclusions.clear();
    i.summary.groups[0].conclusions[0].text = "A & B <c> \u{b}pasted\u{1}".into();
    let xml = document_xml(&render_docx(&i).expect("docx"));
    assert!(!xml.contains("Adopted version"));
    assert!(xml.contains(LIVE_MARK), "a live summary says it is not adopted");
    assert!(
        xml.contains(NO_CONCLUSIONS),
        "a group without conclusions says so"
    );
    assert!(
        xml.contains("A &amp; B &lt;c&gt; pasted"),
        "escaped, control characters dropped"
    );
    assert!(!xml
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t'));
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let a = s.find(start).unwrap_or_else(|| panic!("{start} in {s}")) + start.len();
    let b = s[a..].find(end).expect("end") + a;
    &s[a..b]
}

// ---------- PDF ----------

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-v").output().is_ok()
}

/// Poppler's tools, installed with apt when missing. Under CI a missing tool fails the test;
/// elsewhere the test is skipped with a message.
fn poppler() -> bool {
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ONCE.get_or_init(|| {
        if !have("pdftotext") {
            eprintln!("pdftotext missing: trying apt-get install -y poppler-utils");
            let _ = Command::new("apt-get")
                .args(["install", "-y", "-qq", "poppler-utils"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status();
        }
        let ok = have("pdftotext") && have("pdffonts") && have("pdfinfo");
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but poppler-utils (pdftotext, pdffonts, pdfinfo) cannot be installed"
            );
            eprintln!("SKIPPED: poppler-utils (pdftotext) is not installed and cannot be installed here");
        }
        ok
    })
}

fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().expect(tool);
    assert!(
        out.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn write_pdf(name: &str, bytes: &[u8]) -> String {
    let path = out_dir().join(name);
    std::fs::write(&path, bytes).expect("write");
    path.to_string_lossy().into_owned()
}

/// `pdftotext -layout` without the footer lines, whitespace collapsed.
fn pdf_text(path: &str) -> String {
    let text = run("pdftotext", &["-layout", "-enc", "UTF-8", path, "-"]);
    text.lines()
        .filter(|l| !(l.contains("Page ") && l.trim_end().rsplit(' ').nth(1) == Some("of")))
        .flat_map(|l| l.split_whitespace())
        .collect::<Vec<_>>()
        .join(" ")
}

fn pages(path: &str) -> usize {
    run("pdfinfo", &[path])
        .lines()
        .find_map(|l| l.strip_prefix("Pages:").map(|n| n.trim().parse().expect("count")))
        .expect("Pages:")
}

#[test]
fn minutes_pdf_text_order_fonts_and_pages() {
    let bytes = render_pdf(&input(false)).expect("pdf");
    assert!(bytes.starts_with(b"%PDF-"));
    if !poppler() {
        return;
    }
    let path = write_pdf("summary.pdf", &bytes);
    let text = pdf_text(&path);
    let mut at = 0;
    for (label, body, draft) in expected() {
        let mut want = format!(
            "{label} {}",
            body.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        if draft {
            want.push_str(" (draft)");
        }
        let i = text[at..]
            .find(&want)
            .unwrap_or_else(|| panic!("{want:?} not found in order in:\n{}", &text[at..]))
            + at;
        let after = &text[i + want.len()..];
        assert!(draft || !after.starts_with(" (draft)"), "{label} is final");
        at = i + want.len();
    }
    assert!(
        text.contains("Škopje") && text.contains("Petrović") && text.contains("Прирачник"),
        "Latin Extended and Cyrillic"
    );
    assert!(text.contains("Adopted version «Final», 22 November 2023 16:05 UTC"));
    assert!(text.contains("1. New trends and threats in firearms trafficking"));
    assert!(!text.contains("must not appear"));
    assert!(pages(&path) > 1, "the Skopje minutes take more than one page");
    // Page numbers.
    let raw = run("pdftotext", &["-layout", &path, "-"]);
    let n = pages(&path);
    assert!(raw.contains(&format!("Page 1 of {n}")) && raw.contains(&format!("Page {n} of {n}")));
    // Lines are wrapped with the real glyph widths: no word crosses the right margin, and
    // the lines are filled (a wrapped line ends within a few words of it).
    let bbox = run("pdftotext", &["-bbox", &path, "-"]);
    let right = 595.276 - 70.87;
    let mut widest = 0.0f64;
    for w in bbox.lines().filter(|l| l.trim_start().starts_with("<word ")) {
        let x_max: f64 = between(w, "xMax=\"", "\"").parse().expect("xMax");
        assert!(x_max <= right + 0.5, "beyond the right margin: {w}");
        widest = widest.max(x_max);
    }
    assert!(
        widest > right - 15.0,
        "lines are filled up to the margin: {widest}"
    );
    // Every font is embedded.
    let fonts = run("pdffonts", &[&path]);
    let rows: Vec<&str> = fonts.lines().skip(2).filter(|l| !l.trim().is_empty()).collect();
    assert!(rows.len() >= 2, "regular and bold at least:\n{fonts}");
    for r in &rows {
        let cols: Vec<&str> = r.split_whitespace().collect();
        assert_eq!(cols[cols.len() - 5], "yes", "not embedded: {r}");
        assert!(r.contains("Liberation"), "{r}");
    }
}

#[test]
fn minutes_pdf_notes_annex_and_wrapping() {
    let bytes = render_pdf(&input(true)).expect("pdf");
    if !poppler() {
        return;
    }
    let path = write_pdf("summary-notes.pdf", &bytes);
    let text = pdf_text(&path);
    let annex = text.find(ANNEX_TITLE).expect("annex");
    let rest = &text[annex..];
    let pos = |s: &str| {
        rest.find(s)
            .unwrap_or_else(|| panic!("{s:?} missing in the annex:\n{rest}"))
    };
    assert!(pos("1. New trends") < pos("Notes of the trends group"));
    assert!(pos("2. Migrants with weapons") < pos("Discussion in Skopje"));
    assert!(pos("• Shared seizure format") < pos("• Joint investigations"));
    assert!(pos("• Joint investigations") < pos("1. Nested ordered point"));
    assert!(pos("Quoted remark by the rapporteur") > 0);
    assert!(pos("ref: CFSP 2019/2111") > 0);
    assert!(pos(NO_NOTES) > pos("3. Handbook"));
    // Wrapped lines of a conclusion start under its text, not under its number.
    let raw = run("pdftotext", &["-layout", &path, "-"]);
    let lines: Vec<&str> = raw.lines().collect();
    let first = lines
        .iter()
        .position(|l| l.trim_start().starts_with("1.1 "))
        .expect("1.1");
    let text_col = lines[first].find("Blank-firing").expect("text column");
    let next = lines[first + 1];
    let indent = next.len() - next.trim_start().len();
    assert!(
        !next.trim().is_empty() && !next.trim_start().starts_with("1.2"),
        "1.1 wraps: {next:?}"
    );
    assert!(
        indent.abs_diff(text_col) <= 1,
        "continuation at column {indent}, text at {text_col}"
    );
}

#[test]
fn minutes_pdf_empty_and_huge_inputs() {
    // An empty meeting still makes a one-page PDF.
    let mut i = input(false);
    i.version = None;
    i.summary.groups.clear();
    i.summary.intro.clear();
    i.summary.meeting.title.clear();
    let bytes = render_pdf(&i).expect("pdf");
    assert!(bytes.starts_with(b"%PDF-"));
    if poppler() {
        let path = write_pdf("empty.pdf", &bytes);
        assert_eq!(pages(&path), 1);
        let text = pdf_text(&path);
        assert!(
            text.starts_with("Summary of conclusions Live summary, not an adopted version"),
            "{text}"
        );
    }
    // One unbroken word longer than a line, and many conclusions: cut, paged, no panic.
    let mut i = input(false);
    i.summary.groups[0].conclusions[0].text = "x".repeat(5000);
    for n in 0..300 {
        i.summary.groups[0]
            .conclusions
            .push(crate::plenary::summary::SummaryConclusion {
                id: format!("n{n}"),
                text: format!("conclusion {n}"),
                status: "final".into(),
            });
    }
    let bytes = render_pdf(&i).expect("pdf");
    if poppler() {
        let path = write_pdf("huge.pdf", &bytes);
        assert!(pages(&path) >= 8, "{} pages", pages(&path));
        assert!(pdf_text(&path).contains("1.304 conclusion 299"));
    }
}
