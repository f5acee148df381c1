//! `summary.docx`: Office Open XML written with `docx-rs`.
//!
//! A4, 2.5 cm margins, Arial 11 pt (LibreOffice substitutes the metric-compatible Liberation
//! Sans). Styles `Title`, `Subtitle`, `Heading1`–`Heading4`, `Conclusion` (hanging indent: a
//! wrapped line starts under the text, not under the number), `Quote`, `Code`; bullet and
//! decimal list numbering for the notes annex; "Page X of Y" in the footer.

use super::notes::{Block, Inline, ListItem, Marks};
use super::numbering::number;
use super::{MinutesError, MinutesInput};
use docx_rs::{
    AbstractNumbering, BreakType, Docx, Footer, IndentLevel, Level, LevelJc, LevelOverride, LevelText,
    LineSpacing, LineSpacingType, NumPages, NumberFormat, Numbering, NumberingId, PageMargin, PageNum,
    Paragraph, Run, RunFonts, SpecialIndentType, Start, Style, StyleType, Tab, TabValueType,
};

const A4_W: u32 = 11906;
const A4_H: u32 = 16838;
const MARGIN: i32 = 1418; // 2.5 cm
const TEXT_W: i32 = A4_W as i32 - 2 * MARGIN;
/// Indent of a conclusion's text: room for "12.34" and a gap.
const NUM_INDENT: i32 = 794; // 1.4 cm
                             // docx-rs always writes an abstract numbering 1 and a numbering 1 of its own (decimal):
                             // ours start above them.
const BULLET_ABSTRACT: usize = 11;
const DECIMAL_ABSTRACT: usize = 12;
const BULLET_NUM: usize = 11;
const FIRST_ORDERED_NUM: usize = 20;
/// Notes in the annex sit under their group's title, like conclusions.
const NOTES_INDENT: i32 = NUM_INDENT;
const LIST_STEP: i32 = 425;
const BODY_FONT: &str = "Arial";
const CODE_FONT: &str = "Courier New";
const GREY: &str = "555555";

fn fonts(name: &str) -> RunFonts {
    RunFonts::new().ascii(name).hi_ansi(name).cs(name).east_asia(name)
}

fn styles(doc: Docx) -> Docx {
    let heading = |id: &str, name: &str, size: usize, before: u32, outline: usize| {
        Style::new(id, StyleType::Paragraph)
            .name(name)
            .based_on("Normal")
            .next("Normal")
            .q_format(true)
            .size(size)
            .bold()
            .outline_lvl(outline)
            .line_spacing(LineSpacing::new().before(before).after(120))
    };
    doc.add_style(
        Style::new("Title", StyleType::Paragraph)
            .name("Title")
            .based_on("Normal")
            .next("Normal")
            .q_format(true)
            .size(36)
            .bold()
            .line_spacing(
                LineSpacing::new()
                    .before(0)
                    .after(160)
                    .line(240)
                    .line_rule(LineSpacingType::Auto),
            ),
    )
    .add_style(
        Style::new("Subtitle", StyleType::Paragraph)
            .name("Subtitle")
            .based_on("Normal")
            .next("Normal")
            .q_format(true)
            .size(20)
            .color(GREY)
            .line_spacing(LineSpacing::new().before(0).after(40)),
    )
    .add_style(heading("Heading1", "heading 1", 28, 360, 0))
    .add_style(heading("Heading2", "heading 2", 24, 280, 1))
    .add_style(heading("Heading3", "heading 3", 22, 200, 2))
    .add_style(heading("Heading4", "heading 4", 22, 160, 3).italic())
    .add_style(
        Style::new("Conclusion", StyleType::Paragraph)
            .name("Conclusion")
            .based_on("Normal")
            .q_format(true)
            .indent(
                Some(NUM_INDENT),
                Some(SpecialIndentType::Hanging(NUM_INDENT)),
                None,
                None,
            )
            .line_spacing(LineSpacing::new().before(0).after(140)),
    )
    .add_style(
        Style::new("Quote", StyleType::Paragraph)
            .name("Quote")
            .based_on("Normal")
            .italic()
            .color("404040")
            .indent(Some(567), None, None, None),
    )
    .add_style(
        Style::new("Code", StyleType::Paragraph)
            .name("Code")
            .based_on("Normal")
            .fonts(fonts(CODE_FONT))
            .size(19)
            .line_spacing(
                LineSpacing::new()
                    .before(0)
                    .after(120)
                    .line(240)
                    .line_rule(LineSpacingType::Auto),
            ),
    )
    .add_style(
        Style::new("Footer", StyleType::Paragraph)
            .name("footer")
            .based_on("Normal")
            .size(18)
            .color(GREY),
    )
}

