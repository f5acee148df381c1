//! `summary.pdf`: laid out here, written with `krilla`.
//!
//! A4 with 2.5 cm margins; Liberation Sans (SIL OFL 1.1, bundled from Debian's
//! fonts-liberation2 in `server/assets/fonts/`, subset and embedded by krilla; covers Latin,
//! Latin Extended, Greek and Cyrillic), so the text is real, selectable and searchable. Lines
//! are wrapped with the fonts' glyph advances; a conclusion's wrapped lines start under its
//! text, not under its number; headings stay with what follows; every page has a footer with
//! the meeting title and "Page X of Y"; the PDF outline lists the groups.

use super::notes::{Block, Inline, ListItem, Marks};
use super::numbering::number;
use super::{MinutesError, MinutesInput};
use krilla::color::rgb;
use krilla::destination::XyzDestination;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::outline::{Outline, OutlineNode};
use krilla::page::PageSettings;
use krilla::paint::Fill;
use krilla::text::{Font, TextDirection};
use krilla::{Data, Document};

const REGULAR: &[u8] = include_bytes!("../../assets/fonts/LiberationSans-Regular.ttf");
const BOLD: &[u8] = include_bytes!("../../assets/fonts/LiberationSans-Bold.ttf");
const ITALIC: &[u8] = include_bytes!("../../assets/fonts/LiberationSans-Italic.ttf");
const BOLD_ITALIC: &[u8] = include_bytes!("../../assets/fonts/LiberationSans-BoldItalic.ttf");
const MONO: &[u8] = include_bytes!("../../assets/fonts/LiberationMono-Regular.ttf");

const PAGE_W: f32 = 595.276;
const PAGE_H: f32 = 841.89;
const MARGIN_X: f32 = 70.87; // 2.5 cm
const TOP: f32 = 70.87;
const BOTTOM: f32 = PAGE_H - 70.87;
const TEXT_W: f32 = PAGE_W - 2.0 * MARGIN_X;
/// Room for "12.34" before a conclusion's text.
const NUM_INDENT: f32 = 39.7; // 1.4 cm
const BODY: f32 = 10.5;
const BODY_LEADING: f32 = 14.5;

const BLACK: (u8, u8, u8) = (0, 0, 0);
const GREY: (u8, u8, u8) = (90, 90, 90);
const QUOTE: (u8, u8, u8) = (64, 64, 64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum F {
    Regular = 0,
    Bold = 1,
    Italic = 2,
    BoldItalic = 3,
    Mono = 4,
}

impl F {
    fn of(m: Marks) -> F {
        match (m.code, m.bold, m.italic) {
            (true, _, _) => F::Mono,
            (_, true, true) => F::BoldItalic,
            (_, true, false) => F::Bold,
            (_, false, true) => F::Italic,
            _ => F::Regular,
        }
    }

    fn italicized(self) -> F {
        match self {
            F::Regular => F::Italic,
            F::Bold => F::BoldItalic,
            f => f,
        }
    }
}

struct Fonts {
    faces: Vec<ttf_parser::Face<'static>>,
    pdf: Vec<Font>,
}

impl Fonts {
    fn load() -> Result<Fonts, MinutesError> {
        let mut faces = Vec::new();
        let mut pdf = Vec::new();
        for bytes in [REGULAR, BOLD, ITALIC, BOLD_ITALIC, MONO] {
            faces.push(ttf_parser::Face::parse(bytes, 0).map_err(|_| MinutesError::Font)?);
            pdf.push(Font::new(Data::from(bytes), 0).ok_or(MinutesError::Font)?);
        }
        Ok(Fonts { faces, pdf })
    }

    fn width(&self, f: F, size: f32, s: &str) -> f32 {
        let face = &self.faces[f as usize];
        let upem = face.units_per_em() as f32;
        let notdef = face.glyph_hor_advance(ttf_parser::GlyphId(0)).unwrap_or(0) as f32;
        let units: f32 = s
            .chars()
            .map(|c| {
                face.glyph_index(c)
                    .and_then(|g| face.glyph_hor_advance(g))
                    .map(|a| a as f32)
                    .unwrap_or(notdef)
            })
            .sum();
        units * size / upem
    }
}

/// A styled piece of text.
#[derive(Debug, Clone, PartialEq)]
struct Sp {
    text: String,
    font: F,
    color: (u8, u8, u8),
    strike: bool,
}

fn sp(text: impl Into<String>, font: F, color: (u8, u8, u8)) -> Sp {
    Sp {
        text: text.into(),
        font,
        color,
        strike: false,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Text {
        x: f32,
        y: f32,
        font: F,
        size: f32,
        color: (u8, u8, u8),
        text: String,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        color: (u8, u8, u8),
    },
}

/// How to set one paragraph.
struct Para<'a> {
    spans: &'a [Sp],
    size: f32,
    leading: f32,
    /// Left edge of the text (every line).
    x: f32,
    width: f32,
    /// Drawn on the first line's baseline at `label_x` (a number or a bullet).
    label: Option<(Sp, f32)>,
    before: f32,
    after: f32,
    /// Lines of the next paragraph that must fit on the page with this one's first lines
    /// (headings), in points.
    keep_next: f32,
    /// Keep every space and line break (code).
    preserve: bool,
}

impl<'a> Para<'a> {
    fn body(spans: &'a [Sp], x: f32, width: f32) -> Self {
        Para {
            spans,
            size: BODY,
            leading: BODY_LEADING,
            x,
            width,
            label: None,
            before: 0.0,
            after: 6.0,
            keep_next: 0.0,
            preserve: false,
        }
    }
}

struct Layout<'f> {
    fonts: &'f Fonts,
    pages: Vec<Vec<Op>>,
    y: f32,
    /// (level, title, page index, y) for the PDF outline.
    outline: Vec<(u8, String, usize, f32)>,
}

