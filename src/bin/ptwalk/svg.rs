//! A self-contained SVG document built as a string: elements with escaped
//! attributes and text, an inline style sheet, no script and no reference
//! outside the document. `map/draw.rs` draws with it.

use std::fmt::Write as _;

/// An SVG document under construction.
pub struct Svg {
    body: String,
    /// Open elements, innermost last.
    open: Vec<&'static str>,
}

/// An element's attributes: name and (unescaped) value.
pub type Attrs<'a> = &'a [(&'a str, String)];

impl Svg {
    pub const fn new() -> Self {
        Self {
            body: String::new(),
            open: Vec::new(),
        }
    }

    /// `<tag attrs>`: children follow until [`Self::close`].
    pub fn open(&mut self, tag: &'static str, attrs: Attrs<'_>) {
        self.start_tag(tag, attrs);
        self.body.push_str(">\n");
        self.open.push(tag);
    }

    /// Closes the innermost open element.
    pub fn close(&mut self) {
        if let Some(tag) = self.open.pop() {
            let _ = writeln!(self.body, "</{tag}>");
        }
    }

    /// `<tag attrs/>`.
    pub fn empty(&mut self, tag: &'static str, attrs: Attrs<'_>) {
        self.start_tag(tag, attrs);
        self.body.push_str("/>\n");
    }

    /// `<tag attrs>text</tag>`, the text escaped.
    pub fn with_text(&mut self, tag: &'static str, attrs: Attrs<'_>, text: &str) {
        self.start_tag(tag, attrs);
        self.body.push('>');
        escape_into(&mut self.body, text);
        let _ = writeln!(self.body, "</{tag}>");
    }

    /// A `<text>` at (`x`, `y`) of class `class`.
    pub fn text(&mut self, x: f64, y: f64, class: &str, text: &str) {
        self.with_text(
            "text",
            &[("x", num(x)), ("y", num(y)), ("class", class.to_owned())],
            text,
        );
    }

    /// The tooltip of the enclosing element.
    pub fn title(&mut self, text: &str) {
        self.with_text("title", &[], text);
    }

    /// The whole document: `width` by `height` pixels, with `style` (CSS)
    /// and `defs` (raw markup this module's callers wrote) before the body.
    pub fn finish(mut self, width: f64, height: f64, style: &str, defs: &str) -> String {
        while !self.open.is_empty() {
            self.close();
        }
        let mut out = String::with_capacity(self.body.len() + style.len() + 512);
        let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#,
            w = num(width),
            h = num(height)
        );
        out.push_str("<style>\n");
        escape_into(&mut out, style);
        out.push_str("</style>\n<defs>\n");
        out.push_str(defs);
        out.push_str("</defs>\n");
        let _ = writeln!(
            out,
            r#"<rect class="background" x="0" y="0" width="{}" height="{}"/>"#,
            num(width),
            num(height)
        );
        out.push_str(&self.body);
        out.push_str("</svg>\n");
        out
    }

    fn start_tag(&mut self, tag: &str, attrs: Attrs<'_>) {
        let _ = write!(self.body, "<{tag}");
        for (name, value) in attrs {
            let _ = write!(self.body, " {name}=\"");
            escape_into(&mut self.body, value);
            self.body.push('"');
        }
    }
}

/// A coordinate: at most two decimals, no trailing zeros.
pub fn num(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// `text` as XML character data or an attribute value: the five markup
/// characters as entities, and the characters XML 1.0 forbids (C0 controls
/// other than tab, newline and return) as U+FFFD.
#[cfg(test)]
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || matches!(c, '\u{fffe}' | '\u{ffff}') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_forbidden_characters() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>\u{1}\n"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{fffd}\n"
        );
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(12.0), "12");
        assert_eq!(num(12.5), "12.5");
        assert_eq!(num(1.0 / 3.0), "0.33");
        assert_eq!(num(-0.001), "0");
    }
}
