//! A group's `notes` (a `Y.XmlFragment` in Tiptap StarterKit's ProseMirror schema, as
//! y-prosemirror writes it) read into a small neutral block model that the DOCX and PDF
//! renderers share.
//!
//! Nodes: `paragraph`, `heading` (attribute `level`, clamped to 1–3), `bulletList`,
//! `orderedList` (attribute `start`), `listItem`, `blockquote`, `codeBlock`, `hardBreak`,
//! `horizontalRule` (skipped). Marks are the formatting attributes of the `XmlText` runs:
//! `bold`, `italic`, `strike`, `code` (any other mark is ignored, its text kept). Unknown
//! nodes degrade to their text. The content is user-written, so reading is bounded: nesting
//! deeper than [`MAX_DEPTH`] is flattened to text, and after [`MAX_CHARS`] characters or
//! [`MAX_BLOCKS`] blocks the rest is left out and a "[…]" paragraph says so.

use plenary_protocol::layout;
use yrs::types::text::YChange;
use yrs::{Any, Out, ReadTxn, Text, Xml, XmlElementRef, XmlFragment, XmlOut, XmlTextRef};

/// Deepest nesting of blocks kept as structure (lists in lists, quotes in lists…).
pub const MAX_DEPTH: usize = 12;
/// Most characters of text read from one group's notes.
pub const MAX_CHARS: usize = 200_000;
/// Most blocks (at any depth) read from one group's notes.
pub const MAX_BLOCKS: usize = 5_000;

/// Inline formatting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Marks {
    pub bold: bool,
    pub italic: bool,
    pub strike: bool,
    pub code: bool,
}

/// A piece of a paragraph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    Text { text: String, marks: Marks },
    HardBreak,
}

/// An item of a list: its blocks (usually one paragraph, maybe a nested list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem {
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// Level 1–3.
    Heading {
        level: u8,
        inlines: Vec<Inline>,
    },
    Paragraph(Vec<Inline>),
    BulletList(Vec<ListItem>),
    OrderedList {
        start: u32,
        items: Vec<ListItem>,
    },
    Blockquote(Vec<Block>),
    /// Lines of code, as typed.
    CodeBlock(String),
}

/// Plain text of inlines (hard breaks as `\n`).
pub fn plain(inlines: &[Inline]) -> String {
    let mut s = String::new();
    for i in inlines {
        match i {
            Inline::Text { text, .. } => s.push_str(text),
            Inline::HardBreak => s.push('\n'),
        }
    }
    s
}

/// Reads the `notes` fragment of a group document; empty when it has none.
pub fn read_notes<T: ReadTxn>(txn: &T) -> Vec<Block> {
    let Some(frag) = txn.get_xml_fragment(layout::NOTES) else {
        return Vec::new();
    };
    let mut r = Reader {
        txn,
        chars: 0,
        blocks: 0,
        truncated: false,
    };
    let children: Vec<XmlOut> = frag.children(txn).collect();
    let mut out = r.blocks(&children, 0);
    if r.truncated {
        out.push(Block::Paragraph(vec![Inline::Text {
            text: "[\u{2026} the rest of the notes is too long to be shown here]".into(),
            marks: Marks {
                italic: true,
                ..Marks::default()
            },
        }]));
    }
    out
}

struct Reader<'t, T: ReadTxn> {
    txn: &'t T,
    chars: usize,
    blocks: usize,
    truncated: bool,
}

