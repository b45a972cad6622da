//! Words for what the program tells a person: counts with the noun in the right
//! number ("1 call", "2 calls"), and a value someone wrote shown safely ([`shown`]:
//! control characters escaped, cut to [`MAX_SHOWN_CHARS`]), and how a planned call
//! ended ([`CallEnd`], [`CallEnds`]: one word for each end, used by every output).

pub mod ends;

pub use ends::{CallEnd, CallEnds};

/// `n` and `noun`, plural unless `n` is 1: `count(1, "call")` is "1 call",
/// `count(0, "call")` "0 calls". Only for nouns whose plural is noun + "s".
pub fn count(n: impl TryInto<i64>, noun: &str) -> String {
    let n = n.try_into().unwrap_or(i64::MAX);
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The closest of `candidates` to a misspelled `given`, if one is close enough to be
/// what the user meant.
pub fn suggest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(given, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// The most characters of a value someone wrote that a message quotes; the rest is
/// left out and counted ([`shown`]).
pub const MAX_SHOWN_CHARS: usize = 100;

/// `s` as a message may quote it: control characters (and the invisible characters
/// that reorder text, U+202A-U+202E, U+2066-U+2069, ...) escaped as Rust writes them
/// (`\u{1b}`, `\n`, `\0`), so nothing raw reaches a terminal or a log line, and cut
/// to [`MAX_SHOWN_CHARS`] characters with how many there were (`... (12803
/// characters)`).
pub fn shown(s: &str) -> String {
    let total = s.chars().count();
    if total <= MAX_SHOWN_CHARS {
        return escape_controls(s);
    }
    let head: String = s.chars().take(MAX_SHOWN_CHARS).collect();
    format!("{}... ({total} characters)", escape_controls(&head))
}

/// `s` with its control characters (and those that reorder text) escaped, nothing
/// cut: for text already made of short quotes, like a whole message.
pub fn escape_controls(s: &str) -> String {
    if !s.chars().any(needs_escape) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else if needs_escape(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// A control character, or one of the invisible characters that reorder the text
/// around them (bidirectional overrides, embeddings, isolates and marks).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_everything_else_kept() {
        assert_eq!(shown("example.com"), "example.com");
        assert_eq!(shown("bücher.de"), "bücher.de");
        assert_eq!(shown("\u{1b}[2Jx"), "\\u{1b}[2Jx");
        assert_eq!(shown("a\nb\tc\0d\u{7}"), "a\\nb\\tc\\0d\\u{7}");
        assert_eq!(shown("a\u{9b}31m"), "a\\u{9b}31m");
        assert_eq!(shown("abc\u{202e}txt.exe"), "abc\\u{202e}txt.exe");
        assert_eq!(escape_controls("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
        assert!(!shown("\u{1b}\u{7}\r\u{7f}").chars().any(char::is_control));
    }

    #[test]
    fn a_long_value_is_cut_and_its_length_said() {
        let long = "a".repeat(12_803);
        let s = shown(&long);
        assert_eq!(
            s,
            format!("{}... (12803 characters)", "a".repeat(MAX_SHOWN_CHARS))
        );
        let exact = "é".repeat(MAX_SHOWN_CHARS);
        assert_eq!(shown(&exact), exact);
        // What is cut is cut by characters, and what is kept still escaped.
        let escapes = "\u{1b}".repeat(MAX_SHOWN_CHARS + 1);
        assert!(shown(&escapes).starts_with("\\u{1b}\\u{1b}"));
        assert!(shown(&escapes).ends_with("... (101 characters)"));
    }

    #[test]
    fn one_takes_the_singular_and_every_other_count_the_plural() {
        assert_eq!(count(1, "call"), "1 call");
        assert_eq!(count(0, "call"), "0 calls");
        assert_eq!(count(2, "job file"), "2 job files");
        assert_eq!(count(1usize, "collection"), "1 collection");
        assert_eq!(count(-1, "call"), "-1 calls");
    }
}