/// Text as it can be drawn: tabs become spaces, other control characters go.
fn clean(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            '\n' => Some('\n'),
            '\r' => None,
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

type Line = Vec<Sp>;

impl<'f> Layout<'f> {
    fn new(fonts: &'f Fonts) -> Self {
        Layout {
            fonts,
            pages: vec![Vec::new()],
            y: TOP,
            outline: Vec::new(),
        }
    }

    fn page(&self) -> usize {
        self.pages.len() - 1
    }

    fn at_top(&self) -> bool {
        self.y <= TOP + 0.01
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = TOP;
    }

    /// Starts a new page unless `h` points fit below.
    fn ensure(&mut self, h: f32) {
        if self.y + h > BOTTOM && !self.at_top() {
            self.new_page();
        }
    }

    fn space(&mut self, h: f32) {
        if !self.at_top() {
            self.y += h;
        }
    }

    fn push(&mut self, op: Op) {
        if let Some(p) = self.pages.last_mut() {
            p.push(op);
        }
    }

    fn w(&self, s: &Sp, size: f32) -> f32 {
        self.fonts.width(s.font, size, &s.text)
    }

    /// Greedy line breaking at spaces with real advances; a word wider than the line is cut.
    fn wrap(&self, spans: &[Sp], size: f32, width: f32, preserve: bool) -> Vec<Line> {
        let mut lines: Vec<Line> = Vec::new();
        let mut line: Line = Vec::new();
        let mut lw = 0.0f32;
        let push_piece = |line: &mut Line, piece: Sp| {
            if let Some(last) = line.last_mut() {
                if last.font == piece.font && last.color == piece.color && last.strike == piece.strike {
                    last.text.push_str(&piece.text);
                    return;
                }
            }
            line.push(piece);
        };
        let finish = |line: &mut Line, lines: &mut Vec<Line>| {
            if !preserve {
                while let Some(last) = line.last_mut() {
                    let t = last.text.trim_end().to_owned();
                    if t.is_empty() {
                        line.pop();
                    } else {
                        last.text = t;
                        break;
                    }
                }
            }
            lines.push(std::mem::take(line));
        };
        for s in spans {
            let text = clean(&s.text);
            for tok in tokens(&text, preserve) {
                if tok == "\n" {
                    finish(&mut line, &mut lines);
                    lw = 0.0;
                    continue;
                }
                let piece = Sp {
                    text: tok.to_owned(),
                    ..s.clone()
                };
                let is_space = tok.chars().all(char::is_whitespace);
                if is_space && !preserve {
                    if line.is_empty() {
                        continue;
                    }
                    let piece = Sp {
                        text: " ".into(),
                        ..s.clone()
                    };
                    lw += self.w(&piece, size);
                    push_piece(&mut line, piece);
                    continue;
                }
                let tw = self.w(&piece, size);
                if lw + tw > width && !line.is_empty() {
                    finish(&mut line, &mut lines);
                    lw = 0.0;
                    if is_space {
                        continue;
                    }
                }
                if tw <= width {
                    lw += tw;
                    push_piece(&mut line, piece);
                    continue;
                }
                // Longer than a line: cut it by characters.
                let mut chunk = String::new();
                let mut cw = 0.0f32;
                for c in tok.chars() {
                    let w = self.fonts.width(s.font, size, c.encode_utf8(&mut [0u8; 4]));
                    if cw + w > width && !chunk.is_empty() {
                        push_piece(
                            &mut line,
                            Sp {
                                text: std::mem::take(&mut chunk),
                                ..s.clone()
                            },
                        );
                        finish(&mut line, &mut lines);
                        cw = 0.0;
                    }
                    chunk.push(c);
                    cw += w;
                }
                lw = cw;
                push_piece(
                    &mut line,
                    Sp {
                        text: chunk,
                        ..s.clone()
                    },
                );
            }
        }
        if !line.is_empty() || lines.is_empty() {
            finish(&mut line, &mut lines);
        }
        lines
    }

    /// Sets a paragraph at the current position, breaking pages between lines; returns the
    /// page and y of its first line.
    fn para(&mut self, p: &Para) -> (usize, f32) {
        let lines = self.wrap(p.spans, p.size, p.width, p.preserve);
        self.space(p.before);
        // No single first line at the foot of a page, and headings keep their follower.
        let first = (lines.len().min(2) as f32) * p.leading + p.keep_next;
        self.ensure(first);
        let start = (self.page(), self.y);
        let ascent = 0.905 * p.size;
        let half = (p.leading - 1.117 * p.size) / 2.0;
        let n = lines.len();
        for (i, line) in lines.into_iter().enumerate() {
            // The last line of a paragraph does not stand alone at the top of a page.
            let need = if i + 2 == n { 2.0 * p.leading } else { p.leading };
            self.ensure(need);
            let base = self.y + half + ascent;
            if i == 0 {
                if let Some((label, lx)) = &p.label {
                    self.push(Op::Text {
                        x: *lx,
                        y: base,
                        font: label.font,
                        size: p.size,
                        color: label.color,
                        text: label.text.clone(),
                    });
                }
            }
            let mut x = p.x;
            for piece in line {
                let w = self.w(&piece, p.size);
                if piece.strike {
                    self.push(Op::Rect {
                        x,
                        y: base - 0.3 * p.size,
                        w,
                        h: 0.06 * p.size,
                        color: piece.color,
                    });
                }
                self.push(Op::Text {
                    x,
                    y: base,
                    font: piece.font,
                    size: p.size,
                    color: piece.color,
                    text: piece.text,
                });
                x += w;
            }
            self.y += p.leading;
        }
        self.y += p.after;
        start
    }

    /// A vertical bar at `x` from (`page`, `y`) to just above the current position, on
    /// every page in between (the mark of a quote).
    fn bar(&mut self, x: f32, page: usize, y: f32, w: f32) {
        let end_page = self.page();
        let end_y = self.y - 6.0;
        for p in page..=end_page {
            let top = if p == page { y } else { TOP };
            let bottom = if p == end_page { end_y } else { BOTTOM };
            if bottom > top {
                if let Some(ops) = self.pages.get_mut(p) {
                    ops.push(Op::Rect {
                        x,
                        y: top,
                        w,
                        h: bottom - top,
                        color: (190, 190, 190),
                    });
                }
            }
        }
    }

    fn rule(&mut self, x: f32, w: f32, h: f32) {
        let y = self.y;
        self.push(Op::Rect {
            x,
            y,
            w,
            h,
            color: BLACK,
        });
        self.y += h;
    }

    /// A numbered heading: "G." at the margin, the title under the conclusions' text.
    fn group_heading(&mut self, number: usize, title: &str, size: f32, before: f32, level: u8) {
        let spans = [sp(title.trim().replace(['\n', '\r'], " "), F::Bold, BLACK)];
        let (page, y) = self.para(&Para {
            spans: &spans,
            size,
            leading: size * 1.3,
            x: MARGIN_X + NUM_INDENT,
            width: TEXT_W - NUM_INDENT,
            label: Some((sp(format!("{number}."), F::Bold, BLACK), MARGIN_X)),
            before,
            after: 6.0,
            keep_next: 2.0 * BODY_LEADING,
            preserve: false,
        });
        self.outline
            .push((level, format!("{number}. {}", spans[0].text), page, y));
    }

    fn inline_spans(inlines: &[Inline], quote: bool, color: (u8, u8, u8)) -> Vec<Sp> {
        inlines
            .iter()
            .map(|i| match i {
                Inline::Text { text, marks } => {
                    let f = F::of(*marks);
                    Sp {
                        text: text.clone(),
                        font: if quote { f.italicized() } else { f },
                        color,
                        strike: marks.strike,
                    }
                }
                Inline::HardBreak => sp("\n", F::Regular, color),
            })
            .collect()
    }

    fn blocks(&mut self, blocks: &[Block], x: f32, width: f32, quote: bool) {
        for b in blocks {
            self.block(b, x, width, quote, None, 0);
        }
    }

    /// `label`: the bullet or number of the list item this block opens.
    fn block(&mut self, b: &Block, x: f32, width: f32, quote: bool, label: Option<(Sp, f32)>, depth: usize) {
        let color = if quote { QUOTE } else { BLACK };
        match b {
            Block::Heading { level, inlines } => {
                let (size, font) = match level {
                    1 => (12.0, F::Bold),
                    2 => (11.0, F::Bold),
                    _ => (10.5, F::BoldItalic),
                };
                let spans: Vec<Sp> = Self::inline_spans(inlines, quote, color)
                    .into_iter()
                    .map(|s| Sp {
                        font: if s.font == F::Mono { F::Mono } else { font },
                        ..s
                    })
                    .collect();
                self.para(&Para {
                    spans: &spans,
                    size,
                    leading: size * 1.3,
                    label,
                    before: 6.0,
                    after: 3.0,
                    keep_next: BODY_LEADING,
                    ..Para::body(&[], x, width)
                });
            }
            Block::Paragraph(inlines) => {
                let spans = Self::inline_spans(inlines, quote, color);
                self.para(&Para {
                    label,
                    ..Para::body(&spans, x, width)
                });
            }
            Block::CodeBlock(code) => {
                let spans = [sp(code.clone(), F::Mono, BLACK)];
                self.para(&Para {
                    size: 9.0,
                    leading: 12.0,
                    label,
                    preserve: true,
                    ..Para::body(&spans, x, width)
                });
            }
            Block::Blockquote(inner) => {
                if label.is_some() {
                    // A list item that opens with a quote: the bullet on a line of its own.
                    self.para(&Para {
                        label,
                        ..Para::body(&[], x, width)
                    });
                }
                let (page, y) = (self.page(), self.y);
                for b in inner {
                    self.block(b, x + 14.0, width - 14.0, true, None, depth + 1);
                }
                self.bar(x + 3.0, page, y, 1.5);
            }
            Block::BulletList(items) => {
                let bullet = ["\u{2022}", "\u{2013}", "\u{25e6}"][depth % 3];
                let labels: Vec<String> = items.iter().map(|_| bullet.to_owned()).collect();
                self.list(items, &labels, x, width, quote, label, depth);
            }
            Block::OrderedList { start, items } => {
                let labels: Vec<String> = (0..items.len())
                    .map(|i| format!("{}.", *start as usize + i))
                    .collect();
                self.list(items, &labels, x, width, quote, label, depth);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn list(
        &mut self,
        items: &[ListItem],
        labels: &[String],
        x: f32,
        width: f32,
        quote: bool,
        label: Option<(Sp, f32)>,
        depth: usize,
    ) {
        if label.is_some() {
            self.para(&Para {
                label,
                ..Para::body(&[], x, width)
            });
        }
        let widest = labels
            .iter()
            .map(|l| self.fonts.width(F::Regular, BODY, l))
            .fold(0.0f32, f32::max);
        let indent = (widest + 6.0).max(14.0);
        let color = if quote { QUOTE } else { BLACK };
        for (item, l) in items.iter().zip(labels) {
            let mut lab = Some((sp(l.clone(), F::Regular, color), x));
            if item.blocks.is_empty() {
                self.para(&Para {
                    label: lab,
                    ..Para::body(&[], x + indent, width - indent)
                });
                continue;
            }
            for b in &item.blocks {
                self.block(b, x + indent, width - indent, quote, lab.take(), depth + 1);
            }
        }
    }
}

/// Runs of non-space characters, runs of spaces, and line breaks.
fn tokens(s: &str, preserve: bool) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut kind: Option<bool> = None; // Some(true) = spaces
    for (i, c) in s.char_indices() {
        if c == '\n' {
            if start < i {
                out.push(&s[start..i]);
            }
            out.push("\n");
            start = i + 1;
            kind = None;
            continue;
        }
        let sp = c.is_whitespace();
        if preserve {
            continue;
        }
        if kind.is_some() && kind != Some(sp) {
            out.push(&s[start..i]);
            start = i;
        }
        kind = Some(sp);
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

fn fill(color: (u8, u8, u8)) -> Fill {
    Fill {
        paint: rgb::Color::new(color.0, color.1, color.2).into(),
        ..Fill::default()
    }
}

/// The minutes as a PDF file.
pub fn render_pdf(input: &MinutesInput) -> Result<Vec<u8>, MinutesError> {
    let fonts = Fonts::load()?;
    let s = &input.summary;
    let title = super::title(input);
    let mut l = Layout::new(&fonts);

    // Title block.
    let t = [sp(title.clone(), F::Bold, BLACK)];
    l.para(&Para {
        size: 18.0,
        leading: 23.0,
        after: 6.0,
        ..Para::body(&t, MARGIN_X, TEXT_W)
    });
    let t = [sp(super::status_line(input), F::Bold, BLACK)];
    l.para(&Para {
        after: 2.0,
        ..Para::body(&t, MARGIN_X, TEXT_W)
    });
    let t = [sp(super::generated_line(input), F::Regular, GREY)];
    l.para(&Para {
        size: 9.0,
        leading: 12.0,
        after: 8.0,
        ..Para::body(&t, MARGIN_X, TEXT_W)
    });
    l.rule(MARGIN_X, TEXT_W, 0.8);
    l.y += 12.0;

    for para in super::paragraphs(&s.intro) {
        let t = [sp(para, F::Regular, BLACK)];
        l.para(&Para {
            after: 7.0,
            ..Para::body(&t, MARGIN_X, TEXT_W)
        });
    }

    let numbered = number(s);
    for g in &numbered {
        l.group_heading(g.number, &g.group.title, 13.0, 14.0, 0);
        if g.items.is_empty() {
            let t = [sp(super::NO_CONCLUSIONS, F::Italic, GREY)];
            l.para(&Para::body(&t, MARGIN_X + NUM_INDENT, TEXT_W - NUM_INDENT));
        }
        for item in &g.items {
            let mut spans = vec![sp(item.text(), F::Regular, BLACK)];
            if item.is_draft() {
                spans.push(sp(format!(" {}", super::DRAFT_MARK), F::Italic, GREY));
            }
            l.para(&Para {
                label: Some((sp(item.label(), F::Bold, BLACK), MARGIN_X)),
                after: 7.0,
                ..Para::body(&spans, MARGIN_X + NUM_INDENT, TEXT_W - NUM_INDENT)
            });
        }
    }

    let closing = super::paragraphs(&s.closing);
    if !closing.is_empty() {
        l.space(10.0);
    }
    for para in closing {
        let t = [sp(para, F::Regular, BLACK)];
        l.para(&Para {
            after: 7.0,
            ..Para::body(&t, MARGIN_X, TEXT_W)
        });
    }

    if let Some(notes) = &input.notes {
        l.new_page();
        let t = [sp(super::ANNEX_TITLE, F::Bold, BLACK)];
        let (page, y) = l.para(&Para {
            size: 16.0,
            leading: 21.0,
            after: 4.0,
            keep_next: 3.0 * BODY_LEADING,
            ..Para::body(&t, MARGIN_X, TEXT_W)
        });
        l.outline.push((0, super::ANNEX_TITLE.to_owned(), page, y));
        for g in &numbered {
            l.group_heading(g.number, &g.group.title, 12.0, 12.0, 1);
            match notes.get(&g.group.id) {
                Some(blocks) if !blocks.is_empty() => {
                    l.blocks(blocks, MARGIN_X + NUM_INDENT, TEXT_W - NUM_INDENT, false)
                }
                _ => {
                    let t = [sp(super::NO_NOTES, F::Italic, GREY)];
                    l.para(&Para::body(&t, MARGIN_X + NUM_INDENT, TEXT_W - NUM_INDENT));
                }
            }
        }
    }

    // Footers, now that the page count is known.
    let total = l.pages.len();
    let footer_title = ellipsize(&fonts, &footer_title(input, &title), 8.5, TEXT_W * 0.72);
    for (i, page) in l.pages.iter_mut().enumerate() {
        let y = PAGE_H - 42.0;
        page.push(Op::Rect {
            x: MARGIN_X,
            y: y - 10.0,
            w: TEXT_W,
            h: 0.4,
            color: GREY,
        });
        page.push(Op::Text {
            x: MARGIN_X,
            y,
            font: F::Regular,
            size: 8.5,
            color: GREY,
            text: footer_title.clone(),
        });
        let num = format!("Page {} of {}", i + 1, total);
        let w = fonts.width(F::Regular, 8.5, &num);
        page.push(Op::Text {
            x: MARGIN_X + TEXT_W - w,
            y,
            font: F::Regular,
            size: 8.5,
            color: GREY,
            text: num,
        });
    }

    let mut doc = Document::new();
    for ops in &l.pages {
        let settings =
            PageSettings::from_wh(PAGE_W, PAGE_H).ok_or_else(|| MinutesError::Pdf("page size".into()))?;
        let mut page = doc.start_page_with(settings);
        let mut surface = page.surface();
        for op in ops {
            match op {
                Op::Text {
                    x,
                    y,
                    font,
                    size,
                    color,
                    text,
                } => {
                    if text.is_empty() {
                        continue;
                    }
                    surface.set_fill(Some(fill(*color)));
                    surface.draw_text(
                        Point::from_xy(*x, *y),
                        fonts.pdf[*font as usize].clone(),
                        *size,
                        text,
                        false,
                        TextDirection::Auto,
                    );
                }
                Op::Rect { x, y, w, h, color } => {
                    let mut pb = PathBuilder::new();
                    if let Some(r) = Rect::from_xywh(*x, *y, *w, *h) {
                        pb.push_rect(r);
                    }
                    if let Some(path) = pb.finish() {
                        surface.set_fill(Some(fill(*color)));
                        surface.draw_path(&path);
                    }
                }
            }
        }
        surface.finish();
        page.finish();
    }
    let mut outline = Outline::new();
    let mut current: Option<OutlineNode> = None;
    for (level, text, page, y) in &l.outline {
        let node = OutlineNode::new(
            text.clone(),
            XyzDestination::new(*page, Point::from_xy(MARGIN_X, *y)),
        );
        if *level == 0 {
            if let Some(n) = current.take() {
                outline.push_child(n);
            }
            current = Some(node);
        } else if let Some(c) = current.as_mut() {
            c.push_child(node);
        } else {
            outline.push_child(node);
        }
    }
    if let Some(n) = current.take() {
        outline.push_child(n);
    }
    doc.set_outline(outline);
    doc.set_metadata(
        Metadata::new()
            .title(title)
            .language("en".into())
            .creator("plenary".into()),
    );
    doc.finish().map_err(|e| MinutesError::Pdf(format!("{e:?}")))
}

fn footer_title(input: &MinutesInput, title: &str) -> String {
    match &input.version {
        Some(v) => format!("{title} \u{2014} {}", v.label.trim()),
        None => title.to_owned(),
    }
}

fn ellipsize(fonts: &Fonts, s: &str, size: f32, max: f32) -> String {
    if fonts.width(F::Regular, size, s) <= max {
        return s.to_owned();
    }
    let mut out = String::new();
    for c in s.chars() {
        out.push(c);
        if fonts.width(F::Regular, size, &out) + fonts.width(F::Regular, size, "\u{2026}") > max {
            out.pop();
            break;
        }
    }
    format!("{}\u{2026}", out.trim_end())
}