fn attr_str<T: ReadTxn>(txn: &T, el: &XmlElementRef, name: &str) -> Option<String> {
    match el.get_attribute(txn, name)? {
        Out::Any(Any::String(s)) => Some(s.to_string()),
        Out::Any(Any::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn attr_num<T: ReadTxn>(txn: &T, el: &XmlElementRef, name: &str) -> Option<i64> {
    attr_str(txn, el, name)?
        .trim()
        .parse::<f64>()
        .ok()
        .map(|f| f as i64)
}

fn mark_on(v: &Any) -> bool {
    !matches!(v, Any::Null | Any::Undefined | Any::Bool(false))
}

impl<T: ReadTxn> Reader<'_, T> {
    fn full(&self) -> bool {
        self.truncated || self.chars >= MAX_CHARS || self.blocks >= MAX_BLOCKS
    }

    /// Takes `text` within the character budget.
    fn take(&mut self, text: &str) -> String {
        let left = MAX_CHARS.saturating_sub(self.chars);
        let n = text.chars().count();
        if n <= left {
            self.chars += n;
            text.to_owned()
        } else {
            self.chars = MAX_CHARS;
            self.truncated = true;
            text.chars().take(left).collect()
        }
    }

    fn blocks(&mut self, nodes: &[XmlOut], depth: usize) -> Vec<Block> {
        let mut out = Vec::new();
        let mut loose: Vec<Inline> = Vec::new();
        for node in nodes {
            if self.full() {
                self.truncated = true;
                break;
            }
            match node {
                XmlOut::Element(el) => {
                    if let Some(b) = self.block(el, depth, &mut loose) {
                        if !loose.is_empty() {
                            out.push(Block::Paragraph(std::mem::take(&mut loose)));
                        }
                        self.blocks += 1;
                        out.push(b);
                    }
                }
                XmlOut::Text(t) => self.text(t, &mut loose),
                XmlOut::Fragment(f) => {
                    let children: Vec<XmlOut> = f.children(self.txn).collect();
                    out.extend(self.blocks(&children, depth + 1));
                }
            }
        }
        if !loose.is_empty() {
            out.push(Block::Paragraph(loose));
        }
        out
    }

    /// One block element; inline-level content found at block level goes to `loose`.
    fn block(&mut self, el: &XmlElementRef, depth: usize, loose: &mut Vec<Inline>) -> Option<Block> {
        let children: Vec<XmlOut> = el.children(self.txn).collect();
        if depth >= MAX_DEPTH {
            let mut inl = Vec::new();
            self.flatten(&children, &mut inl);
            return Some(Block::Paragraph(inl));
        }
        match el.tag().as_ref() {
            "paragraph" => Some(Block::Paragraph(self.inlines(&children))),
            "heading" => {
                let level = attr_num(self.txn, el, "level").unwrap_or(1).clamp(1, 3) as u8;
                Some(Block::Heading {
                    level,
                    inlines: self.inlines(&children),
                })
            }
            "bulletList" | "taskList" => Some(Block::BulletList(self.items(&children, depth))),
            "orderedList" => {
                let start = attr_num(self.txn, el, "start").unwrap_or(1).clamp(0, 1_000_000) as u32;
                Some(Block::OrderedList {
                    start,
                    items: self.items(&children, depth),
                })
            }
            "blockquote" => Some(Block::Blockquote(self.blocks(&children, depth + 1))),
            "codeBlock" => {
                let mut inl = Vec::new();
                self.flatten(&children, &mut inl);
                Some(Block::CodeBlock(plain(&inl)))
            }
            "horizontalRule" => None,
            "hardBreak" => {
                loose.push(Inline::HardBreak);
                None
            }
            "listItem" | "taskItem" => {
                // A list item outside a list: its content, as blocks of a one-item list.
                Some(Block::BulletList(vec![ListItem {
                    blocks: self.blocks(&children, depth + 1),
                }]))
            }
            _ => {
                let mut inl = Vec::new();
                self.flatten(&children, &mut inl);
                if inl.is_empty() {
                    None
                } else {
                    Some(Block::Paragraph(inl))
                }
            }
        }
    }

    fn items(&mut self, nodes: &[XmlOut], depth: usize) -> Vec<ListItem> {
        let mut items = Vec::new();
        for node in nodes {
            if self.full() {
                self.truncated = true;
                break;
            }
            match node {
                XmlOut::Element(el) if matches!(el.tag().as_ref(), "listItem" | "taskItem") => {
                    let children: Vec<XmlOut> = el.children(self.txn).collect();
                    self.blocks += 1;
                    items.push(ListItem {
                        blocks: self.blocks(&children, depth + 1),
                    });
                }
                other => {
                    // Anything else in a list becomes an item of its own.
                    let blocks = self.blocks(std::slice::from_ref(other), depth + 1);
                    if !blocks.is_empty() {
                        items.push(ListItem { blocks });
                    }
                }
            }
        }
        items
    }

    /// The inline content of a paragraph or heading.
    fn inlines(&mut self, nodes: &[XmlOut]) -> Vec<Inline> {
        let mut out = Vec::new();
        self.flatten(nodes, &mut out);
        out
    }

    /// Every piece of text under `nodes`, in order, keeping marks and hard breaks; block
    /// boundaries inside become line breaks.
    fn flatten(&mut self, nodes: &[XmlOut], out: &mut Vec<Inline>) {
        self.flatten_at(nodes, out, 0);
    }

    fn flatten_at(&mut self, nodes: &[XmlOut], out: &mut Vec<Inline>, depth: usize) {
        for node in nodes {
            if self.full() {
                self.truncated = true;
                return;
            }
            match node {
                XmlOut::Text(t) => self.text(t, out),
                XmlOut::Element(el) => {
                    if el.tag().as_ref() == "hardBreak" {
                        out.push(Inline::HardBreak);
                        continue;
                    }
                    if depth >= 4 * MAX_DEPTH {
                        self.truncated = true;
                        continue;
                    }
                    let block_like = !matches!(el.tag().as_ref(), "mention" | "emoji" | "link");
                    if block_like && !out.is_empty() && !matches!(out.last(), Some(Inline::HardBreak)) {
                        out.push(Inline::HardBreak);
                    }
                    let children: Vec<XmlOut> = el.children(self.txn).collect();
                    self.flatten_at(&children, out, depth + 1);
                }
                XmlOut::Fragment(f) => {
                    let children: Vec<XmlOut> = f.children(self.txn).collect();
                    self.flatten_at(&children, out, depth + 1);
                }
            }
        }
    }

    fn text(&mut self, t: &XmlTextRef, out: &mut Vec<Inline>) {
        for d in t.diff(self.txn, YChange::identity) {
            if self.full() {
                self.truncated = true;
                return;
            }
            let Out::Any(Any::String(s)) = &d.insert else {
                continue;
            };
            let mut marks = Marks::default();
            if let Some(attrs) = &d.attributes {
                for (k, v) in attrs.iter() {
                    if !mark_on(v) {
                        continue;
                    }
                    match k.as_ref() {
                        "bold" | "strong" => marks.bold = true,
                        "italic" | "em" => marks.italic = true,
                        "strike" => marks.strike = true,
                        "code" => marks.code = true,
                        _ => {}
                    }
                }
            }
            let text = self.take(s);
            if text.is_empty() {
                continue;
            }
            // Merge with the previous run when the marks are the same.
            if let Some(Inline::Text {
                text: prev,
                marks: pm,
            }) = out.last_mut()
            {
                if *pm == marks {
                    prev.push_str(&text);
                    continue;
                }
            }
            out.push(Inline::Text { text, marks });
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;
    use yrs::{Doc, Transact, WriteTxn, XmlElementPrelim, XmlTextPrelim};

    fn marks(list: &[&str]) -> yrs::types::Attrs {
        let mut a: HashMap<Arc<str>, Any> = HashMap::new();
        for m in list {
            a.insert(Arc::from(*m), Any::Map(Arc::new(HashMap::new())));
        }
        a
    }

    /// Writes what y-prosemirror writes for a small Tiptap document.
    pub(crate) fn sample_doc() -> Doc {
        let doc = Doc::new();
        let mut txn = doc.transact_mut();
        let notes = txn.get_or_insert_xml_fragment(layout::NOTES);
        let h = notes.push_back(&mut txn, XmlElementPrelim::empty("heading"));
        h.insert_attribute(&mut txn, "level", "2");
        h.push_back(&mut txn, XmlTextPrelim::new("Škopje findings"));
        let p = notes.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
        let t = p.push_back(&mut txn, XmlTextPrelim::new(""));
        t.insert(&mut txn, 0, "Plain, ");
        t.insert_with_attributes(&mut txn, 7, "bold", marks(&["bold"]));
        t.insert_with_attributes(&mut txn, 11, " and ", marks(&[]));
        t.insert_with_attributes(&mut txn, 16, "both", marks(&["bold", "italic"]));
        p.push_back(&mut txn, XmlElementPrelim::empty("hardBreak"));
        p.push_back(&mut txn, XmlTextPrelim::new("after the break"));
        let ul = notes.push_back(&mut txn, XmlElementPrelim::empty("bulletList"));
        for (i, text) in ["first point", "second point"].iter().enumerate() {
            let li = ul.push_back(&mut txn, XmlElementPrelim::empty("listItem"));
            let lp = li.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
            lp.push_back(&mut txn, XmlTextPrelim::new(*text));
            if i == 1 {
                let ol = li.push_back(&mut txn, XmlElementPrelim::empty("orderedList"));
                let nli = ol.push_back(&mut txn, XmlElementPrelim::empty("listItem"));
                let np = nli.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
                np.push_back(&mut txn, XmlTextPrelim::new("nested ordered"));
            }
        }
        let q = notes.push_back(&mut txn, XmlElementPrelim::empty("blockquote"));
        let qp = q.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
        qp.push_back(&mut txn, XmlTextPrelim::new("a quote"));
        let c = notes.push_back(&mut txn, XmlElementPrelim::empty("codeBlock"));
        c.push_back(&mut txn, XmlTextPrelim::new("let x = 1;"));
        let u = notes.push_back(&mut txn, XmlElementPrelim::empty("table"));
        let row = u.push_back(&mut txn, XmlElementPrelim::empty("tableRow"));
        row.push_back(&mut txn, XmlTextPrelim::new("unknown node text"));
        drop(txn);
        doc
    }

    fn t(s: &str, m: Marks) -> Inline {
        Inline::Text {
            text: s.into(),
            marks: m,
        }
    }

    #[test]
    fn minutes_notes_reads_tiptap_nodes_and_marks() {
        let doc = sample_doc();
        let blocks = read_notes(&doc.transact());
        let n = Marks::default();
        let b = Marks { bold: true, ..n };
        let bi = Marks {
            bold: true,
            italic: true,
            ..n
        };
        assert_eq!(
            blocks,
            vec![
                Block::Heading {
                    level: 2,
                    inlines: vec![t("Škopje findings", n)]
                },
                Block::Paragraph(vec![
                    t("Plain, ", n),
                    t("bold", b),
                    t(" and ", n),
                    t("both", bi),
                    Inline::HardBreak,
                    t("after the break", n),
                ]),
                Block::BulletList(vec![
                    ListItem {
                        blocks: vec![Block::Paragraph(vec![t("first point", n)])]
                    },
                    ListItem {
                        blocks: vec![
                            Block::Paragraph(vec![t("second point", n)]),
                            Block::OrderedList {
                                start: 1,
                                items: vec![ListItem {
                                    blocks: vec![Block::Paragraph(vec![t("nested ordered", n)])]
                                }]
                            },
                        ]
                    },
                ]),
                Block::Blockquote(vec![Block::Paragraph(vec![t("a quote", n)])]),
                Block::CodeBlock("let x = 1;".into()),
                Block::Paragraph(vec![t("unknown node text", n)]),
            ]
        );
    }

    #[test]
    fn minutes_notes_numeric_level_and_missing_fragment() {
        let doc = Doc::new();
        assert!(read_notes(&doc.transact()).is_empty());
        {
            let mut txn = doc.transact_mut();
            let notes = txn.get_or_insert_xml_fragment(layout::NOTES);
            let h = notes.push_back(&mut txn, XmlElementPrelim::empty("heading"));
            h.insert_attribute(&mut txn, "level", Any::from(7.0));
            h.push_back(&mut txn, XmlTextPrelim::new("deep"));
        }
        let blocks = read_notes(&doc.transact());
        assert!(
            matches!(&blocks[0], Block::Heading { level: 3, .. }),
            "{blocks:?}"
        );
    }

    fn nested_quotes(levels: usize, tail: &str) -> Doc {
        let doc = Doc::new();
        {
            let mut txn = doc.transact_mut();
            let notes = txn.get_or_insert_xml_fragment(layout::NOTES);
            let mut q = notes.push_back(&mut txn, XmlElementPrelim::empty("blockquote"));
            for _ in 1..levels {
                q = q.push_back(&mut txn, XmlElementPrelim::empty("blockquote"));
            }
            q.push_back(&mut txn, XmlTextPrelim::new("bottom"));
            let p = notes.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
            p.push_back(&mut txn, XmlTextPrelim::new(tail));
            let p = notes.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
            p.push_back(&mut txn, XmlTextPrelim::new("last paragraph"));
        }
        doc
    }

    fn depth(b: &Block) -> usize {
        match b {
            Block::Blockquote(v) => 1 + v.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    #[test]
    fn minutes_notes_is_bounded() {
        // Deeper than MAX_DEPTH: flattened, the text kept.
        let blocks = read_notes(&nested_quotes(30, "after").transact());
        assert!(depth(&blocks[0]) <= MAX_DEPTH, "depth {}", depth(&blocks[0]));
        let text = format!("{blocks:?}");
        assert!(
            text.contains("bottom") && text.contains("last paragraph"),
            "{text}"
        );
        assert!(!text.contains("too long"));

        // Absurdly deep: no stack overflow; the rest is cut and said so.
        let blocks = read_notes(&nested_quotes(3000, "after").transact());
        let text = format!("{blocks:?}");
        assert!(text.contains("too long"));

        // Too much text: cut at MAX_CHARS, later paragraphs left out.
        let big = "x".repeat(MAX_CHARS + 10);
        let blocks = read_notes(&nested_quotes(1, &big).transact());
        let text = format!("{blocks:?}");
        let xs = text.matches('x').count();
        assert!(xs <= MAX_CHARS && xs > MAX_CHARS - 100, "{xs}");
        assert!(!text.contains("last paragraph"));
        assert!(text.contains("too long"));
    }
}