fn list_levels(mut a: AbstractNumbering, bullet: bool) -> AbstractNumbering {
    for lvl in 0..9usize {
        let (fmt, text) = if bullet {
            ("bullet", ["\u{2022}", "\u{2013}", "\u{25e6}"][lvl % 3].to_owned())
        } else {
            ("decimal", format!("%{}.", lvl + 1))
        };
        let left = NOTES_INDENT + LIST_STEP * (lvl as i32 + 1);
        a = a.add_level(
            Level::new(
                lvl,
                Start::new(1),
                NumberFormat::new(fmt),
                LevelText::new(text),
                LevelJc::new("left"),
            )
            .indent(
                Some(left),
                Some(SpecialIndentType::Hanging(LIST_STEP)),
                None,
                None,
            ),
        );
    }
    a
}

/// Text as XML 1.0 allows it: control characters (a pasted vertical tab, say) would make
/// Word refuse the whole file; tabs become spaces.
fn xml_safe(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\n' => Some('\n'),
            '\t' => Some(' '),
            '\u{fffe}' | '\u{ffff}' => None,
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// A run for one piece of text: line breaks in it become `<w:br/>`.
fn text_runs(p: Paragraph, text: &str, marks: Marks, extra: impl Fn(Run) -> Run) -> Paragraph {
    let text = xml_safe(text);
    let mut run = Run::new();
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            run = run.add_break(BreakType::TextWrapping);
        }
        if !line.is_empty() {
            run = run.add_text(line);
        }
    }
    if marks.bold {
        run = run.bold();
    }
    if marks.italic {
        run = run.italic();
    }
    if marks.strike {
        run = run.strike();
    }
    if marks.code {
        run = run.fonts(fonts(CODE_FONT));
    }
    p.add_run(extra(run))
}

fn plain_para(style: &str, text: &str) -> Paragraph {
    text_runs(Paragraph::new().style(style), text, Marks::default(), |r| r)
}

fn inline_para(mut p: Paragraph, inlines: &[Inline]) -> Paragraph {
    for i in inlines {
        p = match i {
            Inline::Text { text, marks } => text_runs(p, text, *marks, |r| r),
            Inline::HardBreak => p.add_run(Run::new().add_break(BreakType::TextWrapping)),
        };
    }
    p
}

struct Notes {
    doc: Docx,
    /// Next free numbering id (one per ordered list, so each restarts at its start).
    next_num: usize,
}

impl Notes {
    fn push(&mut self, p: Paragraph) {
        let doc = std::mem::take(&mut self.doc);
        self.doc = doc.add_paragraph(p);
    }

    fn blocks(&mut self, blocks: &[Block], list: Option<(usize, usize)>, quote: bool) {
        for b in blocks {
            self.block(b, list, quote);
        }
    }

