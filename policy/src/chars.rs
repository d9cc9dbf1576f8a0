//! The script as its readers hold it, a slice of chars, and the few
//! helpers they all step through it with: the tokenizer, the word reader
//! and the skipper share these rather than borrow them from each other.

pub(crate) fn text(s: &[char]) -> String {
    s.iter().collect()
}

/// The characters that end an unquoted word.
pub(crate) fn is_meta(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>'
    )
}

pub(crate) fn find(s: &[char], from: usize, c: char) -> Option<usize> {
    (from..s.len()).find(|&k| s[k] == c)
}
