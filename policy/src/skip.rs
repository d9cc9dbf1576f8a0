//! Finding where a construct ends without reading it: the `)` of a
//! `$( … )` (past quotes, nested substitutions, comments and
//! here-documents), the `}` of a `${ … }`, the end of a here-document. The
//! lexer keeps a substitution as source text this way; the walker parses
//! it only when it needs its value or its effects.

use crate::chars::{find, is_meta, text};
use crate::depth::{MAX_DEPTH, too_deep};
use crate::escape::ansi_c;

/// Reads here-document lines from `i` up to the delimiter line: the body and
/// the index after the delimiter line.
pub(crate) fn read_doc(
    s: &[char],
    mut i: usize,
    delim: &str,
    strip: bool,
) -> Option<(String, usize)> {
    let mut body = String::new();
    loop {
        if i >= s.len() {
            return None;
        }
        let start = i;
        while i < s.len() && s[i] != '\n' {
            i += 1;
        }
        let line = text(&s[start..i]);
        if i < s.len() {
            i += 1;
        }
        let line = if strip {
            line.trim_start_matches('\t')
        } else {
            &line
        };
        if line == delim || line.strip_suffix('\r') == Some(delim) {
            return Some((body, i));
        }
        body.push_str(line);
        body.push('\n');
    }
}

/// From just inside an opening parenthesis, the index of its closing one,
/// stepping over quotes, nested substitutions, comments and here-documents.
pub(crate) fn skip_to_close(s: &[char], mut i: usize, depth: usize) -> Result<usize, String> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    let mut level = 0usize;
    let mut docs: Vec<(String, bool)> = Vec::new();
    let mut word_start = true;
    while i < s.len() {
        let c = s[i];
        let at_start = word_start;
        word_start = matches!(c, ' ' | '\t' | '\n' | ';' | '&' | '|' | '(');
        if let Some(next) = step_over(s, i, depth)? {
            i = next;
            continue;
        }
        match c {
            '$' if s.get(i + 1) == Some(&'\'') => i = ansi_c(s, i + 2)?.1,
            '(' => {
                level += 1;
                i += 1;
            }
            ')' => {
                if level == 0 {
                    return Ok(i);
                }
                level -= 1;
                i += 1;
            }
            '#' if at_start => {
                while i < s.len() && s[i] != '\n' {
                    i += 1;
                }
            }
            '<' if s.get(i + 1) == Some(&'<') && s.get(i + 2) == Some(&'<') => i += 3,
            '<' if s.get(i + 1) == Some(&'<') => {
                i = doc_word(s, i + 2, &mut docs);
            }
            '\n' => {
                i += 1;
                for (d, strip) in std::mem::take(&mut docs) {
                    i = read_doc(s, i, &d, strip)
                        .ok_or_else(|| format!("here-document without its end marker `{d}`"))?
                        .1;
                }
            }
            _ => i += 1,
        }
    }
    Err("unbalanced parenthesis: `$(` or `(` without its `)`".into())
}

/// One step over what `$( … )` and `${ … }` skip alike: an escaped
/// character, a quoted string, a backquoted or nested substitution. The
/// index after it, or None when `s[i]` starts none of these and the caller
/// reads it itself.
fn step_over(s: &[char], i: usize, depth: usize) -> Result<Option<usize>, String> {
    Ok(Some(match s[i] {
        '\\' => i + 2,
        '\'' => find(s, i + 1, '\'').ok_or("unterminated single quote")? + 1,
        '"' => skip_dquote(s, i + 1, depth)?,
        '`' => skip_backtick(s, i + 1)?,
        '$' if s.get(i + 1) == Some(&'(') => skip_to_close(s, i + 2, depth + 1)? + 1,
        '$' if s.get(i + 1) == Some(&'{') => skip_brace(s, i + 2, depth + 1)? + 1,
        _ => return Ok(None),
    }))
}

/// The delimiter after `<<` inside a skipped substitution.
fn doc_word(s: &[char], mut j: usize, docs: &mut Vec<(String, bool)>) -> usize {
    let strip = s.get(j) == Some(&'-');
    if strip {
        j += 1;
    }
    while matches!(s.get(j), Some(' ' | '\t')) {
        j += 1;
    }
    let mut w = String::new();
    while let Some(&c) = s.get(j) {
        if is_meta(c) {
            break;
        }
        if !matches!(c, '\'' | '"' | '\\') {
            w.push(c);
        }
        j += 1;
    }
    if !w.is_empty() {
        docs.push((w, strip));
    }
    j
}

fn skip_dquote(s: &[char], mut i: usize, depth: usize) -> Result<usize, String> {
    while i < s.len() {
        match s[i] {
            '\\' => i += 2,
            '"' => return Ok(i + 1),
            '$' if s.get(i + 1) == Some(&'(') => i = skip_to_close(s, i + 2, depth + 1)? + 1,
            '$' if s.get(i + 1) == Some(&'{') => i = skip_brace(s, i + 2, depth + 1)? + 1,
            '`' => i = skip_backtick(s, i + 1)?,
            _ => i += 1,
        }
    }
    Err("unterminated double quote".into())
}

fn skip_backtick(s: &[char], mut i: usize) -> Result<usize, String> {
    while i < s.len() {
        match s[i] {
            '\\' => i += 2,
            '`' => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err("unterminated backquote".into())
}

pub(crate) fn skip_brace(s: &[char], mut i: usize, depth: usize) -> Result<usize, String> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    let mut level = 0usize;
    while i < s.len() {
        if let Some(next) = step_over(s, i, depth)? {
            i = next;
            continue;
        }
        match s[i] {
            '{' => {
                level += 1;
                i += 1;
            }
            '}' => {
                if level == 0 {
                    return Ok(i);
                }
                level -= 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    Err("unbalanced `${` without its `}`".into())
}