    /// `list`: (numbering id, level) of the list item this block is in.
    fn block(&mut self, b: &Block, list: Option<(usize, usize)>, quote: bool) {
        let base = |style: &str| {
            // Under the group title; in a list item (after its first paragraph), under the
            // item's text; a quote one step further.
            let mut left = NOTES_INDENT;
            if let Some((_, lvl)) = list {
                left += LIST_STEP * (lvl as i32 + 1);
            }
            if quote {
                left += 567;
            }
            Paragraph::new().style(style).indent(Some(left), None, None, None)
        };
        match b {
            Block::Heading { level, inlines } => {
                let style = if *level <= 1 { "Heading3" } else { "Heading4" };
                let p = inline_para(base(style).keep_next(true), inlines);
                self.push(p);
            }
            Block::Paragraph(inlines) => {
                let p = inline_para(base(if quote { "Quote" } else { "Normal" }), inlines);
                self.push(p);
            }
            Block::CodeBlock(code) => {
                let p = text_runs(base("Code"), code, Marks::default(), |r| r);
                self.push(p);
            }
            Block::Blockquote(inner) => self.blocks(inner, list, true),
            Block::BulletList(items) => self.items(items, BULLET_NUM, list, quote),
            Block::OrderedList { start, items } => {
                let id = self.next_num;
                self.next_num += 1;
                let mut num = Numbering::new(id, DECIMAL_ABSTRACT);
                for lvl in 0..9 {
                    num = num.add_override(LevelOverride::new(lvl).start(*start as usize));
                }
                let doc = std::mem::take(&mut self.doc);
                self.doc = doc.add_numbering(num);
                self.items(items, id, list, quote);
            }
        }
    }

    fn items(&mut self, items: &[ListItem], num: usize, outer: Option<(usize, usize)>, quote: bool) {
        let lvl = outer.map(|(_, l)| (l + 1).min(8)).unwrap_or(0);
        for item in items {
            let mut rest: &[Block] = &item.blocks;
            // The item's first paragraph carries the bullet or number.
            let first = match item.blocks.first() {
                Some(Block::Paragraph(inl)) | Some(Block::Heading { inlines: inl, .. }) => {
                    rest = &item.blocks[1..];
                    inl.clone()
                }
                _ => Vec::new(),
            };
            let p = Paragraph::new()
                .style(if quote { "Quote" } else { "Normal" })
                .numbering(NumberingId::new(num), IndentLevel::new(lvl))
                .line_spacing(LineSpacing::new().after(60));
            self.push(inline_para(p, &first));
            self.blocks(rest, Some((num, lvl)), quote);
        }
    }
}

/// The minutes as a `.docx` file.
pub fn render_docx(input: &MinutesInput) -> Result<Vec<u8>, MinutesError> {
    let s = &input.summary;
    let title = super::title(input);
    // "Title — label" at the left, "Page X of Y" at the right margin, as in the PDF.
    let footer_title = match &input.version {
        Some(v) => format!("{title} \u{2014} {}", v.label.trim()),
        None => title.clone(),
    };
    let footer = Footer::new().add_paragraph(
        Paragraph::new()
            .style("Footer")
            .add_tab(Tab::new().val(TabValueType::Right).pos(TEXT_W as usize))
            .add_run(Run::new().add_text(footer_title).add_tab().add_text("Page "))
            .add_page_num(PageNum::new())
            .add_run(Run::new().add_text(" of "))
            .add_num_pages(NumPages::new()),
    );
    let mut doc = Docx::new()
        .page_size(A4_W, A4_H)
        .page_margin(
            PageMargin::new()
                .top(MARGIN)
                .bottom(MARGIN)
                .left(MARGIN)
                .right(MARGIN)
                .header(709)
                .footer(709),
        )
        .default_fonts(fonts(BODY_FONT))
        .default_size(22)
        .default_line_spacing(
            LineSpacing::new()
                .after(120)
                .line(264)
                .line_rule(LineSpacingType::Auto),
        )
        .footer(footer)
        .add_abstract_numbering(list_levels(AbstractNumbering::new(BULLET_ABSTRACT), true))
        .add_abstract_numbering(list_levels(AbstractNumbering::new(DECIMAL_ABSTRACT), false))
        .add_numbering(Numbering::new(BULLET_NUM, BULLET_ABSTRACT));
    if !s.generated_at.is_empty() && time_ok(&s.generated_at) {
        doc = doc.created_at(&s.generated_at).updated_at(&s.generated_at);
    }
    doc = styles(doc);
    doc = doc.add_paragraph(plain_para("Title", &title));
    doc = doc.add_paragraph(
        Paragraph::new().style("Subtitle").add_run(
            Run::new()
                .add_text(super::status_line(input))
                .bold()
                .color("000000"),
        ),
    );
    doc = doc.add_paragraph(
        plain_para("Subtitle", &super::generated_line(input)).line_spacing(LineSpacing::new().after(240)),
    );
    for para in super::paragraphs(&s.intro) {
        doc = doc.add_paragraph(plain_para("Normal", &para));
    }
    let numbered = number(s);
    for g in &numbered {
        doc = doc.add_paragraph(numbered_heading("Heading1", g.number, &g.group.title));
        if g.items.is_empty() {
            doc = doc.add_paragraph(
                Paragraph::new().style("Conclusion").add_run(
                    Run::new()
                        .add_tab()
                        .add_text(super::NO_CONCLUSIONS)
                        .italic()
                        .color(GREY),
                ),
            );
        }
        for item in &g.items {
            let mut p = Paragraph::new()
                .style("Conclusion")
                .add_tab(Tab::new().val(TabValueType::Left).pos(NUM_INDENT as usize))
                .add_run(Run::new().add_text(item.label()).bold())
                .add_run(Run::new().add_tab());
            p = text_runs(p, item.text(), Marks::default(), |r| r);
            if item.is_draft() {
                p = p.add_run(
                    Run::new()
                        .add_text(format!(" {}", super::DRAFT_MARK))
                        .italic()
                        .color(GREY),
                );
            }
            doc = doc.add_paragraph(p);
        }
    }
    let closing = super::paragraphs(&s.closing);
    if !closing.is_empty() {
        doc = doc.add_paragraph(Paragraph::new().line_spacing(LineSpacing::new().before(240)));
    }
    for para in closing {
        doc = doc.add_paragraph(plain_para("Normal", &para));
    }
    if let Some(notes) = &input.notes {
        doc = doc.add_paragraph(plain_para("Heading1", super::ANNEX_TITLE).page_break_before(true));
        let mut n = Notes {
            doc,
            next_num: FIRST_ORDERED_NUM,
        };
        for g in &numbered {
            n.push(numbered_heading("Heading2", g.number, &g.group.title));
            match notes.get(&g.group.id) {
                Some(blocks) if !blocks.is_empty() => n.blocks(blocks, None, false),
                _ => n.push(
                    Paragraph::new()
                        .indent(Some(NOTES_INDENT), None, None, None)
                        .add_run(Run::new().add_text(super::NO_NOTES).italic().color(GREY)),
                ),
            }
        }
        doc = n.doc;
    }
    let mut out = std::io::Cursor::new(Vec::new());
    doc.build()
        .pack(&mut out)
        .map_err(|e| MinutesError::Docx(e.to_string()))?;
    Ok(out.into_inner())
}

/// "G." then a tab, the title hanging under the conclusions' text.
fn numbered_heading(style: &str, number: usize, title: &str) -> Paragraph {
    let p = Paragraph::new()
        .style(style)
        .keep_next(true)
        .indent(
            Some(NUM_INDENT),
            Some(SpecialIndentType::Hanging(NUM_INDENT)),
            None,
            None,
        )
        .add_tab(Tab::new().val(TabValueType::Left).pos(NUM_INDENT as usize))
        .add_run(Run::new().add_text(format!("{number}.")).add_tab());
    text_runs(p, &one_line(title), Marks::default(), |r| r)
}

fn time_ok(t: &str) -> bool {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok()
}

fn one_line(s: &str) -> String {
    s.trim().replace(['\n', '\r'], " ")
}
